package auth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/broker/record"
)

// memStore is an in-memory Store and Settings, a fake of the interfaces
// this package declares. It keeps their contract (storage.go) as far as
// the Service relies on it: record.ErrNotFound and record.ErrExists,
// atomic read-modify-write, records as values. The bbolt backend is
// checked against the same contract by broker/store/storetest, and the
// broker's end-to-end tests run the Service on it.
type memStore struct {
	mu       sync.Mutex
	users    map[string]User
	logins   map[string]Login
	settings map[string]string
	// failSettings, when set, is returned by every Settings method.
	failSettings error
}

func newMemStore() *memStore {
	return &memStore{users: map[string]User{}, logins: map[string]Login{}, settings: map[string]string{}}
}

func (m *memStore) CreateUser(u User) error {
	if u.Name == "" {
		return errors.New("create user: name is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.Name]; ok {
		return fmt.Errorf("user %q: %w", u.Name, record.ErrExists)
	}
	m.users[u.Name] = u
	return nil
}

func (m *memStore) GetUser(name string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok {
		return User{}, fmt.Errorf("user %q: %w", name, record.ErrNotFound)
	}
	return u, nil
}

func (m *memStore) UpdateUser(name string, fn func(*User) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[name]
	if !ok {
		return fmt.Errorf("user %q: %w", name, record.ErrNotFound)
	}
	if err := fn(&u); err != nil {
		return err
	}
	if u.Name != name {
		return fmt.Errorf("update user %q: renaming to %q is not supported", name, u.Name)
	}
	m.users[name] = u
	return nil
}

func (m *memStore) ListUsers() ([]User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.users))
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memStore) CountUsersWithRole(role string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, u := range m.users {
		if u.Role == role && !u.Disabled {
			n++
		}
	}
	return n, nil
}

func (m *memStore) PutLogin(l Login) error {
	if l.ID == "" || l.User == "" {
		return errors.New("put login: id or user is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins[l.ID] = l
	return nil
}

func (m *memStore) GetLogin(id string) (Login, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.logins[id]
	if !ok {
		return Login{}, fmt.Errorf("login %q: %w", id, record.ErrNotFound)
	}
	return l, nil
}

func (m *memStore) DeleteLogin(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logins, id)
	return nil
}

func (m *memStore) DeleteLoginsOf(user string) ([]string, error) {
	ls, err := m.TakeLoginsOf(user)
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return ids, err
}

func (m *memStore) TakeLoginsOf(user string) ([]Login, error) {
	return m.deleteLoginsWhere(func(l Login) bool { return l.User == user }), nil
}

func (m *memStore) PruneLogins(now time.Time) error {
	m.deleteLoginsWhere(func(l Login) bool { return !l.Expires.After(now) })
	return nil
}

// deleteLoginsWhere removes the logins that match and returns them, oldest
// first.
func (m *memStore) deleteLoginsWhere(match func(Login) bool) []Login {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Login{}
	for id, l := range m.logins {
		if match(l) {
			out = append(out, l)
			delete(m.logins, id)
		}
	}
	slices.SortFunc(out, func(a, b Login) int { return a.Created.Compare(b.Created) })
	return out
}

func (m *memStore) Setting(key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSettings != nil {
		return "", false, m.failSettings
	}
	v, ok := m.settings[key]
	return v, ok, nil
}

func (m *memStore) SetSettings(values map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failSettings != nil {
		return m.failSettings
	}
	for k := range values {
		if k == "" {
			return errors.New("set setting: key is empty")
		}
	}
	maps.Copy(m.settings, values)
	return nil
}

// failingSettings makes every Settings method fail with err from now on.
func (m *memStore) failingSettings(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failSettings = err
}
