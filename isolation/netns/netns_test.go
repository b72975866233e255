package netns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/isolation/egress"
	"golang.org/x/sys/unix"
)

// needNS skips, or fails under SHOJI_REQUIRE_DEPS=1 when running as root,
// where namespaces are unavailable.
func needNS(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" && os.Geteuid() == 0 {
			t.Fatalf("network namespaces required: %v", err)
		}
		t.Skipf("network namespaces: %v", err)
	}
}

// newNS creates a namespace that the test removes.
func newNS(t *testing.T) *NS {
	t.Helper()
	n, err := New(t.Name())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// ipOut runs ip with args and returns its output.
func ipOut(t *testing.T, n *NS, args ...string) string {
	t.Helper()
	out, err := exec.Command(n.ip, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

// dialIn connects to address from inside n.
func dialIn(n *NS, address string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1) // one send; never blocks
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(n.Path())
		if err != nil {
			res <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{nil, err}
			return
		}
		c, err := net.Dial("tcp", address)
		res <- result{c, err}
	}()
	r := <-res
	return r.c, r.err
}

func TestNamespaceHasOnlyLoopback(t *testing.T) {
	needNS(t)
	n := newNS(t)
	if !strings.HasPrefix(n.Name(), Prefix) {
		t.Errorf("Name() = %q, want prefix %q", n.Name(), Prefix)
	}
	if _, err := os.Stat(n.Path()); err != nil {
		t.Fatalf("namespace file: %v", err)
	}
	links := strings.Fields(ipOut(t, n, "-n", n.Name(), "-o", "-br", "link"))
	if len(links) == 0 || links[0] != "lo" || strings.Count(ipOut(t, n, "-n", n.Name(), "-o", "link"), "\n") != 1 {
		t.Errorf("links in namespace: %q, want only lo", ipOut(t, n, "-n", n.Name(), "-o", "link"))
	}
	if !strings.Contains(ipOut(t, n, "-n", n.Name(), "-br", "link"), "UP") {
		t.Errorf("lo is not up")
	}
	for _, fam := range []string{"-4", "-6"} {
		if r := strings.TrimSpace(ipOut(t, n, fam, "-n", n.Name(), "route", "show", "table", "main")); r != "" {
			t.Errorf("routes %s in namespace: %q, want none", fam, r)
		}
	}
}

func TestListenOnlyFromInside(t *testing.T) {
	needNS(t)
	n := newNS(t)
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2) // at most the two dials below
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	addr := ln.Addr().String()

	// From the host namespace the address is the host's own loopback, where
	// nothing of ours listens.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("dial %s from the host namespace succeeded", addr)
	}
	c, err := dialIn(n, addr)
	if err != nil {
		t.Fatalf("dial %s inside the namespace: %v", addr, err)
	}
	defer c.Close()
	s := <-accepted
	defer s.Close()
	if ap := s.RemoteAddr().(*net.TCPAddr).AddrPort(); !ap.Addr().IsLoopback() {
		t.Errorf("peer = %v, want loopback", ap)
	}
	// Nothing outside the namespace is reachable from it.
	host := httptest.NewServer(http.NotFoundHandler())
	defer host.Close()
	if c, err := dialIn(n, host.Listener.Addr().String()); err == nil {
		c.Close()
		t.Errorf("dial host's %s from inside the namespace succeeded", host.Listener.Addr())
	}
	if c, err := dialIn(n, "192.0.2.1:80"); err == nil {
		c.Close()
		t.Errorf("dial 192.0.2.1 from inside the namespace succeeded")
	} else if !errors.Is(err, unix.ENETUNREACH) {
		t.Logf("dial 192.0.2.1: %v", err)
	}
}

func TestCloseRemovesNamespace(t *testing.T) {
	needNS(t)
	n := newNS(t)
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(n.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace file after Close: %v", err)
	}
	if strings.Contains(ipOut(t, n, "netns", "list"), n.Name()) {
		t.Errorf("ip netns list still shows %s", n.Name())
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRemoveStale(t *testing.T) {
	needNS(t)
	n := newNS(t)
	// A namespace named for a broker that is gone: a pid above pid_max.
	stale := fmt.Sprintf("%s%d-x-1", Prefix, 1<<23)
	if _, err := run(n.ip, "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = run(n.ip, "netns", "delete", stale) })
	removed, err := RemoveStale()
	if err != nil {
		t.Fatalf("RemoveStale: %v", err)
	}
	if len(removed) != 1 || removed[0] != stale {
		t.Errorf("RemoveStale removed %q, want [%q]", removed, stale)
	}
	if _, err := os.Stat(n.Path()); err != nil {
		t.Errorf("a live broker's namespace was removed: %v", err)
	}
}

// TestEgressThroughNamespace serves an egress listener made in the
// namespace: a client inside reaches a site through it, the proxy dialing
// from the host namespace.
func TestEgressThroughNamespace(t *testing.T) {
	needNS(t)
	n := newNS(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the host")
	}))
	defer site.Close()
	siteAP := netip.MustParseAddrPort(site.Listener.Addr().String())
	pol, err := egress.NewStaticPolicy([]string{fmt.Sprintf("site.test:%d", siteAP.Port())})
	if err != nil {
		t.Fatal(err)
	}
	p, err := egress.New(egress.Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{siteAP},
		Hosts:      map[string]netip.Addr{"site.test": siteAP.Addr()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.OpenWith("s1", egress.ListenerOptions{Isolated: ln})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer l.Close()

	c, err := dialIn(n, l.Addr())
	if err != nil {
		t.Fatalf("dial proxy inside the namespace: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://site.test:%d/ HTTP/1.1\r\nHost: site.test:%d\r\nConnection: close\r\n\r\n", siteAP.Port(), siteAP.Port())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from the host" {
		t.Errorf("through the proxy: %d %q", resp.StatusCode, body)
	}
	// The owner's group refuses nothing here, but no group refuses all.
	l.SetOwner(0)
	c2, err := dialIn(n, l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET http://site.test:%d/ HTTP/1.1\r\nHost: site.test\r\n\r\n", siteAP.Port())
	if _, err := http.ReadResponse(bufio.NewReader(c2), nil); err == nil {
		t.Errorf("request after SetOwner(0) was served")
	}
}

// BenchmarkSessionNamespace measures what netns mode adds to a browser's
// start and end: create the namespace, listen in it, close both.
func BenchmarkSessionNamespace(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		n, err := New("bench")
		if err != nil {
			b.Fatal(err)
		}
		ln, err := n.Listen("127.0.0.1:0")
		if err != nil {
			_ = n.Close()
			b.Fatal(err)
		}
		_ = ln.Close()
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
