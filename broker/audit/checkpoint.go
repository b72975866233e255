package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Checkpoint is what an audit_checkpoint record carries: the sink's
// signature over the head of the chain, which the chain alone cannot
// protect. The signature covers the record before the checkpoint (Seq and
// Hash), the checkpoint record's time, Reason, Every and the key's ID; see
// checkpointMessage.
type Checkpoint struct {
	// KeyID names the key that signed: KeyID of its public key.
	KeyID string `json:"key_id"`
	// Seq and Hash are the seq and line hash of the record before the
	// checkpoint: the head it signs. Hash equals the record's prev.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// Reason says why it was written: CheckpointOpen, CheckpointRecords,
	// CheckpointInterval or CheckpointClose.
	Reason string `json:"reason"`
	// Every is the most records (other than audit_checkpoint,
	// audit_rotated and audit_recovered) the sink writes before its next
	// checkpoint.
	Every int64 `json:"every"`
	// Sig is the Ed25519 signature of checkpointMessage, in standard
	// base64 with padding.
	Sig string `json:"sig"`
}

// The reasons for a checkpoint.
const (
	// CheckpointOpen is written when the sink opens the trail, after any
	// recovery records.
	CheckpointOpen = "open"
	// CheckpointRecords is written after Every records.
	CheckpointRecords = "records"
	// CheckpointInterval is written when records were written and the
	// checkpoint interval has passed since the last checkpoint.
	CheckpointInterval = "interval"
	// CheckpointClose is written by a clean Close: a trail that ends with
	// one was stopped cleanly and nothing was added after.
	CheckpointClose = "close"
)

// checkpointMessage is the byte string a checkpoint signs: seven lines,
// each ending in a newline,
//
//	shoji audit checkpoint v1
//	key KEYID
//	seq SEQ            (decimal, the record before the checkpoint)
//	hash HASH          (64 lowercase hex digits, that record's line hash)
//	time UNIXNANO      (decimal, the checkpoint record's time in ns since 1970 UTC)
//	reason REASON
//	every EVERY        (decimal)
func checkpointMessage(keyID string, seq uint64, hash string, at time.Time, reason string, every int64) []byte {
	var b bytes.Buffer
	b.WriteString("shoji audit checkpoint v1\n")
	b.WriteString("key " + keyID + "\n")
	b.WriteString("seq " + strconv.FormatUint(seq, 10) + "\n")
	b.WriteString("hash " + hash + "\n")
	b.WriteString("time " + strconv.FormatInt(at.UnixNano(), 10) + "\n")
	b.WriteString("reason " + reason + "\n")
	b.WriteString("every " + strconv.FormatInt(every, 10) + "\n")
	return b.Bytes()
}

// PEM block types of the key files.
const (
	pemPrivate = "PRIVATE KEY" // PKCS #8
	pemPublic  = "PUBLIC KEY"  // PKIX
)

// SigningKey is the private key the sink signs checkpoints with. Keep it
// outside the data directory, readable only by the broker's account.
type SigningKey struct {
	priv ed25519.PrivateKey
	pub  *PublicKey
}

// Public is the key's public half.
func (k *SigningKey) Public() *PublicKey { return k.pub }

// sign signs a checkpoint message.
func (k *SigningKey) sign(msg []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, msg))
}

// PublicKey verifies checkpoints.
type PublicKey struct {
	key ed25519.PublicKey
	id  string
}

// ID is the key ID that checkpoints name: the first 16 hex digits of the
// SHA-256 of the 32-byte Ed25519 public key.
func (p *PublicKey) ID() string { return p.id }

// String is the public key in standard base64 (32 bytes).
func (p *PublicKey) String() string { return base64.StdEncoding.EncodeToString(p.key) }

// PEM is the public key file: PEM "PUBLIC KEY" (PKIX).
func (p *PublicKey) PEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(p.key)
	if err != nil {
		panic(fmt.Sprintf("marshal an Ed25519 public key: %v", err)) // cannot happen
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der})
}

func newPublicKey(key ed25519.PublicKey) *PublicKey {
	sum := sha256.Sum256(key)
	return &PublicKey{key: key, id: hex.EncodeToString(sum[:8])}
}

// verify reports whether sig (base64) is the key's signature of msg.
func (p *PublicKey) verify(msg []byte, sig string) bool {
	raw, err := base64.StdEncoding.DecodeString(sig)
	return err == nil && len(raw) == ed25519.SignatureSize && ed25519.Verify(p.key, msg, raw)
}

// ErrKeyExists is returned by GenerateKey when a key file is already there.
var ErrKeyExists = errors.New("key file exists")

// GenerateKey makes a new checkpoint key and writes it to path (PEM
// "PRIVATE KEY", PKCS #8, mode 0600) and its public half to path.pub (PEM
// "PUBLIC KEY", PKIX, mode 0644). It never overwrites a file and leaves
// neither file behind when it fails.
func GenerateKey(path string) (*SigningKey, error) {
	for _, p := range []string{path, path + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%w: %s; choose another name or remove it first", ErrKeyExists, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate an Ed25519 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode the private key: %w", err)
	}
	k := &SigningKey{priv: priv, pub: newPublicKey(pub)}
	if err := writeNewFile(path, pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNewFile(path+".pub", k.pub.PEM(), 0o644); err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	return k, nil
}

// writeNewFile writes data to a new file at path with mode perm: the
// file appears complete or not at all, and an existing file is never
// replaced.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrKeyExists, path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadSigningKey reads a checkpoint key written by GenerateKey (or by
// `openssl genpkey -algorithm ed25519`). It refuses a file that group or
// others may read or write, or that is not a regular file.
func LoadSigningKey(path string) (*SigningKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: group or others may read or write the private key; chmod 600 it", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemPrivate || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s is not a PEM %q file holding one Ed25519 key (write one with shoji audit keygen)", path, pemPrivate)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, parsed)
	}
	return &SigningKey{priv: priv, pub: newPublicKey(priv.Public().(ed25519.PublicKey))}, nil
}

// LoadPublicKey reads a public key file: PEM "PUBLIC KEY" (PKIX) as
// GenerateKey writes it, or the 32-byte key in standard base64 on one
// line, as `shoji audit keygen` prints it.
func LoadPublicKey(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data))); err == nil && len(raw) == ed25519.PublicKeySize {
		return newPublicKey(ed25519.PublicKey(raw)), nil
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemPublic || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s is not a PEM %q file holding one Ed25519 key, nor such a key in base64", path, pemPublic)
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := parsed.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, not an Ed25519 key", path, parsed)
	}
	return newPublicKey(pub), nil
}

// checkpointEvent is a checkpoint for the writer to fill in and sign when
// it appends it.
func checkpointEvent(at time.Time, reason string) Event {
	return Event{Time: at.UTC(), Type: TypeCheckpoint, Checkpoint: &Checkpoint{Reason: reason}}
}
