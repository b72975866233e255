package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// failingLauncher is a Chromium that does not start, until Repair.
type failingLauncher struct {
	isolationtest.Launcher
	mu     sync.Mutex
	broken error
}

func (l *failingLauncher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	l.mu.Lock()
	broken := l.broken
	l.mu.Unlock()
	if broken != nil {
		return nil, broken
	}
	return l.Launcher.Launch(ctx, opts)
}

// get asks h for path and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:40000" // a local client, as a probe or a scraper on the node is
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// readyServer is a broker with no warm pool whose browsers come from l.
func readyServer(t *testing.T, l isolation.Launcher, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.PoolSize = 0
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: io.Discard, Launcher: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func TestReadyzBrowserCannotStart(t *testing.T) {
	l := &failingLauncher{broken: errors.New("chromium: exec: no such file")}
	srv := readyServer(t, l, nil)
	h := srv.Handler()
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "the last browser start failed at ") || !strings.Contains(body, "chromium: exec: no such file") {
		t.Errorf("/readyz with a Chromium that cannot start: %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz?scope=existing"); code != http.StatusOK {
		t.Errorf("/readyz?scope=existing with a Chromium that cannot start: %d %q; the sessions it has are served", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with a Chromium that cannot start: %d", code)
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{"shoji_browser_start_failures_total 1", "shoji_browser_start_probes_total 1", "shoji_browser_last_start_timestamp_seconds 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReadyzProbesWithoutPool(t *testing.T) {
	l := &isolationtest.Launcher{}
	srv := readyServer(t, l, nil)
	h := srv.Handler()
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with a working browser and no pool: %d %q", code, body)
	}
	if n := len(l.Browsers()); n != 1 || !l.Last().Closed() {
		t.Errorf("%d probe browsers, want one, closed", n)
	}
	// The success is remembered: no second probe.
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK || len(l.Browsers()) != 1 {
		t.Errorf("second /readyz: %d after %d launches", code, len(l.Browsers()))
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{"shoji_browser_starts_total 1", "shoji_browser_start_probes_total 1", "shoji_browser_start_failures_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReadyzScopes(t *testing.T) {
	srv := readyServer(t, &isolationtest.Launcher{}, func(c *Config) { c.MaxSessions = 1 })
	h := srv.Handler()
	if _, err := srv.Sessions().Attach(context.Background(), session.Owner{User: "u1", Role: "clinician"}, testViewport); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
		says string
	}{
		{"/readyz", http.StatusServiceUnavailable, "maximum of 1 sessions"},
		{"/readyz?scope=new", http.StatusServiceUnavailable, "maximum of 1 sessions"},
		{"/readyz?scope=existing", http.StatusOK, "ready"},
		{"/healthz", http.StatusOK, "ok"},
		{"/readyz?scope=everything", http.StatusBadRequest, `unknown scope "everything"`},
		{"/readyz?scope=existing&scope=new", http.StatusBadRequest, "scope is given 2 times"},
	} {
		if code, body := get(t, h, tc.path); code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s on a full node: %d %q; want %d saying %q", tc.path, code, body, tc.code, tc.says)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/readyz", "/readyz?scope=existing"} {
		if code, body := get(t, h, path); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
			t.Errorf("%s after shutdown: %d %q", path, code, body)
		}
	}
}

// TestReadyzRealLauncher runs the real Chromium launcher: with a binary
// that exits at once /readyz is 503 naming the failure while the node
// serves its sessions; with Chromium it is 200 without a warm pool.
func TestReadyzRealLauncher(t *testing.T) {
	t.Run("a binary that exits", func(t *testing.T) {
		srv := readyServer(t, nil, func(c *Config) { c.Chromium = "/bin/false" })
		h := srv.Handler()
		code, body := get(t, h, "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "the last browser start failed at ") {
			t.Errorf("/readyz with /bin/false as Chromium: %d %q", code, body)
		}
		if code, body := get(t, h, "/readyz?scope=existing"); code != http.StatusOK {
			t.Errorf("/readyz?scope=existing with /bin/false as Chromium: %d %q", code, body)
		}
		if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz with /bin/false as Chromium: %d", code)
		}
	})
	t.Run("chromium", func(t *testing.T) {
		if _, err := os.Stat(chrome.DefaultExecPath); err != nil {
			if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
				t.Fatalf("chromium is required: %v", err)
			}
			t.Skipf("chromium not installed: %v", err)
		}
		srv := readyServer(t, nil, func(c *Config) { c.Chromium = chrome.DefaultExecPath })
		if code, body := get(t, srv.Handler(), "/readyz"); code != http.StatusOK {
			t.Errorf("/readyz with Chromium and no pool: %d %q", code, body)
		}
		if st := srv.Sessions().StartHealth(); st.Started != 1 || st.Probes != 1 {
			t.Errorf("StartHealth = %+v; want one probe that started", st)
		}
	})
}
