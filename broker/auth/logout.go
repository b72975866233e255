package auth

import (
	"errors"
	"fmt"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
)

// The causes a login ends for, as its logout record's reason says. They
// are the browsing session's end reasons that end a user's logins.
const (
	// EndLogout: the user logged out, at this terminal or another.
	EndLogout = "logout"
	// EndIdle: the user's browser was left without input for the idle
	// timeout.
	EndIdle = "idle"
	// EndLifetime: the user's browser reached its maximum lifetime.
	EndLifetime = "lifetime"
	// EndAdmin: an administrator ended the user's session.
	EndAdmin = "admin"
)

// Logout ends every login session of p's user: p's own and those at the
// user's other terminals, which revokes every token issued for them. All of
// a user's logins share one browser, and a logout ends it, so nothing of it
// stays reachable from a terminal left logged in. Each ended login is
// recorded as a logout with the reason "logout".
func (s *Service) Logout(p Principal) error {
	if p.SessionID == "" {
		return fmt.Errorf("logout: %w: no session id", ErrInvalidToken)
	}
	if _, err := s.EndLogins(p.User, EndLogout); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// EndLogins ends every login session of the user, at every terminal, which
// revokes every token issued for them, and records one logout per ended
// login with reason as its cause (EndLogout, EndIdle, EndLifetime,
// EndAdmin). It returns how many ended; none is not an error. Two calls
// never end, nor record, the same login.
func (s *Service) EndLogins(user, reason string) (int, error) {
	if reason == "" {
		return 0, errors.New("end logins: reason is empty")
	}
	logins, err := s.st.TakeLoginsOf(user)
	if err != nil {
		return 0, fmt.Errorf("end logins of %q: %w", user, err)
	}
	if len(logins) == 0 {
		return 0, nil
	}
	role := ""
	if u, err := s.st.GetUser(user); err == nil {
		role = u.Role
	} else if !errors.Is(err, record.ErrNotFound) {
		s.cfg.Logger.Warn("logout: read the user's role", attrUser, user, attrError, err.Error())
	}
	now := s.cfg.Now()
	for _, l := range logins {
		s.record(audit.Logout(now, audit.Actor{User: user, Role: role, Terminal: l.RemoteAddr, Session: l.ID}, reason))
	}
	s.cfg.Logger.Info("logout", attrEvent, "logout", attrUser, user, "reason", reason, "logins", len(logins))
	return len(logins), nil
}
