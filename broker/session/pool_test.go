package session

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// fakeStats is a NodeStats a test sets.
type fakeStats struct {
	mu    sync.Mutex
	mem   int64
	load  float64
	err   error
	reads int
}

func (f *fakeStats) set(mem int64, load float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mem, f.load = mem, load
}

func (f *fakeStats) Memory() (Memory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return Memory{Available: f.mem, Source: "fake"}, f.err
}

func (f *fakeStats) Load() (Load, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return Load{PerCPU: f.load, CPUs: 1, Source: "fake"}, f.err
}

// fakeTransfers hands out quarantine directories and records releases.
type fakeTransfers struct {
	root string

	mu       sync.Mutex
	released []string
}

func (f *fakeTransfers) Quarantine(info Info) (string, int64, error) {
	dir := filepath.Join(f.root, info.ID)
	return dir, 1 << 20, os.MkdirAll(dir, 0o700)
}

func (f *fakeTransfers) Release(info Info) {
	f.mu.Lock()
	f.released = append(f.released, info.ID)
	f.mu.Unlock()
	_ = os.RemoveAll(filepath.Join(f.root, info.ID))
}

func (f *fakeTransfers) Download(*Session, isolation.Download)       {}
func (f *fakeTransfers) FileChooser(*Session, isolation.FileChooser) {}

func (f *fakeTransfers) wasReleased(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.released {
		if r == id {
			return true
		}
	}
	return false
}

// syncBuffer is a log sink tests read while the manager writes.
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// owners returns the users the egress listeners of session id were bound
// to, in order; "" for one still unowned.
func (e *fakeEgress) owners(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, l := range e.opened {
		if strings.HasPrefix(l, id+"#") {
			out = append(out, e.owner[l])
		}
	}
	return out
}

func (e *fakeEgress) isClosed(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.opened {
		if strings.HasPrefix(l, id+"#") && !e.closed[l] {
			return false
		}
	}
	return true
}

type poolHarness struct {
	*harness
	tr    *fakeTransfers
	stats *fakeStats
	logs  *syncBuffer
}

func newPoolHarness(t *testing.T, mod func(*Config)) *poolHarness {
	t.Helper()
	ph := &poolHarness{
		tr:    &fakeTransfers{root: t.TempDir()},
		stats: &fakeStats{mem: 8 << 30, load: 0.5},
		logs:  &syncBuffer{},
	}
	ph.harness = newHarness(t, func(c *Config) {
		c.PoolSize = 1
		c.Transfers = ph.tr
		c.Stats = ph.stats
		c.MinFreeMemory = 512 << 20
		c.MaxLoadPerCPU = 4
		c.StartURL = "https://start.example/"
		c.Logger = slog.New(slog.NewTextHandler(ph.logs, nil))
		if mod != nil {
			mod(c)
		}
	})
	return ph
}

func (ph *poolHarness) waitReady(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "the pool to hold its browsers", func() bool { return ph.m.PoolStats().Ready == n })
}

// pooledBrowsers returns the fake browsers launched for the pool (with no
// start URL), in launch order.
func (ph *poolHarness) pooledBrowsers() []*isolationtest.Browser {
	var out []*isolationtest.Browser
	for _, b := range ph.l.Browsers() {
		if b.Opts.StartURL == "" {
			out = append(out, b)
		}
	}
	return out
}

func calls(b *isolationtest.Browser, method string) []any {
	var out []any
	for _, c := range b.Calls() {
		if c.Method == method {
			out = append(out, c.Arg)
		}
	}
	return out
}

func TestPoolClaimUsesPooledBrowser(t *testing.T) {
	ph := newPoolHarness(t, nil)
	ph.waitReady(t, 1)
	pooled := ph.l.Last()
	if got, want := pooled.Opts.Viewport, ph.m.Config().PoolViewport; got != want {
		t.Errorf("pooled browser viewport %+v, want the pool's %+v", got, want)
	}
	if pooled.Opts.StartURL != "" {
		t.Errorf("pooled browser opened %q, want about:blank", pooled.Opts.StartURL)
	}
	if pooled.Opts.DownloadDir == "" || pooled.Opts.ProxyAddr == "" {
		t.Errorf("pooled browser launched without its quarantine or egress: %+v", pooled.Opts)
	}
	id := pooled.Opts.SessionID
	if got := ph.eg.owners(id); len(got) != 1 || got[0] != "" {
		t.Fatalf("pooled browser's egress owners = %q, want one with no owner", got)
	}
	// A report of the unclaimed browser goes nowhere.
	pooled.EmitFrame(isolation.Frame{JPEG: []byte("blank")})

	s, err := ph.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Browser()
	if err != nil {
		t.Fatal(err)
	}
	if b != isolation.Browser(pooled) {
		t.Fatal("login launched a new browser instead of claiming the pooled one")
	}
	if s.ID != id {
		t.Errorf("session ID %s, want the pooled browser's %s (its listener and quarantine are named by it)", s.ID, id)
	}
	if got := ph.eg.owners(id); len(got) != 1 || got[0] != "alice" {
		t.Errorf("claimed browser's egress owners = %q, want [alice]", got)
	}
	if got := calls(pooled, "SetViewport"); len(got) == 0 || got[0] != vp {
		t.Errorf("claimed browser resized to %v, want the viewer's %+v", got, vp)
	}
	if got := calls(pooled, "Navigate"); len(got) != 1 || got[0] != "https://start.example/" {
		t.Errorf("claimed browser navigated to %v, want the start URL", got)
	}
	v, err := s.AddViewer()
	if err != nil {
		t.Fatal(err)
	}
	pooled.EmitFrame(isolation.Frame{JPEG: []byte("page")})
	if _, f, _ := v.Take(); f == nil || string(f.JPEG) != "page" {
		t.Errorf("frame of the claimed browser did not reach the viewer: %v", f)
	}

	// Top-up in the background: a second blank browser, not alice's.
	ph.waitReady(t, 1)
	if n := len(ph.pooledBrowsers()); n != 2 {
		t.Errorf("%d pooled browsers launched after one claim, want 2", n)
	}
	if st := ph.m.PoolStats(); st.Claimed != 1 {
		t.Errorf("PoolStats = %+v, want 1 claimed", st)
	}
}

func TestPoolNeverShared(t *testing.T) {
	ph := newPoolHarness(t, nil)
	ctx := context.Background()
	ph.waitReady(t, 1)
	alice, err := ph.m.Attach(ctx, Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	ph.waitReady(t, 1)
	bob, err := ph.m.Attach(ctx, Owner{User: "bob", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := alice.Browser()
	bb, _ := bob.Browser()
	if ba == bb || alice.ID == bob.ID {
		t.Fatal("two users got the same pooled browser")
	}
	for _, s := range []*Session{alice, bob} {
		if got := ph.eg.owners(s.ID); len(got) != 1 || got[0] != s.User {
			t.Errorf("egress of %s's session bound to %q", s.User, got)
		}
	}

	// A claimed browser never returns to the pool: alice logs out, the
	// pool's browser is a fresh one.
	ph.waitReady(t, 1)
	alice.End(ReasonLogout)
	if !ba.(*isolationtest.Browser).Closed() || !ph.eg.isClosed(alice.ID) {
		t.Error("alice's browser or egress left open after logout")
	}
	carol, err := ph.m.Attach(ctx, Owner{User: "carol", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	if bc, _ := carol.Browser(); bc == ba || bc == bb {
		t.Fatal("carol got a browser another user had")
	}
}

func TestPoolRecyclesOldBrowsers(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ph := newPoolHarness(t, func(c *Config) { c.Now = clock; c.PoolMaxAge = time.Hour })
	ph.waitReady(t, 1)
	first := ph.l.Last()

	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	ph.m.kickPool()
	waitFor(t, "the old pooled browser to be recycled", func() bool { return ph.m.PoolStats().Recycled == 1 })
	ph.waitReady(t, 1)
	if !first.Closed() || !ph.eg.isClosed(first.Opts.SessionID) {
		t.Error("recycled browser or its egress left open")
	}
	if !ph.tr.wasReleased(first.Opts.SessionID) {
		t.Error("recycled browser's quarantine not released")
	}
	if _, err := os.Stat(first.Opts.DownloadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("recycled browser's quarantine dir still there: %v", err)
	}
	if ph.l.Last() == first || len(ph.pooledBrowsers()) != 2 {
		t.Error("recycled browser not replaced")
	}
}

func TestPoolReplacesCrashedBrowser(t *testing.T) {
	ph := newPoolHarness(t, nil)
	ph.waitReady(t, 1)
	first := ph.l.Last()
	first.Crash()
	waitFor(t, "the crashed pooled browser to be replaced", func() bool {
		st := ph.m.PoolStats()
		return st.Crashed == 1 && st.Ready == 1
	})
	if !ph.eg.isClosed(first.Opts.SessionID) || !ph.tr.wasReleased(first.Opts.SessionID) {
		t.Error("crashed pooled browser's egress or quarantine left behind")
	}
	s, err := ph.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Browser(); b == isolation.Browser(first) {
		t.Fatal("a user got the crashed pooled browser")
	}
}

func TestPoolClaimOfDeadBrowserStartsNewOne(t *testing.T) {
	ph := newPoolHarness(t, func(c *Config) { c.PoolSize = 1 })
	ph.waitReady(t, 1)
	first := ph.l.Last()
	// Take the browser out from under the watcher: it dies while claimed.
	ph.m.mu.Lock()
	p := ph.m.pool.take()
	ph.m.mu.Unlock()
	first.Crash()
	s := newSession(ph.m, p.info.ID, Owner{User: "alice", Role: "clinician"}, vp)
	ph.m.mu.Lock()
	ph.m.sessions["alice"] = s
	ph.m.mu.Unlock()
	warm, err := ph.m.startSession(context.Background(), s, p)
	if err != nil || warm {
		t.Fatalf("startSession = %v, %v; want a cold start", warm, err)
	}
	b, err := s.Browser()
	if err != nil || b == isolation.Browser(first) {
		t.Fatalf("session browser %v, %v; want a new live one", b, err)
	}
	if got := ph.eg.owners(s.ID); len(got) != 2 || got[1] != "alice" {
		t.Errorf("egress owners of the session %q, want a new listener for alice", got)
	}
	s.End(ReasonLogout)
}

func TestAdmissionRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		mem   int64
		load  float64
		limit Limit
		says  string
	}{
		{"sessions", func(c *Config) { c.MaxSessions = 1 }, 8 << 30, 0.5, LimitSessions, "maximum of 1 sessions"},
		{"memory", nil, 100 << 20, 0.5, LimitMemory, "memory headroom is gone: 100 MiB available (fake), the minimum is 512 MiB"},
		{"cpu", nil, 8 << 30, 4.5, LimitCPU, "CPU headroom is gone: the load over the last minute is 4.50 per CPU (1 CPUs: fake), the maximum is 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ph := newPoolHarness(t, func(c *Config) {
				c.PoolSize = 0
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			ctx := context.Background()
			if _, err := ph.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
				t.Fatal(err)
			}
			ph.stats.set(tc.mem, tc.load)
			err := ph.m.Admit()
			var fe *FullError
			if !errors.As(err, &fe) || fe.Limit != tc.limit || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Admit() = %v, want a %s refusal saying %q", err, tc.limit, tc.says)
			}
			if ph.m.Ready() {
				t.Error("Ready() on a full node")
			}
			_, err = ph.m.Attach(ctx, Owner{User: "b", Role: "clinician"}, vp)
			if !errors.Is(err, ErrFull) || !errors.As(err, &fe) || fe.Limit != tc.limit {
				t.Fatalf("new session on a full node: err = %v, want a %s refusal", err, tc.limit)
			}
			if _, err := ph.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
				t.Errorf("a reconnect was refused on a full node: %v", err)
			}
			if n := len(ph.l.Browsers()); n != 1 {
				t.Errorf("%d browsers launched, want 1", n)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		ph := newPoolHarness(t, func(c *Config) { c.PoolSize = 0; c.MinFreeMemory = 0; c.MaxLoadPerCPU = 0 })
		ph.stats.set(0, 100)
		if err := ph.m.Admit(); err != nil {
			t.Errorf("Admit() with the checks off = %v", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		ph := newPoolHarness(t, func(c *Config) { c.PoolSize = 0 })
		ph.stats.mu.Lock()
		ph.stats.err = errors.New("no /proc")
		ph.stats.mu.Unlock()
		if err := ph.m.Admit(); err != nil {
			t.Errorf("Admit() with unreadable stats = %v; want the session limit alone", err)
		}
		if !strings.Contains(ph.logs.String(), "no /proc") {
			t.Error("unreadable stats not logged")
		}
	})
}

func TestPoolRespectsAdmission(t *testing.T) {
	short := &fakeStats{mem: 100 << 20, load: 0.5}
	ph := newPoolHarness(t, func(c *Config) { c.MaxSessions = 2; c.Stats = short })
	waitFor(t, "the pool to say memory is short", func() bool {
		return strings.Contains(ph.logs.String(), "memory headroom is gone")
	})
	if n := len(ph.l.Browsers()); n != 0 {
		t.Fatalf("%d browsers started with no memory headroom", n)
	}
	short.set(8<<30, 0.5)
	ph.m.kickPool()
	ph.waitReady(t, 1)

	// Sessions and pooled browsers together stay within MaxSessions.
	ctx := context.Background()
	if _, err := ph.m.Attach(ctx, Owner{User: "a", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	ph.waitReady(t, 1)
	if _, err := ph.m.Attach(ctx, Owner{User: "b", Role: "clinician"}, vp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pool to say the node is full", func() bool {
		return strings.Contains(ph.logs.String(), "maximum of 2 sessions")
	})
	if n := len(ph.l.Browsers()); n != 2 {
		t.Errorf("%d browsers with MaxSessions 2", n)
	}
	// A session that starts cold while a pooled browser exists takes its
	// room: the surplus pooled browser is recycled.
	ph.m.End("b", ReasonLogout)
	ph.waitReady(t, 1)
	ph.m.mu.Lock()
	extra := newSession(ph.m, newID(), Owner{User: "c", Role: "clinician"}, vp)
	ph.m.sessions["c"] = extra
	ph.m.mu.Unlock()
	ph.m.kickPool()
	waitFor(t, "the surplus pooled browser to be recycled", func() bool { return ph.m.PoolStats().Ready == 0 })
	ph.m.remove(extra)
}

func TestPoolShutdownLeavesNothing(t *testing.T) {
	ph := newPoolHarness(t, func(c *Config) { c.PoolSize = 2 })
	ph.waitReady(t, 2)
	s, err := ph.m.Attach(context.Background(), Owner{User: "alice", Role: "clinician"}, vp)
	if err != nil {
		t.Fatal(err)
	}
	ph.waitReady(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ph.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s.Done(), "session end")
	for _, b := range ph.l.Browsers() {
		if !b.Closed() {
			t.Errorf("browser of %s left running", b.Opts.SessionID)
		}
	}
	if !ph.eg.allClosed() {
		t.Error("egress listener left open")
	}
	for _, b := range ph.pooledBrowsers() {
		if b.Opts.SessionID != s.ID && !ph.tr.wasReleased(b.Opts.SessionID) {
			t.Errorf("quarantine of pooled browser %s not released", b.Opts.SessionID)
		}
	}
	if st := ph.m.PoolStats(); st.Ready != 0 {
		t.Errorf("PoolStats after shutdown = %+v", st)
	}
	n := len(ph.l.Browsers())
	ph.m.kickPool()
	if _, err := ph.m.Attach(context.Background(), Owner{User: "bob", Role: "clinician"}, vp); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Attach after shutdown: %v", err)
	}
	if len(ph.l.Browsers()) != n {
		t.Error("a browser started after shutdown")
	}
}

func TestPoolLaunchFailureRetries(t *testing.T) {
	old := poolRetry
	poolRetry = 10 * time.Millisecond
	t.Cleanup(func() { poolRetry = old })
	l := &isolationtest.Launcher{Fail: errors.New("no chromium")}
	ph := newPoolHarness(t, func(c *Config) { c.Launcher = l })
	waitFor(t, "the failed launch to be logged", func() bool {
		return strings.Contains(ph.logs.String(), "no chromium")
	})
	ph.eg.mu.Lock()
	opened := len(ph.eg.opened)
	ph.eg.mu.Unlock()
	if opened == 0 || !ph.eg.allClosed() {
		t.Error("egress of a failed pooled launch left open")
	}
	ph.tr.mu.Lock()
	released := len(ph.tr.released)
	ph.tr.mu.Unlock()
	if released == 0 {
		t.Error("quarantine of a failed pooled launch not released")
	}
}

func TestPoolNeedsBindableEgress(t *testing.T) {
	ph := newPoolHarness(t, func(c *Config) { c.Egress = plainOpener{} })
	waitFor(t, "the unbindable egress to be refused", func() bool {
		return strings.Contains(ph.logs.String(), "cannot be bound to an owner")
	})
	if n := len(ph.l.Browsers()); n != 0 {
		t.Errorf("%d pooled browsers started behind an egress that cannot be bound", n)
	}
}

// plainOpener opens listeners that cannot be bound later.
type plainOpener struct{}

type plainEgress struct{}

func (plainOpener) Open(Info) (Egress, error) { return plainEgress{}, nil }
func (plainEgress) Addr() string              { return "127.0.0.1:1" }
func (plainEgress) Close() error              { return nil }

func TestProcStats(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("meminfo", "MemTotal:       24684096 kB\nMemFree:         1000000 kB\nMemAvailable:     524288 kB\n")
	write("loadavg", "6.00 5.62 5.03 7/565 20096\n")
	ps := ProcStats{Root: dir, CPUs: 2} // no self/cgroup: no cgroup limits
	if mem, err := ps.Memory(); err != nil || mem.Available != 512<<20 || !strings.Contains(mem.Source, "host MemAvailable") {
		t.Errorf("Memory = %+v, %v; want 512 MiB from the host", mem, err)
	}
	if load, err := ps.Load(); err != nil || load.PerCPU != 3 {
		t.Errorf("Load = %+v, %v; want 3 per CPU", load, err)
	}
	write("meminfo", "MemTotal:       24684096 kB\n")
	if _, err := ps.Memory(); err == nil || !strings.Contains(err.Error(), "no MemAvailable") {
		t.Errorf("Memory without the line: err = %v", err)
	}
	write("loadavg", "")
	if _, err := ps.Load(); err == nil {
		t.Error("Load of an empty file: no error")
	}
	if _, err := (ProcStats{}).Memory(); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Memory of this machine: %v", err)
	}
	if _, err := (ProcStats{}).Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of this machine: %v", err)
	}
}
