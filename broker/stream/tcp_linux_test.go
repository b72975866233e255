package stream

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// acceptRecorder is a listener that keeps the connections it accepts.
type acceptRecorder struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *acceptRecorder) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *acceptRecorder) accepted() []net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]net.Conn(nil), l.conns...)
}

// tcpOption reads an IPPROTO_TCP socket option of c.
func tcpOption(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestViewerConnTCPOptions checks the TCP options of the server's end of a
// viewer connection, over plain HTTP and over TLS: the connection the
// handler hijacks is the one the listener accepted.
func TestViewerConnTCPOptions(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			log := slog.New(slog.DiscardHandler)
			m, err := session.NewManager(session.Config{Launcher: &isolationtest.Launcher{}, Egress: nopEgress{}, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Second, Logger: log}
			srv := httptest.NewUnstartedServer(h)
			rec := &acceptRecorder{Listener: srv.Listener}
			srv.Listener = rec
			dialer := *websocket.DefaultDialer
			url := "ws://" + srv.Listener.Addr().String()
			if useTLS {
				srv.StartTLS()
				dialer.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
				url = "wss" + strings.TrimPrefix(srv.URL, "https")
			} else {
				srv.Start()
			}
			t.Cleanup(func() {
				_ = m.Shutdown(context.Background())
				srv.Close()
			})
			hdr := http.Header{"X-Test-User": {"alice"}, "Origin": {"http://viewer.test"}}
			c, _, err := dialer.Dial(url, hdr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			write(t, c, `{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)
			readUntil(t, c, func(m map[string]any) bool { return m["type"] == "ready" })

			conns := rec.accepted()
			if len(conns) != 1 {
				t.Fatalf("server accepted %d connections, want 1", len(conns))
			}
			if v := tcpOption(t, conns[0], syscall.TCP_NODELAY); v == 0 {
				t.Error("TCP_NODELAY is off on the viewer's connection")
			}
			if v := tcpOption(t, conns[0], tcpNotSentLowat); v != notSentLowat {
				t.Errorf("TCP_NOTSENT_LOWAT = %d, want %d", v, notSentLowat)
			}
		})
	}
}
