// Package auth holds shoji's accounts and sessions: users with one role each,
// argon2id password hashes, login with lockout and rate limits, Ed25519-signed
// JWTs bound to a revocable login session, and the one-time set-up token for
// the first admin. There are no default accounts.
//
// A successful Login creates a login session (a Login, "sid") and a
// short-lived token for it. Verify accepts a token only while its login
// session exists, is within its absolute lifetime and belongs to an enabled
// user; Logout, DisableUser and SetPassword delete login sessions, which
// revokes every token issued for them at once, across restarts.
//
// Notices hold the login banner and the usage pledge, with the pledge rule:
// a user browses only after accepting the pledge text in force.
//
// The package declares the storage it uses (Users, Logins, Settings) next
// to its types; broker/store implements it on bbolt.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// Sentinel errors. Classify with errors.Is.
var (
	// ErrBadCredentials is returned by Login for an unknown user, a wrong
	// password or a disabled user alike.
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrLocked is returned by Login while the user name is locked out after
	// too many failures.
	ErrLocked = errors.New("too many failed logins; try again later")
	// ErrRateLimited is returned by Login when the remote address tries too
	// often.
	ErrRateLimited = errors.New("too many login attempts from this address; try again later")
	// ErrInvalidToken is returned by Verify and Renew for any token or login
	// session that is not (or no longer) acceptable. It wraps the cause.
	ErrInvalidToken = errors.New("invalid token")
	// ErrSetupTokenInvalid is returned by CompleteSetup for a wrong, expired
	// or used set-up token, or when an admin already exists.
	ErrSetupTokenInvalid = errors.New("set-up token is invalid, expired or already used")
	// ErrSetupNotNeeded is returned by IssueSetupToken when an enabled admin
	// exists.
	ErrSetupNotNeeded = errors.New("set-up is not needed: an admin exists")
	// ErrUserExists is returned when adding a user whose name is taken.
	ErrUserExists = errors.New("user already exists")
	// ErrNoSuchUser is returned when the named user does not exist.
	ErrNoSuchUser = errors.New("no such user")
	// ErrLastAdmin is returned when a change would leave no enabled admin.
	ErrLastAdmin = errors.New("refusing to remove the last enabled admin")
	// ErrUnknownRole is returned for a role name that is not one of Roles.
	ErrUnknownRole = errors.New("unknown role")
	// ErrWeakPassword is returned for a password that breaks the policy.
	ErrWeakPassword = errors.New("password does not meet the policy")
	// ErrBadUsername is returned for a user name that breaks the naming rule.
	ErrBadUsername = errors.New("invalid user name")
	// ErrMalformedHash is returned for a stored password hash that is not a
	// valid PHC-encoded argon2id hash.
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrUnsafeKeyFile is returned by New when the signing key file could be
	// read by other users.
	ErrUnsafeKeyFile = errors.New("unsafe key file")
	// ErrBadPledgeVersion is returned by AcceptPledge without a version of
	// the pledge text.
	ErrBadPledgeVersion = errors.New("pledge version is empty")
)

// Log attribute keys.
const (
	attrEvent   = "event"
	attrUser    = "user"
	attrRemote  = "remote"
	attrOutcome = "outcome"
	attrRole    = "role"
	attrError   = "error"
)

// Config configures a Service. Only DataDir is required; CheckAndSetDefaults
// fills the zero values.
type Config struct {
	// DataDir holds the signing key file, jwt-keys.json. Required.
	DataDir string
	// TokenTTL is how long one token is valid. Zero means 15 minutes.
	TokenTTL time.Duration
	// LoginLifetime is a login session's absolute maximum: no renewal extends
	// a token past it. Zero means 12 hours.
	LoginLifetime time.Duration
	// LockoutThreshold is how many failed logins within LockoutWindow lock a
	// user name. Zero means 5.
	LockoutThreshold int
	// LockoutWindow is counted from the first failure; the lock lifts when
	// it has passed. Zero means 15 minutes.
	LockoutWindow time.Duration
	// RateLimitPerMinute is how many login attempts one remote address may
	// make per minute (a token bucket of that size). Zero means 30; a
	// negative value turns the limit off.
	RateLimitPerMinute int
	// SetupTokenTTL is how long a set-up token is valid. Zero means 1 hour.
	SetupTokenTTL time.Duration
	// Params are the argon2id parameters for new hashes. The zero value
	// means DefaultParams.
	Params Params
	// MaxConcurrentHashes bounds how many password hashes are computed at
	// once (each takes Params.Memory). Zero means GOMAXPROCS.
	MaxConcurrentHashes int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// Logger receives login, logout and account events. Nil discards them.
	// Passwords and tokens are never logged.
	Logger *slog.Logger
	// OnUserDisabled, if set, is called after DisableUser has ended the
	// user's login sessions, so the broker can end their browsers. It must
	// not block.
	OnUserDisabled func(user string)
	// OnLoginsEnded, if set, is called with the IDs of login sessions that
	// an administrative change (DisableUser, SetPassword) deleted. It must
	// not block.
	OnLoginsEnded func(user string, sessionIDs []string)
	// Audit, if set, receives a record of every login attempt, lockout,
	// logout and account change (AUDIT-1).
	Audit audit.Sink
	// Operator is who makes account changes made outside a web session,
	// as the audit trail names them (e.g. "cli:root"). Empty means
	// "system".
	Operator string
}

// CheckAndSetDefaults validates c and fills its zero values with defaults.
// The error names the bad field.
func (c *Config) CheckAndSetDefaults() error {
	if c.DataDir == "" {
		return errors.New("auth config: DataDir is required")
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TokenTTL", &c.TokenTTL, 15 * time.Minute},
		{"LoginLifetime", &c.LoginLifetime, 12 * time.Hour},
		{"LockoutWindow", &c.LockoutWindow, 15 * time.Minute},
		{"SetupTokenTTL", &c.SetupTokenTTL, time.Hour},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			return fmt.Errorf("auth config: %s must not be negative, got %v", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		case *d.v < time.Second:
			return fmt.Errorf("auth config: %s must be at least 1s, got %v", d.name, *d.v)
		}
	}
	if c.LockoutThreshold < 0 {
		return fmt.Errorf("auth config: LockoutThreshold must not be negative, got %d", c.LockoutThreshold)
	}
	if c.LockoutThreshold == 0 {
		c.LockoutThreshold = 5
	}
	if c.RateLimitPerMinute == 0 {
		c.RateLimitPerMinute = 30
	}
	if c.Params == (Params{}) {
		c.Params = DefaultParams
	}
	if err := c.Params.validate(); err != nil {
		return fmt.Errorf("auth config: Params: %w", err)
	}
	if c.MaxConcurrentHashes < 0 {
		return fmt.Errorf("auth config: MaxConcurrentHashes must not be negative, got %d", c.MaxConcurrentHashes)
	}
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service authenticates users and issues and verifies their tokens. It is
// safe for concurrent use.
type Service struct {
	cfg Config
	st  Store

	keyPath string
	keyMu   sync.Mutex // serializes RotateKey
	keys    atomic.Pointer[keySet]

	// dummyHash is verified against for unknown users so that a login's
	// timing does not reveal whether the user exists.
	dummyHash string
	// hashSem bounds concurrent argon2 computations.
	// Backpressure: a full semaphore blocks Login until a slot frees or
	// its ctx ends.
	hashSem chan struct{}
	lim     *limiter
	// lastPrune is when expired login sessions were last deleted.
	lastPrune atomic.Pointer[time.Time]

	// usersMu serializes account changes, so that the last-admin check and
	// the change it guards are one step.
	usersMu sync.Mutex

	setupMu sync.Mutex
	setup   *setupToken
}

// New returns a Service that keeps users and login sessions in st and its
// signing keys in cfg.DataDir, creating the key file on first start.
func New(cfg Config, st Store) (*Service, error) {
	if st == nil {
		return nil, errors.New("auth: store is nil")
	}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create data directory: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		st:      st,
		keyPath: filepath.Join(cfg.DataDir, KeyFileName),
		hashSem: make(chan struct{}, cfg.MaxConcurrentHashes),
		lim:     newLimiter(cfg.LockoutThreshold, cfg.LockoutWindow, cfg.RateLimitPerMinute),
	}
	ks, err := loadOrCreateKeys(s.keyPath, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.keys.Store(ks)
	// The dummy's password is random and never used again.
	pw, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	if s.dummyHash, err = HashPassword(pw, cfg.Params); err != nil {
		return nil, err
	}
	now := cfg.Now()
	if err := st.PruneLogins(now); err != nil {
		return nil, fmt.Errorf("auth: prune expired logins: %w", err)
	}
	s.lastPrune.Store(&now)
	return s, nil
}

// acquireHash waits for a free hashing slot. The caller must call
// releaseHash afterwards.
func (s *Service) acquireHash(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) releaseHash() { <-s.hashSem }

// hash computes a new password hash within the concurrency bound.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquireHash(ctx); err != nil {
		return "", err
	}
	defer s.releaseHash()
	return HashPassword(password, s.cfg.Params)
}

// record writes an audit record when an audit sink is configured.
func (s *Service) record(e audit.Event) {
	if s.cfg.Audit != nil {
		s.cfg.Audit.Record(e)
	}
}

// operator is the audit actor of an account change.
func (s *Service) operator() audit.Actor {
	if s.cfg.Operator == "" {
		return audit.Actor{User: "system"}
	}
	return audit.Actor{User: s.cfg.Operator}
}

// userChanged records a change to an account.
func (s *Service) userChanged(target, what, before, after string) {
	s.record(audit.UserChange(s.cfg.Now(), s.operator(), target, what, before, after))
}
