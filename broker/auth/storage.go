package auth

import "time"

// User is one account as stored. PasswordHash is an encoded password hash
// (HashPassword's PHC format); Role is a role name (Roles). The zero
// PledgeAcceptedAt means the user has not yet accepted the usage pledge.
// PledgeVersion names the text of the pledge the user accepted last
// (PledgeVersion of the text, its hex SHA-256); it is empty for an
// acceptance stored before versions were recorded, which counts as no
// acceptance of the current text.
type User struct {
	Name             string    `json:"name"`
	Role             string    `json:"role"`
	PasswordHash     string    `json:"password_hash"`
	Disabled         bool      `json:"disabled"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	PledgeAcceptedAt time.Time `json:"pledge_accepted_at,omitzero"`
	PledgeVersion    string    `json:"pledge_version,omitempty"`
}

// Login is one login session: what a successful password login creates and
// what every token issued for it refers to. Deleting it revokes those tokens.
// Expires is the session's absolute end, however often its tokens are renewed.
type Login struct {
	ID         string    `json:"id"`
	User       string    `json:"user"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	RemoteAddr string    `json:"remote_addr"`
}

// The interfaces below are the accounts' part of the storage contract
// (broker/store/contract.go states the rules shared by every area: errors
// classified with errors.Is against broker/record's sentinels, atomic and
// durable writes, records as values, times kept to the nanosecond, safe
// for concurrent use). broker/store implements them on bbolt, and
// broker/store/storetest checks any implementation against them.

// Users is the account table: one record per user name.
type Users interface {
	// CreateUser stores a new user under u.Name. It fails with record.ErrExists
	// when the name is taken (of concurrent creates of one name exactly one
	// succeeds) and with an error when u.Name is empty.
	CreateUser(u User) error
	// GetUser returns the named user, or record.ErrNotFound.
	GetUser(name string) (User, error)
	// UpdateUser is a read-modify-write of one user that no other write
	// interleaves with: concurrent updates of one user are not lost. fn sees
	// the stored user; when fn returns an error nothing is written (not even
	// the fields fn already changed) and that error is returned as is. A
	// missing user is record.ErrNotFound and fn is not called. fn must not rename
	// the user (that fails and writes nothing) and must not call the
	// backend. fn should only compute from its argument: a backend that
	// retries on contention may call it again with the freshly read user.
	UpdateUser(name string, fn func(*User) error) error
	// ListUsers returns every user sorted by name (byte order), or an empty
	// list when there are none.
	ListUsers() ([]User, error)
	// CountUsersWithRole returns how many users that are not Disabled have
	// the role. The auth package uses it to refuse removing the last admin.
	CountUsersWithRole(role string) (int, error)
}

// Logins is the table of login sessions, keyed by Login.ID. Deleting a
// login revokes every token issued for it, so deletion is the revocation
// list: there is no separate revocation or lockout record in the store.
type Logins interface {
	// PutLogin stores l under l.ID, replacing a login with the same ID. It
	// fails when l.ID or l.User is empty.
	PutLogin(l Login) error
	// GetLogin returns the login with the ID, or record.ErrNotFound (a revoked or
	// expired-and-pruned login).
	GetLogin(id string) (Login, error)
	// DeleteLogin removes the login with the ID. Removing one that does not
	// exist is not an error.
	DeleteLogin(id string) error
	// DeleteLoginsOf removes every login of the user, in one atomic step,
	// and returns their IDs oldest first (by Created). Other users' logins
	// are untouched; a user without logins gives an empty list.
	DeleteLoginsOf(user string) ([]string, error)
	// TakeLoginsOf removes every login of the user in one atomic step and
	// returns them oldest first (by Created). Two calls, even concurrent
	// ones, never return the same login.
	TakeLoginsOf(user string) ([]Login, error)
	// PruneLogins removes every login whose Expires is not after now (a
	// login expiring exactly at now is removed).
	PruneLogins(now time.Time) error
}

// Settings is the part of the key-value table of admin settings that the
// login banner and the usage pledge use (Notices).
type Settings interface {
	// Setting returns the value stored under key and whether it exists. A
	// missing key is ("", false, nil), not an error; a key set to the empty
	// string exists ("", true, nil), so an admin can clear a value that
	// otherwise falls back to a default.
	Setting(key string) (value string, ok bool, err error)
	// SetSettings stores every key of values at once: all of them or, on
	// any error (an empty key included), none. The admin's banner and
	// pledge change is one such write.
	SetSettings(values map[string]string) error
}

// Store is what a Service keeps its accounts in.
type Store interface {
	Users
	Logins
}
