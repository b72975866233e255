package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"time"
)

// setupToken is the one-time first-admin token, kept only as a hash.
type setupToken struct {
	hash    [sha256.Size]byte
	expires time.Time
}

// NeedsSetup reports whether no enabled admin exists.
func (s *Service) NeedsSetup() (bool, error) {
	n, err := s.st.CountUsersWithRole(string(Admin))
	if err != nil {
		return false, fmt.Errorf("count admins: %w", err)
	}
	return n == 0, nil
}

// IssueSetupToken returns a new random set-up token (32 bytes, base64url),
// valid for Config.SetupTokenTTL and only in this process's memory. It
// replaces any earlier token. It fails with ErrSetupNotNeeded when an enabled
// admin exists.
func (s *Service) IssueSetupToken() (string, error) {
	needs, err := s.NeedsSetup()
	if err != nil {
		return "", err
	}
	if !needs {
		return "", ErrSetupNotNeeded
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issue set-up token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	s.setupMu.Lock()
	s.setup = &setupToken{hash: sha256.Sum256([]byte(tok)), expires: s.cfg.Now().Add(s.cfg.SetupTokenTTL)}
	s.setupMu.Unlock()
	s.cfg.Logger.Info("set-up token issued", attrEvent, "setup_token_issued")
	return tok, nil
}

// CompleteSetup creates the first admin if token is the live set-up token.
// The token dies when the admin is created, and also when an admin already
// exists; both cases, a wrong token and an expired one are
// ErrSetupTokenInvalid. A bad name or weak password is reported as by AddUser
// and leaves the token live, so the person can try again.
func (s *Service) CompleteSetup(token, username, password string) error {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	if s.setup == nil {
		return ErrSetupTokenInvalid
	}
	if !s.cfg.Now().Before(s.setup.expires) {
		s.setup = nil
		return ErrSetupTokenInvalid
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], s.setup.hash[:]) != 1 {
		s.cfg.Logger.Warn("set-up token rejected", attrEvent, "setup", attrOutcome, "bad_token")
		return ErrSetupTokenInvalid
	}
	needs, err := s.NeedsSetup()
	if err != nil {
		return err
	}
	if !needs {
		s.setup = nil
		return fmt.Errorf("%w: an admin already exists", ErrSetupTokenInvalid)
	}
	if err := s.AddUser(username, Admin, password); err != nil {
		return err
	}
	s.setup = nil
	s.cfg.Logger.Info("first admin created", attrEvent, "setup", attrOutcome, outcomeSuccess, attrUser, logName(username))
	return nil
}
