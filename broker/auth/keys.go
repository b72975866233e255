package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// KeyFileName is the name of the JWT signing key file inside the data
// directory.
const KeyFileName = "jwt-keys.json"

// maxKeys is how many signing keys RotateKey keeps: the newest signs, all
// verify, so tokens signed before a rotation stay valid until they expire.
const maxKeys = 3

// keyFile is the on-disk form of the signing keys, oldest first.
type keyFile struct {
	Keys []storedKey `json:"keys"`
}

type storedKey struct {
	KID     string    `json:"kid"`
	Created time.Time `json:"created"`
	// Seed is the Ed25519 private key seed (32 bytes, base64 in JSON).
	Seed []byte `json:"ed25519_seed"`
}

type signingKey struct {
	kid     string
	created time.Time
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
}

// keySet is an immutable set of keys, oldest first. The last one signs.
type keySet struct {
	keys []signingKey
}

func (ks *keySet) signer() signingKey { return ks.keys[len(ks.keys)-1] }

func (ks *keySet) public(kid string) (ed25519.PublicKey, bool) {
	for _, k := range ks.keys {
		if k.kid == kid {
			return k.pub, true
		}
	}
	return nil, false
}

func (ks *keySet) stored() keyFile {
	var f keyFile
	for _, k := range ks.keys {
		f.Keys = append(f.Keys, storedKey{KID: k.kid, Created: k.created, Seed: k.priv.Seed()})
	}
	return f
}

func newSigningKey(now time.Time) (signingKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kid, err := randomHex(8)
	if err != nil {
		return signingKey{}, err
	}
	return signingKey{kid: kid, created: now.UTC(), priv: priv, pub: pub}, nil
}

// loadOrCreateKeys reads the key file at path, or creates it with one new key
// when it does not exist.
func loadOrCreateKeys(path string, now time.Time) (*keySet, error) {
	ks, err := loadKeys(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return ks, err
	}
	k, err := newSigningKey(now)
	if err != nil {
		return nil, err
	}
	ks = &keySet{keys: []signingKey{k}}
	if err := writeKeys(path, ks); err != nil {
		return nil, err
	}
	return ks, nil
}

func loadKeys(path string) (*keySet, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file: %w", path, ErrUnsafeKeyFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %#o, want 0600 (run chmod 600 %s): %w", path, perm, path, ErrUnsafeKeyFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse key file %s: %w", path, err)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("key file %s: no keys", path)
	}
	ks := &keySet{}
	seen := map[string]bool{}
	for i, sk := range f.Keys {
		if sk.KID == "" || seen[sk.KID] {
			return nil, fmt.Errorf("key file %s: keys[%d]: kid is empty or repeated", path, i)
		}
		seen[sk.KID] = true
		if len(sk.Seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("key file %s: keys[%d]: ed25519_seed has %d bytes, want %d", path, i, len(sk.Seed), ed25519.SeedSize)
		}
		priv := ed25519.NewKeyFromSeed(sk.Seed)
		ks.keys = append(ks.keys, signingKey{kid: sk.KID, created: sk.Created, priv: priv, pub: priv.Public().(ed25519.PublicKey)})
	}
	// File order breaks ties between keys created at the same instant.
	slices.SortStableFunc(ks.keys, func(a, b signingKey) int { return a.created.Compare(b.created) })
	return ks, nil
}

// writeKeys replaces the key file atomically: a private temporary file in the
// same directory, fsynced, renamed over the old one, then the directory is
// fsynced so the rename survives a crash.
func writeKeys(path string, ks *keySet) error {
	data, err := json.MarshalIndent(ks.stored(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode keys: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".jwt-keys-*.tmp") // created with mode 0600
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write key file: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	committed = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write key file: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write key file: sync dir: %w", err)
	}
	return nil
}

// RotateKey adds a new signing key, which signs every token from now on. The
// previous keys keep verifying; only the newest three are kept, so a token
// outlives at most two rotations.
func (s *Service) RotateKey() error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	k, err := newSigningKey(s.cfg.Now())
	if err != nil {
		return err
	}
	old := s.keys.Load()
	keys := append(slices.Clone(old.keys), k)
	if len(keys) > maxKeys {
		keys = keys[len(keys)-maxKeys:]
	}
	ks := &keySet{keys: keys}
	if err := writeKeys(s.keyPath, ks); err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	s.keys.Store(ks)
	s.cfg.Logger.Info("signing key rotated", attrEvent, "key_rotated", "kid", k.kid)
	return nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
