package broker

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// shojiMetricTypes are the metrics the hand-written exposition of earlier
// releases wrote, with their types. Dashboards and alerts (docs/health.md)
// use these names: none may go away or change its type.
var shojiMetricTypes = map[string]string{
	"shoji_sessions_active":                              "gauge",
	"shoji_viewers_connected":                            "gauge",
	"shoji_frames_sent_total":                            "counter",
	"shoji_frames_dropped_total":                         "counter",
	"shoji_frame_bytes_sent_total":                       "counter",
	"shoji_frames_partial_total":                         "counter",
	"shoji_frames_copied_total":                          "counter",
	"shoji_frame_bytes_saved_total":                      "counter",
	"shoji_egress_requests_denied_total":                 "counter",
	"shoji_egress_requests_allowed_total":                "counter",
	"shoji_egress_background_dropped_total":              "counter",
	"shoji_browser_crashes_total":                        "counter",
	"shoji_pool_ready":                                   "gauge",
	"shoji_pool_claimed_total":                           "counter",
	"shoji_pool_recycled_total":                          "counter",
	"shoji_pool_crashed_total":                           "counter",
	"shoji_browser_starts_total":                         "counter",
	"shoji_browser_start_failures_total":                 "counter",
	"shoji_browser_start_probes_total":                   "counter",
	"shoji_browser_last_start_timestamp_seconds":         "gauge",
	"shoji_browser_last_start_failure_timestamp_seconds": "gauge",
	"shoji_sessions_started_total":                       "counter",
	"shoji_sessions_ended_total":                         "counter",
	"shoji_logins_total":                                 "counter",
}

// metricTypes returns the "# TYPE" lines of a scrape, name to type.
func metricTypes(scrape string) map[string]string {
	types := map[string]string{}
	for _, line := range strings.Split(scrape, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	return types
}

func TestMetricsScrape(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("alice", auth.Clinician)
	f.login("alice")
	if _, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician"}, testViewport); err != nil {
		t.Fatal(err)
	}
	if !f.srv.Sessions().End("alice", session.ReasonLogout) {
		t.Fatal("alice's session did not end")
	}
	scrape := f.metrics() // over TCP from 127.0.0.1, which the default metrics.allow serves
	types := metricTypes(scrape)
	for name, typ := range shojiMetricTypes {
		if types[name] != typ {
			t.Errorf("%s: type %q, want %q", name, types[name], typ)
		}
	}
	want := []string{
		"go_goroutines ", "go_memstats_heap_alloc_bytes ",
		`shoji_logins_total{outcome="success"} 1`, `shoji_logins_total{outcome="locked"} 0`,
		`shoji_sessions_ended_total{reason="logout"} 1`, "shoji_sessions_started_total 1",
	}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ")
	}
	for _, w := range want {
		if !strings.Contains(scrape, w) {
			t.Errorf("scrape lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", scrape)
	}
}

// writeToken writes a token file with mode perm.
func writeToken(t *testing.T, token string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

const testMetricsToken = "0123456789abcdef0123456789abcdef"

func TestMetricsAccess(t *testing.T) {
	withToken := readyServer(t, &isolationtest.Launcher{}, func(c *Config) {
		c.Metrics.Allow = []string{"10.0.0.0/8", "2001:db8::/32"}
		c.Metrics.BearerTokenFile = writeToken(t, testMetricsToken+"\n", 0o640)
	})
	addressOnly := readyServer(t, &isolationtest.Launcher{}, func(c *Config) {
		c.Metrics.Allow = []string{"192.0.2.7"}
	})
	defaults := readyServer(t, &isolationtest.Launcher{}, nil)
	for _, tc := range []struct {
		name   string
		srv    *Server
		client string
		header map[string]string
		want   int
	}{
		{"default: IPv4 loopback", defaults, "127.0.0.1:5000", nil, http.StatusOK},
		{"default: IPv6 loopback", defaults, "[::1]:5000", nil, http.StatusOK},
		{"default: another address", defaults, "10.1.2.3:5000", nil, http.StatusForbidden},
		{"default: X-Forwarded-For is not believed", defaults, "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1"}, http.StatusForbidden},
		{"single address allowed", addressOnly, "192.0.2.7:5000", nil, http.StatusOK},
		{"single address: its neighbour", addressOnly, "192.0.2.8:5000", nil, http.StatusForbidden},
		{"single address: loopback no longer", addressOnly, "127.0.0.1:5000", nil, http.StatusForbidden},
		{"single address: a token is no use", addressOnly, "192.0.2.8:5000", map[string]string{"Authorization": "Bearer " + testMetricsToken}, http.StatusForbidden},
		{"range allowed", withToken, "10.200.0.1:5000", nil, http.StatusOK},
		{"range allowed, IPv4-mapped", withToken, "[::ffff:10.200.0.1]:5000", nil, http.StatusOK},
		{"IPv6 range allowed", withToken, "[2001:db8::5]:5000", nil, http.StatusOK},
		{"outside, no token", withToken, "192.0.2.1:5000", nil, http.StatusUnauthorized},
		{"outside, wrong token", withToken, "192.0.2.1:5000", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 32)}, http.StatusUnauthorized},
		{"outside, token prefix", withToken, "192.0.2.1:5000", map[string]string{"Authorization": "Bearer " + testMetricsToken[:16]}, http.StatusUnauthorized},
		{"outside, basic auth", withToken, "192.0.2.1:5000", map[string]string{"Authorization": "Basic " + testMetricsToken}, http.StatusUnauthorized},
		{"outside, right token", withToken, "192.0.2.1:5000", map[string]string{"Authorization": "Bearer " + testMetricsToken}, http.StatusOK},
		{"outside, right token, lower-case scheme", withToken, "192.0.2.1:5000", map[string]string{"Authorization": "bearer " + testMetricsToken}, http.StatusOK},
		{"loopback not in a list that leaves it out", withToken, "127.0.0.1:5000", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.RemoteAddr = tc.client
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			tc.srv.Handler().ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.want {
				t.Fatalf("GET /metrics from %s: %d %q, want %d", tc.client, rec.Code, body, tc.want)
			}
			switch rec.Code {
			case http.StatusOK:
				if !strings.Contains(body, "shoji_sessions_active 0") || !strings.Contains(body, "go_goroutines") {
					t.Errorf("scrape lacks the metrics:\n%s", body)
				}
			case http.StatusForbidden, http.StatusUnauthorized:
				if !strings.Contains(body, "metrics.allow") && !strings.Contains(body, "bearer token is wrong") {
					t.Errorf("refusal %q does not say why", body)
				}
				// The refusal names the key, never what it holds.
				for _, secret := range []string{"10.0.0.0", "192.0.2.7", "127.0.0", testMetricsToken[:8], "shoji_"} {
					if strings.Contains(body, secret) {
						t.Errorf("refusal %q shows %q", body, secret)
					}
				}
			}
			if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestMetricsConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"world-readable token file", func(c *Config) { c.Metrics.BearerTokenFile = writeToken(t, testMetricsToken, 0o644) }, []string{"metrics.bearer_token_file", "mode 0644", "chmod o-rwx"}},
		{"token file others may write", func(c *Config) { c.Metrics.BearerTokenFile = writeToken(t, testMetricsToken, 0o602) }, []string{"metrics.bearer_token_file", "mode 0602"}},
		{"missing token file", func(c *Config) { c.Metrics.BearerTokenFile = filepath.Join(t.TempDir(), "none") }, []string{"metrics.bearer_token_file", "no such file"}},
		{"token file is a directory", func(c *Config) { c.Metrics.BearerTokenFile = t.TempDir() }, []string{"metrics.bearer_token_file", "not a regular file"}},
		{"short token", func(c *Config) { c.Metrics.BearerTokenFile = writeToken(t, "secret\n", 0o600) }, []string{"metrics.bearer_token_file", "at least 16"}},
		{"empty token file", func(c *Config) { c.Metrics.BearerTokenFile = writeToken(t, "\n", 0o600) }, []string{"metrics.bearer_token_file", "at least 16"}},
		{"token of two lines", func(c *Config) {
			c.Metrics.BearerTokenFile = writeToken(t, testMetricsToken+"\n"+testMetricsToken, 0o600)
		}, []string{"metrics.bearer_token_file", "one line"}},
		{"malformed CIDR", func(c *Config) { c.Metrics.Allow = []string{"127.0.0.1/32", "10.0.0.0/33"} }, []string{"metrics.allow[1]", `"10.0.0.0/33"`, "CIDR"}},
		{"not an address", func(c *Config) { c.Metrics.Allow = []string{"monitoring.local"} }, []string{"metrics.allow[0]", "CIDR"}},
		{"host bits set", func(c *Config) { c.Metrics.Allow = []string{"10.1.2.3/8"} }, []string{"metrics.allow[0]", "did you mean 10.0.0.0/8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Data = t.TempDir()
			cfg.Listen = "127.0.0.1:0"
			cfg.PoolSize = 0
			tc.mod(&cfg)
			srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: &strings.Builder{}, Launcher: &isolationtest.Launcher{}})
			if err == nil {
				_ = srv.Close()
				t.Fatal("New accepted the config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMetricsConfigFile(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // Metrics.Allow after loading
		err        string
	}{
		{"default", "listen: 127.0.0.1:1\n", []string{"127.0.0.0/8", "::1/128"}, ""},
		{"ranges", "metrics:\n  allow: [\"10.30.0.0/16\", \"192.0.2.7\"]\n", []string{"10.30.0.0/16", "192.0.2.7"}, ""},
		{"no address", "metrics:\n  allow: []\n  bearer_token_file: /etc/shoji/metrics.token\n", []string{}, ""},
		{"unknown key", "metrics:\n  allowed: [\"10.0.0.0/8\"]\n", nil, "metrics.allowed"},
		{"bad CIDR", "metrics:\n  allow: [\"10.0.0.0/40\"]\n", nil, "metrics.allow[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Data = t.TempDir()
			err := cfg.LoadConfigFile(writeFile(t, tc.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.Metrics.Allow, ",") != strings.Join(tc.want, ",") || len(cfg.Metrics.Allow) != len(tc.want) {
				t.Errorf("metrics.allow = %q, want %q", cfg.Metrics.Allow, tc.want)
			}
		})
	}
}
