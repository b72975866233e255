package store

import (
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// The interfaces below and those Backend takes from the domain packages
// (auth.Users, auth.Logins, auth.Settings, siterequest.Store,
// transfer.Ledger, transfer.Destinations) are the storage contract: what
// the broker, the auth and transfer packages and the CLI rely on from
// durable state, area by area, written down so that a second backend (the
// cluster issue's Redis) can be built against it and checked by the same
// suite, broker/store/storetest. *Store, the bbolt file, implements all of them.
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

// Settings is the key-value table of admin settings: the login banner and
// the usage pledge (auth.Settings, whose methods state their contract) and
// the transfer suspension.
type Settings interface {
	auth.Settings
	// SetSetting stores value under key, replacing any earlier value. It
	// fails when key is empty.
	SetSetting(key, value string) error
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
	auth.Users
	auth.Logins
	Settings
	Policies
	siterequest.Store
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
