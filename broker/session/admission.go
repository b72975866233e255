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
	// MemAvailable returns the bytes of memory available to new processes
	// without swapping (MemAvailable of /proc/meminfo).
	MemAvailable() (int64, error)
	// LoadPerCPU returns the load average over the last minute divided by
	// the number of CPUs.
	LoadPerCPU() (float64, error)
}

// ProcStats reads NodeStats from Linux's proc file system.
type ProcStats struct {
	// Root is where proc is mounted. Empty means "/proc".
	Root string
	// CPUs divides the load average. Zero means runtime.NumCPU() (the CPUs
	// this process may run on).
	CPUs int
}

func (p ProcStats) path(name string) string {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(root, name)
}

// MemAvailable reads MemAvailable from meminfo.
func (p ProcStats) MemAvailable() (int64, error) {
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

// LoadPerCPU reads the one-minute load average from loadavg and divides it
// by the CPUs.
func (p ProcStats) LoadPerCPU() (float64, error) {
	path := p.path("loadavg")
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read CPU headroom: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil || load < 0 {
		return 0, fmt.Errorf("%s: one-minute load %q is not a number", path, f[0])
	}
	cpus := p.CPUs
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	return load / float64(cpus), nil
}

// Admit says whether the node can take a new session: nil, ErrShuttingDown,
// or a *FullError naming the limit that was hit. /readyz reports it.
func (m *Manager) Admit() error {
	m.mu.Lock()
	closing, n := m.closing, len(m.sessions)
	m.mu.Unlock()
	if closing {
		return ErrShuttingDown
	}
	if n >= m.cfg.MaxSessions {
		return m.sessionsFull()
	}
	return m.headroom()
}

// Ready reports whether the node can take a new session (Admit is nil).
func (m *Manager) Ready() bool { return m.Admit() == nil }

func (m *Manager) sessionsFull() *FullError {
	return &FullError{Limit: LimitSessions, Detail: fmt.Sprintf("the node runs its maximum of %d sessions", m.cfg.MaxSessions)}
}

// headroom checks the node's memory and CPU against the configured limits.
// A figure that cannot be read does not refuse: it is logged once, and the
// session count still bounds the node.
func (m *Manager) headroom() error {
	if floor := m.cfg.MinFreeMemory; floor > 0 {
		avail, err := m.cfg.Stats.MemAvailable()
		switch {
		case err != nil:
			m.statsUnreadable(err)
		case avail < floor:
			return &FullError{Limit: LimitMemory, Detail: fmt.Sprintf(
				"memory headroom is gone: %d MiB available, the minimum is %d MiB", avail>>20, floor>>20)}
		}
	}
	if ceiling := m.cfg.MaxLoadPerCPU; ceiling > 0 {
		load, err := m.cfg.Stats.LoadPerCPU()
		switch {
		case err != nil:
			m.statsUnreadable(err)
		case load > ceiling:
			return &FullError{Limit: LimitCPU, Detail: fmt.Sprintf(
				"CPU headroom is gone: the load over the last minute is %.2f per CPU, the maximum is %g", load, ceiling)}
		}
	}
	return nil
}

func (m *Manager) statsUnreadable(err error) {
	m.statsWarn.Do(func() {
		m.cfg.Logger.Warn("admission control cannot read the node's headroom; only max sessions applies", "err", err)
	})
}
