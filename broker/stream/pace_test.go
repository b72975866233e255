package stream

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// fakeMeter is a ChangeMeter that answers the share it is told, or an
// error when it is negative.
type fakeMeter struct {
	mu     sync.Mutex
	change float64
}

func (m *fakeMeter) Changed(prev, cur *isolation.Frame) (float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.change < 0 {
		return 0, errors.New("fake: no measure")
	}
	return m.change, nil
}

func (m *fakeMeter) set(c float64) {
	m.mu.Lock()
	m.change = c
	m.mu.Unlock()
}

// fakePace records the pace set on it.
type fakePace struct {
	pace  time.Duration
	calls int
}

func (p *fakePace) SetFramePace(d time.Duration) { p.pace, p.calls = d, p.calls+1 }

// TestFramePacer proves the pacing policy step by step on a fake clock: a
// first frame, a large change, an unmeasured change and the viewer's input
// keep the browser unpaced, input at once and each for paceHold; small
// changes with no input for paceHold pace it; a viewer that goes leaves
// it paced.
func TestFramePacer(t *testing.T) {
	const interval = 100 * time.Millisecond
	small, large := 0.01, 0.5
	type step struct {
		at     time.Duration
		what   string // "frame", "input" or "stop"
		change float64
		want   time.Duration
	}
	steps := []step{
		{0, "frame", small, 0}, // the first frame is all new
		{100 * time.Millisecond, "frame", small, 0},
		{999 * time.Millisecond, "frame", small, 0},
		{1000 * time.Millisecond, "frame", small, interval},
		{1100 * time.Millisecond, "input", 0, 0},
		{1200 * time.Millisecond, "frame", small, 0},
		{2099 * time.Millisecond, "frame", small, 0},
		{2100 * time.Millisecond, "frame", small, interval},
		{2200 * time.Millisecond, "frame", paceSmallChange, 0}, // at the bound: large
		{2300 * time.Millisecond, "frame", small, 0},
		{3200 * time.Millisecond, "frame", small, interval},
		{3300 * time.Millisecond, "frame", large, 0},
		{4300 * time.Millisecond, "frame", small, interval},
		{4400 * time.Millisecond, "frame", -1, 0}, // not measured: taken as large
		{5400 * time.Millisecond, "frame", small, interval},
		{5500 * time.Millisecond, "input", 0, 0},
		{5600 * time.Millisecond, "stop", 0, interval},
	}
	start := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	now := start
	meter := &fakeMeter{}
	p := newFramePacer(interval, meter, slog.New(slog.DiscardHandler), func() time.Time { return now })
	b := &fakePace{pace: -1}
	for i, s := range steps {
		now = start.Add(s.at)
		calls := b.calls
		switch s.what {
		case "frame":
			meter.set(s.change)
			p.frame(b, &isolation.Frame{})
		case "input":
			p.input(b)
		case "stop":
			p.stop(b)
		}
		if b.calls != calls+1 || b.pace != s.want {
			t.Fatalf("step %d (%s at %v, change %v): pace %v after %d calls, want %v after one", i, s.what, s.at, s.change, b.pace, b.calls-calls, s.want)
		}
	}
	// No browser (starting, or crashed): nothing to pace, no panic.
	p.frame(nil, &isolation.Frame{})
	p.input(nil)
}

// newPaceFixture is newFixture with frame pacing at interval, measured by
// meter.
func newPaceFixture(t *testing.T, interval time.Duration, meter ChangeMeter) *fixture {
	t.Helper()
	l := &isolationtest.Launcher{}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Second, Logger: log,
		IdleFrameInterval: interval, Changes: meter}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	return &fixture{srv: srv, l: l, m: m}
}

// TestTypingLiftsThePace proves through the stream that a viewer's key
// lifts the pace of a browser paced for a spinner before the key reaches
// the page, so the frame that echoes it is not held back; and that the
// spinner is paced again once the typing stops.
func TestTypingLiftsThePace(t *testing.T) {
	const interval = 100 * time.Millisecond
	f := newPaceFixture(t, interval, &fakeMeter{change: 0.01})
	ws := f.connect(t, "nurse")
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	b := f.browserOf(t, "nurse")
	spin := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for b.FramePace() != interval {
			if time.Now().After(deadline) {
				t.Fatalf("the spinner was not paced %s", what)
			}
			b.EmitFrame(frame("spinner"))
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, key := range []string{"a", "b"} {
		spin("before key " + key)
		write(t, ws, `{"type":"key","action":"down","key":"`+key+`","code":"Key`+key+`","keyCode":65}`)
		deadline := time.Now().Add(30 * time.Second)
		var calls []isolationtest.Call
		for {
			calls = b.Calls()
			if keys(calls) > i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("key %s did not reach the browser", key)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The last pace set before the key reached the page is none.
		pace := time.Duration(-1)
		for _, c := range calls {
			if c.Method == "SetFramePace" {
				pace = c.Arg.(time.Duration)
			}
			if c.Method == "Key" && c.Arg.(isolation.KeyEvent).Key == key {
				break
			}
		}
		if pace != 0 {
			t.Errorf("key %s reached the browser under a pace of %v, want none", key, pace)
		}
	}
	spin("after the typing")
}

// keys counts the Key calls.
func keys(calls []isolationtest.Call) int {
	n := 0
	for _, c := range calls {
		if c.Method == "Key" {
			n++
		}
	}
	return n
}
