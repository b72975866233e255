package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/isolation"
)

// hangGuard bounds blocking I/O in tests so a bug fails instead of hanging.
// It is never an expectation about speed.
const hangGuard = 30 * time.Second

var testNow = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

var loopback = netip.MustParseAddr("127.0.0.1")

// recorder collects events from OnDecision.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) record(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// take returns the events recorded so far and forgets them.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// fakeResolver answers from a table and counts lookups per host.
type fakeResolver struct {
	mu    sync.Mutex
	addrs map[string][]netip.Addr
	calls map[string]int
}

func newFakeResolver(addrs map[string][]string) *fakeResolver {
	r := &fakeResolver{addrs: make(map[string][]netip.Addr), calls: make(map[string]int)}
	for h, as := range addrs {
		for _, a := range as {
			r.addrs[h] = append(r.addrs[h], netip.MustParseAddr(a))
		}
	}
	return r
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[host]++
	as, ok := r.addrs[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]netip.Addr(nil), as...), nil
}

func (r *fakeResolver) takeCalls() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = make(map[string]int)
	return c
}

// origin is an httptest server that counts the requests it serves.
type origin struct {
	*httptest.Server
	hits atomic.Int64
	last atomic.Pointer[http.Request]
}

func startOrigin(t *testing.T, tls bool) *origin {
	t.Helper()
	o := &origin{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.last.Store(r)
		if r.URL.Path == "/ws" {
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
		}
		w.Header().Set("Proxy-Authenticate", "Basic realm=origin")
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "hello %s %s %s", r.Method, r.URL.RequestURI(), body)
	})
	if tls {
		o.Server = httptest.NewTLSServer(h)
	} else {
		o.Server = httptest.NewServer(h)
	}
	t.Cleanup(o.Close)
	return o
}

// addrPort is the server's listening address.
func (o *origin) addrPort() netip.AddrPort {
	return netip.MustParseAddrPort(o.Listener.Addr().String())
}

func (o *origin) port() int { return int(o.addrPort().Port()) }

// startProxy starts a Proxy with cfg and opens a listener for "sess-1".
func startProxy(t *testing.T, cfg Config) (*Proxy, *Listener, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg.OnDecision = rec.record
	cfg.Now = func() time.Time { return testNow }
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		checkNoHandlers(t)
	})
	l, err := p.Open("sess-1")
	if err != nil {
		t.Fatal(err)
	}
	return p, l, rec
}

// checkNoHandlers fails if any goroutine still runs in a Listener, a
// tunnel or a dial after its proxy closed. It polls with a deadline.
func checkNoHandlers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked := ""
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "egress.(*Listener)") || strings.Contains(g, "egress.pipe") ||
				strings.Contains(g, "egress.splice") {
				leaked = g
			}
		}
		if leaked == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine left running after Close:\n%s", leaked)
		}
		runtime.Gosched()
	}
}

// proxyClient is an HTTP client that uses l as its proxy.
func proxyClient(t *testing.T, l *Listener, base *http.Transport) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if base != nil {
		tr = base.Clone()
	}
	tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: l.Addr()})
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: hangGuard}
}

// get fetches u through c and returns the status and body.
func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, string(b)
}

// rawConn dials the proxy directly.
func rawConn(t *testing.T, l *Listener) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangGuard))
	return c, bufio.NewReader(c)
}

// rawRequest sends raw request text to the proxy and reads one response.
func rawRequest(t *testing.T, l *Listener, method, text string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := rawConn(t, l)
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", text, err)
	}
	body := ""
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	return resp, body, c, br
}

// connect opens a CONNECT tunnel to target through l.
func connect(t *testing.T, l *Listener, target string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	return rawRequest(t, l, http.MethodConnect, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target))
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func diffEvents(t *testing.T, want, got []Event) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
}

func TestForwardHTTP(t *testing.T) {
	o := startOrigin(t, false)
	port := o.port()
	pol, err := NewStaticPolicy([]string{fmt.Sprintf("origin.shoji.test:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	_, l, rec := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Hosts:      map[string]netip.Addr{"Origin.Shoji.Test": loopback},
		Resolver:   newFakeResolver(nil),
	})
	c := proxyClient(t, l, nil)
	target := fmt.Sprintf("http://origin.shoji.test:%d", port)

	req, _ := http.NewRequest(http.MethodGet, target+"/hello?q=1", nil)
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Proxy-Foo", "x")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Keep", "yes")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello GET /hello?q=1 " {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if h := resp.Header.Get("Proxy-Authenticate"); h != "" {
		t.Errorf("response kept Proxy-Authenticate %q", h)
	}
	in := o.last.Load()
	if want := fmt.Sprintf("origin.shoji.test:%d", port); in.Host != want {
		t.Errorf("origin saw Host %q, want %q", in.Host, want)
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Foo", "X-Hop", "X-Forwarded-For", "Via"} {
		if v := in.Header.Get(h); v != "" {
			t.Errorf("origin saw %s: %q", h, v)
		}
	}
	if in.Header.Get("X-Keep") != "yes" {
		t.Error("origin lost an end-to-end header")
	}

	resp, err = c.Post(target+"/form", "text/plain", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello POST /form abc" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}

	rule := fmt.Sprintf("origin.shoji.test:%d", port)
	allow := func(method string) Event {
		return Event{Session: "sess-1", Method: method, Host: "origin.shoji.test", Port: port,
			Addr: loopback, Allow: true, Rule: rule, Time: testNow}
	}
	diffEvents(t, []Event{allow("GET"), allow("POST")}, rec.take())
}

func TestConnectTLS(t *testing.T) {
	o := startOrigin(t, true)
	port := o.port()
	pol, err := NewStaticPolicy([]string{fmt.Sprintf("origin.shoji.test:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	_, l, rec := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Hosts:      map[string]netip.Addr{"origin.shoji.test": loopback},
		Resolver:   newFakeResolver(nil),
	})
	base := o.Client().Transport.(*http.Transport).Clone()
	base.TLSClientConfig.ServerName = "example.com" // a name in httptest's certificate
	c := proxyClient(t, l, base)
	status, body := get(t, c, fmt.Sprintf("https://origin.shoji.test:%d/secure", port))
	if status != http.StatusOK || body != "hello GET /secure " {
		t.Fatalf("GET over CONNECT: %d %q", status, body)
	}
	if tls := o.last.Load().TLS; tls == nil {
		t.Error("origin request was not over TLS")
	}
	diffEvents(t, []Event{{Session: "sess-1", Method: "CONNECT", Host: "origin.shoji.test", Port: port,
		Addr: loopback, Allow: true, Rule: fmt.Sprintf("origin.shoji.test:%d", port), Time: testNow}}, rec.take())
}

func TestWebSocket(t *testing.T) {
	o := startOrigin(t, false)
	port := o.port()
	pol, err := NewStaticPolicy([]string{fmt.Sprintf("origin.shoji.test:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	_, l, rec := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Hosts:      map[string]netip.Addr{"origin.shoji.test": loopback, "other.shoji.test": loopback},
		Resolver:   newFakeResolver(nil),
	})
	d := websocket.Dialer{
		Proxy:            http.ProxyURL(&url.URL{Scheme: "http", Host: l.Addr()}),
		HandshakeTimeout: hangGuard,
	}

	t.Run("allowed via CONNECT", func(t *testing.T) {
		ws, _, err := d.Dial(fmt.Sprintf("ws://origin.shoji.test:%d/ws", port), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(hangGuard))
		if err := ws.WriteMessage(websocket.TextMessage, []byte("こんにちは")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "こんにちは" {
			t.Fatalf("echo: %q, %v", msg, err)
		}
		evs := rec.take()
		if len(evs) != 1 || !evs[0].Allow || evs[0].Method != "CONNECT" {
			t.Errorf("events: %+v", evs)
		}
	})
	t.Run("denied via CONNECT", func(t *testing.T) {
		ws, _, err := d.Dial(fmt.Sprintf("ws://other.shoji.test:%d/ws", port), nil)
		if err == nil {
			ws.Close()
			t.Fatal("denied WebSocket connected")
		}
		diffEvents(t, []Event{{Session: "sess-1", Method: "CONNECT", Host: "other.shoji.test", Port: port,
			Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist, Time: testNow}}, rec.take())
	})
	t.Run("allowed in absolute form", func(t *testing.T) {
		c, br := wsAbsoluteForm(t, l, fmt.Sprintf("origin.shoji.test:%d", port), http.StatusSwitchingProtocols)
		wsWriteText(t, c, "hi")
		if got := wsReadText(t, br); got != "hi" {
			t.Fatalf("echo %q", got)
		}
		evs := rec.take()
		if len(evs) != 1 || !evs[0].Allow || evs[0].Method != "GET" {
			t.Errorf("events: %+v", evs)
		}
	})
	t.Run("denied in absolute form", func(t *testing.T) {
		wsAbsoluteForm(t, l, fmt.Sprintf("other.shoji.test:%d", port), http.StatusForbidden)
		diffEvents(t, []Event{{Session: "sess-1", Method: "GET", Host: "other.shoji.test", Port: port,
			Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist, Time: testNow}}, rec.take())
	})
}

// wsAbsoluteForm sends a ws:// upgrade as an absolute-form request, as a
// proxy client that does not use CONNECT would, and checks the status.
func wsAbsoluteForm(t *testing.T, l *Listener, hostport string, wantStatus int) (net.Conn, *bufio.Reader) {
	t.Helper()
	resp, _, c, br := rawRequest(t, l, http.MethodGet, fmt.Sprintf("GET http://%s/ws HTTP/1.1\r\nHost: %s\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+
		"Sec-WebSocket-Version: 13\r\n\r\n", hostport, hostport))
	if resp.StatusCode != wantStatus {
		t.Fatalf("upgrade status %d, want %d", resp.StatusCode, wantStatus)
	}
	if wantStatus == http.StatusSwitchingProtocols {
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("Sec-WebSocket-Accept %q", got)
		}
	}
	return c, br
}

// wsWriteText writes one masked text frame (payload under 126 bytes).
func wsWriteText(t *testing.T, c net.Conn, s string) {
	t.Helper()
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(s)), mask[0], mask[1], mask[2], mask[3]}
	for i := 0; i < len(s); i++ {
		frame = append(frame, s[i]^mask[i%4])
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// wsReadText reads one unmasked text frame (payload under 126 bytes).
func wsReadText(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || hdr[1]&0x80 != 0 || hdr[1] >= 126 {
		t.Fatalf("unexpected frame header % x", hdr)
	}
	b := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeniedHost(t *testing.T) {
	pol, err := NewStaticPolicy([]string{"allowed.shoji.test"})
	if err != nil {
		t.Fatal(err)
	}
	res := newFakeResolver(map[string][]string{"denied.shoji.test": {"8.8.8.8"}})
	_, l, rec := startProxy(t, Config{Policy: pol, Resolver: res})
	c := proxyClient(t, l, nil)

	resp, err := c.Get("http://Denied.Shoji.Test./page")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	if want := "shoji blocked this request: denied.shoji.test — host not in allowlist\n"; string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}

	cresp, _, _, _ := connect(t, l, "denied.shoji.test:443")
	if cresp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT status %d, want 403", cresp.StatusCode)
	}
	deny := func(method string, port int) Event {
		return Event{Session: "sess-1", Method: method, Host: "denied.shoji.test", Port: port,
			Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist, Time: testNow}
	}
	diffEvents(t, []Event{deny("GET", 80), deny("CONNECT", 443)}, rec.take())
	if calls := res.takeCalls(); len(calls) != 0 {
		t.Errorf("denied hosts were looked up in DNS: %v", calls)
	}
}

func TestAddressChecks(t *testing.T) {
	o := startOrigin(t, false)
	port := o.port()
	otherPort := port + 1
	if otherPort > 65535 {
		otherPort = port - 1
	}
	res := newFakeResolver(map[string][]string{
		"private.shoji.test": {"10.0.0.1"},
		"loop.shoji.test":    {"127.0.0.1"},
		"meta.shoji.test":    {"169.254.169.254"},
		"mapped.shoji.test":  {"::ffff:127.0.0.1"},
		"ula.shoji.test":     {"fd00::1"},
		"cgnat.shoji.test":   {"100.64.1.1", "192.168.0.1"},
		"mixed.shoji.test":   {"10.0.0.1", "127.0.0.1"},
	})
	// The policy allows every host: the address checks alone must refuse.
	_, l, rec := startProxy(t, Config{
		Policy:     allowAll{},
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Resolver:   res,
	})
	c := proxyClient(t, l, nil)
	tests := []struct {
		host       string
		port       int
		wantStatus int
		wantRule   string
		wantReason string
	}{
		{"private.shoji.test", port, 403, RuleAddress, "address 10.0.0.1 is private"},
		{"loop.shoji.test", otherPort, 403, RuleAddress, "address 127.0.0.1 is loopback"},
		{"meta.shoji.test", 80, 403, RuleAddress, "address 169.254.169.254 is cloud metadata"},
		{"mapped.shoji.test", port, 403, RuleAddress, "address ::ffff:127.0.0.1 is IPv4-mapped loopback"},
		{"ula.shoji.test", 443, 403, RuleAddress, "address fd00::1 is unique local"},
		{"cgnat.shoji.test", 443, 403, RuleAddress, "address 100.64.1.1 is shared (CGNAT) (and 1 more, none public)"},
		{"nxdomain.shoji.test", 443, 502, RuleResolve, "cannot resolve host"},
		{"mixed.shoji.test", port, 200, "allow-all", ""},
		{"loop.shoji.test", port, 200, "allow-all", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s:%d", tt.host, tt.port), func(t *testing.T) {
			hits := o.hits.Load()
			status, body := get(t, c, fmt.Sprintf("http://%s:%d/", tt.host, tt.port))
			if status != tt.wantStatus {
				t.Errorf("GET status %d, want %d (%q)", status, tt.wantStatus, body)
			}
			cresp, _, _, _ := connect(t, l, fmt.Sprintf("%s:%d", tt.host, tt.port))
			if cresp.StatusCode != tt.wantStatus {
				t.Errorf("CONNECT status %d, want %d", cresp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				if !strings.Contains(body, tt.wantReason) {
					t.Errorf("body %q does not give reason %q", body, tt.wantReason)
				}
				if got := o.hits.Load(); got != hits {
					t.Errorf("origin was reached")
				}
			}
			want := Event{Session: "sess-1", Host: tt.host, Port: tt.port, Allow: tt.wantStatus == 200,
				Rule: tt.wantRule, Reason: tt.wantReason, Time: testNow}
			if want.Allow {
				want.Addr = loopback
			}
			wantGet, wantConnect := want, want
			wantGet.Method, wantConnect.Method = "GET", "CONNECT"
			diffEvents(t, []Event{wantGet, wantConnect}, rec.take())
			if calls := res.takeCalls(); calls[tt.host] != 2 || len(calls) != 1 {
				t.Errorf("lookups %v, want exactly one per request", calls)
			}
		})
	}
}

func TestIPLiteralsRefused(t *testing.T) {
	o := startOrigin(t, false)
	port := o.port()
	res := newFakeResolver(map[string][]string{"localhost": {"127.0.0.1"}})
	// No AllowAddrs and a policy that allows everything: nothing on
	// loopback may be reached, however it is spelled.
	_, l, rec := startProxy(t, Config{Policy: allowAll{}, Resolver: res})
	c := proxyClient(t, l, nil)
	for _, host := range []string{
		"127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "127.0.0.1.",
		"017700000001", "0", "0.0.0.0", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
		"[::]", "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "localhost", "169.254.43518",
	} {
		t.Run(host, func(t *testing.T) {
			target := fmt.Sprintf("%s:%d", host, port)
			status, body := get(t, c, "http://"+target+"/")
			if status != http.StatusForbidden {
				t.Errorf("GET %s: status %d (%q), want 403", target, status, body)
			}
			cresp, cbody, _, _ := connect(t, l, target)
			if cresp.StatusCode != http.StatusForbidden {
				t.Errorf("CONNECT %s: status %d, want 403", target, cresp.StatusCode)
			}
			for _, b := range []string{body, cbody} {
				if !strings.Contains(b, "shoji blocked this request:") || !strings.Contains(b, "address ") {
					t.Errorf("body %q does not name the address check", b)
				}
			}
			evs := rec.take()
			if len(evs) != 2 {
				t.Errorf("%d events, want 2: %+v", len(evs), evs)
			}
			for _, ev := range evs {
				if ev.Allow || ev.Rule != RuleAddress {
					t.Errorf("event %+v, want an address-check deny", ev)
				}
			}
		})
	}
	if n := o.hits.Load(); n != 0 {
		t.Errorf("origin on loopback was reached %d times", n)
	}
}

func TestNotAProxyRequest(t *testing.T) {
	o := startOrigin(t, false)
	hp := fmt.Sprintf("origin.shoji.test:%d", o.port())
	pol, err := NewStaticPolicy([]string{hp})
	if err != nil {
		t.Fatal(err)
	}
	_, l, rec := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Hosts:      map[string]netip.Addr{"origin.shoji.test": loopback},
		Resolver:   newFakeResolver(nil),
	})
	resp, err := http.Get("http://" + l.Addr() + "/foo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("direct GET: status %d, want 400", resp.StatusCode)
	}
	for _, tt := range []struct{ name, method, text string }{
		{"origin form with allowed Host", "GET", "GET /foo HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"https absolute form", "GET", "GET https://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"ws absolute form", "GET", "GET ws://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"ftp absolute form", "GET", "GET ftp://" + hp + "/ HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"OPTIONS star", "OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"CONNECT with a path", "CONNECT", "CONNECT /x HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"CONNECT with a user", "CONNECT", "CONNECT u@" + hp + " HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
		{"CONNECT without port", "CONNECT", "CONNECT origin.shoji.test HTTP/1.1\r\nHost: " + hp + "\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, _, _ := rawRequest(t, l, tt.method, tt.text)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	evs := rec.take()
	if len(evs) != 9 {
		t.Errorf("%d events, want one per request (9): %+v", len(evs), evs)
	}
	for _, ev := range evs {
		if ev.Allow || ev.Rule != RuleBadRequest {
			t.Errorf("event %+v, want a bad-request deny", ev)
		}
	}
	if n := o.hits.Load(); n != 0 {
		t.Errorf("origin was reached %d times", n)
	}
}

func TestOversizedHeaders(t *testing.T) {
	o := startOrigin(t, false)
	hp := fmt.Sprintf("origin.shoji.test:%d", o.port())
	pol, err := NewStaticPolicy([]string{hp})
	if err != nil {
		t.Fatal(err)
	}
	_, l, rec := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort()},
		Hosts:      map[string]netip.Addr{"origin.shoji.test": loopback},
	})
	big := strings.Repeat("a", 64<<10)
	resp, _, _, _ := rawRequest(t, l, "GET", "GET http://"+hp+"/ HTTP/1.1\r\nHost: "+hp+"\r\nX-Big: "+big+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
	if n := o.hits.Load(); n != 0 {
		t.Errorf("origin was reached %d times", n)
	}
	if evs := rec.take(); len(evs) != 0 {
		t.Errorf("events for a request never read: %+v", evs)
	}
}

// echoServer is a TCP server that echoes, or with replyAtEOF reads to EOF
// and then answers with the byte count.
type echoServer struct {
	ln     net.Listener
	closed chan struct{} // one per connection that ended; capacity 16, never blocks here
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startEcho(t *testing.T, replyAtEOF bool) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, closed: make(chan struct{}, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if replyAtEOF {
					n, _ := io.Copy(io.Discard, c)
					fmt.Fprintf(c, "got %d bytes", n)
				} else {
					io.Copy(c, c)
				}
				c.Close()
				s.closed <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addrPort() netip.AddrPort {
	return netip.MustParseAddrPort(s.ln.Addr().String())
}

// waitClosed waits for the echo server to see a connection end.
func (s *echoServer) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(hangGuard):
		t.Fatal("upstream connection was not closed")
	}
}

// expectCut reads from c until it fails and checks it failed by closure,
// not by the test's hang guard.
func expectCut(t *testing.T, r io.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection was not cut")
	}
}

func echoProxy(t *testing.T, s *echoServer, cfg Config) (*Proxy, *Listener, *recorder, string) {
	t.Helper()
	hp := fmt.Sprintf("echo.shoji.test:%d", s.addrPort().Port())
	pol, err := NewStaticPolicy([]string{hp})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Policy = pol
	cfg.AllowAddrs = []netip.AddrPort{s.addrPort()}
	cfg.Hosts = map[string]netip.Addr{"echo.shoji.test": loopback}
	p, l, rec := startProxy(t, cfg)
	return p, l, rec, hp
}

// roundTrip writes msg into a tunnel and reads it back.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(br, b); err != nil || string(b) != msg {
		t.Fatalf("tunnel echo %q, %v", b, err)
	}
}

func TestListenerCloseCutsConnections(t *testing.T) {
	s := startEcho(t, false)
	o := startOrigin(t, false)
	ohp := fmt.Sprintf("origin.shoji.test:%d", o.port())
	pol, err := NewStaticPolicy([]string{fmt.Sprintf("echo.shoji.test:%d", s.addrPort().Port()), ohp})
	if err != nil {
		t.Fatal(err)
	}
	p, l, _ := startProxy(t, Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{s.addrPort(), o.addrPort()},
		Hosts:      map[string]netip.Addr{"echo.shoji.test": loopback, "origin.shoji.test": loopback},
	})
	resp, _, tc, tbr := connect(t, l, fmt.Sprintf("echo.shoji.test:%d", s.addrPort().Port()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	roundTrip(t, tc, tbr, "ping")
	wc, wbr := wsAbsoluteForm(t, l, ohp, http.StatusSwitchingProtocols)
	wsWriteText(t, wc, "hi")
	if got := wsReadText(t, wbr); got != "hi" {
		t.Fatalf("echo %q", got)
	}
	idle, _ := rawConn(t, l) // an idle client connection

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectCut(t, tbr)
	expectCut(t, wbr)
	expectCut(t, idle)
	s.waitClosed(t)
	if _, err := net.Dial("tcp", l.Addr()); err == nil {
		t.Error("listener still accepts after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checkNoHandlers(t)

	// The proxy itself still serves other sessions.
	l2, err := p.Open("sess-2")
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _, _ = connect(t, l2, fmt.Sprintf("echo.shoji.test:%d", s.addrPort().Port()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT on a new listener: status %d", resp.StatusCode)
	}
}

func TestIdleTunnelCloses(t *testing.T) {
	s := startEcho(t, false)
	_, l, _, hp := echoProxy(t, s, Config{IdleTimeout: 50 * time.Millisecond})
	resp, _, c, br := connect(t, l, hp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	roundTrip(t, c, br, "ping")
	expectCut(t, br) // no traffic: the proxy ends the tunnel
	s.waitClosed(t)
}

func TestTunnelHalfClose(t *testing.T) {
	s := startEcho(t, true)
	_, l, _, hp := echoProxy(t, s, Config{})
	resp, _, c, br := connect(t, l, hp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(br)
	if err != nil || string(b) != "got 5 bytes" {
		t.Fatalf("reply after half-close: %q, %v", b, err)
	}
}

func TestConnectEarlyData(t *testing.T) {
	s := startEcho(t, false)
	_, l, _, hp := echoProxy(t, s, Config{})
	// The first tunnel bytes arrive with the CONNECT request itself.
	resp, _, _, br := rawRequest(t, l, http.MethodConnect, "CONNECT "+hp+" HTTP/1.1\r\nHost: "+hp+"\r\n\r\nearly")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "early" {
		t.Fatalf("early data echo %q, %v", b, err)
	}
}

func TestSetPolicy(t *testing.T) {
	s := startEcho(t, false)
	p, l, rec, hp := echoProxy(t, s, Config{})
	resp, _, c, br := connect(t, l, hp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	roundTrip(t, c, br, "ping")

	deny, err := NewStaticPolicy([]string{"elsewhere.shoji.test"})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPolicy(deny)
	if resp, _, _, _ := connect(t, l, hp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after SetPolicy: status %d, want 403", resp.StatusCode)
	}
	p.SetPolicy(nil)
	if resp, _, _, _ := connect(t, l, hp); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after SetPolicy(nil): status %d, want 403", resp.StatusCode)
	}
	evs := rec.take()
	if len(evs) != 3 || !evs[0].Allow || evs[1].Rule != RuleDefaultDeny || evs[2].Rule != RuleNoPolicy {
		t.Errorf("events: %+v", evs)
	}
}

func TestProxyClose(t *testing.T) {
	s := startEcho(t, false)
	p, l, _, hp := echoProxy(t, s, Config{})
	resp, _, _, br := connect(t, l, hp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectCut(t, br)
	if _, err := p.Open("sess-3"); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v, want ErrClosed", err)
	}
}

func TestOpenRejectsEmptySession(t *testing.T) {
	p, err := New(Config{Policy: allowAll{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Open(""); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("Open(\"\"): %v, want ErrInvalidSession", err)
	}
}

func TestConfigCheckAndSetDefaults(t *testing.T) {
	pol := allowAll{}
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no policy", Config{}, "Policy"},
		{"negative dial timeout", Config{Policy: pol, DialTimeout: -1}, "DialTimeout"},
		{"negative idle timeout", Config{Policy: pol, IdleTimeout: -1}, "IdleTimeout"},
		{"negative header timeout", Config{Policy: pol, HeaderTimeout: -1}, "HeaderTimeout"},
		{"negative header bytes", Config{Policy: pol, MaxHeaderBytes: -1}, "MaxHeaderBytes"},
		{"allow addr without port", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}, "AllowAddrs[0]"},
		{"allow unspecified", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:80")}}, "AllowAddrs[0]"},
		{"allow mapped unspecified", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("[::ffff:0.0.0.0]:80")}}, "AllowAddrs[0]"},
		{"allow multicast", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("224.0.0.1:80")}}, "AllowAddrs[0]"},
		{"allow broadcast", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("255.255.255.255:80")}}, "AllowAddrs[0]"},
		{"allow zone", Config{Policy: pol, AllowAddrs: []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%eth0]:80")}}, "AllowAddrs[0]"},
		{"hosts IP key", Config{Policy: pol, Hosts: map[string]netip.Addr{"127.1": loopback}}, "Hosts: key"},
		{"hosts bad key", Config{Policy: pol, Hosts: map[string]netip.Addr{"a b": loopback}}, "Hosts: key"},
		{"hosts invalid addr", Config{Policy: pol, Hosts: map[string]netip.Addr{"demo.shoji.test": {}}}, "Hosts[\"demo.shoji.test\"]"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckAndSetDefaults()
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(fmt.Sprint(err), tt.want) {
				t.Errorf("CheckAndSetDefaults: %v, want ErrInvalidConfig naming %s", err, tt.want)
			}
		})
	}

	hosts := map[string]netip.Addr{"Demo.Shoji.Test.": loopback}
	cfg := Config{Policy: pol, Hosts: hosts}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	if cfg.DialTimeout != DefaultDialTimeout || cfg.IdleTimeout != DefaultIdleTimeout ||
		cfg.HeaderTimeout != DefaultHeaderTimeout || cfg.MaxHeaderBytes != DefaultMaxHeaderBytes ||
		cfg.Resolver == nil || cfg.Logger == nil || cfg.Now == nil || cfg.OnDecision == nil {
		t.Errorf("defaults not set: %+v", cfg)
	}
	if diff := cmp.Diff(map[string]netip.Addr{"demo.shoji.test": loopback}, cfg.Hosts, cmpAddr); diff != "" {
		t.Errorf("Hosts not normalised (-want +got):\n%s", diff)
	}
	if _, ok := hosts["Demo.Shoji.Test."]; !ok || len(hosts) != 1 {
		t.Error("caller's Hosts map was modified")
	}
}

// blockingResolver blocks every lookup until its context ends.
type blockingResolver struct {
	entered chan struct{} // one per lookup; the test reads each
}

func (r blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	r.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCloseCancelsPendingDial(t *testing.T) {
	for _, method := range []string{"GET", "CONNECT"} {
		t.Run(method, func(t *testing.T) {
			res := blockingResolver{entered: make(chan struct{})}
			_, l, rec := startProxy(t, Config{Policy: allowAll{}, Resolver: res})
			done := make(chan error, 1) // the request's result; never blocks the sender
			go func() {
				c, err := net.Dial("tcp", l.Addr())
				if err != nil {
					done <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(hangGuard))
				if method == "GET" {
					fmt.Fprintf(c, "GET http://slow.shoji.test/ HTTP/1.1\r\nHost: slow.shoji.test\r\n\r\n")
				} else {
					fmt.Fprintf(c, "CONNECT slow.shoji.test:443 HTTP/1.1\r\nHost: slow.shoji.test:443\r\n\r\n")
				}
				_, err = io.Copy(io.Discard, c)
				done <- err
			}()
			select {
			case <-res.entered:
			case <-time.After(hangGuard):
				t.Fatal("lookup never started")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkNoHandlers(t)
			if err := <-done; err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("client was not cut off")
				}
			}
			if evs := rec.take(); len(evs) != 0 {
				t.Errorf("events for a request cut off by Close: %+v", evs)
			}
		})
	}
}

// TestBackgroundHost checks that a request to isolation.BackgroundDomain,
// where the browser's own background services are pointed, is refused as
// the browser's own (Event.Background) before any policy is asked — even a
// policy that allows everything — and is never looked up, while a request
// to an ordinary denied host stays an ordinary refusal.
func TestBackgroundHost(t *testing.T) {
	res := newFakeResolver(nil)
	p, l, rec := startProxy(t, Config{Policy: allowAll{}, Resolver: res})
	c := proxyClient(t, l, nil)
	bg := func(method, host string, port int) Event {
		return Event{Session: "sess-1", Method: method, Host: host, Port: port,
			Rule: RuleBackground, Reason: ReasonBackground, Background: true, Time: testNow}
	}
	gaia := "accounts." + isolation.BackgroundDomain
	if status, _ := get(t, c, "http://"+gaia+"/ListAccounts?source=ChromiumBrowser"); status != http.StatusForbidden {
		t.Errorf("GET %s: status %d, want 403", gaia, status)
	}
	if resp, _, _, _ := connect(t, l, "UPDATE."+isolation.BackgroundDomain+".:443"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT update.%s: status %d, want 403", isolation.BackgroundDomain, resp.StatusCode)
	}
	if resp, _, _, _ := connect(t, l, isolation.BackgroundDomain+":443"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT %s: status %d, want 403", isolation.BackgroundDomain, resp.StatusCode)
	}
	diffEvents(t, []Event{
		bg("GET", gaia, 80),
		bg("CONNECT", "update."+isolation.BackgroundDomain, 443),
		bg("CONNECT", isolation.BackgroundDomain, 443),
	}, rec.take())

	// A name that only ends like the domain is not it, and a page's request
	// to a real service host is an ordinary refusal.
	pol, err := NewStaticPolicy([]string{"allowed.shoji.test"})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPolicy(pol)
	for _, host := range []string{"x" + isolation.BackgroundDomain, "accounts.google.com"} {
		if resp, _, _, _ := connect(t, l, host+":443"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT %s: status %d, want 403", host, resp.StatusCode)
		}
	}
	diffEvents(t, []Event{
		{Session: "sess-1", Method: "CONNECT", Host: "x" + isolation.BackgroundDomain, Port: 443, Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist, Time: testNow},
		{Session: "sess-1", Method: "CONNECT", Host: "accounts.google.com", Port: 443, Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist, Time: testNow},
	}, rec.take())
	if calls := res.takeCalls(); len(calls) != 0 {
		t.Errorf("refused hosts were looked up in DNS: %v", calls)
	}
}
