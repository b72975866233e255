package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

type fakeEgress struct {
	mu     sync.Mutex
	opened []string
	closed map[string]bool
	// owner is the user each listener was opened or bound for; "" while a
	// pooled one has none.
	owner map[string]string
	// fail, when set, is the error of every Open.
	fail error
}

type fakeListener struct {
	e  *fakeEgress
	id string
}

func (l fakeListener) Addr() string { return "127.0.0.1:1" }

// Bind gives a listener opened without an owner its owner, once.
func (l fakeListener) Bind(info Info) error {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	if l.e.owner[l.id] != "" {
		return fmt.Errorf("fake egress %s already belongs to %s", l.id, l.e.owner[l.id])
	}
	if l.e.closed[l.id] {
		return fmt.Errorf("fake egress %s is closed", l.id)
	}
	l.e.owner[l.id] = info.User
	return nil
}
func (l fakeListener) Close() error {
	l.e.mu.Lock()
	defer l.e.mu.Unlock()
	l.e.closed[l.id] = true
	return nil
}

func (e *fakeEgress) Open(info Info) (Egress, error) {
	id := info.ID
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return nil, e.fail
	}
	if e.closed == nil {
		e.closed = map[string]bool{}
		e.owner = map[string]string{}
	}
	id = fmt.Sprintf("%s#%d", id, len(e.opened))
	e.opened = append(e.opened, id)
	e.owner[id] = info.User
	return fakeListener{e, id}, nil
}

func (e *fakeEgress) allClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.opened {
		if !e.closed[id] {
			return false
		}
	}
	return true
}

var vp = isolation.Viewport{Width: 800, Height: 600, DPR: 1}

type harness struct {
	m       *Manager
	l       *isolationtest.Launcher
	eg      *fakeEgress
	mu      sync.Mutex
	ends    []Reason
	endings []ending
	crash   int
}

// ending is what OnEnding saw.
type ending struct {
	reason Reason
	// registered says the manager still had the session; closed that its
	// browser was closed already.
	registered, closed bool
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{l: &isolationtest.Launcher{}, eg: &fakeEgress{}}
	cfg := Config{
		Launcher: h.l,
		Egress:   h.eg,
		OnEnd: func(_ Info, r Reason) {
			h.mu.Lock()
			h.ends = append(h.ends, r)
			h.mu.Unlock()
		},
		OnEnding: func(info Info, r Reason) {
			cur, ok := h.m.Get(info.User)
			e := ending{reason: r, registered: ok && cur.ID == info.ID, closed: h.l.Last().Closed()}
			h.mu.Lock()
			h.endings = append(h.endings, e)
			h.mu.Unlock()
		},
		OnCrash: func(Info, error) {
			h.mu.Lock()
			h.crash++
			h.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return h
}

func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func waitStatus(t *testing.T, v *Viewer, want State) protocol.Status {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		events, _, _ := v.Take()
		for _, ev := range events {
			if st, ok := ev.(protocol.Status); ok && st.State == string(want) {
				return st
			}
		}
		select {
		case <-v.Wake():
		case <-deadline:
			t.Fatalf("timed out waiting for status %s", want)
		}
	}
}

func TestAttachResumesSameBrowser(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	s1, err := h.m.Attach(ctx, Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := h.m.Attach(ctx, Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || len(h.l.Browsers()) != 1 {
		t.Fatalf("reattach started another browser: %d browsers", len(h.l.Browsers()))
	}
	if got := h.l.Last().Opts.ProxyAddr; got != "127.0.0.1:1" {
		t.Errorf("browser proxy = %q, want the session's egress listener", got)
	}
	if _, err := h.m.Attach(ctx, Owner{User: "bob", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	if n := len(h.l.Browsers()); n != 2 {
		t.Errorf("two users, %d browsers; want one each", n)
	}
}

// TestLookupByID checks that Lookup finds each of many sessions by its ID,
// finds nothing for an ID it never had, and forgets a session that ended.
func TestLookupByID(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	byID := map[string]string{}
	for i := range 5 {
		user := fmt.Sprintf("user-%d", i)
		s, err := h.m.Attach(ctx, Owner{User: user, Role: "clinician"}, vp)
		if err != nil {
			t.Fatal(err)
		}
		byID[s.ID] = user
	}
	for id, user := range byID {
		info, ok := h.m.Lookup(id)
		if !ok || info.User != user || info.ID != id {
			t.Errorf("Lookup(%s) = %+v, %v; want user %s", id, info, ok, user)
		}
	}
	if info, ok := h.m.Lookup("no-such-session"); ok {
		t.Errorf("Lookup of an unknown ID found %+v", info)
	}
	s, _ := h.m.Get("user-0")
	h.m.End("user-0", ReasonLogout)
	waitDone(t, s.Done(), "session end")
	if info, ok := h.m.Lookup(s.ID); ok {
		t.Errorf("Lookup of an ended session found %+v", info)
	}
}

func TestEndPaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		end    func(h *harness, s *Session)
		reason Reason
	}{
		{"logout", nil, func(h *harness, s *Session) { h.m.End(s.User, ReasonLogout) }, ReasonLogout},
		{"admin", nil, func(h *harness, s *Session) { s.End(ReasonAdmin) }, ReasonAdmin},
		{"idle", func(c *Config) { c.IdleTimeout = 50 * time.Millisecond }, func(*harness, *Session) {}, ReasonIdle},
		{"lifetime", func(c *Config) { c.MaxLifetime = 50 * time.Millisecond }, func(*harness, *Session) {}, ReasonLifetime},
		{"shutdown", nil, func(h *harness, _ *Session) { _ = h.m.Shutdown(context.Background()) }, ReasonShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mod)
			s, err := h.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.AddViewer()
			if err != nil {
				t.Fatal(err)
			}
			tc.end(h, s)
			waitDone(t, s.Done(), "session end")
			waitDone(t, v.Done(), "viewer close")
			if got := v.Reason(); got != tc.reason {
				t.Errorf("viewer reason = %q, want %q", got, tc.reason)
			}
			if !h.l.Last().Closed() {
				t.Error("browser not closed")
			}
			if !h.eg.allClosed() {
				t.Error("egress listener not closed")
			}
			if _, ok := h.m.Get("alice"); ok {
				t.Error("session still registered")
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.ends) != 1 || h.ends[0] != tc.reason {
				t.Errorf("OnEnd reasons = %v, want [%s]", h.ends, tc.reason)
			}
			// OnEnding ran first, while the session was registered and its
			// browser still open.
			if want := []ending{{tc.reason, true, false}}; fmt.Sprint(h.endings) != fmt.Sprint(want) {
				t.Errorf("OnEnding saw %+v, want %+v", h.endings, want)
			}
		})
	}
}

func TestActivityDefersIdle(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, func(c *Config) { c.IdleTimeout = time.Hour; c.Now = clock })
	s, err := h.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	s.Touch()
	idle, life := s.Deadlines()
	if want := now.Add(time.Hour); !idle.Equal(want) {
		t.Errorf("idle deadline after Touch = %v, want %v", idle, want)
	}
	if want := now.Add(-10 * time.Minute).Add(12 * time.Hour); !life.Equal(want) {
		t.Errorf("lifetime deadline = %v, want %v (Touch must not extend it)", life, want)
	}
}

func TestCrashAndRestart(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AddViewer()
	if err != nil {
		t.Fatal(err)
	}
	first := h.l.Last()
	first.Crash()
	waitStatus(t, v, StateCrashed)
	if _, err := s.Browser(); !errors.Is(err, ErrNotLive) {
		t.Errorf("Browser() after crash: err = %v, want ErrNotLive", err)
	}
	if !h.eg.allClosed() {
		t.Error("egress of crashed browser still open")
	}
	// Events of the dead browser must not reach viewers.
	first.EmitFrame(isolation.Frame{JPEG: []byte("stale")})

	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, v, StateLive)
	if second := h.l.Last(); second == first {
		t.Fatal("restart did not launch a new browser")
	}
	if _, f, _ := v.Take(); f != nil {
		t.Errorf("frame of the crashed browser reached the viewer: %q", f.JPEG)
	}
	h.l.Last().EmitFrame(isolation.Frame{JPEG: []byte("fresh")})
	if _, f, _ := v.Take(); f == nil || string(f.JPEG) != "fresh" {
		t.Errorf("frame after restart: %v", f)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.crash != 1 {
		t.Errorf("OnCrash called %d times, want 1", h.crash)
	}
}

func TestAdmissionControl(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxSessions = 1 })
	if _, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	if h.m.Ready() {
		t.Error("Ready() with a full node")
	}
	if _, err := h.m.Attach(context.Background(), Owner{User: "b", Role: "clinician"}, vp); !errors.Is(err, ErrFull) {
		t.Fatalf("second session: err = %v, want ErrFull", err)
	}
	h.m.End("a", ReasonLogout)
	if !h.m.Ready() {
		t.Error("not Ready() after the session ended")
	}
}

func TestLaunchFailureLeavesNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.l.Fail = errors.New("no chromium")
	if _, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp); err == nil {
		t.Fatal("Attach succeeded with a failing launcher")
	}
	if h.m.Count() != 0 {
		t.Error("failed session still registered")
	}
	if !h.eg.allClosed() {
		t.Error("egress listener of failed launch left open")
	}
}

func TestViewerLatestFrameWins(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AddViewer()
	if err != nil {
		t.Fatal(err)
	}
	b := h.l.Last()
	for i := range 5 {
		b.EmitFrame(isolation.Frame{JPEG: []byte{byte(i)}})
	}
	_, f, dropped := v.Take()
	if f == nil || f.JPEG[0] != 4 || dropped != 4 {
		t.Fatalf("Take() = frame %v, dropped %d; want the last frame and 4 dropped", f, dropped)
	}
}

func TestSlowViewerIsDropped(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AddViewer()
	if err != nil {
		t.Fatal(err)
	}
	for i := range viewerQueue + 1 {
		h.l.Last().EmitState(isolation.State{Title: fmt.Sprint(i)})
	}
	waitDone(t, v.Done(), "slow viewer to be closed")
	if v.Reason() != "" {
		t.Errorf("slow viewer reason %q, want none", v.Reason())
	}
	if st, _ := s.State(); st != StateLive {
		t.Errorf("session state %s after a slow viewer; want live", st)
	}
}

func TestNewViewerReplacesOld(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	b := h.l.Last()
	b.EmitDialog(isolation.Dialog{ID: "d1", Kind: isolation.DialogAlert, Message: "hi"})
	old, _ := s.AddViewer()
	v, _ := s.AddViewer()
	waitDone(t, old.Done(), "old viewer")
	if old.Reason() != ReasonReplaced {
		t.Errorf("old viewer reason %q, want replaced", old.Reason())
	}
	events, _, _ := v.Take()
	var sawDialog bool
	for _, ev := range events {
		if d, ok := ev.(protocol.Dialog); ok && d.ID == "d1" {
			sawDialog = true
		}
	}
	if !sawDialog {
		t.Errorf("new viewer did not get the pending dialog: %+v", events)
	}
}

// TestNewViewerGetsLastFrame checks that a viewer that connects gets the
// newest frame at once, without waiting for the page to change.
func TestNewViewerGetsLastFrame(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.AddViewer()
	if _, f, _ := v.Take(); f != nil {
		t.Fatalf("a viewer of a browser without frames got %q", f.JPEG)
	}
	h.l.Last().EmitFrame(isolation.Frame{JPEG: []byte("page")})
	v2, _ := s.AddViewer()
	if _, f, _ := v2.Take(); f == nil || string(f.JPEG) != "page" {
		t.Errorf("a reconnecting viewer got frame %v, want the last one", f)
	}
}
