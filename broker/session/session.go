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
	// ReasonPledge ends a viewer, not a session: the usage pledge changed
	// and the user must accept the new text before the viewer reconnects.
	ReasonPledge Reason = "pledge"
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
// session's ID, owner and terminal. For a pooled browser info has an ID but
// no User: the listener must then refuse everything until BindableEgress
// gives it its owner.
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
	// BindableEgress is an egress opened with no owner, for a pooled
	// browser, that refuses everything until Bind makes its policy that of
	// the session which claimed the browser. Bind fails when the egress
	// already has an owner: a listener never changes hands. The warm pool
	// needs it.
	BindableEgress interface {
		Bind(info Info) error
	}
)

// Transfers is the file-transfer channel as a session sees it. Its funcs
// are called from browser callbacks and must not block.
type Transfers interface {
	// Quarantine returns the directory the session's browser downloads
	// into and the largest file it may download. For a pooled browser,
	// info has no User and no Profile yet.
	Quarantine(info Info) (dir string, maxBytes int64, err error)
	// Release removes the quarantine of a pooled browser that was closed
	// without ever having an owner. A session's quarantine is released by
	// whoever OnEnd tells.
	Release(info Info)
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
	// Check, when set, is asked under the manager's lock just before a new
	// session is created for the owner, and an error refuses it (Attach
	// returns the error). The viewer stream passes a check that its login
	// is still valid: a login that ended while its viewer was connecting
	// must not get a new browser. A reconnect to a live session is not
	// checked again.
	Check func() error
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
	// (for audit and metrics), OnEnd once the browser is gone and the
	// viewers are told. They may wait for a durable write but must not
	// block for long: Attach and End wait for them.
	OnStart func(Info)
	OnEnd   func(Info, Reason)
	// OnEnding, when set, is called once as a session begins to end, with
	// the reason: after its state is StateEnded and before the manager
	// forgets it, closes its browser or tells its viewers. While it runs,
	// Attach for the same user finds the ended session and starts no new
	// one. The broker ends the user's logins here, so that a viewer told
	// that the session ended cannot reconnect to a new browser with them.
	// It must not block for long.
	OnEnding func(Info, Reason)
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
	// PoolSize is the number of blank browsers kept started, owned by
	// nobody, for the next users without a session (the warm pool). Each
	// is launched as a session's browser is, behind an egress that refuses
	// everything until a user claims it. Zero turns the pool off.
	PoolSize int
	// PoolMaxAge closes and replaces a pooled browser that long after it
	// started. Zero means 30 minutes.
	PoolMaxAge time.Duration
	// PoolViewport is a pooled browser's page size until a user claims
	// it. Zero means 1280×800 at DPR 1.
	PoolViewport isolation.Viewport
	// MinFreeMemory refuses new sessions and pooled browsers while the
	// node has fewer bytes of memory available (NodeStats.MemAvailable).
	// Zero turns the check off.
	MinFreeMemory int64
	// MaxLoadPerCPU refuses new sessions and pooled browsers while the
	// load average over the last minute per CPU is above it. Zero turns
	// the check off.
	MaxLoadPerCPU float64
	// Stats reads the node's memory and load. Nil means ProcStats{}.
	Stats NodeStats
	// StartFreshFor is how long a successful browser start vouches that
	// the next one will work (CanStartBrowser). Zero means 3 minutes.
	StartFreshFor time.Duration
	// ProbeInterval is the least time between two probe starts of a
	// browser, and how long a failed start makes CanStartBrowser refuse
	// before it probes again. Zero means 1 minute.
	ProbeInterval time.Duration
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
	if c.PoolSize < 0 || c.PoolMaxAge < 0 || c.MinFreeMemory < 0 || c.MaxLoadPerCPU < 0 {
		return errors.New("session config: PoolSize, PoolMaxAge, MinFreeMemory and MaxLoadPerCPU must not be negative")
	}
	if c.StartFreshFor < 0 || c.ProbeInterval < 0 {
		return errors.New("session config: StartFreshFor and ProbeInterval must not be negative")
	}
	if c.StartFreshFor == 0 {
		c.StartFreshFor = 3 * time.Minute
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Minute
	}
	if c.StartFreshFor < c.ProbeInterval {
		return fmt.Errorf("session config: StartFreshFor (%s) must not be shorter than ProbeInterval (%s): a probe's success would expire before the next probe may run", c.StartFreshFor, c.ProbeInterval)
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
	if c.PoolSize > c.MaxSessions {
		return fmt.Errorf("session config: PoolSize %d is more than MaxSessions %d", c.PoolSize, c.MaxSessions)
	}
	if c.PoolMaxAge == 0 {
		c.PoolMaxAge = 30 * time.Minute
	}
	if c.PoolViewport == (isolation.Viewport{}) {
		c.PoolViewport = isolation.Viewport{Width: 1280, Height: 800, DPR: 1}
	}
	if !c.PoolViewport.Valid() {
		return fmt.Errorf("session config: PoolViewport %dx%d@%v is out of range", c.PoolViewport.Width, c.PoolViewport.Height, c.PoolViewport.DPR)
	}
	if c.Stats == nil {
		c.Stats = ProcStats{}
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
	byID     map[string]*Session // the same sessions by ID
	closing  bool
	pool     pool // guarded by mu
	// probing counts probe browsers starting (0 or 1); they hold a place
	// under MaxSessions.
	probing int

	// life ends at Shutdown; probes start their browsers with it.
	life     context.Context
	stopLife context.CancelFunc
	health   startHealth

	wg sync.WaitGroup // session watchers, the pool's keeper and its entries' watchers, probes

	statsWarn sync.Once
}

// NewManager returns a Manager. With Config.PoolSize set, it starts filling
// the warm pool in the background; Shutdown closes it.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, sessions: make(map[string]*Session), byID: make(map[string]*Session)}
	m.life, m.stopLife = context.WithCancel(context.Background())
	m.startPool()
	return m, nil
}

// Config returns the manager's configuration with defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Attach returns the user's session. A reconnecting viewer gets the same
// session and browser back. A user without a session gets a browser of the
// warm pool when one is ready, else a new one; admission control may refuse
// with a *FullError (which wraps ErrFull) naming the limit.
func (m *Manager) Attach(ctx context.Context, o Owner, vp isolation.Viewport) (*Session, error) {
	user := o.User
	if s, err := m.existing(user); s != nil || err != nil {
		return s, err
	}
	// A reconnect is never refused for headroom; a new session is.
	if err := m.headroom(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, ErrShuttingDown
	}
	if s, ok := m.sessions[user]; ok {
		m.mu.Unlock()
		return s, nil
	}
	if len(m.sessions)+m.probing >= m.cfg.MaxSessions {
		m.mu.Unlock()
		return nil, m.sessionsFull()
	}
	if o.Check != nil {
		// Under the lock: a session that ends forgets its user only after
		// OnEnding, so a check here sees what OnEnding changed.
		if err := o.Check(); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	p := m.pool.take()
	id := newID()
	if p != nil {
		id = p.info.ID // its listener, namespace and quarantine are named by it
	}
	s := newSession(m, id, o, vp)
	m.sessions[user] = s
	m.byID[s.ID] = s
	m.mu.Unlock()

	warm, err := m.startSession(ctx, s, p)
	if err != nil {
		m.remove(s)
		s.finish(ReasonShutdown, false)
		return nil, err
	}
	// The idle timeout counts from a live browser: a slow start takes
	// none of the clinician's time.
	s.Touch()
	m.cfg.Logger.Info("session started", "session", s.ID, "user", user, "pooled", warm)
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

// existing returns the user's session, or ErrShuttingDown, or neither.
func (m *Manager) existing(user string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil, ErrShuttingDown
	}
	return m.sessions[user], nil
}

// startSession gives s its browser: the pooled one p when there is one and
// it can be claimed, else a new one. warm says whether p was used.
func (m *Manager) startSession(ctx context.Context, s *Session, p *pooled) (warm bool, err error) {
	if p != nil {
		m.kickPool() // top up in the background
		err := s.adopt(ctx, p)
		if err == nil {
			return true, nil
		}
		// The session owns p's ID now: its quarantine stays for the
		// session, and a new browser gets a new listener under that ID.
		m.closePooled(p, false)
		if errors.Is(err, ErrEnded) {
			return false, err
		}
		m.cfg.Logger.Warn("pooled browser could not be claimed; starting a new one", "session", s.ID, "user", s.User, "err", err)
	}
	return false, s.start(ctx)
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

// Lookup returns the information of the session with the given ID, if it
// is one of the manager's sessions. It does not look through the others, so
// that a caller asking once per request (the egress proxy's refusals) costs
// the same with one session as with many.
func (m *Manager) Lookup(id string) (Info, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok {
		return Info{}, false
	}
	return s.Info(), true
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

// Shutdown refuses new sessions, closes the warm pool, ends every session
// with ReasonShutdown and waits for their browsers to be gone or ctx to end.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.stopLife() // a probe start ends
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	pooled := m.pool.drain()
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.End(ReasonShutdown) })
	}
	for _, p := range pooled {
		wg.Go(func() { m.closePooled(p, true) })
	}
	// The waiter outlives Shutdown only when ctx ends first, and then
	// ends with the last goroutine it waits for.
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
	if m.sessions[s.User] == s {
		delete(m.sessions, s.User)
	}
	if m.byID[s.ID] == s {
		delete(m.byID, s.ID)
	}
	m.mu.Unlock()
	m.kickPool() // a slot is free: the pool may top up
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
