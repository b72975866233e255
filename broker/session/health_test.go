package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// gatedLauncher is a launcher whose launches a test can fail or hold.
type gatedLauncher struct {
	inner *isolationtest.Launcher
	// entered gets a value as each launch begins (buffered; dropped when
	// full).
	entered chan struct{}

	mu       sync.Mutex
	fail     error
	gate     chan struct{} // when set, a launch waits for it or its ctx
	attempts int
}

func (g *gatedLauncher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	g.mu.Lock()
	g.attempts++
	gate, fail := g.gate, g.fail
	g.mu.Unlock()
	select {
	case g.entered <- struct{}{}:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	return g.inner.Launch(ctx, opts)
}

func (g *gatedLauncher) set(fail error, gate chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail, g.gate = fail, gate
}

func (g *gatedLauncher) tries() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts
}

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type healthHarness struct {
	*poolHarness
	g     *gatedLauncher
	clock *testClock
}

// newHealthHarness is a manager without a pool whose launches go through
// a gatedLauncher, on a test clock.
func newHealthHarness(t *testing.T, mod func(*Config)) *healthHarness {
	t.Helper()
	hh := &healthHarness{clock: &testClock{now: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}}
	hh.poolHarness = newPoolHarness(t, func(c *Config) {
		c.PoolSize = 0
		hh.g = &gatedLauncher{inner: c.Launcher.(*isolationtest.Launcher), entered: make(chan struct{}, 16)}
		c.Launcher = hh.g
		c.Now = hh.clock.Now
		if mod != nil {
			mod(c)
		}
	})
	return hh
}

func TestCanStartBrowserProbes(t *testing.T) {
	hh := newHealthHarness(t, nil)
	ctx := context.Background()
	if err := hh.m.CanStartBrowser(ctx); err != nil {
		t.Fatalf("CanStartBrowser with a working launcher = %v", err)
	}
	probes := hh.pooledBrowsers()
	if len(probes) != 1 {
		t.Fatalf("%d probe browsers, want 1", len(probes))
	}
	p := probes[0]
	if !p.Closed() || !hh.eg.isClosed(p.Opts.SessionID) || !hh.tr.wasReleased(p.Opts.SessionID) {
		t.Errorf("probe left something: browser closed %v, egress closed %v, quarantine released %v",
			p.Closed(), hh.eg.isClosed(p.Opts.SessionID), hh.tr.wasReleased(p.Opts.SessionID))
	}
	if owners := hh.eg.owners(p.Opts.SessionID); len(owners) != 1 || owners[0] != "" {
		t.Errorf("probe's egress owners = %q; want one listener that nobody owns", owners)
	}
	// The success vouches for a while: no second probe.
	hh.clock.add(2 * time.Minute)
	if err := hh.m.CanStartBrowser(ctx); err != nil || hh.g.tries() != 1 {
		t.Fatalf("CanStartBrowser 2 minutes after a success = %v after %d launches; want nil after 1", err, hh.g.tries())
	}
	// Then it is probed again.
	hh.clock.add(2 * time.Minute)
	if err := hh.m.CanStartBrowser(ctx); err != nil || hh.g.tries() != 2 {
		t.Fatalf("CanStartBrowser 4 minutes after a success = %v after %d launches; want nil after 2", err, hh.g.tries())
	}
	if st := hh.m.StartHealth(); st.Started != 2 || st.Probes != 2 || st.Failed != 0 || !st.LastStart.Equal(hh.clock.Now()) {
		t.Errorf("StartHealth = %+v", st)
	}
	if n := hh.m.Count(); n != 0 {
		t.Errorf("%d sessions after probes", n)
	}
}

func TestCanStartBrowserFailure(t *testing.T) {
	hh := newHealthHarness(t, nil)
	ctx := context.Background()
	hh.g.set(errors.New("chromium: exit status 1"), nil)
	err := hh.m.CanStartBrowser(ctx)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "the last browser start failed at 2026-04-01T09:00:00Z: chromium: exit status 1") {
		t.Fatalf("CanStartBrowser with a failing launcher = %v", err)
	}
	if !hh.eg.allClosed() {
		t.Error("egress of the failed probe left open")
	}
	// The failure stands until the next probe is due: no launch meanwhile.
	hh.clock.add(30 * time.Second)
	if err := hh.m.CanStartBrowser(ctx); !errors.As(err, &se) || hh.g.tries() != 1 {
		t.Fatalf("CanStartBrowser 30s after a failure = %v after %d launches; want the failure after 1", err, hh.g.tries())
	}
	// Chromium is repaired; the next probe finds it.
	hh.g.set(nil, nil)
	hh.clock.add(31 * time.Second)
	if err := hh.m.CanStartBrowser(ctx); err != nil || hh.g.tries() != 2 {
		t.Fatalf("CanStartBrowser after the repair = %v after %d launches", err, hh.g.tries())
	}
	if st := hh.m.StartHealth(); st.Started != 1 || st.Failed != 1 || st.LastError == nil {
		t.Errorf("StartHealth = %+v", st)
	}
}

func TestCanStartBrowserFromSessions(t *testing.T) {
	hh := newHealthHarness(t, nil)
	ctx := context.Background()
	if _, err := hh.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	if err := hh.m.CanStartBrowser(ctx); err != nil || hh.g.tries() != 1 {
		t.Fatalf("CanStartBrowser after a session started = %v after %d launches; want nil and no probe", err, hh.g.tries())
	}
	hh.g.set(errors.New("out of file descriptors"), nil)
	if _, err := hh.m.Attach(ctx, Owner{User: "b", Role: "clinician"}, vp); err == nil {
		t.Fatal("Attach with a failing launcher succeeded")
	}
	err := hh.m.CanStartBrowser(ctx)
	if err == nil || !strings.Contains(err.Error(), "out of file descriptors") || hh.g.tries() != 2 {
		t.Fatalf("CanStartBrowser after a session's browser failed = %v after %d launches; want that failure, no probe", err, hh.g.tries())
	}
}

func TestCanStartBrowserPoolAlive(t *testing.T) {
	ph := newPoolHarness(t, nil)
	ph.waitReady(t, 1)
	n := len(ph.l.Browsers())
	if err := ph.m.CanStartBrowser(context.Background()); err != nil {
		t.Fatalf("CanStartBrowser with a pooled browser = %v", err)
	}
	if len(ph.l.Browsers()) != n {
		t.Error("a probe started while a pooled browser was alive")
	}
}

func TestProbeHoldsAPlace(t *testing.T) {
	hh := newHealthHarness(t, func(c *Config) { c.MaxSessions = 1 })
	gate := make(chan struct{})
	hh.g.set(nil, gate)
	result := make(chan error, 1)
	go func() { result <- hh.m.CanStartBrowser(context.Background()) }()
	waitDone(t, hh.g.entered, "the probe's launch")

	var fe *FullError
	if err := hh.m.Admit(); !errors.As(err, &fe) || !strings.Contains(err.Error(), "probe start") {
		t.Errorf("Admit while the probe holds the only place = %v", err)
	}
	if _, err := hh.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp); !errors.As(err, &fe) {
		t.Errorf("Attach while the probe holds the only place = %v; want a refusal", err)
	}
	// One probe at a time: a second caller waits for the same one.
	second := make(chan error, 1)
	go func() { second <- hh.m.CanStartBrowser(context.Background()) }()
	close(gate)
	for _, ch := range []chan error{result, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("CanStartBrowser = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for the probe")
		}
	}
	if n := hh.g.tries(); n != 1 {
		t.Errorf("%d launches for two callers; want one probe", n)
	}
	if _, err := hh.m.Attach(context.Background(), Owner{User: "a", Role: "clinician"}, vp); err != nil {
		t.Errorf("Attach after the probe = %v", err)
	}
	// A full node has no room for a probe: it says so instead.
	hh.clock.add(time.Hour)
	if err := hh.m.CanStartBrowser(context.Background()); !errors.As(err, &fe) || !strings.Contains(err.Error(), "no room to check") || hh.g.tries() != 2 {
		t.Errorf("CanStartBrowser on a full node = %v after %d launches", err, hh.g.tries())
	}
}

func TestProbeEndsAtShutdown(t *testing.T) {
	hh := newHealthHarness(t, nil)
	hh.g.set(nil, make(chan struct{})) // never opens: only shutdown ends the launch
	result := make(chan error, 1)
	go func() { result <- hh.m.CanStartBrowser(context.Background()) }()
	waitDone(t, hh.g.entered, "the probe's launch")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hh.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a probe under way = %v", err)
	}
	select {
	case err := <-result:
		if !errors.Is(err, ErrNoBrowserStart) {
			t.Errorf("CanStartBrowser cut short by shutdown = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CanStartBrowser did not return after shutdown")
	}
	if st := hh.m.StartHealth(); st.Failed != 0 {
		t.Errorf("a launch cut short by shutdown was counted as failed: %+v", st)
	}
	if !hh.eg.allClosed() {
		t.Error("probe's egress left open after shutdown")
	}
	hh.clock.add(time.Hour)
	if err := hh.m.CanStartBrowser(context.Background()); !errors.Is(err, ErrShuttingDown) || hh.g.tries() != 1 {
		t.Errorf("CanStartBrowser after shutdown = %v after %d launches", err, hh.g.tries())
	}
}

func TestCanStartBrowserCallerGivesUp(t *testing.T) {
	hh := newHealthHarness(t, nil)
	gate := make(chan struct{})
	hh.g.set(nil, gate)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- hh.m.CanStartBrowser(ctx) }()
	waitDone(t, hh.g.entered, "the probe's launch")
	cancel()
	if err := <-result; !errors.Is(err, ErrNoBrowserStart) || !strings.Contains(err.Error(), "under way") {
		t.Errorf("CanStartBrowser whose caller gave up = %v", err)
	}
	// The probe goes on; its result is there for the next caller.
	close(gate)
	waitFor(t, "the probe to finish", func() bool { return hh.m.StartHealth().Started == 1 })
	if err := hh.m.CanStartBrowser(context.Background()); err != nil || hh.g.tries() != 1 {
		t.Errorf("CanStartBrowser after the probe = %v after %d launches", err, hh.g.tries())
	}
}

func TestCanStartBrowserWaitsForPoolStart(t *testing.T) {
	gate := make(chan struct{})
	hh := newHealthHarness(t, func(c *Config) {
		c.PoolSize = 1
		c.Launcher.(*gatedLauncher).set(nil, gate) // before the pool's first launch
	})
	waitDone(t, hh.g.entered, "the pool's first launch")
	err := hh.m.CanStartBrowser(context.Background())
	if !errors.Is(err, ErrNoBrowserStart) || !strings.Contains(err.Error(), "warm pool is starting") || hh.g.tries() != 1 {
		t.Errorf("CanStartBrowser while the pool starts a browser = %v after %d launches; want a wait for it, no probe", err, hh.g.tries())
	}
	close(gate)
	hh.waitReady(t, 1)
	if err := hh.m.CanStartBrowser(context.Background()); err != nil || hh.g.tries() != 1 {
		t.Errorf("CanStartBrowser with a pooled browser = %v after %d launches", err, hh.g.tries())
	}
}

// TestCanStartBrowserQuarantineFails: a session whose quarantine cannot be
// made gets no browser, and /readyz must not go on vouching for new
// sessions on the strength of an earlier success.
func TestCanStartBrowserQuarantineFails(t *testing.T) {
	hh := newHealthHarness(t, nil)
	ctx := context.Background()
	if _, err := hh.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "full")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hh.tr.root = notDir // every quarantine directory now fails
	if _, err := hh.m.Attach(ctx, Owner{User: "b", Role: "clinician"}, vp); err == nil {
		t.Fatal("Attach without a quarantine directory succeeded")
	}
	err := hh.m.CanStartBrowser(ctx)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "quarantine") || hh.g.tries() != 1 {
		t.Fatalf("CanStartBrowser after a quarantine failure = %v after %d launches; want that failure, no probe", err, hh.g.tries())
	}
}

// TestCanStartBrowserEgressFails: a browser cannot start without its egress
// listener, for a session or a pooled browser; that failure is a failed
// start for /readyz, not a success it keeps vouching for.
func TestCanStartBrowserEgressFails(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("pooled=%v", pooled), func(t *testing.T) {
			hh := newHealthHarness(t, nil)
			ctx := context.Background()
			if _, err := hh.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
				t.Fatal(err)
			}
			hh.eg.mu.Lock()
			hh.eg.fail = errors.New("no port left")
			hh.eg.mu.Unlock()
			if pooled {
				if _, err := hh.m.launchPooled(ctx); err == nil {
					t.Fatal("launchPooled without an egress succeeded")
				}
			} else if _, err := hh.m.Attach(ctx, Owner{User: "b", Role: "clinician"}, vp); err == nil {
				t.Fatal("Attach without an egress succeeded")
			}
			err := hh.m.CanStartBrowser(ctx)
			var se *StartError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "no port left") || hh.g.tries() != 1 {
				t.Fatalf("CanStartBrowser after an egress failure = %v after %d launches; want that failure, no probe", err, hh.g.tries())
			}
		})
	}
}

func TestStartFreshForNotBelowProbeInterval(t *testing.T) {
	c := Config{Launcher: &isolationtest.Launcher{}, Egress: &fakeEgress{}, StartFreshFor: 30 * time.Second, ProbeInterval: time.Minute}
	err := c.CheckAndSetDefaults()
	if err == nil || !strings.Contains(err.Error(), "StartFreshFor") {
		t.Fatalf("CheckAndSetDefaults with StartFreshFor < ProbeInterval = %v, want an error naming StartFreshFor", err)
	}
}
