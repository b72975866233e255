// Package store is shoji's embedded, crash-safe durable state: user accounts,
// settings and login sessions, kept in one bbolt file, DIR/shoji.db.
//
// bbolt takes an exclusive file lock, so one process at a time owns a data
// directory: a `shoji user` command run while `shoji serve` holds the same
// directory fails with ErrInUse instead of waiting.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
)

// FileName is the name of the database file inside the data directory.
const FileName = "shoji.db"

// lockTimeout is how long Open waits for another process to release the
// database lock before it gives up with ErrInUse.
const lockTimeout = 2 * time.Second

// Sentinel errors. Classify with errors.Is.
var (
	// ErrInUse is returned by Open when another process holds the database.
	ErrInUse = errors.New("data directory is in use by another shoji process")
	// ErrUnsafeDir is returned by Open when the data directory or the database
	// file could be read or written by other users.
	ErrUnsafeDir = errors.New("unsafe permissions")
)

var (
	bucketUsers    = []byte("users")
	bucketSettings = []byte("settings")
	bucketLogins   = []byte("logins")
)

// Store is the embedded database. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens or creates dir/shoji.db. It creates dir with mode 0700 when it
// is missing, and refuses a dir that is world-writable or a database file
// that other users may read. It fails with ErrInUse when another process
// holds the database for more than two seconds.
func Open(dir string) (*Store, error) {
	return open(dir, lockTimeout)
}

func open(dir string, timeout time.Duration) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open store: data directory is empty")
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	if err := checkFile(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: %w (stop `shoji serve` first)", dir, ErrInUse)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketSettings, bucketLogins} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("data directory %s is world-writable (mode %v): %w", dir, fi.Mode().Perm(), ErrUnsafeDir)
	}
	return nil
}

func checkFile(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("database file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("database file %s is accessible to other users (mode %v, want 0600): %w", path, fi.Mode().Perm(), ErrUnsafeDir)
	}
	return nil
}

// Check says whether the database is open and can be read; cheap enough
// for a readiness probe.
func (s *Store) Check() error {
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// CreateUser stores a new user. It fails with record.ErrExists when a user of that
// name exists.
func (s *Store) CreateUser(u auth.User) error {
	if u.Name == "" {
		return errors.New("create user: name is empty")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(u.Name)) != nil {
			return fmt.Errorf("user %q: %w", u.Name, record.ErrExists)
		}
		return putJSON(b, u.Name, u)
	})
}

// GetUser returns the named user, or record.ErrNotFound.
func (s *Store) GetUser(name string) (auth.User, error) {
	var u auth.User
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketUsers), "user", name, &u)
	})
	return u, err
}

// UpdateUser reads the named user, lets fn change it and writes it back, all
// in one transaction. When fn returns an error nothing is written and that
// error is returned. fn must not rename the user or call other Store methods.
func (s *Store) UpdateUser(name string, fn func(*auth.User) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		var u auth.User
		if err := getJSON(b, "user", name, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		if u.Name != name {
			return fmt.Errorf("update user %q: renaming to %q is not supported", name, u.Name)
		}
		return putJSON(b, name, u)
	})
}

// ListUsers returns every user, sorted by name.
func (s *Store) ListUsers() ([]auth.User, error) {
	var users []auth.User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u auth.User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode user %q: %w", k, err)
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// bbolt iterates in byte order already; sort anyway so the contract does
	// not depend on the key encoding.
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	return users, nil
}

// CountUsersWithRole returns how many enabled users have the role. Disabled
// users are not counted.
func (s *Store) CountUsersWithRole(role string) (int, error) {
	users, err := s.ListUsers()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		if u.Role == role && !u.Disabled {
			n++
		}
	}
	return n, nil
}

// Setting returns the value stored under key and whether it exists.
func (s *Store) Setting(key string) (string, bool, error) {
	var (
		val string
		ok  bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSettings).Get([]byte(key)); v != nil {
			val, ok = string(v), true
		}
		return nil
	})
	return val, ok, err
}

// SetSetting stores value under key, replacing any earlier value.
func (s *Store) SetSetting(key, value string) error {
	return s.SetSettings(map[string]string{key: value})
}

// SetSettings stores each value under its key, replacing earlier values,
// in one transaction: on any error none of them is stored.
func (s *Store) SetSettings(values map[string]string) error {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		for _, k := range keys {
			if k == "" {
				return errors.New("set setting: key is empty")
			}
			if err := b.Put([]byte(k), []byte(values[k])); err != nil {
				return fmt.Errorf("set setting %.40q: %w", k, err)
			}
		}
		return nil
	})
}

// PutLogin stores a login session, replacing one with the same ID.
func (s *Store) PutLogin(l auth.Login) error {
	if l.ID == "" {
		return errors.New("put login: id is empty")
	}
	if l.User == "" {
		return errors.New("put login: user is empty")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketLogins), l.ID, l)
	})
}

// GetLogin returns the login session with the ID, or record.ErrNotFound.
func (s *Store) GetLogin(id string) (auth.Login, error) {
	var l auth.Login
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketLogins), "login", id, &l)
	})
	return l, err
}

// DeleteLogin removes the login session with the ID. Removing one that does
// not exist is not an error.
func (s *Store) DeleteLogin(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLogins).Delete([]byte(id))
	})
}

// DeleteLoginsOf removes every login session of the user and returns their
// IDs.
func (s *Store) DeleteLoginsOf(user string) ([]string, error) {
	logins, err := s.TakeLoginsOf(user)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(logins))
	for i, l := range logins {
		ids[i] = l.ID
	}
	return ids, nil
}

// TakeLoginsOf removes every login session of the user in one transaction
// and returns them, oldest first: two calls never return the same login.
func (s *Store) TakeLoginsOf(user string) ([]auth.Login, error) {
	logins, err := s.deleteLoginsWhere(func(l auth.Login) bool { return l.User == user })
	sort.SliceStable(logins, func(i, j int) bool { return logins[i].Created.Before(logins[j].Created) })
	return logins, err
}

// PruneLogins removes every login session whose Expires is not after now.
func (s *Store) PruneLogins(now time.Time) error {
	_, err := s.deleteLoginsWhere(func(l auth.Login) bool { return !l.Expires.After(now) })
	return err
}

func (s *Store) deleteLoginsWhere(match func(auth.Login) bool) ([]auth.Login, error) {
	var out []auth.Login
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogins)
		var keys [][]byte
		var logins []auth.Login
		err := b.ForEach(func(k, v []byte) error {
			var l auth.Login
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("decode login %q: %w", k, err)
			}
			if match(l) {
				// k is only valid during the transaction and must not be
				// modified while iterating; copy it and delete afterwards.
				keys = append(keys, append([]byte(nil), k...))
				logins = append(logins, l)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("delete login: %w", err)
			}
		}
		out = logins
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("write %q: %w", key, err)
	}
	return nil
}

func getJSON(b *bolt.Bucket, kind, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return fmt.Errorf("%s %q: %w", kind, key, record.ErrNotFound)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s %q: %w", kind, key, err)
	}
	return nil
}
