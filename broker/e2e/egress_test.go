package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker"
)

// TestRemotePageCannotReachTheHospital points the remote browser at the
// broker's own port, loopback, private and metadata addresses, under every
// spelling, and at allowed names that resolve to private addresses. Each
// must end at shoji's block response, never at the target.
func TestRemotePageCannotReachTheHospital(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) {
		// Allowed names that point inside: the address check must still refuse them.
		c.Egress.Allow = []string{"intranet.test", "rebind.test"}
		c.Egress.Hosts = map[string]string{"intranet.test": "10.20.30.40", "rebind.test": "127.0.0.1"}
	})
	v := newViewer(t, 1024, 700)
	v.login(b)
	_, brokerPort, _ := net.SplitHostPort(b.srv.Addr().String())
	demo := demoPort(t, b)

	s, _ := b.srv.Sessions().Get(b.user)
	br, err := s.Browser()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"http://127.0.0.1:" + brokerPort + "/healthz",
		"http://localhost:" + brokerPort + "/healthz",
		"http://[::1]:" + brokerPort + "/healthz",
		"http://2130706433:" + brokerPort + "/healthz",
		"http://0x7f.1:" + brokerPort + "/healthz",
		"http://demo.shoji.test:" + brokerPort + "/healthz",
		"http://rebind.test/",
		"http://127.0.0.1:" + demo + "/",
		"http://intranet.test/",
		"http://10.0.0.1/",
		"http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data/",
		"https://127.0.0.1:" + brokerPort + "/healthz",
	} {
		t.Run(target, func(t *testing.T) {
			remote[bool](t, b, `window.shojiTestMarker = true`) // gone once the next document loads
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := br.Navigate(ctx, target); err != nil {
				if strings.Contains(err.Error(), "net::ERR_TUNNEL_CONNECTION_FAILED") {
					return // refused at the proxy: the tunnel was never opened
				}
				t.Fatal(err)
			}
			// Either the proxy's block page (HTTP) or Chromium's error page
			// for a refused tunnel (HTTPS); never the target's answer.
			waitRemote(t, b, "the navigation to end", `!window.shojiTestMarker && document.readyState === 'complete'`)
			body := remote[string](t, b, `document.body ? document.body.innerText : ''`)
			if strings.TrimSpace(body) == "ok" || strings.Contains(body, "shoji demo") {
				t.Fatalf("the remote page reached %s: %q", target, body)
			}
		})
	}

	// A WebSocket to the broker's own stream endpoint is refused by the proxy.
	navigate(t, v, b, "/")
	ws := remote[string](t, b, fmt.Sprintf(`new Promise(resolve => {
		const ws = new WebSocket('ws://127.0.0.1:%s/api/stream');
		ws.onopen = () => resolve('open');
		ws.onerror = () => resolve('error');
	})`, brokerPort))
	if ws != "error" {
		t.Errorf("WebSocket to the broker: %s", ws)
	}
	// A fetch to the allowed demo site still works (the test would pass
	// trivially if the proxy refused everything).
	ok := remote[string](t, b, `fetch('/form').then(r => String(r.status), e => 'error: ' + e)`)
	if ok != "200" {
		t.Errorf("fetch of the allowed site: %s", ok)
	}
	// Each refusal is recorded: by the proxy, or by the browser's
	// navigation check, which refuses a page before the proxy sees it.
	logs := strings.Split(b.log.String(), "\n")
	for _, want := range []string{"127.0.0.1:" + brokerPort, "intranet.test", "rebind.test", "169.254.169.254"} {
		if !refusalLogged(logs, want) {
			t.Errorf("no refusal logged for %s", want)
		}
	}
}

// refusalLogged reports whether a log line records a refused request to
// target (host or host:port).
func refusalLogged(lines []string, target string) bool {
	host, port, _ := net.SplitHostPort(target)
	if host == "" {
		host = target
	}
	for _, l := range lines {
		switch {
		case strings.Contains(l, "egress denied") && strings.Contains(l, "host="+host) &&
			(port == "" || strings.Contains(l, "port="+port)):
			return true
		case strings.Contains(l, "navigation blocked") && strings.Contains(l, "host="+host) &&
			(port == "" || strings.Contains(l, ":"+port+"/")):
			return true
		}
	}
	return false
}
