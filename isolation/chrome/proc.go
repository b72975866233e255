package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"os"
	"strconv"
	"syscall"
	"time"
)

// killGroup sends SIGKILL to every process of the process group pgid.
func killGroup(pgid int) {
	if pgid <= 1 {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive reports whether the process group pgid still has a process
// to wait for: one that is not a zombie yet, or a zombie that this process
// can reap now or once its parent in the group is gone. A zombie whose
// parent is elsewhere (init, when this process is no child subreaper) holds
// no resources and is left to that parent.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	type member struct {
		state byte
		ppid  int
	}
	members := map[int]member{}
	for pid := range otherProcs() {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		state, pg, ok1 := parseStat(stat)
		_, ppid, ok2 := parseStatParent(stat)
		if ok1 && ok2 && pg == pgid {
			members[pid] = member{state, ppid}
		}
	}
	self := os.Getpid()
	for _, m := range members {
		if m.state != 'Z' && m.state != 'X' {
			return true
		}
		// A zombie here may still have threads that exit: wait4 reaps it
		// once they are gone.
		if _, parentInGroup := members[m.ppid]; m.ppid == self || parentInGroup {
			return true
		}
	}
	return false
}

// parseStat reads the state and the process group from /proc/PID/stat.
func parseStat(stat []byte) (state byte, pgid int, ok bool) {
	return statField(stat, 2)
}

// parseStatParent reads the state and the parent from /proc/PID/stat.
func parseStatParent(stat []byte) (state byte, ppid int, ok bool) {
	return statField(stat, 1)
}

// statField reads the state and the numeric field i after it (1 the parent,
// 2 the process group) from /proc/PID/stat.
func statField(stat []byte, i int) (state byte, v int, ok bool) {
	// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
	j := bytes.LastIndexByte(stat, ')')
	if j < 0 || j+2 >= len(stat) {
		return 0, 0, false
	}
	fields := bytes.Fields(stat[j+2:])
	if len(fields) <= i || len(fields[0]) != 1 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(string(fields[i]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], n, true
}

// waitGroupGone kills the process group pgid until no live process is left
// in it, for at most limit, and reaps the ones that are this process's
// children. Call it only after the group leader was reaped by its own Wait,
// or the leader's Wait would lose its status.
func waitGroupGone(pgid int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		reapGroup(pgid)
		if !groupAlive(pgid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has processes after %v", pgid, limit)
		}
		killGroup(pgid)
		time.Sleep(10 * time.Millisecond)
	}
}

// reapGroup reaps the exited children of this process that are in the
// process group pgid. With the child subreaper attribute (see
// becomeSubreaper) the helpers of a browser whose main process died are such
// children.
func reapGroup(pgid int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// becomeSubreaper makes orphaned descendants of this process its children
// instead of init's, so that the helpers of a killed browser can be reaped
// here. Without it they stay zombies when init does not reap, as in a
// container whose first process is not an init.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	return nil
}

// otherProcs yields the pid of every process on the host but this one, as
// /proc lists them; nothing when /proc cannot be read.
func otherProcs() iter.Seq[int] {
	return func(yield func(int) bool) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		self := os.Getpid()
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			if !yield(pid) {
				return
			}
		}
	}
}

// killByProfile kills every process that names profileDir on its command
// line, and returns their pids. It catches the processes that are not in the
// browser's process group: Chromium's crash reporter starts in a session of
// its own (its database is in the profile, because HOME is), and a launch
// can fail before its pid is known.
func killByProfile(profileDir string) []int {
	dirArg := []byte("--user-data-dir=" + profileDir)
	inDir := []byte(profileDir + "/")
	var pids []int
	for pid := range otherProcs() {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(arg, dirArg) || bytes.Contains(arg, inDir) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// killStrays kills the processes outside the browser's group that name
// profileDir, until none is left, and reaps those that are this process's
// children, for at most limit. known are strays killed earlier.
func killStrays(profileDir string, known []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	pending := map[int]bool{}
	for _, pid := range known {
		pending[pid] = true
	}
	defer reapCrashReporters()
	for {
		for _, pid := range killByProfile(profileDir) {
			pending[pid] = true
		}
		for pid := range pending {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if got == pid || errors.Is(err, syscall.ECHILD) {
				// Reaped, or not a child here: init reaps it.
				delete(pending, pid)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of profile %s still running after %v", pending, profileDir, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashReporterComm is the kernel's name of Chromium's crash reporter.
const crashReporterComm = "chrome_crashpad"

// reapCrashReporters reaps the crash reporters that are zombie children of
// this process. A crash reporter that exits by itself, before killStrays
// sees it, has lost its command line, so only its name tells what it was.
// Reaping a zombie harms nobody, whichever browser it belonged to.
func reapCrashReporters() {
	self := os.Getpid()
	for pid := range otherProcs() {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || !bytes.Contains(stat, []byte("("+crashReporterComm+")")) {
			continue
		}
		state, ppid, ok := parseStatParent(stat)
		if ok && state == 'Z' && ppid == self {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
	}
}
