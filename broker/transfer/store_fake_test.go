package transfer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shoji-rbi/shoji/broker/record"
)

// memStore is an in-memory Store for the tests of this package, which
// cannot use broker/store (it imports this package). It follows the
// storage contract of Ledger, Destinations and Settings; the bbolt backend
// is checked against the same contract by broker/store/storetest, and the
// broker's tests run the Manager over it.
type memStore struct {
	mu           sync.Mutex
	transfers    map[string]Transfer
	destinations map[string]Destination
	settings     map[string]string
	// listErr, when set, is what ListTransfers fails with: a ledger that
	// cannot be read.
	listErr error
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{transfers: map[string]Transfer{}, destinations: map[string]Destination{}, settings: map[string]string{}}
}

// clone copies t so that the stored record and the caller's do not share
// the Sent slice.
func clone(t Transfer) Transfer {
	t.Sent = slices.Clone(t.Sent)
	return t
}

func (s *memStore) CreateTransfer(t Transfer) error {
	if t.ID == "" {
		return errors.New("store transfer: empty ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.transfers[t.ID]; ok {
		return fmt.Errorf("transfer %s: %w", t.ID, record.ErrExists)
	}
	s.transfers[t.ID] = clone(t)
	return nil
}

func (s *memStore) Transfer(id string) (Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.transfers[id]
	if !ok {
		return Transfer{}, fmt.Errorf("transfer %s: %w", id, record.ErrNotFound)
	}
	return clone(t), nil
}

func (s *memStore) UpdateTransfer(id string, fn func(*Transfer) error) (Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.transfers[id]
	if !ok {
		return Transfer{}, fmt.Errorf("transfer %s: %w", id, record.ErrNotFound)
	}
	t = clone(t)
	if err := fn(&t); err != nil {
		return Transfer{}, err
	}
	t.ID = id
	s.transfers[id] = clone(t)
	return t, nil
}

func (s *memStore) ListTransfers(match func(*Transfer) bool) ([]Transfer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, s.listErr
	}
	out := []Transfer{}
	for _, t := range s.transfers {
		t = clone(t)
		if match == nil || match(&t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Transfer) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (s *memStore) PutDestination(d Destination) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.destinations[d.Name] = d
	return nil
}

func (s *memStore) DeleteDestination(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.destinations[name]; !ok {
		return fmt.Errorf("destination %q: %w", name, record.ErrNotFound)
	}
	delete(s.destinations, name)
	return nil
}

func (s *memStore) Destinations() ([]Destination, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Destination{}
	for _, d := range s.destinations {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Destination) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *memStore) Setting(key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.settings[key]
	return v, ok, nil
}

func (s *memStore) SetSetting(key, value string) error {
	if key == "" {
		return errors.New("store setting: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings[key] = value
	return nil
}
