package vnc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// How much of the end of a process's log an error shows, and how much of
// the log is read to find it among the noise.
const (
	logTail = 4 << 10
	logScan = 256 << 10
)

// Grace periods of stopAll.
const (
	termGrace = 3 * time.Second  // from SIGTERM to SIGKILL
	killLimit = 10 * time.Second // from SIGKILL until every process is gone
)

// proc is one process the peer started, the leader of its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	noise   []string      // lines of the log with one of these are left out of describe
	done    chan struct{} // closed once the process was reaped
	err     error         // how the process ended; valid after done is closed
}

// startProc starts cmd as name in a process group of its own, with its
// standard output and error in the file dir/name.log. The process is killed
// when this process dies.
func startProc(dir, name string, cmd *exec.Cmd) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vnc: %s log: %w", name, err)
	}
	defer f.Close()
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vnc: start %s: %w", name, err)
	}
	pr := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		close(pr.done)
	}()
	return pr, nil
}

// pid is the process's id, and so its process group's.
func (pr *proc) pid() int { return pr.cmd.Process.Pid }

// exited reports whether the process has ended.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// describe names the process, tells whether it ended and shows the end of
// its log.
func (pr *proc) describe() string {
	state := "running"
	if pr.exited() {
		state = "ended: " + fmt.Sprint(pr.err)
		if pr.err == nil {
			state = "ended: exit status 0"
		}
	}
	return fmt.Sprintf("--- %s (pid %d, %s) ---\n%s\n", pr.name, pr.pid(), state, tail(pr.logPath, pr.noise))
}

// tail returns about the last logTail bytes of the log at path, without
// the lines that contain one of noise.
func tail(path string, noise []string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logScan {
		_, _ = f.Seek(-logScan, io.SeekEnd)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	var kept []string
	left := 0
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if slices.ContainsFunc(noise, func(n string) bool { return strings.Contains(line, n) }) {
			left++
			continue
		}
		kept = append(kept, line)
	}
	s := strings.Join(kept, "\n")
	if len(s) > logTail {
		s = "…" + s[len(s)-logTail:]
	}
	if left > 0 {
		if s != "" {
			s += "\n"
		}
		s += fmt.Sprintf("(%d lines about %s left out)", left, strings.Join(noise, ", "))
	}
	return s
}

// waitReady polls ready every 50 ms until it returns nil. It fails when pr
// ends first or ctx ends, with ready's last error and pr's log.
func waitReady(ctx context.Context, pr *proc, what string, ready func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-pr.done:
			return fmt.Errorf("vnc: %s: %s ended before it was ready (%w)\n%s", what, pr.name, err, pr.describe())
		case <-ctx.Done():
			return fmt.Errorf("vnc: %s: %w (last: %w)\n%s", what, ctx.Err(), err, pr.describe())
		case <-tick.C:
		}
	}
}

// stopAll ends the processes of procs, with every process of their process
// groups and every process whose command line names dir: SIGTERM first, so
// that Xvfb and Chromium remove their files, then SIGKILL to what is left.
// It reaps the processes that are this process's children.
func stopAll(procs []*proc, dir string) error {
	for _, pr := range procs {
		_ = syscall.Kill(-pr.pid(), syscall.SIGTERM)
	}
	deadline := time.Now().Add(termGrace)
	for _, pr := range procs {
		select {
		case <-pr.done:
		case <-time.After(time.Until(deadline)):
		}
	}

	groups := make(map[int]bool, len(procs))
	for _, pr := range procs {
		groups[pr.pid()] = true
	}
	deadline = time.Now().Add(killLimit)
	for {
		for pg := range groups {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
		live := liveProcesses(groups, dir)
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		allReaped := true
		for _, pr := range procs {
			if !pr.exited() {
				allReaped = false
			}
		}
		if allReaped {
			// Reaping by group is safe only once exec.Cmd.Wait has its
			// leader's status.
			for pg := range groups {
				reapGroup(pg)
			}
		}
		if allReaped && len(live) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, pr := range procs {
				if !pr.exited() {
					names = append(names, pr.name)
				}
			}
			return fmt.Errorf("vnc: processes %v (not reaped: %v) still running %v after SIGKILL", live, names, killLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveProcesses returns the processes that are not zombies and that are in
// one of groups or name dir on their command line. Chromium's crash
// reporter leaves the browser's process group, but its database is under
// HOME, in dir.
func liveProcesses(groups map[int]bool, dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var live []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		state, pgid, ok := readStat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		if groups[pgid] || (dir != "" && cmdlineNames(pid, dir)) {
			live = append(live, pid)
		}
	}
	return live
}

// readStat reads the state and the process group of pid from
// /proc/PID/stat.
func readStat(pid int) (state byte, pgid int, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, 0, false
	}
	fields := bytes.Fields(stat[i+2:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgid, err = strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgid, true
}

// cmdlineNames reports whether pid's command line names a path under dir.
func cmdlineNames(pid int, dir string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(dir+"/"))
}

// reapGroup reaps the ended children of this process in process group pg:
// the helpers of a killed process, when this process is their subreaper.
func reapGroup(pg int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pg, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// removeXLock removes the lock file and socket of X display n when Xvfb,
// killed before it could, left them behind.
func removeXLock(n int, procs []*proc) {
	if n < 0 {
		return
	}
	var xvfb *proc
	for _, pr := range procs {
		if pr.name == "xvfb" {
			xvfb = pr
		}
	}
	if xvfb == nil {
		return
	}
	lock := "/tmp/.X" + strconv.Itoa(n) + "-lock"
	b, err := os.ReadFile(lock)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || pid != xvfb.pid() {
		return
	}
	_ = os.Remove("/tmp/.X11-unix/X" + strconv.Itoa(n))
	_ = os.Remove(lock)
}
