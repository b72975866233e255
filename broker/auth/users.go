package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
)

// UserInfo is what may be shown about a user: never the password hash.
type UserInfo struct {
	Name      string
	Role      Role
	Disabled  bool
	CreatedAt time.Time
	// PledgeVersion is the version of the pledge text the user accepted
	// last; empty when they accepted none, or only before versions were
	// recorded.
	PledgeVersion string
}

func userInfo(u User) UserInfo {
	return UserInfo{
		Name:          u.Name,
		Role:          Role(u.Role),
		Disabled:      u.Disabled,
		CreatedAt:     u.CreatedAt,
		PledgeVersion: u.PledgeVersion,
	}
}

// AddUser creates an enabled user. The name is lowercased and must follow the
// naming rule, the role must be valid and the password must meet the policy;
// the error names what is wrong. A taken name is ErrUserExists.
func (s *Service) AddUser(name string, role Role, password string) error {
	n, err := NormalizeUsername(name)
	if err != nil {
		return err
	}
	if !role.Valid() {
		if _, err := ParseRole(string(role)); err != nil {
			return err
		}
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := s.hash(context.Background(), password)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	err = s.st.CreateUser(User{Name: n, Role: string(role), PasswordHash: hash, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, record.ErrExists) {
		return fmt.Errorf("%w: %q", ErrUserExists, n)
	}
	if err != nil {
		return fmt.Errorf("add user %q: %w", n, err)
	}
	s.cfg.Logger.Info("user added", attrEvent, "user_added", attrUser, n, attrRole, string(role))
	s.userChanged(n, "added", "", "role: "+string(role))
	return nil
}

// User returns the named user.
func (s *Service) User(name string) (UserInfo, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return UserInfo{}, err
	}
	u, err := s.st.GetUser(n)
	if errors.Is(err, record.ErrNotFound) {
		return UserInfo{}, fmt.Errorf("%w %q", ErrNoSuchUser, n)
	}
	if err != nil {
		return UserInfo{}, fmt.Errorf("get user %q: %w", n, err)
	}
	return userInfo(u), nil
}

// ListUsers returns every user, sorted by name.
func (s *Service) ListUsers() ([]UserInfo, error) {
	users, err := s.st.ListUsers()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	infos := make([]UserInfo, len(users))
	for i, u := range users {
		infos[i] = userInfo(u)
	}
	return infos, nil
}

// DisableUser disables the user and ends all their login sessions, then
// calls Config.OnUserDisabled and Config.OnLoginsEnded. Disabling the last
// enabled admin is refused with ErrLastAdmin.
func (s *Service) DisableUser(name string) error {
	n, err := s.change(name, "disable", func(u *User) error {
		u.Disabled = true
		return nil
	})
	if err != nil {
		return err
	}
	ids, err := s.st.DeleteLoginsOf(n)
	if err != nil {
		return fmt.Errorf("disable user %q: end login sessions: %w", n, err)
	}
	s.cfg.Logger.Info("user disabled", attrEvent, "user_disabled", attrUser, n, "sessions_ended", len(ids))
	s.userChanged(n, "disabled", "enabled", "disabled")
	if s.cfg.OnUserDisabled != nil {
		s.cfg.OnUserDisabled(n)
	}
	s.loginsEnded(n, ids)
	return nil
}

// EnableUser enables the user again and lifts any lockout of the name.
func (s *Service) EnableUser(name string) error {
	n, err := s.change(name, "enable", func(u *User) error {
		u.Disabled = false
		return nil
	})
	if err != nil {
		return err
	}
	s.lim.reset(n)
	s.cfg.Logger.Info("user enabled", attrEvent, "user_enabled", attrUser, n)
	s.userChanged(n, "enabled", "disabled", "enabled")
	return nil
}

// SetRole changes the user's role. Demoting the last enabled admin is refused
// with ErrLastAdmin. Live tokens carry the new role at their next Verify.
func (s *Service) SetRole(name string, role Role) error {
	if !role.Valid() {
		if _, err := ParseRole(string(role)); err != nil {
			return err
		}
	}
	n, err := s.change(name, "set role of", func(u *User) error {
		u.Role = string(role)
		return nil
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("user role changed", attrEvent, "user_role_changed", attrUser, n, attrRole, string(role))
	s.userChanged(n, "role", "", string(role))
	return nil
}

// SetPassword sets the user's password (an administrative reset: there is no
// self-service reset). It ends all the user's login sessions, calling
// Config.OnLoginsEnded, and lifts any lockout of the name.
func (s *Service) SetPassword(name, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := s.hash(context.Background(), password)
	if err != nil {
		return err
	}
	n, err := s.change(name, "set password of", func(u *User) error {
		u.PasswordHash = hash
		return nil
	})
	if err != nil {
		return err
	}
	s.lim.reset(n)
	ids, err := s.st.DeleteLoginsOf(n)
	if err != nil {
		return fmt.Errorf("set password of %q: end login sessions: %w", n, err)
	}
	s.cfg.Logger.Info("user password set", attrEvent, "user_password_set", attrUser, n, "sessions_ended", len(ids))
	s.userChanged(n, "password", "", "(set)")
	s.loginsEnded(n, ids)
	return nil
}

// AcceptPledge records that the user accepted, now, the usage pledge whose
// text has the given version (the caller decides how texts are versioned;
// the broker uses their SHA-256). The audit record names the version before
// and after. An empty version is refused with ErrBadPledgeVersion.
func (s *Service) AcceptPledge(name, version string) error {
	if version == "" {
		return ErrBadPledgeVersion
	}
	now := s.cfg.Now().UTC()
	var before string
	n, err := s.change(name, "accept pledge of", func(u *User) error {
		before = u.PledgeVersion
		u.PledgeAcceptedAt = now
		u.PledgeVersion = version
		return nil
	})
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("pledge accepted", attrEvent, "pledge_accepted", attrUser, n, "pledge_version", version)
	s.record(audit.UserChange(s.cfg.Now(), audit.Actor{User: n}, n, "pledge", before, "accepted "+version))
	return nil
}

// change applies fn to the named user in one store transaction, stamps
// UpdatedAt, and refuses a change that would leave no enabled admin. It
// returns the normalized name.
func (s *Service) change(name, verb string, fn func(*User) error) (string, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return "", err
	}
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	admins, err := s.st.CountUsersWithRole(string(Admin))
	if err != nil {
		return "", fmt.Errorf("%s user %q: %w", verb, n, err)
	}
	err = s.st.UpdateUser(n, func(u *User) error {
		wasAdmin := u.Role == string(Admin) && !u.Disabled
		if err := fn(u); err != nil {
			return err
		}
		isAdmin := u.Role == string(Admin) && !u.Disabled
		if wasAdmin && !isAdmin && admins <= 1 {
			return fmt.Errorf("%w %q", ErrLastAdmin, n)
		}
		u.UpdatedAt = s.cfg.Now().UTC()
		return nil
	})
	if errors.Is(err, record.ErrNotFound) {
		return "", fmt.Errorf("%w %q", ErrNoSuchUser, n)
	}
	if err != nil && !errors.Is(err, ErrLastAdmin) {
		return "", fmt.Errorf("%s user %q: %w", verb, n, err)
	}
	return n, err
}

func (s *Service) loginsEnded(user string, ids []string) {
	if s.cfg.OnLoginsEnded != nil && len(ids) > 0 {
		s.cfg.OnLoginsEnded(user, ids)
	}
}
