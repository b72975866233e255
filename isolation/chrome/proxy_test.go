package chrome

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// testProxy is a forward proxy for the tests. It serves absolute-form HTTP
// requests and CONNECT, and only to the hosts it maps, so a page that loads
// proves the browser went through it: the mapped names resolve nowhere else.
type testProxy struct {
	srv *httptest.Server
	// hosts maps the host:port a browser asks for to the address of a test
	// server.
	hosts map[string]string

	mu    sync.Mutex
	seen  []string
	conns map[net.Conn]struct{}
}

// newTestProxy starts a proxy for hosts and stops it when the test ends.
func newTestProxy(t *testing.T, hosts map[string]string) *testProxy {
	t.Helper()
	p := &testProxy{hosts: hosts, conns: map[net.Conn]struct{}{}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		p.srv.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// addr is the proxy's host:port, an IP literal.
func (p *testProxy) addr() string { return p.srv.Listener.Addr().String() }

// requested reports whether the browser asked the proxy for hostport.
func (p *testProxy) requested(hostport string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.seen {
		if s == hostport {
			return true
		}
	}
	return false
}

func (p *testProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hostport := r.Host
	if r.Method != http.MethodConnect {
		hostport = r.URL.Host
		if r.URL.Scheme != "http" {
			http.Error(w, "absolute http URL required", http.StatusBadRequest)
			return
		}
	}
	if !strings.Contains(hostport, ":") {
		hostport += ":80"
	}
	p.mu.Lock()
	p.seen = append(p.seen, hostport)

	p.mu.Unlock()
	backend, ok := p.hosts[hostport]
	if !ok {
		http.Error(w, "denied by test proxy", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, backend)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = "http"
	out.URL.Host = backend
	out.Host = r.URL.Host
	out.Header.Del("Proxy-Connection")
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// tunnel answers a CONNECT and relays bytes to backend.
func (p *testProxy) tunnel(w http.ResponseWriter, backend string) {
	up, err := net.Dial("tcp", backend)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.mu.Lock()
	p.conns[up], p.conns[down] = struct{}{}, struct{}{}
	p.mu.Unlock()
	_, _ = down.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
	go func() {
		_, _ = io.Copy(up, down)
		up.Close()
	}()
	go func() {
		_, _ = io.Copy(down, up)
		down.Close()
	}()
}
