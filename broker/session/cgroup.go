package session

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A cgroup limits what the broker and its browsers may use, whatever the
// host has: a container's memory limit (Kubernetes resources.limits,
// docker --memory), a systemd unit's MemoryMax= or CPUQuota=. Admission
// control reads the limits of the cgroup this process is in, and of every
// cgroup above it, so that a pod is refused new sessions before the kernel
// kills it for its memory limit.
//
// Two layouts exist. cgroup v2 has one tree (cgroup2 file system) with
// memory.max, memory.current, memory.stat and cpu.max in each cgroup. cgroup
// v1 has one tree per controller (cgroup file systems mounted with the
// controller's name as an option) with memory.limit_in_bytes,
// memory.usage_in_bytes, memory.stat, cpu.cfs_quota_us and
// cpu.cfs_period_us. A "hybrid" host mounts both, with the controllers on
// v1 and an empty v2 tree; a controller is read from the tree it is
// attached to.
//
// Where a cgroup is found: /proc/self/cgroup names this process's cgroup in
// each tree, relative to the root of its cgroup namespace; mountinfo says
// where each tree is mounted and which of its cgroups the mount shows (its
// root field, relative to the same namespace root). In a container with its
// own cgroup namespace both are usually "/".

// cgroupUnlimited is the smallest v1 limit taken as "no limit": the kernel
// writes the largest page count it can hold times the page size
// (9223372036854771712 with 4 KiB pages).
const cgroupUnlimited = int64(1) << 62

// cgroupMemory is the memory headroom of the tightest cgroup above this
// process: the one with the least room between its limit and what its
// processes use.
type cgroupMemory struct {
	dir   string // the cgroup's directory
	limit int64
	// used is what the cgroup's processes hold that the kernel cannot
	// give back without swapping: usage minus the inactive file cache
	// (page cache that was not used recently, which the kernel reclaims
	// before it reaches the limit).
	used        int64
	reclaimable int64
}

func (c cgroupMemory) available() int64 { return max(c.limit-c.used, 0) }

// cgroupCPU is the tightest CPU quota above this process.
type cgroupCPU struct {
	dir           string
	quota, period int64
}

// cpus is the quota in whole CPUs, rounded up: a quota of 1.5 CPUs lets
// two CPUs run half the time each.
func (c cgroupCPU) cpus() int { return int(math.Ceil(float64(c.quota) / float64(c.period))) }

// cgroupFS finds this process's cgroups from a proc file system (procRoot,
// usually /proc) and the mount points it lists, found under fsRoot (usually
// /; tests build a layout in a temporary directory).
type cgroupFS struct {
	procRoot, fsRoot string
}

// cgroupMount is one mounted cgroup tree.
type cgroupMount struct {
	point string // where it is mounted, under fsRoot
	root  string // the cgroup the mount shows, relative to the namespace root
	v2    bool
	// controllers are a v1 tree's controllers (its super options).
	controllers []string
}

// hierarchy is one line of /proc/self/cgroup: a tree and this process's
// cgroup in it.
type hierarchy struct {
	id          string // "0" for v2
	controllers []string
	path        string
}

// dirs returns the directories of the cgroup that holds controller (for
// example "memory"), from this process's own up to the top of the mounted
// tree, and whether the tree is v2. No directories and no error means no
// cgroup tree with the controller is mounted: the host's figures apply.
func (c cgroupFS) dirs(controller string) ([]string, bool, error) {
	hs, err := c.hierarchies()
	if err != nil || len(hs) == 0 {
		return nil, false, err
	}
	mounts, err := c.mounts()
	if err != nil {
		return nil, false, err
	}
	// A v1 tree that has the controller wins: on a hybrid host the v2
	// tree is mounted too, without it.
	for _, h := range hs {
		if h.id == "0" || !contains(h.controllers, controller) {
			continue
		}
		for _, m := range mounts {
			if !m.v2 && contains(m.controllers, controller) {
				return m.walk(c.fsRoot, h.path), false, nil
			}
		}
		return nil, false, nil // the tree is not mounted here: nothing to read
	}
	for _, h := range hs {
		if h.id != "0" {
			continue
		}
		for _, m := range mounts {
			if m.v2 {
				return m.walk(c.fsRoot, h.path), true, nil
			}
		}
	}
	return nil, false, nil
}

// walk returns the directory of the cgroup path (relative to the namespace
// root) in m and every directory above it up to m's mount point. A cgroup
// outside what the mount shows (another namespace's mount) is read at the
// mount point only.
func (m cgroupMount) walk(fsRoot, path string) []string {
	top := filepath.Join(fsRoot, m.point)
	rel, err := filepath.Rel(m.root, filepath.Clean("/"+path))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		rel = "."
	}
	dirs := []string{filepath.Join(top, rel)}
	for d := dirs[0]; d != top; {
		d = filepath.Dir(d)
		dirs = append(dirs, d)
	}
	return dirs
}

// hierarchies parses /proc/self/cgroup; nil without error when it does not
// exist (no cgroups).
func (c cgroupFS) hierarchies() ([]hierarchy, error) {
	path := filepath.Join(c.procRoot, "self", "cgroup")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read this process's cgroups: %w", err)
	}
	var out []hierarchy
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[0] == "" || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("%s: line %q: want ID:CONTROLLERS:/PATH", path, line)
		}
		h := hierarchy{id: f[0], path: f[2]}
		if f[1] != "" {
			h.controllers = strings.Split(f[1], ",")
		}
		out = append(out, h)
	}
	return out, nil
}

// mounts parses mountinfo for the cgroup trees mounted.
func (c cgroupFS) mounts() ([]cgroupMount, error) {
	path := filepath.Join(c.procRoot, "self", "mountinfo")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the mounted cgroup trees: %w", err)
	}
	var out []cgroupMount
	for line := range strings.Lines(string(data)) {
		// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("%s: line %q: want the fields of proc(5) mountinfo", path, strings.TrimSpace(line))
		}
		m := cgroupMount{root: unescapeMount(f[3]), point: unescapeMount(f[4])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			if len(g) > 2 {
				m.controllers = strings.Split(g[2], ",")
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// memory returns the tightest memory limit above this process, or nil
// when no cgroup limits its memory.
func (c cgroupFS) memory() (*cgroupMemory, error) {
	return tightest(c, "memory", memoryV2, memoryV1, func(a, b *cgroupMemory) bool { return a.available() < b.available() })
}

// tightest reads the controller's limit in every cgroup above this process
// (with v2 or v1, as the hierarchy is) and returns the one that leaves the
// least room (less), or nil when none limits.
func tightest[T any](c cgroupFS, controller string, v2, v1 func(dir string) (*T, error), less func(a, b *T) bool) (*T, error) {
	dirs, isV2, err := c.dirs(controller)
	if err != nil {
		return nil, err
	}
	read := v1
	if isV2 {
		read = v2
	}
	var best *T
	for _, d := range dirs {
		x, err := read(d)
		if err != nil {
			return nil, err
		}
		if x != nil && (best == nil || less(x, best)) {
			best = x
		}
	}
	return best, nil
}

// memoryV2 reads a v2 cgroup's memory.max, memory.current and the
// inactive_file of memory.stat; nil for "max" or a cgroup without the
// memory controller (no memory.max: the root, or not enabled above).
func memoryV2(dir string) (*cgroupMemory, error) {
	limit, ok, err := readLimit(filepath.Join(dir, "memory.max"))
	if err != nil || !ok {
		return nil, err
	}
	usage, err := readInt(filepath.Join(dir, "memory.current"))
	if err != nil {
		return nil, err
	}
	inactive, err := statField(filepath.Join(dir, "memory.stat"), "inactive_file")
	if err != nil {
		return nil, err
	}
	return newCgroupMemory(dir, limit, usage, inactive), nil
}

// memoryV1 reads a v1 cgroup's memory.limit_in_bytes,
// memory.usage_in_bytes and the total_inactive_file of memory.stat; nil
// for the "unlimited" value or a directory without the files.
func memoryV1(dir string) (*cgroupMemory, error) {
	path := filepath.Join(dir, "memory.limit_in_bytes")
	limit, err := readInt(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if limit >= cgroupUnlimited {
		return nil, nil
	}
	usage, err := readInt(filepath.Join(dir, "memory.usage_in_bytes"))
	if err != nil {
		return nil, err
	}
	inactive, err := statField(filepath.Join(dir, "memory.stat"), "total_inactive_file")
	if err != nil {
		return nil, err
	}
	return newCgroupMemory(dir, limit, usage, inactive), nil
}

func newCgroupMemory(dir string, limit, usage, inactive int64) *cgroupMemory {
	inactive = min(inactive, usage)
	return &cgroupMemory{dir: dir, limit: limit, used: usage - inactive, reclaimable: inactive}
}

// cpu returns the tightest CPU quota above this process, or nil when no
// cgroup limits its CPU time.
func (c cgroupFS) cpu() (*cgroupCPU, error) {
	return tightest(c, "cpu", cpuV2, cpuV1, func(a, b *cgroupCPU) bool { return a.cpus() < b.cpus() })
}

// cpuV2 reads a v2 cgroup's cpu.max ("QUOTA PERIOD" or "max PERIOD").
func cpuV2(dir string) (*cgroupCPU, error) {
	path := filepath.Join(dir, "cpu.max")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CPU quota: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return nil, fmt.Errorf("%s: %q: want \"QUOTA PERIOD\" or \"max PERIOD\"", path, strings.TrimSpace(string(data)))
	}
	period, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || period <= 0 {
		return nil, fmt.Errorf("%s: period %q is not a positive number of microseconds", path, f[1])
	}
	if f[0] == "max" {
		return nil, nil
	}
	quota, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || quota <= 0 {
		return nil, fmt.Errorf("%s: quota %q is not \"max\" or a positive number of microseconds", path, f[0])
	}
	return &cgroupCPU{dir: dir, quota: quota, period: period}, nil
}

// cpuV1 reads a v1 cgroup's cpu.cfs_quota_us (-1 for none) and
// cpu.cfs_period_us.
func cpuV1(dir string) (*cgroupCPU, error) {
	path := filepath.Join(dir, "cpu.cfs_quota_us")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CPU quota: %w", err)
	}
	quota, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || quota == 0 || quota < -1 {
		return nil, fmt.Errorf("%s: %q is not -1 or a positive number of microseconds", path, strings.TrimSpace(string(data)))
	}
	if quota == -1 {
		return nil, nil
	}
	period, err := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return nil, err
	}
	if period <= 0 {
		return nil, fmt.Errorf("%s: period %d is not positive", filepath.Join(dir, "cpu.cfs_period_us"), period)
	}
	return &cgroupCPU{dir: dir, quota: quota, period: period}, nil
}

// readLimit reads a v2 limit file: a number of bytes, or "max". ok is
// false for "max" and for a file that does not exist.
func readLimit(path string) (n int64, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read memory limit: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("%s: %q is not \"max\" or a number of bytes", path, s)
	}
	return n, true, nil
}

// readInt reads a file holding one integer.
func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read cgroup figure: %w", err)
	}
	s := strings.TrimSpace(string(data))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a number", path, s)
	}
	return n, nil
}

// statField reads one "NAME VALUE" line of a memory.stat file.
func statField(path, name string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read cgroup memory statistics: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != name {
			continue
		}
		if len(f) != 2 {
			return 0, fmt.Errorf("%s: line %q: want \"%s BYTES\"", path, sc.Text(), name)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s: %s %q is not a number of bytes", path, name, f[1])
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: no %s line", path, name)
}

// formatBytes writes a size for people: GiB with one decimal from 1 GiB,
// MiB below.
func formatBytes(n int64) string {
	if n >= 1<<30 {
		s := strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + " GiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
