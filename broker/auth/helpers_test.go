package auth

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// cheapParams keep tests fast; production uses DefaultParams.
var cheapParams = Params{Memory: 64, Time: 1, Threads: 1}

var epoch = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is an injected clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	svc   *Service
	st    *memStore
	clock *fakeClock
	dir   string
	logs  *syncBuffer
}

// newEnv returns a Service on a fresh in-memory store and data directory. mod may
// change the config before New.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	st := newMemStore()
	e := &env{st: st, clock: newClock(), dir: dir, logs: &syncBuffer{}}
	cfg := Config{
		DataDir: dir,
		Params:  cheapParams,
		Now:     e.clock.Now,
		Logger:  slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	e.svc, err = New(cfg, st)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

const (
	alicePW = "correct horse battery"
	bobPW   = "bob's long password"
)

// addUsers adds alice (admin) and bob (clinician).
func (e *env) addUsers(t *testing.T) {
	t.Helper()
	if err := e.svc.AddUser("alice", Admin, alicePW); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AddUser("bob", Clinician, bobPW); err != nil {
		t.Fatal(err)
	}
}

func (e *env) login(t *testing.T, user, pw string) (Principal, Token) {
	t.Helper()
	p, tok, err := e.svc.Login(context.Background(), user, pw, "192.0.2.1:5000")
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	return p, tok
}
