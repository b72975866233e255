package egress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// livePolicy is a Policy that reads its allowed host at each call, as the
// broker's policies do.
type livePolicy struct{ host atomic.Pointer[string] }

func (p *livePolicy) Decide(host string, _ int) Decision {
	if h := p.host.Load(); h != nil && *h == host {
		return Decision{Allow: true, Rule: "live:" + host}
	}
	return Decision{Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist}
}

func TestPerSessionPolicy(t *testing.T) {
	s := startEcho(t, false)
	port := s.addrPort().Port()
	proxyPol, err := NewStaticPolicy([]string{fmt.Sprintf("echo.shoji.test:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	p, shared, rec := startProxy(t, Config{
		Policy:     proxyPol,
		AllowAddrs: []netip.AddrPort{s.addrPort()},
		Hosts:      map[string]netip.Addr{"echo.shoji.test": loopback, "other.shoji.test": loopback},
	})
	live := &livePolicy{}
	own, err := p.OpenWith("sess-2", ListenerOptions{Policy: live})
	if err != nil {
		t.Fatal(err)
	}
	echo := fmt.Sprintf("echo.shoji.test:%d", port)
	other := fmt.Sprintf("other.shoji.test:%d", port)
	status := func(l *Listener, target string) int {
		resp, _, _, _ := connect(t, l, target)
		return resp.StatusCode
	}

	// The session's own policy, not the proxy's.
	if got := status(own, echo); got != http.StatusForbidden {
		t.Errorf("own policy, echo: %d, want 403", got)
	}
	h := "other.shoji.test"
	live.host.Store(&h) // a live change applies to the next request
	if got := status(own, other); got != http.StatusOK {
		t.Errorf("own policy after a live change, other: %d, want 200", got)
	}
	// The shared listener keeps the proxy's policy.
	if got := status(shared, other); got != http.StatusForbidden {
		t.Errorf("proxy policy, other: %d, want 403", got)
	}
	if got := status(shared, echo); got != http.StatusOK {
		t.Errorf("proxy policy, echo: %d, want 200", got)
	}
	// SetPolicy replaces one session's policy only; nil returns it to the
	// proxy's.
	shared.SetPolicy(live)
	if got := status(shared, other); got != http.StatusOK {
		t.Errorf("after SetPolicy, other: %d, want 200", got)
	}
	own.SetPolicy(nil)
	if got := status(own, echo); got != http.StatusOK {
		t.Errorf("after SetPolicy(nil), echo: %d, want 200", got)
	}
	p.SetPolicy(nil)
	if got := status(own, echo); got != http.StatusForbidden {
		t.Errorf("after Proxy.SetPolicy(nil), echo: %d, want 403", got)
	}
	if got := status(shared, other); got != http.StatusOK {
		t.Errorf("a session's own policy outlives Proxy.SetPolicy: %d, want 200", got)
	}
	var rules []string
	for _, ev := range rec.take() {
		rules = append(rules, fmt.Sprintf("%s:%v:%s", ev.Session, ev.Allow, ev.Rule))
	}
	want := []string{
		"sess-2:false:default-deny", "sess-2:true:live:other.shoji.test",
		"sess-1:false:default-deny", "sess-1:true:" + echo,
		"sess-1:true:live:other.shoji.test", "sess-2:true:" + echo,
		"sess-2:false:no-policy", "sess-1:true:live:other.shoji.test",
	}
	if strings.Join(rules, " ") != strings.Join(want, " ") {
		t.Errorf("events\n got %v\nwant %v", rules, want)
	}
}

// cidrPolicy allows the addresses of one prefix, on any port.
type cidrPolicy struct {
	prefix netip.Prefix
	mu     sync.Mutex
	asked  []string
}

func (c *cidrPolicy) AllowAddr(host string, a netip.Addr, port int) (bool, string) {
	c.mu.Lock()
	c.asked = append(c.asked, fmt.Sprintf("%s %s %d", host, a, port))
	c.mu.Unlock()
	if c.prefix.Contains(a) {
		return true, "cidr:" + c.prefix.String()
	}
	return false, ""
}

func TestAddressPolicy(t *testing.T) {
	o := startOrigin(t, false)
	port := o.port()
	res := newFakeResolver(map[string][]string{
		"intranet.shoji.test": {"127.0.0.1"},
		"lan.shoji.test":      {"10.1.2.3"},
		"public.shoji.test":   {"8.8.8.8"},
	})
	p, _, rec := startProxy(t, Config{Policy: allowAll{}, Resolver: res})
	cidr := &cidrPolicy{prefix: netip.MustParsePrefix("127.0.0.0/8")}
	l, err := p.OpenWith("sess-2", ListenerOptions{Addrs: cidr})
	if err != nil {
		t.Fatal(err)
	}
	c := proxyClient(t, l, nil)

	status, body := get(t, c, fmt.Sprintf("http://intranet.shoji.test:%d/guide", port))
	if status != http.StatusOK || body != "hello GET /guide " {
		t.Fatalf("allowed by CIDR: %d %q", status, body)
	}
	status, body = get(t, c, "http://lan.shoji.test/")
	if status != http.StatusForbidden || !strings.Contains(body, "address 10.1.2.3 is private") {
		t.Errorf("outside the CIDR: %d %q", status, body)
	}
	diffEvents(t, []Event{
		{Session: "sess-2", Method: "GET", Host: "intranet.shoji.test", Port: port, Addr: loopback,
			AddrRule: "cidr:127.0.0.0/8", Allow: true, Rule: "allow-all", Time: testNow},
		{Session: "sess-2", Method: "GET", Host: "lan.shoji.test", Port: 80,
			Rule: RuleAddress, Reason: "address 10.1.2.3 is private", Time: testNow},
	}, rec.take())

	// Public addresses never ask the address policy; the listener without
	// one refuses loopback as before.
	cidr.mu.Lock()
	asked := strings.Join(cidr.asked, ",")
	cidr.mu.Unlock()
	if want := fmt.Sprintf("intranet.shoji.test 127.0.0.1 %d,lan.shoji.test 10.1.2.3 80", port); asked != want {
		t.Errorf("AllowAddr asked %q, want %q", asked, want)
	}
	resp, _, _, _ := connect(t, l, "[::]:80")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unspecified address: %d, want 403", resp.StatusCode)
	}
	others, err := p.Open("sess-3")
	if err != nil {
		t.Fatal(err)
	}
	resp, _, _, _ = connect(t, others, fmt.Sprintf("intranet.shoji.test:%d", port))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session without the address policy: %d, want 403", resp.StatusCode)
	}
}

// upstreamProxy is an HTTP proxy standing for the hospital's: it records
// what it carried and resolves names from its own table.
type upstreamProxy struct {
	*httptest.Server
	names map[string]string // host → IP, the upstream's own DNS
	// refuse, when set, makes it answer every request with this status.
	refuse atomic.Int64

	mu      sync.Mutex
	carried []string // "METHOD target auth"
	conns   []net.Conn
}

func startUpstream(t *testing.T, names map[string]string) *upstreamProxy {
	t.Helper()
	u := &upstreamProxy{names: names}
	u.Server = httptest.NewServer(u)
	t.Cleanup(func() {
		u.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
	})
	return u
}

func (u *upstreamProxy) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.carried
	u.carried = nil
	return c
}

func (u *upstreamProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.RequestURI
	u.mu.Lock()
	u.carried = append(u.carried, r.Method+" "+target+" "+r.Header.Get("Proxy-Authorization"))
	u.mu.Unlock()
	if s := u.refuse.Load(); s != 0 {
		http.Error(w, "refused by upstream", int(s))
		return
	}
	resolve := func(hostport string) string {
		h, p, _ := net.SplitHostPort(hostport)
		if ip, ok := u.names[h]; ok {
			return net.JoinHostPort(ip, p)
		}
		return hostport
	}
	if r.Method == http.MethodConnect {
		up, err := net.Dial("tcp", resolve(r.Host))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		down, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		u.mu.Lock()
		u.conns = append(u.conns, up, down)
		u.mu.Unlock()
		io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, down); up.Close() }()
		go func() { io.Copy(down, up); down.Close() }()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Host = resolve(r.URL.Host)
	out.Host = r.URL.Host
	out.Header.Del("Proxy-Authorization")
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func TestUpstream(t *testing.T) {
	o := startOrigin(t, false)
	to := startOrigin(t, true)
	port, tport := o.port(), to.port()
	up := startUpstream(t, map[string]string{"origin.shoji.test": "127.0.0.1"})
	upURL, _ := url.Parse(up.URL)
	upURL.User = url.UserPassword("shoji", "s3cret")
	const auth = "Basic c2hvamk6czNjcmV0"
	pol, err := NewStaticPolicy([]string{fmt.Sprintf("origin.shoji.test:%d", port), fmt.Sprintf("origin.shoji.test:%d", tport)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{o.addrPort(), to.addrPort()},
		Hosts:      map[string]netip.Addr{"origin.shoji.test": loopback, "denied.shoji.test": loopback},
		Upstream:   upURL,
	}
	for _, byName := range []bool{false, true} {
		t.Run(fmt.Sprintf("UpstreamByName=%v", byName), func(t *testing.T) {
			cfg := cfg
			cfg.UpstreamByName = byName
			_, l, rec := startProxy(t, cfg)
			base := to.Client().Transport.(*http.Transport).Clone()
			base.TLSClientConfig.ServerName = "example.com"
			c := proxyClient(t, l, base)

			status, body := get(t, c, fmt.Sprintf("http://origin.shoji.test:%d/plain?x=1", port))
			if status != http.StatusOK || body != "hello GET /plain?x=1 " {
				t.Fatalf("HTTP via upstream: %d %q", status, body)
			}
			if h := o.last.Load().Header.Get("Proxy-Authorization"); h != "" {
				t.Errorf("origin saw Proxy-Authorization %q", h)
			}
			status, body = get(t, c, fmt.Sprintf("https://origin.shoji.test:%d/tls", tport))
			if status != http.StatusOK || body != "hello GET /tls " {
				t.Fatalf("HTTPS via upstream: %d %q", status, body)
			}
			status, _ = get(t, c, fmt.Sprintf("http://denied.shoji.test:%d/", port))
			if status != http.StatusForbidden {
				t.Errorf("denied host: %d, want 403", status)
			}
			status, _ = get(t, c, "http://origin.shoji.test:1/")
			if status != http.StatusForbidden {
				t.Errorf("denied port: %d, want 403", status)
			}
			tunnel := fmt.Sprintf("127.0.0.1:%d", tport)
			if byName {
				tunnel = fmt.Sprintf("origin.shoji.test:%d", tport)
			}
			want := []string{
				fmt.Sprintf("GET http://origin.shoji.test:%d/plain?x=1 %s", port, auth),
				fmt.Sprintf("CONNECT %s %s", tunnel, auth),
			}
			if got := up.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("upstream carried\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			evs := rec.take()
			if len(evs) != 4 || !evs[0].Allow || !evs[1].Allow || evs[2].Allow || evs[3].Allow || evs[1].Addr != loopback {
				t.Errorf("events %+v", evs)
			}

			// An upstream that refuses: the browser gets a gateway error.
			up.refuse.Store(http.StatusProxyAuthRequired)
			defer up.refuse.Store(0)
			cresp, cbody, _, _ := connect(t, l, fmt.Sprintf("origin.shoji.test:%d", tport))
			if cresp.StatusCode != http.StatusBadGateway || !strings.Contains(cbody, "could not reach") {
				t.Errorf("CONNECT refused upstream: %d %q", cresp.StatusCode, cbody)
			}
			if got := up.take(); len(got) != 1 {
				t.Errorf("upstream carried %v", got)
			}
			rec.take()
		})
	}
}

func TestUpstreamConfig(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want string // in the error; empty for valid
	}{
		{"http://proxy.hospital.local:8080", ""},
		{"http://user:pass@10.0.0.1:3128/", ""},
		{"https://proxy.hospital.local:8443", "scheme"},
		{"socks5://proxy:1080", "scheme"},
		{"http://proxy.hospital.local", "port missing"},
		{"http://proxy.hospital.local:0", "port"},
		{"http://proxy.hospital.local:8080/path", "path"},
		{"http://proxy.hospital.local:8080?q", "query"},
		{"http://:8080", "host missing"},
	} {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := url.Parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Policy: allowAll{}, Upstream: u}
			err = cfg.CheckAndSetDefaults()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckAndSetDefaults: %v", err)
				}
				if cfg.Upstream == u {
					t.Error("Upstream not copied")
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Upstream") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckAndSetDefaults: %v, want ErrInvalidConfig naming Upstream and %q", err, tt.want)
			}
		})
	}
}
