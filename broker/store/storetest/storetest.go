// Package storetest is the contract test suite of shoji's storage: every
// implementation of store.Backend (the bbolt file today, Redis for the
// cluster mode next) runs Run in its tests and must pass it whole.
//
// The suite checks, through the interface only, what the doc comments of
// the store package's interfaces promise: create-read-update-delete, the
// sentinel errors for missing and taken keys, compare-and-set of the
// policy version, atomic multi-field writes, goroutines racing on one
// record (exactly one wins a compare-and-set, no update is lost), listing
// order, time round-trips, and, when the caller gives a Reopen hook,
// persistence across a new open of the same data.
//
// Each check is a function that returns what it found wrong instead of
// failing a test itself, so that this package's own tests can run the
// checks against deliberately broken backends and see them fail.
package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shoji-rbi/shoji/broker/store"
)

// Option configures Run.
type Option func(*config)

type config struct {
	reopen func(t *testing.T, b store.Backend) store.Backend
}

// Reopen gives Run a way to close a backend and open a new one on the same
// data, which enables the persistence check; without it that check is
// skipped. fn must close b and return the new backend, and report its own
// failures on t.
func Reopen(fn func(t *testing.T, b store.Backend) store.Backend) Option {
	return func(c *config) { c.reopen = fn }
}

// errSkip is returned by a check that cannot run with the given options.
var errSkip = errors.New("skipped")

// env is what a check works with: a fresh, empty backend and, when the
// caller gave one, the reopen hook.
type env struct {
	t      *testing.T
	b      store.Backend
	reopen func(t *testing.T, b store.Backend) store.Backend
}

// check is one contract check. run returns nil when the backend kept the
// contract, errSkip when it could not run, or every violation it found.
type check struct {
	name string
	run  func(e *env) error
}

// Run runs the whole contract suite, one subtest per check. open must
// return a new, empty backend for each call and arrange for it to be
// closed when t ends (a second Close must be harmless, as the contract
// says).
func Run(t *testing.T, open func(t *testing.T) store.Backend, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			err := runCheck(t, c, open, cfg)
			switch {
			case errors.Is(err, errSkip):
				t.Skip(err)
			case err != nil:
				t.Error(err)
			}
		})
	}
}

// runCheck runs one check on a fresh backend.
func runCheck(t *testing.T, c check, open func(t *testing.T) store.Backend, cfg config) error {
	e := &env{t: t, b: open(t), reopen: cfg.reopen}
	return c.run(e)
}

// faults collects the violations a check finds.
type faults struct{ errs []error }

// addf records one violation.
func (f *faults) addf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Errorf(format, args...))
}

// err returns every recorded violation joined, or nil.
func (f *faults) err() error { return errors.Join(f.errs...) }

// checks is the suite, in the order Run runs it. Names are area/what.
var checks = []check{
	{"lifecycle/check-and-close", checkLifecycle},
	{"users/crud", checkUsersCRUD},
	{"users/list-and-count", checkUsersList},
	{"users/concurrent-create", checkUsersConcurrentCreate},
	{"users/concurrent-update", checkUsersConcurrentUpdate},
	{"logins/crud", checkLoginsCRUD},
	{"logins/take", checkLoginsTake},
	{"logins/concurrent-take", checkLoginsConcurrentTake},
	{"logins/prune", checkLoginsPrune},
	{"settings/crud", checkSettings},
	{"policy/compare-and-set", checkPolicyCAS},
	{"policy/copies", checkPolicyCopies},
	{"policy/concurrent-writers", checkPolicyConcurrentWriters},
	{"policy/atomic-document-and-version", checkPolicyAtomic},
	{"requests/crud", checkRequestsCRUD},
	{"requests/list", checkRequestsList},
	{"requests/concurrent-decide", checkRequestsConcurrentDecide},
	{"transfers/crud", checkTransfersCRUD},
	{"transfers/list", checkTransfersList},
	{"transfers/concurrent-update", checkTransfersConcurrentUpdate},
	{"destinations/crud-and-order", checkDestinations},
	{"journal/crud-and-order", checkJournal},
	{"time/round-trip", checkTime},
	{"persistence/reopen", checkPersistence},
}
