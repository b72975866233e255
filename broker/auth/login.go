package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
)

// Login outcomes, as logged.
const (
	outcomeSuccess        = "success"
	outcomeBadCredentials = "bad_credentials"
	outcomeLocked         = "locked"
	outcomeRateLimited    = "rate_limited"
	outcomeError          = "error"
)

// pruneEvery is how often a successful login also deletes expired login
// sessions from the store.
const pruneEvery = time.Hour

// Login checks a user name and password from remoteAddr ("host:port" or a
// bare host). On success it creates a login session and returns the
// principal and its first token. Errors: ErrRateLimited (too many attempts
// from the address), ErrLocked (too many failures for the user name),
// ErrBadCredentials (unknown user, wrong password or disabled user, which
// cost the same time), or the context's error while waiting for a hashing
// slot. Every attempt is logged with its outcome.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr string) (Principal, Token, error) {
	p, tok, outcome, err := s.login(ctx, username, password, remoteHost(remoteAddr))
	level := slog.LevelInfo
	if outcome != outcomeSuccess {
		level = slog.LevelWarn
	}
	attrs := []any{attrEvent, "login", attrUser, logName(username), attrRemote, remoteHost(remoteAddr), attrOutcome, outcome}
	if outcome == outcomeError {
		attrs = append(attrs, attrError, err.Error())
	}
	s.cfg.Logger.Log(ctx, level, "login", attrs...)
	now := s.cfg.Now()
	if outcome == outcomeSuccess {
		s.record(audit.Login(now, audit.Actor{User: p.User, Role: string(p.Role), Terminal: remoteHost(remoteAddr), Session: p.SessionID}))
	} else {
		s.record(audit.LoginFailed(now, audit.Actor{User: logName(username), Terminal: remoteHost(remoteAddr)}, outcome))
	}
	return p, tok, err
}

func (s *Service) login(ctx context.Context, username, password, remote string) (Principal, Token, string, error) {
	now := s.cfg.Now()
	if !s.lim.allowAddr(remote, now) {
		return Principal{}, Token{}, outcomeRateLimited, ErrRateLimited
	}
	name, nameErr := NormalizeUsername(username)
	if nameErr == nil && !s.lim.begin(name, now) {
		return Principal{}, Token{}, outcomeLocked, ErrLocked
	}

	u, ok, err := s.checkPassword(ctx, name, nameErr == nil, password)
	if err != nil {
		return Principal{}, Token{}, outcomeError, fmt.Errorf("login: %w", err)
	}
	if !ok {
		if nameErr == nil && s.lim.locked(name, s.cfg.Now()) {
			s.cfg.Logger.Warn("user name locked out", attrEvent, "lockout", attrUser, name)
			s.record(audit.Lockout(s.cfg.Now(), audit.Actor{User: name, Terminal: remote}, "too many failed logins"))
		}
		return Principal{}, Token{}, outcomeBadCredentials, ErrBadCredentials
	}
	s.lim.reset(name)
	s.upgradeHash(ctx, u, password)

	p, tok, err := s.startSession(u, remote)
	if err != nil {
		return Principal{}, Token{}, outcomeError, fmt.Errorf("login: %w", err)
	}
	return p, tok, outcomeSuccess, nil
}

// checkPassword verifies password against the user's hash. For a name that
// is invalid or unknown, it verifies against a dummy hash so every failure
// costs the same. ok is false for a wrong password or a disabled user.
func (s *Service) checkPassword(ctx context.Context, name string, valid bool, password string) (u User, ok bool, err error) {
	exists := false
	if valid {
		u, err = s.st.GetUser(name)
		switch {
		case err == nil:
			exists = true
		case !errors.Is(err, record.ErrNotFound):
			return User{}, false, err
		}
	}
	hash := s.dummyHash
	if exists {
		hash = u.PasswordHash
	}
	if err := s.acquireHash(ctx); err != nil {
		return User{}, false, err
	}
	match, err := VerifyPassword(password, hash)
	s.releaseHash()
	if err != nil {
		return User{}, false, fmt.Errorf("user %q: %w", name, err)
	}
	return u, exists && match && !u.Disabled, nil
}

// upgradeHash rehashes the password with the configured Params when the
// stored hash used others. A failure is logged, not returned: the login has
// succeeded.
func (s *Service) upgradeHash(ctx context.Context, u User, password string) {
	h, err := parseHash(u.PasswordHash)
	if err != nil || h.params == s.cfg.Params {
		return
	}
	newHash, err := s.hash(ctx, password)
	if err == nil {
		err = s.st.UpdateUser(u.Name, func(cur *User) error {
			if cur.PasswordHash != u.PasswordHash {
				return nil // changed meanwhile: keep the newer one
			}
			cur.PasswordHash = newHash
			return nil
		})
	}
	if err != nil {
		s.cfg.Logger.Warn("password hash upgrade failed", attrEvent, "hash_upgrade", attrUser, u.Name, attrError, err.Error())
	}
}

// startSession creates a login session for u and its first token.
func (s *Service) startSession(u User, remote string) (Principal, Token, error) {
	role, err := ParseRole(u.Role)
	if err != nil {
		return Principal{}, Token{}, fmt.Errorf("user %q: %w", u.Name, err)
	}
	sid, err := randomHex(16)
	if err != nil {
		return Principal{}, Token{}, err
	}
	now := s.cfg.Now()
	login := Login{
		ID:         sid,
		User:       u.Name,
		Created:    now.UTC(),
		Expires:    now.Add(s.cfg.LoginLifetime).Truncate(time.Second).UTC(),
		RemoteAddr: remote,
	}
	s.maybePrune(now)
	if err := s.st.PutLogin(login); err != nil {
		return Principal{}, Token{}, err
	}
	tok, err := s.issue(u.Name, role, login)
	if err != nil {
		_ = s.st.DeleteLogin(sid)
		return Principal{}, Token{}, err
	}
	return Principal{
		User:          u.Name,
		Role:          role,
		SessionID:     sid,
		TokenExpires:  tok.Expires,
		LoginExpires:  login.Expires,
		PledgeVersion: u.PledgeVersion,
	}, tok, nil
}

// maybePrune deletes expired login sessions at most once per pruneEvery.
func (s *Service) maybePrune(now time.Time) {
	last := s.lastPrune.Load()
	if last != nil && now.Sub(*last) < pruneEvery {
		return
	}
	if !s.lastPrune.CompareAndSwap(last, &now) {
		return // another login is pruning
	}
	if err := s.st.PruneLogins(now); err != nil {
		s.cfg.Logger.Warn("prune expired logins failed", attrEvent, "prune", attrError, err.Error())
	}
}

// logName returns the user name to log for an attempt. A name that breaks the
// naming rule is not logged as typed, since people sometimes type their
// password into the name field.
func logName(name string) string {
	if n, err := NormalizeUsername(name); err == nil {
		return n
	}
	return "(invalid name)"
}
