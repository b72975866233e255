package session

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// poolRetry is how long the pool's keeper waits before it tries again to
// start a browser after a refusal (the node is full) or a failed launch.
var poolRetry = 15 * time.Second

// PoolStats counts the warm pool's browsers.
type PoolStats struct {
	// Ready is the number of pooled browsers waiting for a user.
	Ready int
	// Claimed counts pooled browsers taken by a user without a session.
	Claimed uint64
	// Recycled counts pooled browsers closed unclaimed for their age, or
	// because sessions took their room.
	Recycled uint64
	// Crashed counts pooled browsers that died while waiting.
	Crashed uint64
}

// pool is the Manager's warm pool of blank browsers owned by nobody. It is
// guarded by Manager.mu.
type pool struct {
	ready    []*pooled // oldest first
	starting int       // launches in progress
	stats    PoolStats
	// refused is the last reason the keeper could not top up, logged when
	// it changes.
	refused string

	// kick wakes the keeper: a browser was claimed or closed, or a session
	// ended. Capacity 1; a pending kick is enough (sends never block).
	kick chan struct{}
	stop context.CancelFunc
}

// pooled is one browser of the warm pool.
type pooled struct {
	info    Info
	browser isolation.Browser
	egress  Egress
	bind    BindableEgress
	hub     *observerHub
	started time.Time
	// gone is closed when the browser leaves the pool: claimed, recycled,
	// crashed or shut down.
	gone chan struct{}
}

// take removes and returns the oldest ready browser, or nil.
func (p *pool) take() *pooled {
	if len(p.ready) == 0 {
		return nil
	}
	e := p.ready[0]
	p.ready = p.ready[1:]
	close(e.gone)
	p.stats.Claimed++
	return e
}

// remove takes e out of the pool; false when it already left.
func (p *pool) remove(e *pooled) bool {
	for i, x := range p.ready {
		if x == e {
			p.ready = append(p.ready[:i], p.ready[i+1:]...)
			close(e.gone)
			return true
		}
	}
	return false
}

// drain takes every ready browser out and stops the keeper.
func (p *pool) drain() []*pooled {
	if p.stop != nil {
		p.stop()
	}
	out := p.ready
	p.ready = nil
	for _, e := range out {
		close(e.gone)
	}
	return out
}

// PoolStats returns the warm pool's counters.
func (m *Manager) PoolStats() PoolStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.pool.stats
	st.Ready = len(m.pool.ready)
	return st
}

func (m *Manager) startPool() {
	m.pool.kick = make(chan struct{}, 1)
	if m.cfg.PoolSize == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.pool.stop = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.keepPool(ctx)
	}()
}

func (m *Manager) kickPool() {
	select {
	case m.pool.kick <- struct{}{}:
	default:
	}
}

// keepPool keeps the pool at PoolSize until ctx ends: it recycles browsers
// past PoolMaxAge and starts new ones one at a time while admission
// control allows.
func (m *Manager) keepPool(ctx context.Context) {
	for {
		m.recyclePool()
		wait := m.fillPool(ctx)
		if next := m.nextExpiry(); next < wait {
			wait = next
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-m.pool.kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// recyclePool closes the browsers past PoolMaxAge, and those that sessions
// took the room of (sessions and pooled browsers together stay within
// MaxSessions).
func (m *Manager) recyclePool() {
	now := m.cfg.Now()
	var old []*pooled
	m.mu.Lock()
	for _, e := range append([]*pooled(nil), m.pool.ready...) {
		if !now.Before(e.started.Add(m.cfg.PoolMaxAge)) {
			m.pool.remove(e)
			old = append(old, e)
		}
	}
	for len(m.pool.ready) > 0 && len(m.sessions)+len(m.pool.ready) > m.cfg.MaxSessions {
		e := m.pool.ready[len(m.pool.ready)-1]
		m.pool.remove(e)
		old = append(old, e)
	}
	m.pool.stats.Recycled += uint64(len(old))
	m.mu.Unlock()
	for _, e := range old {
		m.cfg.Logger.Info("pooled browser recycled", "session", e.info.ID, "age", now.Sub(e.started).Round(time.Second).String())
		m.closePooled(e, true)
	}
}

// nextExpiry is how long until the oldest pooled browser is too old.
func (m *Manager) nextExpiry() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.pool.ready) == 0 {
		return m.cfg.PoolMaxAge
	}
	return max(m.pool.ready[0].started.Add(m.cfg.PoolMaxAge).Sub(m.cfg.Now()), 0)
}

// fillPool starts pooled browsers one at a time until the pool is full,
// the node is, or a launch fails. It returns how long to wait before
// trying again.
func (m *Manager) fillPool(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		if err := m.reservePool(); err != nil {
			switch {
			case errors.Is(err, errPoolFull):
				return m.cfg.PoolMaxAge
			case errors.Is(err, ErrShuttingDown):
				return poolRetry
			}
			m.poolRefused(err.Error())
			return poolRetry
		}
		e, err := m.launchPooled(ctx)
		m.mu.Lock()
		m.pool.starting--
		switch {
		case err != nil:
		case m.closing || ctx.Err() != nil:
			err = ErrShuttingDown
		default:
			m.pool.ready = append(m.pool.ready, e)
			m.wg.Add(1)
		}
		m.mu.Unlock()
		if err != nil {
			if e != nil {
				close(e.gone)
				m.closePooled(e, true)
			}
			if ctx.Err() == nil {
				m.cfg.Logger.Warn("start a pooled browser", "err", err)
			}
			return poolRetry
		}
		m.poolRefused("")
		go func() {
			defer m.wg.Done()
			m.watchPooled(e)
		}()
	}
	return 0
}

// errPoolFull means the pool has PoolSize browsers, ready or starting.
var errPoolFull = errors.New("pool is full")

// reservePool counts a launch as starting when the pool needs a browser
// and the node has room for one; otherwise it says why not.
func (m *Manager) reservePool() error {
	check := func() error {
		switch {
		case m.closing:
			return ErrShuttingDown
		case len(m.pool.ready)+m.pool.starting >= m.cfg.PoolSize:
			return errPoolFull
		case len(m.sessions)+len(m.pool.ready)+m.pool.starting+m.probing >= m.cfg.MaxSessions:
			return m.sessionsFull()
		}
		return nil
	}
	m.mu.Lock()
	err := check()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	// Headroom is read without the lock: it reads files.
	if err := m.headroom(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := check(); err != nil {
		return err
	}
	m.pool.starting++
	return nil
}

// poolRefused logs why the pool cannot top up, once per reason; "" means
// it can again.
func (m *Manager) poolRefused(reason string) {
	m.mu.Lock()
	changed := m.pool.refused != reason
	m.pool.refused = reason
	m.mu.Unlock()
	if changed && reason != "" {
		m.cfg.Logger.Info("warm pool not topped up", "reason", reason)
	}
}

// launchPooled opens an egress with no owner and starts a blank browser
// behind it, exactly as a session's browser starts.
func (m *Manager) launchPooled(ctx context.Context) (*pooled, error) {
	info := Info{ID: newID(), Started: m.cfg.Now(), State: StateStarting}
	eg, err := m.cfg.Egress.Open(info)
	if err != nil {
		// No browser can start without its egress: /readyz must know.
		err = fmt.Errorf("open egress: %w", err)
		m.recordLaunch(ctx, err)
		return nil, err
	}
	bind, ok := eg.(BindableEgress)
	if !ok {
		_ = eg.Close()
		return nil, fmt.Errorf("egress %T cannot be bound to an owner after it opened; the warm pool needs that", eg)
	}
	hub := &observerHub{}
	b, err := m.launchBrowser(ctx, info, eg, m.cfg.PoolViewport, "", hub.observer())
	if err != nil {
		_ = eg.Close()
		if m.cfg.Transfers != nil {
			m.cfg.Transfers.Release(info)
		}
		return nil, err
	}
	return &pooled{info: info, browser: b, egress: eg, bind: bind, hub: hub, started: info.Started, gone: make(chan struct{})}, nil
}

// watchPooled replaces e when its browser dies while it waits in the pool.
func (m *Manager) watchPooled(e *pooled) {
	select {
	case <-e.gone:
		return
	case <-e.browser.Done():
	}
	m.mu.Lock()
	mine := m.pool.remove(e)
	if mine {
		m.pool.stats.Crashed++
	}
	m.mu.Unlock()
	if !mine {
		return // claimed meanwhile: the session's watcher handles it
	}
	m.cfg.Logger.Warn("pooled browser crashed; replacing it", "session", e.info.ID, "err", e.browser.Err())
	m.closePooled(e, true)
	m.kickPool()
}

// closePooled closes a pooled browser that has left the pool and its
// egress; release also removes its quarantine, unless a session took over
// its ID.
func (m *Manager) closePooled(e *pooled, release bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CloseTimeout)
	defer cancel()
	if err := e.browser.Close(ctx); err != nil {
		m.cfg.Logger.Warn("close pooled browser", "session", e.info.ID, "err", err)
	}
	if err := e.egress.Close(); err != nil {
		m.cfg.Logger.Warn("close pooled egress", "session", e.info.ID, "err", err)
	}
	if release && m.cfg.Transfers != nil {
		m.cfg.Transfers.Release(e.info)
	}
}

// observerHub passes a pooled browser's reports to the session that
// claims it. Until then they are dropped: a blank page nobody watches.
type observerHub struct {
	to atomic.Pointer[isolation.Observer]
}

// forward sends every later report to o, whose funcs are all set.
func (h *observerHub) forward(o isolation.Observer) { h.to.Store(&o) }

// observer is the Observer the pooled browser is launched with.
func (h *observerHub) observer() isolation.Observer {
	return isolation.Observer{
		Frame: func(f isolation.Frame) {
			if o := h.to.Load(); o != nil {
				o.Frame(f)
			}
		},
		State: func(st isolation.State) {
			if o := h.to.Load(); o != nil {
				o.State(st)
			}
		},
		Dialog: func(d isolation.Dialog) {
			if o := h.to.Load(); o != nil {
				o.Dialog(d)
			}
		},
		DialogClosed: func(id string) {
			if o := h.to.Load(); o != nil {
				o.DialogClosed(id)
			}
		},
		Navigated: func(tabID, url string) {
			if o := h.to.Load(); o != nil {
				o.Navigated(tabID, url)
			}
		},
		Blocked: func(tabID, url string, d isolation.NavDecision) {
			if o := h.to.Load(); o != nil {
				o.Blocked(tabID, url, d)
			}
		},
		AccessRequested: func(tabID, host, url string) {
			if o := h.to.Load(); o != nil {
				o.AccessRequested(tabID, host, url)
			}
		},
		Download: func(d isolation.Download) {
			if o := h.to.Load(); o != nil {
				o.Download(d)
			}
		},
		FileChooser: func(c isolation.FileChooser) {
			if o := h.to.Load(); o != nil {
				o.FileChooser(c)
			}
		},
	}
}
