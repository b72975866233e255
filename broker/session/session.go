// Package session owns the lifecycle of clinicians' isolated browsers: one
// browser per logged-in user, resumed when the viewer reconnects, ended by
// logout, idle timeout, maximum lifetime, an administrator or shutdown, and
// restartable after a crash. Every end path closes the browser (which kills
// its process group and removes its profile) and the session's egress
// listener.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Errors returned by the Manager.
var (
	// ErrFull means the node has no room for another browser.
	ErrFull = errors.New("no capacity for a new session")
	// ErrShuttingDown means the manager is ending all sessions.
	ErrShuttingDown = errors.New("server is shutting down")
	// ErrEnded means the session has ended.
	ErrEnded = errors.New("session ended")
	// ErrNotLive means the browser is starting or has crashed.
	ErrNotLive = errors.New("browser is not running")
)

// Reason says why a session ended. The values are part of the viewer
// protocol (docs/protocol.md).
type Reason string

// The reasons a session ends.
const (
	ReasonLogout   Reason = "logout"
	ReasonIdle     Reason = "idle"
	ReasonLifetime Reason = "lifetime"
	ReasonShutdown Reason = "shutdown"
	ReasonAdmin    Reason = "admin"
	// ReasonReplaced ends a viewer, not a session: the same user opened the
	// viewer in another tab.
	ReasonReplaced Reason = "replaced"
)

// State is where a session's browser is in its life.
type State string

// The session states.
const (
	StateStarting State = "starting"
	StateLive     State = "live"
	StateCrashed  State = "crashed"
	StateEnded    State = "ended"
)

// Egress is one session's way out: the listener of the egress proxy that its
// browser is pointed at.
type Egress interface {
	Addr() string
	Close() error
}

// EgressOpener opens an egress listener for a session. info has the
// session's ID, owner and terminal.
type EgressOpener interface {
	Open(info Info) (Egress, error)
}

// An Egress may also implement these; the session uses them when it does.
type (
	// NavChecker checks top-level navigations in the browser (the Fetch
	// layer's block page; the proxy stays the boundary).
	NavChecker interface {
		CheckURL(url string) isolation.NavDecision
	}
	// OwnedEgress accepts connections only from the browser's process
	// group once it is known.
	OwnedEgress interface {
		SetOwner(pgid int)
	}
	// ProfiledEgress names the policy profile it enforces.
	ProfiledEgress interface {
		Profile() string
	}
)

// Transfers is the file-transfer channel as a session sees it. Its funcs
// are called from browser callbacks and must not block.
type Transfers interface {
	// Quarantine returns the directory the session's browser downloads
	// into and the largest file it may download.
	Quarantine(info Info) (dir string, maxBytes int64, err error)
	// Download reports a step of a download or print of the session's
	// browser.
	Download(s *Session, d isolation.Download)
	// FileChooser reports a page's file chooser.
	FileChooser(s *Session, c isolation.FileChooser)
}

// Owner is who a session is for and where they sit.
type Owner struct {
	User string
	Role string
	// Terminal is the address of the clinician's terminal, which decides
	// its terminal group; the zero Addr when unknown.
	Terminal netip.Addr
}

// Info describes a session for logs, audit and the admin API.
type Info struct {
	ID       string
	User     string
	Role     string
	Terminal netip.Addr
	// Profile names the site policy profile the session browses under,
	// when the egress reports one.
	Profile string
	Started time.Time
	State   State
}

// Config configures a Manager.
type Config struct {
	// Launcher starts browsers. Required.
	Launcher isolation.Launcher
	// Egress opens each session's egress listener. Required.
	Egress EgressOpener
	// IdleTimeout ends a session with no clinician input for that long.
	// Zero means 15 minutes.
	IdleTimeout time.Duration
	// MaxLifetime ends a session that long after it started, however busy.
	// Zero means 12 hours.
	MaxLifetime time.Duration
	// MaxSessions is the number of browsers this node runs at most. Zero
	// means 20.
	MaxSessions int
	// StartURL is opened in a new browser. Empty means about:blank.
	StartURL string
	// LaunchTimeout bounds starting one browser. Zero means 30 seconds.
	LaunchTimeout time.Duration
	// CloseTimeout bounds closing one browser. Zero means 10 seconds.
	CloseTimeout time.Duration
	// OnStart and OnEnd, when set, are called as sessions start and end
	// (for audit and metrics). They must not block.
	OnStart func(Info)
	OnEnd   func(Info, Reason)
	// OnCrash is called when a session's browser crashed. It must not block.
	OnCrash func(Info, error)
	// OnNavigate and OnBlock, when set, are told of each committed and each
	// refused top-level navigation (for audit). They must not block.
	OnNavigate func(info Info, url string)
	OnBlock    func(info Info, url string, d isolation.NavDecision)
	// Transfers, when set, gives each browser a quarantine directory and
	// receives what it reports about downloads and file choosers. Without
	// it, browsers may not download.
	Transfers Transfers
	// Logger receives lifecycle logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// CheckAndSetDefaults validates c and fills in defaults.
func (c *Config) CheckAndSetDefaults() error {
	if c.Launcher == nil {
		return errors.New("session config: Launcher is required")
	}
	if c.Egress == nil {
		return errors.New("session config: Egress is required")
	}
	if c.IdleTimeout < 0 || c.MaxLifetime < 0 || c.MaxSessions < 0 {
		return errors.New("session config: timeouts and MaxSessions must not be negative")
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 12 * time.Hour
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 20
	}
	if c.LaunchTimeout == 0 {
		c.LaunchTimeout = 30 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Manager runs the sessions of one node. At most one session exists per
// user.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	sessions map[string]*Session // by user
	closing  bool

	wg sync.WaitGroup // session watchers
}

// NewManager returns a Manager.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	return &Manager{cfg: cfg, sessions: make(map[string]*Session)}, nil
}

// Config returns the manager's configuration with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Attach returns the user's session, starting a browser when the user has
// none. A reconnecting viewer gets the same session and browser back.
func (m *Manager) Attach(ctx context.Context, o Owner, vp isolation.Viewport) (*Session, error) {
	user := o.User
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, ErrShuttingDown
	}
	if s, ok := m.sessions[user]; ok {
		m.mu.Unlock()
		return s, nil
	}
	if len(m.sessions) >= m.cfg.MaxSessions {
		m.mu.Unlock()
		return nil, ErrFull
	}
	s := newSession(m, o, vp)
	m.sessions[user] = s
	m.mu.Unlock()

	if err := s.start(ctx); err != nil {
		m.remove(s)
		s.finish(ReasonShutdown, false)
		return nil, err
	}
	m.cfg.Logger.Info("session started", "session", s.ID, "user", user)
	if m.cfg.OnStart != nil {
		m.cfg.OnStart(s.Info())
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.watch()
	}()
	return s, nil
}

// Get returns the user's session, if any.
func (m *Manager) Get(user string) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[user]
	return s, ok
}

// End ends the user's session, if any, and waits until its browser is gone.
func (m *Manager) End(user string, reason Reason) bool {
	m.mu.Lock()
	s, ok := m.sessions[user]
	m.mu.Unlock()
	if !ok {
		return false
	}
	s.End(reason)
	return true
}

// List returns every session.
func (m *Manager) List() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s.Info())
	}
	return out
}

// Count returns the number of sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Ready reports whether the node can take a new session.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.closing && len(m.sessions) < m.cfg.MaxSessions
}

// Shutdown refuses new sessions, ends every session with ReasonShutdown and
// waits for their browsers to be gone or ctx to end.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.End(ReasonShutdown) })
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("end sessions: %w", ctx.Err())
	}
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.User] == s {
		delete(m.sessions, s.User)
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
