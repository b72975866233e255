package store

import (
	"time"

	"github.com/shoji-rbi/shoji/broker/transfer"
)

// The interfaces below are the storage contract: what the broker, the auth
// and transfer packages and the CLI rely on from durable state, area by
// area, written down so that a second backend (the cluster issue's Redis)
// can be built against it and checked by the same suite,
// broker/store/storetest. *Store, the bbolt file, implements all of them.
//
// Shared rules for every method:
//
//   - Errors are classified with errors.Is only: record.ErrNotFound for a record
//     that does not exist, record.ErrExists for a create whose key is taken,
//     record.ErrConflict for a compare-and-set whose expected version is stale.
//     They may be wrapped with context.
//   - Every write is atomic: it is either wholly visible to the next read,
//     from any goroutine, or (when it returns an error) not at all. A write
//     that returned nil survives Close and a new open of the same data.
//   - Records are values: a record returned by a read is the caller's copy,
//     and changing a value (or slice) after passing it to a write does not
//     change what is stored.
//   - Times are kept to the nanosecond and compared with time.Time.Equal:
//     the instant survives, the monotonic clock reading and the
//     *time.Location pointer need not. A zero time stays zero.
//   - Every method is safe for concurrent use.

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

// Settings is a small key-value table of admin settings (the login banner,
// the usage pledge, transfer suspension).
type Settings interface {
	// Setting returns the value stored under key and whether it exists. A
	// missing key is ("", false, nil), not an error; a key set to the empty
	// string exists ("", true, nil), so an admin can clear a value that
	// otherwise falls back to a default.
	Setting(key string) (value string, ok bool, err error)
	// SetSetting stores value under key, replacing any earlier value. It
	// fails when key is empty.
	SetSetting(key, value string) error
	// SetSettings stores every key of values at once: all of them or, on
	// any error (an empty key included), none. The admin's banner and
	// pledge change is one such write.
	SetSettings(values map[string]string) error
}

// Policies holds the site-policy document, an opaque byte string that the
// broker and the CLI encode, with a version for compare-and-set (the admin
// API's ETag and If-Match).
type Policies interface {
	// Policy returns the stored document and its version. A backend
	// without a policy returns a nil document and version 0. The document
	// and the version are read together: never one write's document with
	// another write's version.
	Policy() (doc []byte, version int, err error)
	// PutPolicy replaces the document if the stored version is ifVersion (0
	// for a backend without a policy) and returns the new version,
	// ifVersion+1, written together with the document. Otherwise it writes
	// nothing and fails with record.ErrConflict: of concurrent puts with the same
	// ifVersion exactly one succeeds. An empty document fails and writes
	// nothing.
	PutPolicy(doc []byte, ifVersion int) (newVersion int, err error)
}

// SiteRequests holds clinicians' requests for access to a site and their
// decisions.
type SiteRequests interface {
	// CreateSiteRequest stores r as a new request under a fresh, unique,
	// unguessable ID with State RequestPending, whatever r.ID and r.State
	// were, and returns the stored request.
	CreateSiteRequest(r SiteRequest) (SiteRequest, error)
	// SiteRequestByID returns one request, or record.ErrNotFound.
	SiteRequestByID(id string) (SiteRequest, error)
	// UpdateSiteRequest is a read-modify-write of one request that no other
	// write interleaves with, with the rules of Users.UpdateUser: fn's error
	// is returned as is and writes nothing; a missing request is
	// record.ErrNotFound. The ID stays what it was whatever fn does. It returns the
	// request as stored. Of concurrent decisions whose fn refuses a request
	// that is no longer pending, exactly one succeeds.
	UpdateSiteRequest(id string, fn func(*SiteRequest) error) (SiteRequest, error)
	// ListSiteRequests returns the requests for which match is true (all
	// when match is nil), newest first by Created; the order of requests
	// created at the same instant is unspecified. None is an empty, non-nil
	// list. match must not call the backend.
	ListSiteRequests(match func(SiteRequest) bool) ([]SiteRequest, error)
}

// Journal is the session journal: one entry per live browsing session,
// written when it starts and deleted once its end is in the audit trail.
type Journal interface {
	// PutJournalEntry stores e under e.Session, replacing an entry with the
	// same session, and returns once the entry is durable. It fails when
	// e.Session or e.User is empty.
	PutJournalEntry(e JournalEntry) error
	// DeleteJournalEntry removes the entry of the session. Removing one
	// that does not exist is not an error.
	DeleteJournalEntry(session string) error
	// JournalEntries returns every entry, oldest Started first, and by
	// session ID among entries started at the same instant. None is an
	// empty list.
	JournalEntries() ([]JournalEntry, error)
}

// Backend is the whole of shoji's durable state: every area above, plus
// the health check and the release of the backend.
type Backend interface {
	Users
	Logins
	Settings
	Policies
	SiteRequests
	transfer.Ledger
	transfer.Destinations
	Journal

	// Check returns nil while the backend can be read; it is cheap enough
	// for a readiness probe. After Close it returns an error.
	Check() error
	// Close releases the backend (for bbolt, the file and its lock). A
	// second Close is harmless and returns nil.
	Close() error
}

// Store implements Backend.
var _ Backend = (*Store)(nil)
