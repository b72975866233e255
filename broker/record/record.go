// Package record holds what every storage backend of the broker and every
// user of one share: the classes of error a read or a write of a record
// ends with. The domain packages (auth, transfer, sitepolicy, ...) declare
// the storage interfaces they use; a backend (broker/store, the bbolt file)
// implements them and returns these errors, possibly wrapped with context.
// Classify with errors.Is only.
package record

import "errors"

var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when creating a record whose key is taken.
	ErrExists = errors.New("already exists")
	// ErrConflict is returned by a compare-and-set whose expected version
	// is no longer the stored one (an If-Match that no longer matches).
	ErrConflict = errors.New("version conflict")
)
