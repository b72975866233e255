package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is a checkpoint key made from a fixed seed.
func testKey(seed byte) *SigningKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return &SigningKey{priv: priv, pub: newPublicKey(priv.Public().(ed25519.PublicKey))}
}

// manualClock is a clock that moves only when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// timers hands the channels the sink asks its After for to the test, which
// fires them.
type timers struct{ asked chan chan time.Time }

func newTimers() *timers { return &timers{asked: make(chan chan time.Time, 100)} }

func (tm *timers) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	tm.asked <- ch
	return ch
}

// next waits for the sink to ask for a timer.
func (tm *timers) next(t *testing.T) chan time.Time {
	t.Helper()
	select {
	case ch := <-tm.asked:
		return ch
	case <-time.After(60 * time.Second):
		t.Fatal("the sink never armed its checkpoint timer")
		return nil
	}
}

// trailEvents reads every record of the trail in dir.
func trailEvents(t *testing.T, dir string) []Event {
	t.Helper()
	var out []Event
	for e, err := range Scan(dir, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// kinds describes records as their types, a checkpoint as cp:REASON.
func kinds(events []Event) string {
	var s []string
	for _, e := range events {
		if e.Type == TypeCheckpoint {
			s = append(s, "cp:"+e.Checkpoint.Reason)
		} else {
			s = append(s, string(e.Type))
		}
	}
	return strings.Join(s, " ")
}

// TestCheckpointCadence checks when the sink writes checkpoints: at open,
// after every N records, when a record has waited for the interval by the
// injected clock (and not when none waits), and at Close.
func TestCheckpointCadence(t *testing.T) {
	dir := t.TempDir()
	clk := &manualClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	tm := newTimers()
	key := testKey(1)
	f, err := OpenFile(dir, FileOptions{Now: clk.Now, CheckpointKey: key, CheckpointEvery: 3, CheckpointInterval: time.Minute, After: tm.After})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	commit := func(user string) Event {
		t.Helper()
		e, err := f.Commit(context.Background(), Login(clk.Now(), Actor{User: user}))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, u := range []string{"a", "b", "c"} {
		commit(u)
	}
	// Seq 1 is the open checkpoint, 2-4 the logins, 5 the records checkpoint.
	if seq, _ := f.Head(); seq != 5 {
		t.Fatalf("head %d after 3 records, want 5 (their checkpoint)", seq)
	}
	commit("d") // seq 6: records wait, so the writer arms its timer
	early := tm.next(t)
	early <- time.Time{} // a timer that fires before the interval has passed by the clock writes nothing
	onTime := tm.next(t) // and is armed again
	if seq, _ := f.Head(); seq != 6 {
		t.Fatalf("head %d after an early timer, want 6", seq)
	}
	clk.Advance(time.Minute)
	onTime <- time.Time{}
	waitFor(t, "the interval checkpoint", func() bool { seq, _ := f.Head(); return seq == 7 })

	// No records wait: no timer, and no checkpoint however long it is;
	// the next record waits a whole interval again.
	clk.Advance(10 * time.Minute)
	commit("e") // seq 8, neither preceded nor followed by a checkpoint
	tm.next(t)
	clk.Advance(time.Minute - time.Nanosecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	events := trailEvents(t, dir)
	const want = "cp:open login login login cp:records login cp:interval login cp:close"
	if got := kinds(events); got != want {
		t.Fatalf("records:\n%s\nwant\n%s", got, want)
	}
	ls := lines(t, trailFile(dir, 1))
	for i, e := range events {
		if e.Type != TypeCheckpoint {
			continue
		}
		c := e.Checkpoint
		wantHash := ZeroHash
		if i > 0 {
			wantHash = lineHash(ls[i-1])
		}
		if c.Seq != e.Seq-1 || c.Hash != wantHash || c.Hash != e.Prev || c.KeyID != key.Public().ID() || c.Every != 3 {
			t.Errorf("checkpoint at seq %d = %+v: want it to name seq %d, hash %s, key %s, every 3", e.Seq, c, e.Seq-1, wantHash, key.Public().ID())
		}
		if !e.Time.Equal(clk.Now()) && e.Seq == 9 {
			t.Errorf("the closing checkpoint's time %v, want the injected clock's %v", e.Time, clk.Now())
		}
	}
	if at := events[6].Time; !at.Equal(time.Date(2026, 11, 23, 9, 1, 0, 0, time.UTC)) {
		t.Errorf("the interval checkpoint's time %v, want the clock's after one minute", at)
	}
	rep, err := VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{key.Public()}, RequireSealed: true})
	if err != nil || rep.Checkpoints != 4 || !rep.Sealed || rep.Unsigned != 0 || len(rep.UncleanStarts) != 0 {
		t.Errorf("VerifyWith = %+v, %v; want 4 checkpoints, sealed", rep, err)
	}
}

// TestCheckpointMessage checks the signed bytes against the format
// docs/audit.md gives, built here by hand, so that an auditor can check a
// checkpoint with any Ed25519 tool.
func TestCheckpointMessage(t *testing.T) {
	dir := t.TempDir()
	key := testKey(7)
	f, err := OpenFile(dir, FileOptions{Now: newClock().Now, CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit(context.Background(), Login(time.Now(), Actor{User: "bob"})); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ls := lines(t, trailFile(dir, 1))
	var raw struct {
		Seq        uint64 `json:"seq"`
		Time       string `json:"time"`
		Checkpoint struct {
			KeyID  string `json:"key_id"`
			Seq    uint64 `json:"seq"`
			Hash   string `json:"hash"`
			Reason string `json:"reason"`
			Every  int64  `json:"every"`
			Sig    string `json:"sig"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(ls[2], &raw); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, raw.Time)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.Checkpoint
	msg := fmt.Sprintf("shoji audit checkpoint v1\nkey %s\nseq %d\nhash %s\ntime %d\nreason %s\nevery %d\n",
		c.KeyID, c.Seq, c.Hash, at.UnixNano(), c.Reason, c.Every)
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.priv.Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, []byte(msg), sig) {
		t.Errorf("the closing checkpoint's signature does not verify over the documented message:\n%s", msg)
	}
	sum := sha256.Sum256(pub)
	if c.KeyID != hex.EncodeToString(sum[:8]) || c.Reason != CheckpointClose || c.Seq != 2 || c.Hash != lineHash(ls[1]) || c.Every != DefaultCheckpointEvery {
		t.Errorf("checkpoint %+v: want key ID = first 16 hex digits of SHA-256 of the key, seq 2, close, every %d", c, DefaultCheckpointEvery)
	}
}

// TestKeyFiles checks GenerateKey, LoadSigningKey and LoadPublicKey: the
// files' formats and modes, no overwriting, and the refusals.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.key")
	k, err := GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, mode)
		}
	}
	loaded, err := LoadSigningKey(path)
	if err != nil || !loaded.priv.Equal(k.priv) || loaded.Public().ID() != k.Public().ID() {
		t.Fatalf("LoadSigningKey = %v; want the generated key", err)
	}
	pub, err := LoadPublicKey(path + ".pub")
	if err != nil || pub.ID() != k.Public().ID() || !pub.key.Equal(k.pub.key) {
		t.Fatalf("LoadPublicKey(.pub) = %v", err)
	}
	b64 := filepath.Join(dir, "b64.pub")
	if err := os.WriteFile(b64, []byte(k.Public().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pub, err := LoadPublicKey(b64); err != nil || pub.ID() != k.Public().ID() {
		t.Errorf("LoadPublicKey(base64) = %v", err)
	}

	// Never overwritten: neither the key nor its .pub.
	before, _ := os.ReadFile(path)
	if _, err := GenerateKey(path); !errors.Is(err, ErrKeyExists) {
		t.Errorf("GenerateKey over a key = %v, want ErrKeyExists", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("GenerateKey changed an existing key")
	}
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other+".pub", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(other); !errors.Is(err, ErrKeyExists) {
		t.Errorf("GenerateKey beside an existing .pub = %v, want ErrKeyExists", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Error("GenerateKey left a private key behind when it refused")
	}

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	refusals := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"group-readable", before, 0o640, "mode 0640"},
		{"world-readable", before, 0o644, "mode 0644"},
		{"garbage", []byte("not a key\n"), 0o600, "not a PEM"},
		{"public key", k.Public().PEM(), 0o600, "not a PEM"},
		{"ECDSA key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), 0o600, "not an Ed25519 key"},
		{"two keys", append(append([]byte{}, before...), before...), 0o600, "not a PEM"},
	}
	for _, r := range refusals {
		p := filepath.Join(dir, strings.ReplaceAll(r.name, " ", "-"))
		if err := os.WriteFile(p, r.data, r.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, r.mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSigningKey(p); err == nil || !strings.Contains(err.Error(), r.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadSigningKey(%s) = %v, want an error naming the file with %q", r.name, err, r.want)
		}
	}
	if _, err := LoadSigningKey(dir); err == nil {
		t.Error("LoadSigningKey of a directory succeeded")
	}
	if _, err := LoadPublicKey(path); err == nil {
		t.Error("LoadPublicKey of a private key succeeded")
	}
}
