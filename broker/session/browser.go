package session

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Session is one user's isolated browser and the viewers watching it.
type Session struct {
	ID       string
	User     string
	Role     string
	Terminal netip.Addr
	Started  time.Time

	m *Manager

	mu         sync.Mutex
	state      State
	profile    string
	generation int // counts browsers; events of an older one are ignored
	browser    isolation.Browser
	egress     Egress
	viewport   isolation.Viewport
	lastInput  time.Time
	viewers    map[*Viewer]struct{}
	lastFrame  *isolation.Frame
	lastState  isolation.State
	crashErr   error
	endReason  Reason

	// kick wakes the watcher after a restart or activity. Capacity 1; a
	// pending kick is enough (sends never block).
	kick    chan struct{}
	endOnce sync.Once
	ended   chan struct{} // closed when End has finished
}

func newSession(m *Manager, id string, o Owner, vp isolation.Viewport) *Session {
	now := m.cfg.Now()
	return &Session{
		ID:        id,
		User:      o.User,
		Role:      o.Role,
		Terminal:  o.Terminal,
		Started:   now,
		m:         m,
		state:     StateStarting,
		viewport:  vp,
		lastInput: now,
		viewers:   make(map[*Viewer]struct{}),
		kick:      make(chan struct{}, 1),
		ended:     make(chan struct{}),
	}
}

// Info describes the session.
func (s *Session) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Info{ID: s.ID, User: s.User, Role: s.Role, Terminal: s.Terminal, Profile: s.profile, Started: s.Started, State: s.state}
}

// State returns the session's state and, when it ended, why.
func (s *Session) State() (State, Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.endReason
}

// Done is closed when the session has ended and its browser is gone.
func (s *Session) Done() <-chan struct{} { return s.ended }

// Browser returns the live browser, or ErrNotLive while it starts or after
// it crashed, or ErrEnded.
func (s *Session) Browser() (isolation.Browser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateLive:
		return s.browser, nil
	case StateEnded:
		return nil, ErrEnded
	default:
		return nil, ErrNotLive
	}
}

// Touch records clinician activity, which keeps the idle timeout away.
func (s *Session) Touch() {
	s.mu.Lock()
	s.lastInput = s.m.cfg.Now()
	s.mu.Unlock()
}

// Deadlines returns when the session ends if nothing happens: the idle
// deadline and the lifetime deadline.
func (s *Session) Deadlines() (idle, lifetime time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastInput.Add(s.m.cfg.IdleTimeout), s.Started.Add(s.m.cfg.MaxLifetime)
}

// SetViewport records the viewer's canvas size and applies it to the
// browser.
func (s *Session) SetViewport(ctx context.Context, vp isolation.Viewport) error {
	s.mu.Lock()
	s.viewport = vp
	b := s.browser
	live := s.state == StateLive
	s.mu.Unlock()
	if !live {
		return nil // applied when the browser (re)starts
	}
	return b.SetViewport(ctx, vp)
}

// start opens the session's egress listener and launches its browser.
func (s *Session) start(ctx context.Context) error {
	cfg := s.m.cfg
	eg, err := cfg.Egress.Open(s.Info())
	if err != nil {
		// No browser can start without its egress: /readyz must know.
		err = fmt.Errorf("open egress: %w", err)
		s.m.recordLaunch(ctx, err)
		return err
	}
	s.mu.Lock()
	s.generation++
	gen := s.generation
	vp := s.viewport
	if pe, ok := eg.(ProfiledEgress); ok {
		s.profile = pe.Profile()
	}
	s.mu.Unlock()

	b, err := s.m.launchBrowser(ctx, s.Info(), eg, vp, cfg.StartURL, s.observer(gen))
	if err != nil {
		_ = eg.Close()
		return err
	}

	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		s.closeBrowser(b, eg)
		return ErrEnded
	}
	s.browser, s.egress, s.state, s.crashErr = b, eg, StateLive, nil
	s.lastState = b.State()
	s.mu.Unlock()
	s.broadcastStatus(StateLive, "", "")
	return nil
}

// launchBrowser starts a browser for info behind its egress eg: the
// egress's navigation check and owner check, info's quarantine, the
// launch timeout. The caller closes eg when it fails.
func (m *Manager) launchBrowser(ctx context.Context, info Info, eg Egress, vp isolation.Viewport, startURL string, obs isolation.Observer) (isolation.Browser, error) {
	cfg := m.cfg
	var checkURL func(string) isolation.NavDecision
	if nc, ok := eg.(NavChecker); ok {
		checkURL = nc.CheckURL
	}
	// Only the browser's own processes may use its egress, from the moment
	// its process exists.
	var setOwner func(int)
	if oe, ok := eg.(OwnedEgress); ok {
		setOwner = oe.SetOwner
	}
	var downloads string
	var maxDownload int64
	if cfg.Transfers != nil {
		var err error
		if downloads, maxDownload, err = cfg.Transfers.Quarantine(info); err != nil {
			// No browser can start without one: a failed start for
			// CanStartBrowser too.
			err = fmt.Errorf("quarantine: %w", err)
			m.recordLaunch(ctx, err)
			return nil, err
		}
	}
	lctx, cancel := context.WithTimeout(ctx, cfg.LaunchTimeout)
	defer cancel()
	b, err := cfg.Launcher.Launch(lctx, isolation.LaunchOptions{
		SessionID:        info.ID,
		Viewport:         vp,
		StartURL:         startURL,
		ProxyAddr:        eg.Addr(),
		CheckURL:         checkURL,
		ProcessGroup:     setOwner,
		Observer:         obs,
		DownloadDir:      downloads,
		MaxDownloadBytes: maxDownload,
	})
	m.recordLaunch(ctx, err)
	if err != nil {
		return nil, fmt.Errorf("launch browser: %w", err)
	}
	return b, nil
}

// adopt makes the pooled browser p the session's: p's egress takes the
// session's policy, p's reports reach the session, and the page is resized
// to the viewer and sent to the start URL. On error the caller closes p.
func (s *Session) adopt(ctx context.Context, p *pooled) error {
	cfg := s.m.cfg
	select {
	case <-p.browser.Done():
		return fmt.Errorf("pooled browser ended: %w", ErrNotLive)
	default:
	}
	if err := p.bind.Bind(s.Info()); err != nil {
		return fmt.Errorf("bind pooled egress: %w", err)
	}
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return ErrEnded
	}
	s.generation++
	gen := s.generation
	if pe, ok := p.egress.(ProfiledEgress); ok {
		s.profile = pe.Profile()
	}
	s.browser, s.egress, s.state, s.crashErr = p.browser, p.egress, StateLive, nil
	s.lastState = p.browser.State()
	vp := s.viewport
	s.mu.Unlock()
	p.hub.forward(s.observer(gen))

	cctx, cancel := context.WithTimeout(ctx, cfg.LaunchTimeout)
	defer cancel()
	if vp != cfg.PoolViewport {
		if err := p.browser.SetViewport(cctx, vp); err != nil {
			cfg.Logger.Warn("resize claimed browser", "session", s.ID, "err", err)
		}
	}
	if cfg.StartURL != "" {
		if err := p.browser.Navigate(cctx, cfg.StartURL); err != nil {
			cfg.Logger.Warn("open start page in claimed browser", "session", s.ID, "url", cfg.StartURL, "err", err)
		}
	}
	s.broadcastStatus(StateLive, "", "")
	return nil
}

// Restart starts a fresh browser after a crash. It does nothing when the
// browser is live.
func (s *Session) Restart(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case StateEnded:
		s.mu.Unlock()
		return ErrEnded
	case StateLive, StateStarting:
		s.mu.Unlock()
		return nil
	}
	s.state = StateStarting
	s.mu.Unlock()
	s.broadcastStatus(StateStarting, "", "")
	s.m.cfg.Logger.Info("session restarting browser", "session", s.ID, "user", s.User)
	if err := s.start(ctx); err != nil {
		s.mu.Lock()
		if s.state == StateStarting {
			s.state = StateCrashed
		}
		s.mu.Unlock()
		s.broadcastStatus(StateCrashed, "", "the browser could not be restarted")
		return err
	}
	s.Touch()
	s.wake()
	return nil
}

// End ends the session: the browser is closed (its process group killed, its
// profile removed), the egress listener closed and every viewer told why.
// It returns when all that is done; calling it again waits for the first.
func (s *Session) End(reason Reason) {
	s.finish(reason, true)
	<-s.ended
}

func (s *Session) finish(reason Reason, notify bool) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.state = StateEnded
		s.endReason = reason
		b, eg := s.browser, s.egress
		s.browser, s.egress = nil, nil
		s.mu.Unlock()

		if notify && s.m.cfg.OnEnding != nil {
			s.m.cfg.OnEnding(s.Info(), reason)
		}
		s.m.remove(s)
		s.closeBrowser(b, eg)
		s.closeViewers(reason)
		s.m.cfg.Logger.Info("session ended", "session", s.ID, "user", s.User, "reason", string(reason))
		if notify && s.m.cfg.OnEnd != nil {
			s.m.cfg.OnEnd(s.Info(), reason)
		}
		close(s.ended)
	})
}

func (s *Session) closeBrowser(b isolation.Browser, eg Egress) {
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.m.cfg.CloseTimeout)
		if err := b.Close(ctx); err != nil {
			s.m.cfg.Logger.Warn("close browser", "session", s.ID, "err", err)
		}
		cancel()
	}
	if eg != nil {
		if err := eg.Close(); err != nil {
			s.m.cfg.Logger.Warn("close egress", "session", s.ID, "err", err)
		}
	}
}

func (s *Session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// watch ends the session at its idle or lifetime deadline and notices a
// crashed browser. It runs until the session ends.
func (s *Session) watch() {
	for {
		s.mu.Lock()
		var browserDone <-chan struct{}
		if s.state == StateLive {
			browserDone = s.browser.Done()
		}
		s.mu.Unlock()
		idle, life := s.Deadlines()
		next := idle
		if life.Before(next) {
			next = life
		}
		timer := time.NewTimer(max(next.Sub(s.m.cfg.Now()), 0))
		select {
		case <-s.ended:
			timer.Stop()
			return
		case <-s.kick:
			timer.Stop()
		case <-browserDone:
			timer.Stop()
			s.crashed()
		case <-timer.C:
			now := s.m.cfg.Now()
			idle, life := s.Deadlines()
			switch {
			case !now.Before(life):
				s.End(ReasonLifetime)
				return
			case !now.Before(idle):
				s.End(ReasonIdle)
				return
			}
		}
	}
}

// crashed handles a browser that ended without Close.
func (s *Session) crashed() {
	s.mu.Lock()
	if s.state != StateLive {
		s.mu.Unlock()
		return
	}
	b, eg := s.browser, s.egress
	err := b.Err()
	if err == nil {
		err = isolation.ErrCrashed
	}
	s.state, s.crashErr = StateCrashed, err
	s.browser, s.egress = nil, nil
	s.lastFrame = nil
	s.mu.Unlock()

	s.closeBrowser(b, eg) // idempotent; makes sure nothing is left behind
	s.m.cfg.Logger.Warn("browser crashed", "session", s.ID, "user", s.User, "err", err)
	if s.m.cfg.OnCrash != nil {
		s.m.cfg.OnCrash(s.Info(), err)
	}
	s.broadcastStatus(StateCrashed, "", "The remote browser stopped unexpectedly.")
}

// CrashErr returns why the browser crashed, when it did.
func (s *Session) CrashErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateCrashed {
		return nil
	}
	return s.crashErr
}
