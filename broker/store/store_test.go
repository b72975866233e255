package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
)

var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", path, got, want)
		}
	}
}

func TestOpenRefusesUnsafe(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		wantIn  string
	}{
		{
			name: "world-writable dir",
			prepare: func(t *testing.T, dir string) {
				if err := os.Chmod(dir, 0o777); err != nil {
					t.Fatal(err)
				}
			},
			wantIn: "world-writable",
		},
		{
			name: "readable database file",
			prepare: func(t *testing.T, dir string) {
				s, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, FileName), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantIn: FileName,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			s, err := Open(dir)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want error")
			}
			if !errors.Is(err, ErrUnsafeDir) {
				t.Errorf("error %v is not ErrUnsafeDir", err)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %s and %q", err, dir, tt.wantIn)
			}
		})
	}
}

func TestOpenLockedByAnother(t *testing.T) {
	_, dir := openTemp(t)
	// flock locks conflict between two open file descriptions even within
	// one process, so a second open stands in for a second process.
	s2, err := open(dir, 50*time.Millisecond)
	if err == nil {
		s2.Close()
		t.Fatal("second open succeeded, want ErrInUse")
	}
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("error = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), "in use by another shoji process") {
		t.Errorf("error %q does not explain the lock", err)
	}
}

func TestUsers(t *testing.T) {
	s, _ := openTemp(t)
	alice := auth.User{Name: "alice", Role: "admin", PasswordHash: "h1", CreatedAt: t0, UpdatedAt: t0}
	bob := auth.User{Name: "bob", Role: "clinician", PasswordHash: "h2", CreatedAt: t0, UpdatedAt: t0}
	carol := auth.User{Name: "carol", Role: "admin", PasswordHash: "h3", CreatedAt: t0, UpdatedAt: t0, Disabled: true}
	for _, u := range []auth.User{bob, carol, alice} {
		if err := s.CreateUser(u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
	}
	if err := s.CreateUser(alice); !errors.Is(err, record.ErrExists) {
		t.Errorf("CreateUser duplicate: err = %v, want record.ErrExists", err)
	}
	if err := s.CreateUser(auth.User{}); err == nil {
		t.Error("CreateUser with empty name succeeded")
	}

	got, err := s.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}
	if _, err := s.GetUser("nobody"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("GetUser(nobody): err = %v, want record.ErrNotFound", err)
	}

	list, err := s.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]auth.User{alice, bob, carol}, list); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}

	n, err := s.CountUsersWithRole("admin")
	if err != nil || n != 1 {
		t.Errorf("CountUsersWithRole(admin) = %d, %v; want 1 (carol is disabled)", n, err)
	}

	pledge := t0.Add(time.Hour)
	if err := s.UpdateUser("bob", func(u *auth.User) error {
		u.PledgeAcceptedAt = pledge
		u.PledgeVersion = "v1"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetUser("bob")
	if !got.PledgeAcceptedAt.Equal(pledge) || got.PledgeVersion != "v1" {
		t.Errorf("after UpdateUser PledgeAcceptedAt, PledgeVersion = %v, %q; want %v, v1", got.PledgeAcceptedAt, got.PledgeVersion, pledge)
	}

	errAbort := errors.New("abort")
	if err := s.UpdateUser("bob", func(u *auth.User) error {
		u.Role = "admin"
		return errAbort
	}); !errors.Is(err, errAbort) {
		t.Errorf("UpdateUser with failing fn: err = %v, want errAbort", err)
	}
	if got, _ := s.GetUser("bob"); got.Role != "clinician" {
		t.Errorf("failed UpdateUser wrote role %q", got.Role)
	}
	if err := s.UpdateUser("bob", func(u *auth.User) error { u.Name = "robert"; return nil }); err == nil {
		t.Error("UpdateUser rename succeeded, want error")
	}
	if err := s.UpdateUser("nobody", func(*auth.User) error { return nil }); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("UpdateUser(nobody): err = %v, want record.ErrNotFound", err)
	}
}

func TestSettings(t *testing.T) {
	s, _ := openTemp(t)
	if _, ok, err := s.Setting("banner"); ok || err != nil {
		t.Errorf("Setting(missing) = ok %v, err %v", ok, err)
	}
	for _, v := range []string{"first", "second", ""} {
		if err := s.SetSetting("banner", v); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Setting("banner")
		if err != nil || !ok || got != v {
			t.Errorf("Setting = %q, %v, %v; want %q, true, nil", got, ok, err, v)
		}
	}
	if err := s.SetSetting("", "x"); err == nil {
		t.Error("SetSetting with empty key succeeded")
	}
}

// TestSetSettingsAtomic: SetSettings stores all its values or, when one
// cannot be stored, none — not the ones before the bad one.
func TestSetSettingsAtomic(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.SetSettings(map[string]string{"banner": "old banner", "pledge": "old pledge"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]string
	}{
		// Keys are stored in order: "banner" before the bad key.
		{"key too long for the store", map[string]string{"banner": "new banner", strings.Repeat("z", bolt.MaxKeySize+1): "x"}},
		{"empty key", map[string]string{"": "x", "pledge": "new pledge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetSettings(tt.values); err == nil {
				t.Fatal("SetSettings succeeded, want an error")
			}
			for key, want := range map[string]string{"banner": "old banner", "pledge": "old pledge"} {
				if got, _, err := s.Setting(key); err != nil || got != want {
					t.Errorf("Setting(%s) = %q, %v; want %q: a failed SetSettings changed it", key, got, err, want)
				}
			}
		})
	}
}

func TestLogins(t *testing.T) {
	s, _ := openTemp(t)
	logins := []auth.Login{
		{ID: "a1", User: "alice", Created: t0, Expires: t0.Add(12 * time.Hour), RemoteAddr: "10.0.0.1"},
		{ID: "a2", User: "alice", Created: t0, Expires: t0.Add(time.Hour), RemoteAddr: "10.0.0.2"},
		{ID: "b1", User: "bob", Created: t0, Expires: t0.Add(time.Hour), RemoteAddr: "10.0.0.3"},
		{ID: "b2", User: "bob", Created: t0, Expires: t0.Add(12 * time.Hour), RemoteAddr: "10.0.0.3"},
	}
	for _, l := range logins {
		if err := s.PutLogin(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutLogin(auth.Login{User: "x"}); err == nil {
		t.Error("PutLogin without ID succeeded")
	}
	got, err := s.GetLogin("a1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(logins[0], got); diff != "" {
		t.Errorf("GetLogin (-want +got):\n%s", diff)
	}

	ids, err := s.DeleteLoginsOf("alice")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a1", "a2"}, ids); diff != "" {
		t.Errorf("DeleteLoginsOf (-want +got):\n%s", diff)
	}
	if _, err := s.GetLogin("a1"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("GetLogin after DeleteLoginsOf: err = %v, want record.ErrNotFound", err)
	}

	if err := s.PruneLogins(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLogin("b1"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("expired b1 survived PruneLogins: err = %v", err)
	}
	if _, err := s.GetLogin("b2"); err != nil {
		t.Errorf("live b2 pruned: %v", err)
	}

	if err := s.DeleteLogin("b2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLogin("b2"); err != nil {
		t.Errorf("DeleteLogin twice: %v", err)
	}
	if _, err := s.GetLogin("b2"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("GetLogin after DeleteLogin: err = %v, want record.ErrNotFound", err)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	u := auth.User{Name: "alice", Role: "admin", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0}
	l := auth.Login{ID: "sid", User: "alice", Created: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLogin(l); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting("k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if got, err := s.GetUser("alice"); err != nil || !cmp.Equal(u, got) {
		t.Errorf("user after reopen = %+v, %v", got, err)
	}
	if got, err := s.GetLogin("sid"); err != nil || !cmp.Equal(l, got) {
		t.Errorf("login after reopen = %+v, %v", got, err)
	}
	if v, ok, err := s.Setting("k"); err != nil || !ok || v != "v" {
		t.Errorf("setting after reopen = %q, %v, %v", v, ok, err)
	}
}

func TestConcurrentAccess(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CreateUser(auth.User{Name: "counter", Role: "clinician"}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3) // buffered for every possible error: never blocks
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Each increment is a read-modify-write; a lost update
				// would show in the final count.
				if err := s.UpdateUser("counter", func(u *auth.User) error {
					u.PasswordHash += "x"
					return nil
				}); err != nil {
					errs <- err
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.PutLogin(auth.Login{ID: id, User: "counter", Expires: t0}); err != nil {
					errs <- err
				}
				if _, err := s.ListUsers(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	u, err := s.GetUser("counter")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.PasswordHash) != workers*each {
		t.Errorf("after %d concurrent updates the counter is %d", workers*each, len(u.PasswordHash))
	}
	ids, err := s.DeleteLoginsOf("counter")
	if err != nil || len(ids) != workers*each {
		t.Errorf("DeleteLoginsOf = %d ids, %v; want %d", len(ids), err, workers*each)
	}
}
