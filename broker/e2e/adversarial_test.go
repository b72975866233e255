package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/isolation"
)

// allowedMarker is in every page of the allowed test site, evilMarker in
// every answer of the site the policy denies.
const (
	allowedMarker = "ALLOWED-SITE-CONTENT"
	evilMarker    = "EVIL-SITE-CONTENT"
)

// testSite is an httptest server that counts the requests it served.
type testSite struct {
	*httptest.Server
	port string
	hits atomic.Int64
}

// allowedSite serves the site the policy allows: a page, a redirect to the
// denied site, a service worker that proxies to the denied site, and a
// WebSocket echo.
func allowedSite(t *testing.T, evilPort string) *testSite {
	t.Helper()
	s := &testSite{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Allowed</title><h1 id="allowed">%s</h1>`, allowedMarker)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://evil.test:"+evilPort+"/x", http.StatusFound)
	})
	mux.HandleFunc("/sw.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, `self.addEventListener('install', e => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => {
	if (new URL(e.request.url).pathname === '/via-worker') {
		e.respondWith(fetch('https://evil.test/', {mode: 'no-cors'}).catch(() => fetch('http://evil.test:%s/sw', {mode: 'no-cors'})));
	}
});`, evilPort)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

// evilSite is the site the policy denies. The proxy may dial its address
// (it is in AllowAddrs, and the name evil.test maps to it), so only the
// host policy stands between the remote page and it: any hit is a failure.
func evilSite(t *testing.T) *testSite {
	t.Helper()
	s := &testSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		// Readable from any page, so a page that reached it would know.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, evilMarker)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

// rebindDNS is a DNS server on loopback that answers A queries for
// rebind.test with first the first time and later every time after. Every
// other name is NXDOMAIN, every other type for rebind.test empty.
type rebindDNS struct {
	addr     string
	aQueries atomic.Int64
}

func startRebindDNS(t *testing.T, first, later [4]byte) *rebindDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &rebindDNS{addr: pc.LocalAddr().String()}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the test: ends when Cleanup closes pc
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if msg, ok := d.answer(buf[:n], first, later); ok {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return d
}

func (d *rebindDNS) answer(query []byte, first, later [4]byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	ours := strings.EqualFold(q.Name.String(), "rebind.test.")
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !ours {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if ours && q.Type == dnsmessage.TypeA {
		ip := later
		if d.aQueries.Add(1) == 1 {
			ip = first
		}
		if err := b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: ip}); err != nil {
			return nil, false
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

// trap accepts TCP connections on addr and counts them; nothing may ever
// connect to it.
type trap struct {
	accepted atomic.Int64
}

func startTrap(t *testing.T, addr string) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("trap listener on %s: %v", addr, err)
	}
	tr := &trap{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by the test: ends when Cleanup closes ln
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return tr
}

// navigateRemote opens url in the remote browser and returns the text of
// the page it ended at, or "" when Chromium refused to open it (an error
// page for a refused tunnel).
func navigateRemote(t *testing.T, b *brokerUnderTest, br isolation.Browser, url string) string {
	t.Helper()
	remote[bool](t, b, `window.shojiTestMarker = true`) // gone once the next document loads
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := br.Navigate(ctx, url); err != nil {
		if strings.Contains(err.Error(), "net::ERR_") {
			return "" // refused before any document
		}
		t.Fatalf("navigate to %s: %v", url, err)
	}
	waitRemote(t, b, "the navigation to "+url+" to end", `!window.shojiTestMarker && document.readyState === 'complete'`)
	return remote[string](t, b, `document.body ? document.body.innerText : ''`)
}

// refusedSince reports whether the broker logged a refusal (by the proxy
// or by the navigation check) of host after the log had n bytes. The host
// matters: the remote browser's own background requests are refused (and
// logged) at any time. host may list spellings separated by "|": the
// browser and the proxy write an IPv4-mapped address differently.
func refusedSince(b *brokerUnderTest, n int, host string) bool {
	s := b.log.String()
	if n > len(s) {
		return false
	}
	for _, l := range strings.Split(s[n:], "\n") {
		if !strings.Contains(l, "egress denied") && !strings.Contains(l, "navigation blocked") {
			continue
		}
		for _, h := range strings.Split(host, "|") {
			if strings.Contains(l, " host="+h+" ") || strings.HasSuffix(l, " host="+h) {
				return true
			}
		}
	}
	return false
}

// waitRefusedSince waits until the broker logged a refusal of host after
// the log had n bytes: a denied subresource is logged when the proxy
// answers, which may come after the page saw the failure.
func waitRefusedSince(t *testing.T, b *brokerUnderTest, n int, host string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !refusedSince(b, n, host) {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal of host %s logged; log since:\n%s", host, tail(b.log.String()[n:], 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// remoteProxyAddr returns the egress listener address the remote browser
// was started with (its --proxy-server flag).
func remoteProxyAddr(t *testing.T, data string) string {
	t.Helper()
	profiles := filepath.Join(data, "profiles")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), profiles) {
			continue
		}
		for _, arg := range strings.Split(string(cmd), "\x00") {
			if a, ok := strings.CutPrefix(arg, "--proxy-server=http://"); ok {
				return a
			}
		}
	}
	t.Fatalf("no remote browser under %s has a --proxy-server flag", profiles)
	return ""
}

// TestAdversarialPages points the remote browser, and pages loaded from an
// allowed site, at everything the egress boundary must refuse, and checks
// the allowed controls still work. One broker and one viewer serve all the
// cases.
func TestAdversarialPages(t *testing.T) {
	evil := evilSite(t)
	site := allowedSite(t, evil.port)
	// DNS rebinding. rebind.test is allowed by the host policy on the
	// allowed site's port. Its first A answer is 127.0.0.1 — with that port,
	// exactly the allowed site's address in AllowAddrs, so the proxy may
	// dial it — and every later answer is 127.0.0.2, where a trap listens on
	// the same port; 127.0.0.2:PORT is not in AllowAddrs, so the address
	// check must refuse it. No packet leaves the machine. If the proxy
	// looked the name up again to dial (check one answer, dial another), the
	// first navigation would reach the trap; if it kept an earlier verdict
	// instead of checking each resolution, a later one would. So the trap
	// must never see a connection, and the first navigation must show the
	// allowed site (else the test proves nothing).
	dns := startRebindDNS(t, [4]byte{127, 0, 0, 1}, [4]byte{127, 0, 0, 2})
	rebindTrap := startTrap(t, "127.0.0.2:"+site.port)

	// The allowed test site is plain HTTP (the browser accepts no test CA);
	// treating its origin as secure makes service workers available there,
	// so a page can try to install one.
	secure := "--unsafely-treat-insecure-origin-as-secure=http://allowed.test:" + site.port
	b := startBrokerWith(t, func(c *broker.Config) {
		c.Egress.Allow = []string{"allowed.test:" + site.port, "rebind.test:" + site.port}
		c.Egress.AllowAddrs = []string{site.Listener.Addr().String(), evil.Listener.Addr().String()}
		c.Egress.Hosts = map[string]string{"allowed.test": "127.0.0.1", "evil.test": "127.0.0.1"}
		c.Egress.DNS = dns.addr
	}, []string{secure})
	v := newViewer(t, 1024, 700)
	v.login(b)
	_, brokerPort, _ := net.SplitHostPort(b.srv.Addr().String())
	s, _ := b.srv.Sessions().Get(b.user)
	br, err := s.Browser()
	if err != nil {
		t.Fatal(err)
	}
	allowedURL := "http://allowed.test:" + site.port + "/"
	openAllowed := func(t *testing.T) {
		t.Helper()
		if body := navigateRemote(t, b, br, allowedURL); !strings.Contains(body, allowedMarker) {
			t.Fatalf("the allowed site did not load: %q", body)
		}
	}

	t.Run("allowed site loads", openAllowed)
	t.Run("allowed host normalised", func(t *testing.T) {
		body := navigateRemote(t, b, br, "http://ALLOWED.TEST.:"+site.port+"/")
		if !strings.Contains(body, allowedMarker) {
			t.Fatalf("ALLOWED.TEST. did not load the allowed site: %q", body)
		}
	})

	for _, tc := range []struct{ url, host string }{
		{"http://0.0.0.0:" + brokerPort + "/healthz", "0.0.0.0"},
		{"http://017700000001:" + brokerPort + "/healthz", "127.0.0.1"},
		{"http://[::ffff:127.0.0.1]:" + brokerPort + "/healthz", "::ffff:127.0.0.1|127.0.0.1|::ffff:7f00:1"},
		{"http://172.16.0.1/", "172.16.0.1"},
		{"http://[fc00::1]/", "fc00::1"},
		{"http://allowed.test.evil.test/", "allowed.test.evil.test"},
		{"http://allowed.test:1/", "allowed.test"},
		{"http://evil.test:" + evil.port + "/", "evil.test"},
	} {
		t.Run("refused "+tc.url, func(t *testing.T) {
			n := len(b.log.String())
			body := navigateRemote(t, b, br, tc.url)
			if strings.TrimSpace(body) == "ok" || strings.Contains(body, "shoji demo") ||
				strings.Contains(body, allowedMarker) || strings.Contains(body, evilMarker) {
				t.Fatalf("the remote page reached %s: %q", tc.url, body)
			}
			waitRefusedSince(t, b, n, tc.host)
		})
	}

	// A URL with user info that looks like the allowed host: the broker's
	// address bar refuses user info outright, so the page itself navigates.
	t.Run("refused allowed.test@evil.test from the page", func(t *testing.T) {
		openAllowed(t)
		n := len(b.log.String())
		remote[bool](t, b, `window.shojiTestMarker = true`)
		remote[bool](t, b, `(location.href = 'http://allowed.test:`+site.port+`@evil.test:`+evil.port+`/', true)`)
		waitRemote(t, b, "the navigation to end", `!window.shojiTestMarker && document.readyState === 'complete'`)
		body := remote[string](t, b, `document.body ? document.body.innerText : ''`)
		if strings.Contains(body, evilMarker) || strings.Contains(body, allowedMarker) {
			t.Fatalf("the page reached a site: %q", body)
		}
		waitRefusedSince(t, b, n, "evil.test")
	})

	t.Run("redirect to a denied host", func(t *testing.T) {
		n := len(b.log.String())
		body := navigateRemote(t, b, br, "http://allowed.test:"+site.port+"/redirect")
		if strings.Contains(body, evilMarker) {
			t.Fatalf("the redirect reached evil.test: %q", body)
		}
		if !strings.Contains(body, "evil.test") {
			t.Errorf("the block page does not name evil.test: %q", body)
		}
		waitRefusedSince(t, b, n, "evil.test")
	})

	t.Run("fetch and WebSocket to a denied host", func(t *testing.T) {
		openAllowed(t)
		for _, tc := range []struct{ name, expr string }{
			// The proxy's 403 for a denied plain-HTTP request has no CORS
			// header, so the page sees a network error; the evil site's
			// answer would be readable.
			{"fetch https", `fetch('https://evil.test/').then(r => r.text()).then(t => t.includes('` + evilMarker + `') ? 'reached' : 'refused', () => 'refused')`},
			{"fetch http", `fetch('http://evil.test:` + evil.port + `/fetch').then(r => r.text()).then(t => t.includes('` + evilMarker + `') ? 'reached' : 'refused', () => 'refused')`},
			{"websocket wss", `new Promise(r => { const w = new WebSocket('wss://evil.test/'); w.onopen = () => r('reached'); w.onerror = () => r('refused'); })`},
			{"websocket ws", `new Promise(r => { const w = new WebSocket('ws://evil.test:` + evil.port + `/ws'); w.onopen = () => r('reached'); w.onerror = () => r('refused'); })`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n := len(b.log.String())
				if got := remote[string](t, b, tc.expr); got != "refused" {
					t.Fatalf("%s: %s", tc.expr, got)
				}
				waitRefusedSince(t, b, n, "evil.test")
			})
		}
		// The same address spellings as subresources, which the browser's
		// navigation check does not see: only the proxy stands between the
		// page and the allowed site's own loopback address and port (in
		// allow_addrs, but never under an IP literal).
		for _, tc := range []struct{ url, host string }{
			{"http://0.0.0.0:" + site.port + "/", "0.0.0.0"},
			{"http://017700000001:" + site.port + "/", "127.0.0.1"},
			{"http://2130706433:" + site.port + "/", "127.0.0.1"},
			{"http://[::ffff:127.0.0.1]:" + site.port + "/", "::ffff:127.0.0.1|127.0.0.1|::ffff:7f00:1"},
			{"http://[::1]:" + site.port + "/", "::1"},
		} {
			t.Run("fetch "+tc.url, func(t *testing.T) {
				n, before := len(b.log.String()), site.hits.Load()
				got := remote[string](t, b, `fetch('`+tc.url+`', {mode: 'no-cors'}).then(() => 'answered', () => 'failed')`)
				waitRefusedSince(t, b, n, tc.host)
				if site.hits.Load() != before {
					t.Fatalf("fetch(%s) reached the allowed site's address (%s)", tc.url, got)
				}
			})
		}
		// The controls: the same page reaches its own site.
		if got := remote[string](t, b, `fetch('/').then(r => r.text()).then(t => t.includes('`+allowedMarker+`') ? 'ok' : t, e => 'error: ' + e)`); got != "ok" {
			t.Errorf("fetch of the allowed site: %s", got)
		}
		if got := remote[string](t, b, `new Promise(r => { const w = new WebSocket('ws://' + location.host + '/ws'); w.onopen = () => w.send('ping'); w.onmessage = e => { r(e.data); w.close(); }; w.onerror = () => r('error'); })`); got != "ping" {
			t.Errorf("WebSocket to the allowed site: %s", got)
		}
	})

	t.Run("service worker fetching a denied host", func(t *testing.T) {
		openAllowed(t)
		// Service workers exist only in secure contexts: the broker started
		// the browser treating the allowed test origin as one.
		state := remote[string](t, b, `window.isSecureContext && navigator.serviceWorker ? 'available' : 'absent'`)
		if state == "absent" {
			t.Fatalf("service workers are unavailable on %s: the test would prove nothing", allowedURL)
		}
		n := len(b.log.String())
		got := remote[string](t, b, `navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready)
			.then(() => new Promise(r => navigator.serviceWorker.controller ? r() : navigator.serviceWorker.addEventListener('controllerchange', r)))
			.then(() => fetch('/via-worker')).then(r => r.type === 'error' ? 'refused' : 'reached', () => 'refused')`)
		if got != "refused" {
			t.Fatalf("fetch through the service worker: %s", got)
		}
		waitRefusedSince(t, b, n, "evil.test")
	})

	t.Run("WebRTC to a STUN server on loopback", func(t *testing.T) {
		openAllowed(t)
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // owned by the subtest: ends when pc is closed below
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
		defer func() {
			pc.Close()
			wg.Wait()
		}()
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		cands := remote[string](t, b, `new Promise(resolve => {
			if (typeof RTCPeerConnection === 'undefined') { resolve('no RTCPeerConnection'); return; }
			const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:127.0.0.1:`+port+`'}]});
			const seen = [];
			const done = why => { pc.close(); resolve(why + ': [' + seen.join(' | ') + ']'); };
			pc.createDataChannel('x');
			pc.onicecandidate = e => { if (e.candidate && e.candidate.candidate) seen.push(e.candidate.candidate); };
			pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') done('complete'); };
			pc.createOffer().then(o => pc.setLocalDescription(o)).catch(e => done('error ' + e));
			setTimeout(() => done('timeout'), 8000);
		})`)
		t.Logf("ICE gathering in the remote page: %s", cands)
		// Gathering has ended (or the page gave up): any STUN binding
		// request would have been sent by now.
		if n := got.Load(); n != 0 {
			t.Fatalf("the STUN server on loopback received %d datagrams; candidates %s", n, cands)
		}
		if strings.Contains(cands, "srflx") {
			t.Errorf("a server-reflexive candidate was gathered: %s", cands)
		}
	})

	t.Run("DNS rebinding", func(t *testing.T) {
		url := "http://rebind.test:" + site.port + "/"
		first := navigateRemote(t, b, br, url)
		if !strings.Contains(first, allowedMarker) {
			t.Fatalf("the first resolution (127.0.0.1, allowed) did not load the site: %q", first)
		}
		n := len(b.log.String())
		second := navigateRemote(t, b, br, url+"again")
		refused := refusedSince(b, n, "rebind.test")
		t.Logf("second navigation: refused=%v, A queries=%d, body %q", refused, dns.aQueries.Load(), tail(second, 200))
		if !refused && !strings.Contains(second, allowedMarker) {
			t.Errorf("the second navigation neither loaded the checked address nor was refused: %q", second)
		}
		if n := rebindTrap.accepted.Load(); n != 0 {
			t.Fatalf("the proxy connected %d times to 127.0.0.2:%s, the rebound address", n, site.port)
		}
		if dns.aQueries.Load() > 1 && !refused {
			t.Errorf("rebind.test was resolved again (%d A queries) but the rebound answer was not refused", dns.aQueries.Load())
		}
	})

	t.Run("raw client on the session's proxy", func(t *testing.T) {
		addr := remoteProxyAddr(t, b.data)
		before := site.hits.Load()
		n := len(b.log.String())
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial the egress listener %s: %v", addr, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: allowed.test:%s\r\n\r\n", allowedURL, site.port)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the proxy neither answered nor closed the connection: %v", err)
			}
			t.Logf("connection closed by the proxy: %v", err)
		default:
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("the proxy served a raw client: %s", resp.Status)
			}
		}
		if site.hits.Load() != before {
			t.Fatal("the raw client's request reached the allowed site")
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(b.log.String()[n:], "rule=not-owner") {
			if time.Now().After(deadline) {
				t.Fatalf("no not-owner refusal logged; log since:\n%s", tail(b.log.String()[n:], 4000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("destination into the data directory", func(t *testing.T) { refuseDestinations(t, b) })
	t.Run("pledge skipped by a raw client", func(t *testing.T) { skipPledge(t, b) })

	// Last, as it blocks the allowed site for the rest of the broker's life.
	t.Run("kill switch cuts an open WebSocket", func(t *testing.T) {
		openAllowed(t)
		if got := remote[string](t, b, `new Promise(r => {
			const w = new WebSocket('ws://' + location.host + '/ws');
			window.killWS = 'connecting';
			w.onopen = () => { window.killWS = 'open'; w.send('ping'); };
			w.onmessage = e => { r(e.data); };
			w.onerror = () => { r('error'); };
			w.onclose = () => { window.killWS = 'closed'; };
		})`); got != "ping" {
			t.Fatalf("WebSocket to the allowed site: %s", got)
		}
		n := len(b.log.String())
		blockEverywhere(t, b, "allowed.test")
		waitRemote(t, b, "the open WebSocket to close", `window.killWS === 'closed'`)
		if !strings.Contains(b.log.String()[n:], "connections_cut=") || strings.Contains(b.log.String()[n:], "connections_cut=0") {
			t.Errorf("the kill switch did not log the connections it cut; log since:\n%s", tail(b.log.String()[n:], 4000))
		}
		// And new connections are refused.
		if got := remote[string](t, b, `new Promise(r => { const w = new WebSocket('ws://' + location.host + '/ws'); w.onopen = () => r('open'); w.onerror = () => r('refused'); })`); got != "refused" {
			t.Errorf("a new WebSocket to the blocked host: %s", got)
		}
	})

	if h := evil.hits.Load(); h != 0 {
		t.Errorf("the denied site evil.test was reached %d times", h)
	}
}

// blockEverywhere blocks host for every profile through the admin API (the
// kill switch), as a new admin.
func blockEverywhere(t *testing.T, b *brokerUnderTest, host string) {
	t.Helper()
	const admin = "killswitch-admin"
	if err := b.srv.Auth().AddUser(admin, auth.Admin, staffPassword); err != nil {
		t.Fatal(err)
	}
	c := staffClient(t, b, admin)
	req, _ := http.NewRequest("POST", b.url+"/api/admin/blocked", strings.NewReader(`{"host":"`+host+`","reason":"adversarial test: incident"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("block %s: %s %s", host, resp.Status, body)
	}
}
