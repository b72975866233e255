package stream

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// meterRun feeds m one window: n flushes each sending a frame after
// dropping drops, spread over a second, and returns the quality after it.
// n must divide a second in whole nanoseconds, so the window closes at the
// last flush.
func meterRun(m *linkMeter, now *time.Time, n, drops int) (int, bool) {
	changed := false
	for range n {
		*now = now.Add(meterWindow / time.Duration(n))
		if m.observe(*now, true, drops) {
			changed = true
		}
	}
	return m.quality(), changed
}

// TestLinkMeter checks the steps: down a step per window in which most
// frames were dropped, up a step after calm windows, and slower to come up
// again after a raise the link could not take.
func TestLinkMeter(t *testing.T) {
	now := time.Unix(0, 0)
	m := newLinkMeter(now)
	if q, _ := meterRun(m, &now, 20, 0); q != 0 {
		t.Fatalf("a link without drops: quality %d, want 0 (the configured one)", q)
	}
	// A page that barely moves says nothing.
	if q, _ := meterRun(m, &now, 1, 3); q != 0 {
		t.Fatalf("a frame after 3 drops: quality %d, want 0", q)
	}
	if q, ch := meterRun(m, &now, 10, 2); q != 50 || !ch {
		t.Fatalf("two of three frames dropped: quality %d (changed %v), want 50", q, ch)
	}
	if q, _ := meterRun(m, &now, 10, 2); q != 30 {
		t.Fatalf("still dropping: quality %d, want 30", q)
	}
	if q, ch := meterRun(m, &now, 10, 5); q != 30 || ch {
		t.Fatalf("at the lowest step: quality %d (changed %v), want 30 unchanged", q, ch)
	}
	// Some drops, but not most: no change either way.
	for range 3 * calmWindows {
		if q, _ := meterRun(m, &now, 10, 0); q != 30 {
			t.Fatalf("calm windows interrupted by drops: quality %d, want 30", q)
		}
		// A window of 10 frames sent, 2 of them after a drop.
		for i := range 10 {
			now = now.Add(meterWindow / 10)
			m.observe(now, true, i%5/4)
		}
		if m.quality() != 30 {
			t.Fatalf("a window with a few drops changed the quality to %d", m.quality())
		}
	}
	// Calm windows raise it a step at a time.
	for i := range calmWindows - 1 {
		if q, _ := meterRun(m, &now, 20, 0); q != 30 {
			t.Fatalf("after %d calm windows: quality %d, want 30 until %d", i+1, q, calmWindows)
		}
	}
	if q, _ := meterRun(m, &now, 20, 0); q != 50 {
		t.Fatalf("after %d calm windows: quality %d, want 50", calmWindows, q)
	}
	// The raise was too much: down again, and the next raise waits twice
	// as long.
	if q, _ := meterRun(m, &now, 10, 3); q != 30 {
		t.Fatalf("drops right after the raise: quality %d, want 30", q)
	}
	for i := range 2*calmWindows - 1 {
		if q, _ := meterRun(m, &now, 20, 0); q != 30 {
			t.Fatalf("after %d calm windows following a failed raise: quality %d, want 30", i+1, q)
		}
	}
	if q, _ := meterRun(m, &now, 20, 0); q != 50 {
		t.Fatalf("after %d calm windows: quality %d, want 50", 2*calmWindows, q)
	}
}

// TestQualityFollowsTheLink checks that a viewer that stops reading while
// the page moves has the browser's quality lowered, and that a new
// connection starts from the configured quality.
func TestQualityFollowsTheLink(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	b := f.l.Last()
	waitCall(t, b, "KeyFrame")
	// Frames far larger than the socket buffers: the writer blocks on the
	// first while the viewer reads nothing, and the next ones are dropped.
	big := bytes.Repeat([]byte{0xAB}, 8<<20)
	stop := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(stop) {
		b.EmitFrame(isolation.Frame{JPEG: big})
		time.Sleep(20 * time.Millisecond)
	}
	// Now read, so the writer gets through and counts the drops.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !hasCall(b, "SetQuality", qualitySteps[1]) {
		b.EmitFrame(isolation.Frame{JPEG: []byte("small")})
		if time.Now().After(deadline) {
			t.Fatalf("no SetQuality(%d); calls: %d", qualitySteps[1], len(b.Calls()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Close()
	<-done

	// A new viewer starts at the configured quality.
	n := countCalls(b, "SetQuality")
	c2 := f.connect(t, "alice")
	defer c2.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		calls := b.Calls()
		var last []any
		for _, call := range calls {
			if call.Method == "SetQuality" {
				last = append(last, call.Arg)
			}
		}
		if len(last) > n && last[len(last)-1] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new viewer did not reset the quality: %v", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasCall reports whether b was called with method and arg.
func hasCall(b *isolationtest.Browser, method string, arg any) bool {
	for _, c := range b.Calls() {
		if c.Method == method && c.Arg == arg {
			return true
		}
	}
	return false
}
