package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Whether a browser can start is known from what happened to the last
// real launch: every launch of a session's browser and of a pooled one
// reports its outcome to the Manager's startHealth (in launchBrowser). When
// nothing recent is known and no pooled browser is alive, CanStartBrowser
// launches a probe: a blank browser started exactly as a pooled one
// (behind an egress that refuses everything, with a quarantine directory),
// closed as soon as it is up. It costs what a pooled browser's start costs
// (a second or two of CPU and some hundred MiB for that time), so it runs at
// most once per ProbeInterval, one at a time, holds a place under
// MaxSessions while it runs, and never after Shutdown.

// ErrNoBrowserStart says that no browser start is known to have worked
// recently and no probe could be made to find out.
var ErrNoBrowserStart = errors.New("no browser start is known to work")

// StartError is the outcome of the last browser start when it failed.
type StartError struct {
	// At is when the start failed.
	At time.Time
	// Err is why.
	Err error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("the last browser start failed at %s: %v", e.At.UTC().Format(time.RFC3339), e.Err)
}

// Unwrap returns the launch error.
func (e *StartError) Unwrap() error { return e.Err }

// StartHealth counts browser starts and says when the last ones were.
type StartHealth struct {
	// Started and Failed count launches of browsers, for sessions, for
	// the warm pool and as probes.
	Started, Failed uint64
	// Probes counts probe starts.
	Probes uint64
	// LastStart and LastFailure are when the last launch succeeded and
	// failed; zero when none did yet. LastError is the failure's error.
	LastStart, LastFailure time.Time
	LastError              error
}

// startHealth is the manager's record of browser starts.
type startHealth struct {
	mu sync.Mutex
	StartHealth
	// seq counts outcomes, so a probe can tell whether its launch
	// recorded one; failedLast says the latest outcome was a failure.
	seq        uint64
	failedLast bool
	// probing is closed when the running probe ends; nil when none runs.
	probing chan struct{}
	// lastProbe is when the last probe started; probeErr is why it had
	// no outcome when it did not reach a launch.
	lastProbe time.Time
	probeErr  error
}

// record notes the outcome of one launch.
func (h *startHealth) record(at time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	h.failedLast = err != nil
	if err != nil {
		h.Failed++
		h.LastFailure, h.LastError = at, err
		return
	}
	h.Started++
	h.LastStart = at
}

// StartHealth returns the counts and times of browser starts.
func (m *Manager) StartHealth() StartHealth {
	m.health.mu.Lock()
	defer m.health.mu.Unlock()
	return m.health.StartHealth
}

// recordLaunch records the outcome of a launch that ctx allowed to
// finish: a launch its caller gave up on (a viewer that left, shutdown)
// says nothing about whether browsers can start, but one that ran out of
// LaunchTimeout does.
func (m *Manager) recordLaunch(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	m.health.record(m.cfg.Now(), err)
}

// CanStartBrowser says whether a new session's browser can start now: nil
// when a pooled browser is alive or a launch succeeded within
// StartFreshFor; a *StartError when the last launch failed within
// ProbeInterval; otherwise the outcome of a probe start. Only one probe
// runs at a time, at most one per ProbeInterval; a caller whose ctx ends
// while the probe runs gets an error saying so, and the probe goes on for
// the next caller. /readyz asks it.
func (m *Manager) CanStartBrowser(ctx context.Context) error {
	if m.poolAlive() {
		return nil
	}
	h := &m.health
	for {
		now := m.cfg.Now()
		h.mu.Lock()
		if err, known := h.verdict(now, m.cfg.StartFreshFor, m.cfg.ProbeInterval); known {
			h.mu.Unlock()
			return err
		}
		if h.probing == nil {
			if !h.lastProbe.IsZero() && now.Sub(h.lastProbe) < m.cfg.ProbeInterval {
				// The last probe had no outcome (it could not run, or
				// shutdown cut it short) and the next one is not due.
				err := h.probeErr
				h.mu.Unlock()
				if err == nil {
					err = errors.New("no outcome")
				}
				return fmt.Errorf("%w: no browser started in the last %v, and the probe start at %s did not finish: %w",
					ErrNoBrowserStart, m.cfg.StartFreshFor, h.lastProbe.UTC().Format(time.RFC3339), err)
			}
			if err := m.reserveProbe(); err != nil {
				h.mu.Unlock()
				return err
			}
			h.probing, h.lastProbe, h.probeErr = make(chan struct{}), now, nil
			go m.probe(h.probing, h.seq) // owned by m.wg: reserveProbe added it
		}
		wait := h.probing
		started := h.lastProbe
		h.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%w: a probe start of a browser is under way since %s; ask again: %w",
				ErrNoBrowserStart, started.UTC().Format(time.RFC3339), ctx.Err())
		}
	}
}

// verdict is what the record says about starting a browser at now, and
// whether it says anything: the latest outcome decides, a success while
// it is fresh, a failure until the next probe is due.
func (h *startHealth) verdict(now time.Time, fresh, probeEvery time.Duration) (error, bool) {
	switch {
	case h.seq == 0:
		return nil, false
	case !h.failedLast && now.Sub(h.LastStart) < fresh:
		return nil, true
	case h.failedLast && now.Sub(h.LastFailure) < probeEvery:
		return &StartError{At: h.LastFailure, Err: h.LastError}, true
	}
	return nil, false
}

// poolAlive reports whether a pooled browser is ready and its process
// has not ended.
func (m *Manager) poolAlive() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.pool.ready {
		select {
		case <-e.browser.Done():
		default:
			return true
		}
	}
	return false
}

// reserveProbe holds a place under MaxSessions for the probe's browser:
// sessions, pooled browsers and the probe together stay within it, and
// a new session counts the probe while it runs. It refuses after
// Shutdown, while the warm pool starts a browser (whose outcome answers
// the question), and when the node has no room for one more browser.
func (m *Manager) reserveProbe() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closing:
		return ErrShuttingDown
	case m.pool.starting > 0:
		// Its outcome is recorded in a moment: no second browser for it.
		return fmt.Errorf("%w yet: a browser of the warm pool is starting, and its outcome will tell", ErrNoBrowserStart)
	case len(m.sessions)+len(m.pool.ready)+m.pool.starting+m.probing >= m.cfg.MaxSessions:
		return &FullError{Limit: LimitSessions, Detail: fmt.Sprintf(
			"no room to check that a browser can start: %d sessions and %d pooled browsers (%d starting) of at most %d",
			len(m.sessions), len(m.pool.ready)+m.pool.starting, m.pool.starting, m.cfg.MaxSessions)}
	}
	m.probing++
	m.wg.Add(1) // under mu, before Shutdown can wait: the probe's goroutine
	return nil
}

// probe starts a browser as the pool would, closes it, and closes done.
// seq is the health record's count of outcomes when it began.
func (m *Manager) probe(done chan struct{}, seq uint64) {
	defer m.wg.Done()
	m.health.mu.Lock()
	m.health.Probes++
	m.health.mu.Unlock()
	e, err := m.launchPooled(m.life)
	if e != nil {
		close(e.gone)
		m.closePooled(e, true)
	}
	m.mu.Lock()
	m.probing--
	m.mu.Unlock()
	m.kickPool() // its place is free again
	if err != nil && m.life.Err() == nil {
		// A failure before the launch (the egress, the quarantine) is a
		// failed start too; the launch records its own outcome.
		m.health.mu.Lock()
		before := m.health.seq == seq
		m.health.mu.Unlock()
		if before {
			m.health.record(m.cfg.Now(), err)
		}
	}
	h := &m.health
	h.mu.Lock()
	h.probeErr = err // read only when the probe recorded no outcome
	close(done)
	h.probing = nil
	h.mu.Unlock()
	switch {
	case err == nil:
		m.cfg.Logger.Debug("probe start of a browser succeeded")
	case m.life.Err() == nil:
		m.cfg.Logger.Warn("probe start of a browser failed: new sessions are refused until a browser starts", "err", err)
	}
}
