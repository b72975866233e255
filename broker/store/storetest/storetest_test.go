package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/store"
)

// openBolt opens a fresh bbolt store, the correct backend the broken ones
// below wrap.
func openBolt(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// casIgnored writes the policy whatever version the caller read.
type casIgnored struct{ *store.Store }

func (c casIgnored) PutPolicy(doc []byte, _ int) (int, error) {
	for {
		_, v, err := c.Store.Policy()
		if err != nil {
			return 0, err
		}
		n, err := c.Store.PutPolicy(doc, v)
		if !errors.Is(err, record.ErrConflict) {
			return n, err
		}
	}
}

// unsortedUsers lists users in reverse name order.
type unsortedUsers struct{ *store.Store }

func (u unsortedUsers) ListUsers() ([]auth.User, error) {
	list, err := u.Store.ListUsers()
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list, err
}

// silentMissing returns a zero user instead of record.ErrNotFound.
type silentMissing struct{ *store.Store }

func (s silentMissing) GetUser(name string) (auth.User, error) {
	u, err := s.Store.GetUser(name)
	if errors.Is(err, record.ErrNotFound) {
		return auth.User{}, nil
	}
	return u, err
}

// pruneKeepsBoundary keeps a login that expires exactly now.
type pruneKeepsBoundary struct{ *store.Store }

func (p pruneKeepsBoundary) PruneLogins(now time.Time) error {
	return p.Store.PruneLogins(now.Add(-time.Nanosecond))
}

// emptyIsMissing reports a setting stored as "" as missing.
type emptyIsMissing struct{ *store.Store }

func (e emptyIsMissing) Setting(key string) (string, bool, error) {
	v, ok, err := e.Store.Setting(key)
	return v, ok && v != "", err
}

// forgetful drops the journal on reopen, like a backend that does not
// persist.
type forgetful struct{ *store.Store }

// TestChecksCatchBrokenBackends runs the suite's checks on backends that
// each break one promise, and checks that the checks for that promise
// fail: the suite can fail, and fails where it should.
func TestChecksCatchBrokenBackends(t *testing.T) {
	tests := []struct {
		name     string
		wrap     func(*store.Store) store.Backend
		reopen   func(t *testing.T, b store.Backend) store.Backend
		wantFail []string
	}{
		{"policy version not compared", func(s *store.Store) store.Backend { return casIgnored{s} }, nil,
			[]string{"policy/compare-and-set", "policy/concurrent-writers"}},
		{"users not sorted", func(s *store.Store) store.Backend { return unsortedUsers{s} }, nil,
			[]string{"users/list-and-count"}},
		{"missing user not record.ErrNotFound", func(s *store.Store) store.Backend { return silentMissing{s} }, nil,
			[]string{"users/crud"}},
		{"prune keeps the boundary", func(s *store.Store) store.Backend { return pruneKeepsBoundary{s} }, nil,
			[]string{"logins/prune"}},
		{"empty setting reported missing", func(s *store.Store) store.Backend { return emptyIsMissing{s} }, nil,
			[]string{"settings/crud"}},
		{"data lost on reopen", func(s *store.Store) store.Backend { return forgetful{s} },
			func(t *testing.T, b store.Backend) store.Backend {
				_ = b.Close()
				return forgetful{openBolt(t)}
			},
			[]string{"persistence/reopen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := func(t *testing.T) store.Backend { return tt.wrap(openBolt(t)) }
			failed := map[string]error{}
			for _, c := range checks {
				if err := runCheck(t, c, open, config{reopen: tt.reopen}); err != nil && !errors.Is(err, errSkip) {
					failed[c.name] = err
				}
			}
			for _, name := range tt.wantFail {
				if failed[name] == nil {
					t.Errorf("check %s passed on a backend that breaks it", name)
				}
				delete(failed, name)
			}
			for name, err := range failed {
				t.Errorf("check %s failed on a backend that keeps its promise: %v", name, err)
			}
		})
	}
}

// TestChecksPassOnBolt runs every check on the bbolt store directly: the
// baseline the broken backends above differ from.
func TestChecksPassOnBolt(t *testing.T) {
	Run(t, func(t *testing.T) store.Backend { return openBolt(t) })
}
