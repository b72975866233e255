package stream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// frameBytes is the size of a frame of a dense text page at 1366×768 and
// the screencast's default JPEG quality.
const frameBytes = 250 << 10

// wireBytes is the size of a binary message of n bytes on the wire, as the
// server sends it: a 10-byte header (payload over 64 KiB, no mask).
func wireBytes(n int) int { return 10 + n }

// drain reads a viewer's TCP connection without parsing it, as fast as the
// kernel delivers, and sends the byte count on got each time it passes a
// multiple of every bytes. It allocates nothing while it runs.
func drain(c net.Conn, every int, got chan<- int) {
	buf := make([]byte, 256<<10)
	total, next := 0, every
	for {
		n, err := c.Read(buf)
		total += n
		for total >= next {
			got <- total
			next += every
		}
		if err != nil {
			close(got)
			return
		}
	}
}

// upgradePair returns the server end of a real WebSocket connection over
// loopback TCP, made and tuned as the handler does, and the client's TCP
// connection under its WebSocket.
func upgradePair(tb testing.TB) (*websocket.Conn, net.Conn) {
	tb.Helper()
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			tb.Error(err)
			return
		}
		if err := tuneConn(c.NetConn()); err != nil {
			tb.Error(err)
		}
		conns <- c
	}))
	tb.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	server := <-conns
	tb.Cleanup(func() { server.Close() })
	return server, client.NetConn()
}

// processCPU returns the CPU time the process has used, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per operation since start as
// cpu-ns/op: unlike ns/op it does not grow when other processes hold the
// CPU. It includes the test's own reader of the viewer's end.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkWriteFrame measures writing one 250 KB frame to a viewer's
// WebSocket over loopback TCP, with a reader that drains the other end.
func BenchmarkWriteFrame(b *testing.B) {
	server, client := upgradePair(b)
	got := make(chan int, 1024)
	go drain(client, 1<<30, got)
	c := &conn_{ws: server}
	f := &isolation.Frame{JPEG: make([]byte, frameBytes), Width: 1366, Height: 768}
	b.SetBytes(frameBytes)
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		if err := c.writeFrame(f.JPEG); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkRelayFrame measures the broker's whole path for one frame: the
// browser's Observer.Frame call, the session's handoff to the viewer, the
// writer goroutine and the WebSocket write, until the viewer's end of a
// loopback TCP connection has read the last byte. One frame is in flight
// at a time, as for a page that changes less often than the link drains.
func BenchmarkRelayFrame(b *testing.B) {
	l := &isolationtest.Launcher{}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Hour, Logger: log}
	srv := httptest.NewServer(h)
	b.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	hdr := http.Header{"X-Test-User": {"bench"}, "Origin": {"http://viewer.test"}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), hdr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"width":1366,"height":768,"dpr":1}`)); err != nil {
		b.Fatal(err)
	}
	var br *isolationtest.Browser
	for br == nil {
		br = l.Last()
	}
	f := isolation.Frame{JPEG: make([]byte, frameBytes), Width: 1366, Height: 768}
	// The first frame follows the control messages; after it, only frames
	// come, and the viewer's end is read raw.
	br.EmitFrame(f)
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, r, err := ws.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r)
		if typ == websocket.BinaryMessage {
			break
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	got := make(chan int, 1)
	go drain(ws.NetConn(), wireBytes(frameBytes), got)
	b.SetBytes(frameBytes)
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		br.EmitFrame(f)
		if _, ok := <-got; !ok {
			b.Fatal("viewer connection closed")
		}
	}
	reportCPU(b, cpu)
}
