package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// TestAttachWhileEndingStartsNoBrowser: while OnEnding runs (the broker
// ends the user's logins there), a viewer of the same user that attaches
// finds the ended session, not a new browser.
func TestAttachWhileEndingStartsNoBrowser(t *testing.T) {
	inEnding := make(chan struct{})
	release := make(chan struct{})
	h := newHarness(t, func(c *Config) {
		c.OnEnding = func(Info, Reason) {
			close(inEnding)
			<-release
		}
	})
	ctx := context.Background()
	s, err := h.m.Attach(ctx, Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	go s.End(ReasonIdle)
	waitDone(t, inEnding, "OnEnding")
	again, err := h.m.Attach(ctx, Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatalf("attach while ending: %v", err)
	}
	if again != s {
		t.Error("attach while ending got another session")
	}
	if _, err := again.AddViewer(); !errors.Is(err, ErrEnded) {
		t.Errorf("AddViewer on the ending session: %v, want ErrEnded", err)
	}
	close(release)
	waitDone(t, s.Done(), "session end")
	if n := len(h.l.Browsers()); n != 1 {
		t.Errorf("%d browsers started, want 1", n)
	}
}

// TestOwnerCheckRefusesNewSessionsOnly: a failing Owner.Check refuses a
// new session before any browser starts; a reconnect to a live session is
// not checked again.
func TestOwnerCheckRefusesNewSessionsOnly(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ended := errors.New("login ended")
	fail := func() error { return ended }
	if _, err := h.m.Attach(ctx, Owner{User: "alice", Check: fail}, vp); !errors.Is(err, ended) {
		t.Errorf("attach with a failing check: %v, want %v", err, ended)
	}
	if n := len(h.l.Browsers()); n != 0 || h.m.Count() != 0 {
		t.Fatalf("a refused attach left %d browsers and %d sessions", n, h.m.Count())
	}
	s, err := h.m.Attach(ctx, Owner{User: "alice", Check: func() error { return nil }}, vp)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.m.Attach(ctx, Owner{User: "alice", Check: fail}, vp); err != nil || again != s {
		t.Errorf("reconnect to the live session: %v, %v; want the same session", again, err)
	}
}

// TestRefusedNavigationReachesViewer: a refused page sends the viewer an
// error naming the host and the reason; a refused frame inside a page
// sends nothing (the page carries on).
func TestRefusedNavigationReachesViewer(t *testing.T) {
	h := newHarness(t, nil)
	s, err := h.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.AddViewer()
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, v, StateLive)
	b := h.l.Last()
	for _, tc := range []struct {
		name string
		d    isolation.NavDecision
		want string // "" for no error
	}{
		{"page", isolation.NavDecision{Host: "blocked.test", Rule: "default-deny", Reason: "not in the allowlist"},
			"navigation to blocked.test refused: not in the allowlist"},
		{"frame", isolation.NavDecision{Host: "ads.test", Rule: "default-deny", Reason: "not in the allowlist", Subframe: true}, ""},
		{"no reason", isolation.NavDecision{Host: "x.test"}, "navigation to x.test refused: not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.EmitBlocked("tab1", "http://"+tc.d.Host+"/", tc.d)
			// A state event after it: whatever the block sent comes first.
			b.EmitState(isolation.State{URL: "http://marker.test/" + tc.name})
			var got []string
			for done := false; !done; {
				events, _, _ := v.Take()
				for _, ev := range events {
					switch ev := ev.(type) {
					case protocol.Error:
						got = append(got, ev.Message)
					case protocol.State:
						done = true
					}
				}
				if !done {
					waitDone(t, v.Wake(), "the next event")
				}
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if len(got) != len(want) || (len(want) == 1 && got[0] != want[0]) {
				t.Errorf("error messages = %q, want %q", got, want)
			}
		})
	}
}

// slowEgress is a fakeEgress whose Open runs opened first: it stands for
// whatever makes a browser slow to start.
type slowEgress struct {
	*fakeEgress
	opened func()
}

func (e slowEgress) Open(info Info) (Egress, error) {
	e.opened()
	return e.fakeEgress.Open(info)
}

// TestIdleCountsFromLiveBrowser: the idle timeout counts from the moment
// the browser is live, so a slow start takes none of the clinician's time.
func TestIdleCountsFromLiveBrowser(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, func(c *Config) {
		c.IdleTimeout = time.Hour
		c.Now = clock
		c.Egress = slowEgress{&fakeEgress{}, func() {
			mu.Lock()
			now = now.Add(10 * time.Minute)
			mu.Unlock()
		}}
	})
	s, err := h.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	idle, _ := s.Deadlines()
	if want := clock().Add(time.Hour); !idle.Equal(want) {
		t.Errorf("idle deadline = %v, want %v: an hour from the live browser", idle, want)
	}
}
