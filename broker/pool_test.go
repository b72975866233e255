package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// poolServer starts a broker with the fake launcher and a warm pool of
// one, whose browsers may reach the site behind backend as site.test.
func poolServer(t *testing.T, backend *httptest.Server, stats session.NodeStats) (*Server, *isolationtest.Launcher, string, func()) {
	t.Helper()
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.PoolSize = 1
	cfg.Egress.Allow = []string{"site.test:" + port}
	cfg.Egress.Hosts = map[string]string{"site.test": "127.0.0.1"}
	cfg.Egress.AllowAddrs = []string{"127.0.0.1:" + port}
	l := &isolationtest.Launcher{}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: io.Discard, Launcher: l, NodeStats: stats})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeSrv := func() {
		once.Do(func() {
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(closeSrv)
	return srv, l, "http://site.test:" + port + "/", closeSrv
}

// getThrough fetches target through the egress listener at proxyAddr.
func getThrough(t *testing.T, proxyAddr, target string) (int, string) {
	t.Helper()
	c := &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr})},
		Timeout:   30 * time.Second,
	}
	resp, err := c.Get(target)
	if err != nil {
		t.Fatalf("GET %s through %s: %v", target, proxyAddr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitPoolReady(t *testing.T, m *session.Manager) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.PoolStats().Ready < 1 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the warm pool")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPooledBrowserReachesNothingUntilClaimed(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "site")
	}))
	defer backend.Close()
	srv, l, site, closeSrv := poolServer(t, backend, nil)
	waitPoolReady(t, srv.Sessions())
	pooled := l.Last()

	code, body := getThrough(t, pooled.Opts.ProxyAddr, site)
	if code != http.StatusForbidden || body == "site" {
		t.Fatalf("unclaimed pooled browser's egress answered %d %q; want 403", code, body)
	}
	if d := pooled.Opts.CheckURL(site); d.Allow || d.Rule != ruleUnclaimed {
		t.Errorf("unclaimed pooled browser's navigation check = %+v; want a deny by %s", d, ruleUnclaimed)
	}
	if pooled.Opts.MaxDownloadBytes != 0 {
		t.Errorf("pooled browser's download cap %d; its owner's profile decides it later", pooled.Opts.MaxDownloadBytes)
	}
	quarantine := pooled.Opts.DownloadDir
	if _, err := os.Stat(quarantine); err != nil {
		t.Fatalf("pooled browser's quarantine: %v", err)
	}

	s, err := srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician"}, testViewport)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Browser(); b != pooled {
		t.Fatal("login did not claim the pooled browser")
	}
	if code, body := getThrough(t, pooled.Opts.ProxyAddr, site); code != http.StatusOK || body != "site" {
		t.Errorf("claimed browser's egress answered %d %q; want the site under alice's policy", code, body)
	}
	if d := pooled.Opts.CheckURL(site); !d.Allow {
		t.Errorf("claimed browser's navigation check = %+v; want an allow", d)
	}

	// The next pooled browser reaches nothing either.
	waitPoolReady(t, srv.Sessions())
	next := l.Last()
	if next == pooled {
		t.Fatal("pool not topped up")
	}
	if code, _ := getThrough(t, next.Opts.ProxyAddr, site); code != http.StatusForbidden {
		t.Errorf("new pooled browser's egress answered %d; want 403", code)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:40000" // metrics.allow's default is loopback
	srv.Handler().ServeHTTP(rec, req)
	for _, want := range []string{"shoji_pool_ready 1", "shoji_pool_claimed_total 1"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, rec.Body.String())
		}
	}

	closeSrv()
	if !next.Closed() || !pooled.Closed() {
		t.Error("browsers left running after Close")
	}
	if _, err := os.Stat(next.Opts.DownloadDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unclaimed pooled browser's quarantine left after Close: %v", err)
	}
}

// lowMemory is a node with 100 MiB available.
type lowMemory struct{}

func (lowMemory) Memory() (session.Memory, error) {
	return session.Memory{Available: 100 << 20, Source: "cgroup memory limit 8 GiB, 7.9 GiB used"}, nil
}
func (lowMemory) Load() (session.Load, error) { return session.Load{PerCPU: 0.1, CPUs: 2}, nil }

func TestReadyzNamesTheLimit(t *testing.T) {
	backend := httptest.NewServer(http.NotFoundHandler())
	defer backend.Close()
	srv, l, _, _ := poolServer(t, backend, lowMemory{})
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "memory headroom is gone: 100 MiB available (cgroup memory limit 8 GiB, 7.9 GiB used), the minimum is 512 MiB") {
		t.Errorf("readyz with 100 MiB free: %d %q", rec.Code, rec.Body.String())
	}
	_, err := srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician"}, testViewport)
	var fe *session.FullError
	if !errors.As(err, &fe) || fe.Limit != session.LimitMemory {
		t.Errorf("Attach with 100 MiB free: %v; want a memory refusal", err)
	}
	if n := len(l.Browsers()); n != 0 {
		t.Errorf("%d browsers started on a node without memory headroom", n)
	}
}
