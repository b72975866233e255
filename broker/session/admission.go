package session

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Limit names the limit that refused a new session.
type Limit string

// The limits of admission control.
const (
	// LimitSessions is Config.MaxSessions.
	LimitSessions Limit = "sessions"
	// LimitMemory is Config.MinFreeMemory.
	LimitMemory Limit = "memory"
	// LimitCPU is Config.MaxLoadPerCPU.
	LimitCPU Limit = "cpu"
)

// FullError refuses a new session because the node is full. It wraps
// ErrFull; Detail says which limit was hit, with the figures.
type FullError struct {
	Limit  Limit
	Detail string
}

func (e *FullError) Error() string { return ErrFull.Error() + ": " + e.Detail }

// Unwrap returns ErrFull.
func (e *FullError) Unwrap() error { return ErrFull }

// NodeStats reads how much room the node has left. Admission control asks
// it before each new session and each pooled browser; it must be cheap.
type NodeStats interface {
	// Memory returns the bytes of memory available to new processes
	// without swapping, and where the figure comes from.
	Memory() (Memory, error)
	// Load returns the load average over the last minute divided by the
	// number of CPUs this process may use.
	Load() (Load, error)
}

// Memory is the memory a new browser can have.
type Memory struct {
	// Available is in bytes.
	Available int64
	// Source says where Available comes from, for /readyz and the logs:
	// the host's MemAvailable, or the limit of a cgroup and what its
	// processes use.
	Source string
}

// Load is the CPU load per CPU.
type Load struct {
	// PerCPU is the one-minute load average divided by CPUs.
	PerCPU float64
	// CPUs is the number of CPUs this process may use: the host's, or
	// fewer under a cgroup CPU quota.
	CPUs int
	// Source says where CPUs comes from.
	Source string
}

// ProcStats reads NodeStats from Linux's proc file system and from the
// cgroup file systems it lists (see cgroup.go): the memory available is
// the host's MemAvailable or the room left under the tightest cgroup memory
// limit above this process, whichever is less; the CPUs are the host's or
// the tightest cgroup CPU quota, rounded up to whole CPUs, whichever is
// less.
type ProcStats struct {
	// Root is where proc is mounted. Empty means "/proc".
	Root string
	// FSRoot is prefixed to the cgroup mount points that Root's
	// self/mountinfo lists. Empty means "/" (tests build a layout in a
	// temporary directory).
	FSRoot string
	// CPUs divides the load average. Zero means runtime.NumCPU() (the CPUs
	// this process may run on), or a cgroup's CPU quota when it is less.
	CPUs int

	// hostCPUs stands in for runtime.NumCPU() when positive, so that tests
	// of a cgroup quota do not depend on the machine's CPUs.
	hostCPUs int
}

func (p ProcStats) path(name string) string {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(root, name)
}

func (p ProcStats) cgroups() cgroupFS {
	fsRoot := p.FSRoot
	if fsRoot == "" {
		fsRoot = "/"
	}
	return cgroupFS{procRoot: p.path(""), fsRoot: fsRoot}
}

// Memory reads MemAvailable from meminfo and the room under this
// process's cgroup memory limits, and returns the smaller.
func (p ProcStats) Memory() (Memory, error) {
	host, err := p.hostMemAvailable()
	if err != nil {
		return Memory{}, err
	}
	cg, err := p.cgroups().memory()
	if err != nil {
		return Memory{}, fmt.Errorf("read the cgroup memory limit: %w", err)
	}
	if cg != nil && cg.available() < host {
		return Memory{Available: cg.available(), Source: fmt.Sprintf(
			"cgroup memory limit %s, %s used not counting %s of reclaimable file cache (%s)",
			formatBytes(cg.limit), formatBytes(cg.used), formatBytes(cg.reclaimable), cg.dir)}, nil
	}
	return Memory{Available: host, Source: "host MemAvailable of " + p.path("meminfo")}, nil
}

func (p ProcStats) hostMemAvailable() (int64, error) {
	path := p.path("meminfo")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read memory headroom: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: MemAvailable line %q: want \"N kB\"", path, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("%s: MemAvailable %q is not a size", path, f[0])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s: no MemAvailable line (Linux 3.14 or later has it)", path)
}

// Load reads the one-minute load average from loadavg and divides it by
// the CPUs. The load average is the host's: it counts every process on
// the machine, in other containers too.
func (p ProcStats) Load() (Load, error) {
	path := p.path("loadavg")
	data, err := os.ReadFile(path)
	if err != nil {
		return Load{}, fmt.Errorf("read CPU headroom: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return Load{}, fmt.Errorf("%s is empty", path)
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil || load < 0 {
		return Load{}, fmt.Errorf("%s: one-minute load %q is not a number", path, f[0])
	}
	cpus, source := p.CPUs, "configured"
	if cpus <= 0 {
		cpus, source = runtime.NumCPU(), "host"
		if p.hostCPUs > 0 {
			cpus = p.hostCPUs
		}
		q, err := p.cgroups().cpu()
		if err != nil {
			return Load{}, fmt.Errorf("read the cgroup CPU quota: %w", err)
		}
		if q != nil && q.cpus() < cpus {
			cpus, source = q.cpus(), fmt.Sprintf("cgroup CPU quota %dµs per %dµs (%s)", q.quota, q.period, q.dir)
		}
	}
	return Load{PerCPU: load / float64(cpus), CPUs: cpus, Source: source}, nil
}

// Admit says whether the node can take a new session: nil, ErrShuttingDown,
// or a *FullError naming the limit that was hit. /readyz reports it.
func (m *Manager) Admit() error {
	m.mu.Lock()
	var err error
	switch {
	case m.closing:
		err = ErrShuttingDown
	case len(m.sessions)+m.probing >= m.cfg.MaxSessions:
		err = m.sessionsFull()
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return m.headroom()
}

// ShuttingDown reports whether Shutdown was called.
func (m *Manager) ShuttingDown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// Ready reports whether the node can take a new session (Admit is nil).
func (m *Manager) Ready() bool { return m.Admit() == nil }

// sessionsFull is the refusal at MaxSessions; m.mu is held.
func (m *Manager) sessionsFull() *FullError {
	detail := fmt.Sprintf("the node runs its maximum of %d sessions", m.cfg.MaxSessions)
	if m.probing > 0 {
		detail += " (one place is held for a few seconds by a probe start of a browser)"
	}
	return &FullError{Limit: LimitSessions, Detail: detail}
}

// headroom checks the node's memory and CPU against the configured limits.
// A figure that cannot be read does not refuse: it is logged once, and the
// session count still bounds the node.
func (m *Manager) headroom() error {
	if floor := m.cfg.MinFreeMemory; floor > 0 {
		mem, err := m.cfg.Stats.Memory()
		switch {
		case err != nil:
			m.statsUnreadable(err)
		case mem.Available < floor:
			return &FullError{Limit: LimitMemory, Detail: fmt.Sprintf(
				"memory headroom is gone: %d MiB available (%s), the minimum is %d MiB", mem.Available>>20, mem.Source, floor>>20)}
		}
	}
	if ceiling := m.cfg.MaxLoadPerCPU; ceiling > 0 {
		load, err := m.cfg.Stats.Load()
		switch {
		case err != nil:
			m.statsUnreadable(err)
		case load.PerCPU > ceiling:
			return &FullError{Limit: LimitCPU, Detail: fmt.Sprintf(
				"CPU headroom is gone: the load over the last minute is %.2f per CPU (%d CPUs: %s), the maximum is %g",
				load.PerCPU, load.CPUs, load.Source, ceiling)}
		}
	}
	return nil
}

func (m *Manager) statsUnreadable(err error) {
	m.statsWarn.Do(func() {
		m.cfg.Logger.Warn("admission control cannot read the node's headroom; only max sessions applies", "err", err)
	})
}
