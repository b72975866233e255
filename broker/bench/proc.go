package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go runs on).
const clockTick = 10 * time.Millisecond

// procStat is what /proc/PID/stat says about one process.
type procStat struct {
	PID, PPID, PGID int
	// Start is when the process started, in clock ticks after boot; with
	// the PID it names one process even after the PID is reused.
	Start uint64
	// CPU is the user and system time of the process's threads, live and
	// ended, in clock ticks.
	CPU time.Duration
}

// parseStat parses the text of /proc/PID/stat.
func parseStat(data []byte) (procStat, error) {
	// The command name is in parentheses and may hold spaces and
	// parentheses itself: the fields start after the last ')'.
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 1 || end < open {
		return procStat{}, errors.New("no command name in parentheses")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("pid: %w", err)
	}
	f := strings.Fields(string(data[end+1:]))
	// f[0] is field 3 of proc(5): state, ppid, pgrp, session, ... utime
	// (14), stime (15), ... starttime (22).
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 20", len(f))
	}
	num := func(i int) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = strconv.ParseUint(f[i], 10, 64)
		return v
	}
	p := procStat{PID: pid, PPID: int(num(1)), PGID: int(num(2))}
	p.CPU = time.Duration(num(11)+num(12)) * clockTick
	p.Start = num(19)
	if err != nil {
		return procStat{}, fmt.Errorf("bad number: %w", err)
	}
	return p, nil
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	p, err := parseStat(data)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return p, nil
}

// listProcs returns every process of the machine that it can read.
func listProcs() []procStat {
	ents, _ := os.ReadDir("/proc")
	out := make([]procStat, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readStat(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// descendants returns the processes below root in all (root excluded).
func descendants(all []procStat, root int) []procStat {
	children := map[int][]procStat{}
	for _, p := range all {
		children[p.PPID] = append(children[p.PPID], p)
	}
	var out []procStat
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out
}

// cmdline returns the arguments of pid's command line.
func cmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// browserGroups finds the Chromium browsers below the process under and
// returns each one's processes by the main process's PID: the main process
// (it has --user-data-dir and no --type), its descendants, and the
// processes anywhere whose command line points into its profile directory
// (the crash handlers, which Chromium starts detached).
func browserGroups(all []procStat, under int) map[int][]procStat {
	profiles := map[int]string{}
	for _, p := range descendants(all, under) {
		var dir string
		helper := false
		for _, a := range cmdline(p.PID) {
			if v, ok := strings.CutPrefix(a, "--user-data-dir="); ok {
				dir = v
			}
			if strings.HasPrefix(a, "--type=") {
				helper = true
			}
		}
		if dir != "" && !helper {
			profiles[p.PID] = filepath.Clean(dir)
		}
	}
	out := map[int][]procStat{}
	taken := map[int]bool{}
	for pid := range profiles {
		for _, p := range all {
			if p.PID == pid {
				out[pid] = append(out[pid], p)
				taken[p.PID] = true
			}
		}
		for _, p := range descendants(all, pid) {
			out[pid] = append(out[pid], p)
			taken[p.PID] = true
		}
	}
	for _, p := range all {
		if taken[p.PID] {
			continue
		}
		args := cmdline(p.PID)
	match:
		for pid, dir := range profiles {
			for _, a := range args {
				if strings.Contains(a, dir+"/") {
					out[pid] = append(out[pid], p)
					break match
				}
			}
		}
	}
	return out
}

// killProfile kills every process whose command line points into the
// profile directory dir: a browser's helpers that outlived it, such as
// its detached crash handlers.
func killProfile(dir string) {
	dir = filepath.Clean(dir)
	for _, p := range listProcs() {
		for _, a := range cmdline(p.PID) {
			if strings.Contains(a, dir+"/") || strings.HasSuffix(a, "="+dir) {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
				break
			}
		}
	}
}

// sumPSS sums the PSS of procs in bytes. A process that ended meanwhile
// counts nothing.
func sumPSS(procs []procStat) int64 {
	var n int64
	for _, p := range procs {
		if v, err := pss(p.PID); err == nil {
			n += v
		}
	}
	return n
}

// statusKB returns a "Name:   N kB" field of a /proc file in bytes.
func statusKB(path, name string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

// rss returns the resident set size of pid in bytes.
func rss(pid int) (int64, error) {
	return statusKB(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmRSS")
}

// pss returns the proportional set size of pid in bytes: its private
// memory plus its share of memory it shares with other processes, so that
// the PSS of a group of processes adds up to what the group costs.
func pss(pid int) (int64, error) {
	return statusKB(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"), "Pss")
}

// threadCPU returns the CPU time of pid's live threads from the
// scheduler's nanosecond accounting (/proc/PID/task/*/sched), which is far
// finer than the clock ticks of /proc/PID/stat but forgets threads that
// ended.
func threadCPU(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "sched"))
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(k) != "se.sum_exec_runtime" {
				continue
			}
			ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s/%s/sched: %w", dir, t.Name(), err)
			}
			total += time.Duration(ms * float64(time.Millisecond))
		}
	}
	return total, nil
}

// cpuSample is a process's CPU time by both counts.
type cpuSample struct {
	ticks   time.Duration // /proc/PID/stat
	threads time.Duration // threadCPU; zero when unavailable
}

func sampleCPU(pid int) (cpuSample, error) {
	st, err := readStat(pid)
	if err != nil {
		return cpuSample{}, err
	}
	th, _ := threadCPU(pid)
	return cpuSample{ticks: st.CPU, threads: th}, nil
}

// cpuBetween returns the CPU time used between two samples: the
// nanosecond count when it agrees with the tick count within two ticks
// (no thread ended in between), else the tick count.
func cpuBetween(a, b cpuSample) time.Duration {
	ticks := b.ticks - a.ticks
	th := b.threads - a.threads
	if a.threads > 0 && th >= 0 && th > ticks-2*clockTick && th < ticks+2*clockTick {
		return th
	}
	return ticks
}

// nodeMemory returns the machine's memory in use (MemTotal minus
// MemAvailable) and its total, in bytes.
func nodeMemory() (used, total int64, err error) {
	total, err = statusKB("/proc/meminfo", "MemTotal")
	if err != nil {
		return 0, 0, err
	}
	avail, err := statusKB("/proc/meminfo", "MemAvailable")
	if err != nil {
		return 0, 0, err
	}
	return total - avail, total, nil
}

// killLeftovers kills with SIGKILL each of procs that still runs (the same
// PID with the same start time).
func killLeftovers(procs []procStat) (killed int) {
	for _, p := range procs {
		now, err := readStat(p.PID)
		if err != nil || now.Start != p.Start {
			continue
		}
		if syscall.Kill(p.PID, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}
