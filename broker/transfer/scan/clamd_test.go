package scan_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
)

// testTimeout bounds tests that talk to a real clamd: long enough for a
// loaded machine, short enough that a hang fails instead of blocking.
const testTimeout = 2 * time.Minute

func newClamd(t *testing.T, addr string, opts scan.ClamdOptions) *scan.Clamd {
	t.Helper()
	c, err := scan.NewClamd(addr, opts)
	if err != nil {
		t.Fatalf("NewClamd(%q): %v", addr, err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// sample is a file of n bytes of text with the test marker at offset at, or
// without it when at < 0.
func sample(n, at int) []byte {
	b := bytes.Repeat([]byte("clinical report line\n"), n/21+1)[:n]
	if at >= 0 {
		copy(b[at:], clamdtest.TestMarker)
	}
	return b
}

func TestClamdScan(t *testing.T) {
	d := clamdtest.Start(t)
	ctx := testContext(t)
	const chunk = 1024
	markerLen := len(clamdtest.TestMarker)
	tests := []struct {
		name     string
		content  []byte
		infected bool
	}{
		{"empty", nil, false},
		{"clean", sample(10_000, -1), false},
		{"clean larger than a chunk", sample(5*chunk+17, -1), false},
		{"marker", sample(10_000, 5000), true},
		{"marker at start", sample(200, 0), true},
		{"marker at end", sample(3*chunk, 3*chunk-markerLen), true},
		{"marker split across chunks", sample(4*chunk, chunk-markerLen/2), true},
		{"marker split one byte in", sample(4*chunk, 2*chunk-1), true},
		{"marker only", []byte(clamdtest.TestMarker), true},
	}
	c := newClamd(t, d.Addr, scan.ClamdOptions{ChunkSize: chunk})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A reader that returns one byte at a time checks that the
			// client fills chunks instead of sending what each Read gives.
			for _, r := range []io.Reader{bytes.NewReader(tt.content), iotest.OneByteReader(bytes.NewReader(tt.content))} {
				res, err := c.Scan(ctx, r)
				if err != nil {
					t.Fatalf("Scan: %v\nclamd log:\n%s", err, d.Log())
				}
				if res.Infected != tt.infected {
					t.Fatalf("Infected = %v, want %v (result %+v)", res.Infected, tt.infected, res)
				}
				wantSig := ""
				if tt.infected {
					wantSig = clamdtest.TestSignatureName
				}
				if res.Signature != wantSig {
					t.Errorf("Signature = %q, want %q", res.Signature, wantSig)
				}
				if !strings.HasPrefix(res.Engine, "ClamAV ") {
					t.Errorf("Engine = %q, want clamd's VERSION answer", res.Engine)
				}
			}
		})
	}
}

func TestClamdPingVersion(t *testing.T) {
	d := clamdtest.Start(t)
	ctx := testContext(t)
	for _, addr := range []string{d.Addr, d.Socket} {
		c := newClamd(t, addr, scan.ClamdOptions{})
		if err := c.Ping(ctx); err != nil {
			t.Errorf("Ping(%s): %v", addr, err)
		}
		v, err := c.Version(ctx)
		if err != nil || !strings.HasPrefix(v, "ClamAV ") {
			t.Errorf("Version(%s) = %q, %v; want ClamAV …", addr, v, err)
		}
	}
}

func TestClamdHashSignature(t *testing.T) {
	bad := []byte("a file known by its hash, not its content\n")
	d := clamdtest.Start(t, clamdtest.TestSignature, clamdtest.HDB("Shoji.Test.Hash", bad))
	c := newClamd(t, d.Addr, scan.ClamdOptions{})
	ctx := testContext(t)
	for _, tt := range []struct {
		content []byte
		sig     string
	}{
		{bad, "Shoji.Test.Hash.UNOFFICIAL"},
		{[]byte(clamdtest.TestMarker), clamdtest.TestSignatureName},
		{append(bytes.Clone(bad), 'x'), ""},
	} {
		res, err := c.Scan(ctx, bytes.NewReader(tt.content))
		if err != nil {
			t.Fatalf("Scan(%q): %v", tt.content, err)
		}
		if res.Signature != tt.sig || res.Infected != (tt.sig != "") {
			t.Errorf("Scan(%q) = %+v, want signature %q", tt.content, res, tt.sig)
		}
	}
}

func TestClamdStopped(t *testing.T) {
	d := clamdtest.Start(t)
	c := newClamd(t, d.Addr, scan.ClamdOptions{})
	ctx := testContext(t)
	if _, err := c.Scan(ctx, bytes.NewReader(sample(100, -1))); err != nil {
		t.Fatalf("Scan before the outage: %v", err)
	}

	d.Stop()
	d.Stop() // stopping twice is harmless
	_, err := c.Scan(ctx, bytes.NewReader(sample(100, 10)))
	if err == nil {
		t.Fatal("Scan with clamd stopped: no error; the file would not be held")
	}
	if !strings.Contains(err.Error(), d.Addr) {
		t.Errorf("error %q does not name the address %s", err, d.Addr)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping with clamd stopped: no error")
	}

	d.Restart()
	res, err := c.Scan(ctx, bytes.NewReader(sample(100, 10)))
	if err != nil || !res.Infected {
		t.Fatalf("Scan after restart = %+v, %v; want infected", res, err)
	}
}

func TestClamdStreamMaxLength(t *testing.T) {
	d := clamdtest.StartWith(t, clamdtest.Options{StreamMaxLength: 64 << 10})
	ctx := testContext(t)
	for _, chunk := range []int{4 << 10, 1 << 20} {
		c := newClamd(t, d.Addr, scan.ClamdOptions{ChunkSize: chunk})
		res, err := c.Scan(ctx, bytes.NewReader(sample(1<<20, -1)))
		if err == nil {
			t.Fatalf("chunk %d: Scan of 1 MiB with a 64 KiB limit = %+v, want an error", chunk, res)
		}
		if !errors.Is(err, scan.ErrSizeLimit) {
			t.Errorf("chunk %d: error %v is not ErrSizeLimit", chunk, err)
		}
		// A file within the limit still scans.
		if _, err := c.Scan(ctx, bytes.NewReader(sample(32<<10, -1))); err != nil {
			t.Errorf("chunk %d: Scan within the limit: %v", chunk, err)
		}
	}
}

func TestClamdConcurrent(t *testing.T) {
	d := clamdtest.Start(t)
	c := newClamd(t, d.Addr, scan.ClamdOptions{ChunkSize: 4096})
	ctx := testContext(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			at := -1
			if i%2 == 1 {
				at = 1000 * i
			}
			res, err := c.Scan(ctx, bytes.NewReader(sample(50_000+i*997, at)))
			switch {
			case err != nil:
				errs <- err
			case res.Infected != (at >= 0):
				errs <- errors.New("wrong verdict for scan " + string(rune('a'+i)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// silentListener accepts connections, reads everything and never answers,
// like a hung daemon.
func silentListener(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "silent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			})
		}
	})
	return "unix:" + sock
}

func TestClamdNoAnswer(t *testing.T) {
	addr := silentListener(t)

	t.Run("context deadline", func(t *testing.T) {
		c := newClamd(t, addr, scan.ClamdOptions{Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		_, err := c.Scan(ctx, bytes.NewReader(sample(1000, -1)))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Scan against a silent daemon: %v, want context.DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("error %q does not name the address", err)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		c := newClamd(t, addr, scan.ClamdOptions{Timeout: 500 * time.Millisecond})
		_, err := c.Scan(t.Context(), bytes.NewReader(sample(1000, -1)))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Scan against a silent daemon: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		c := newClamd(t, addr, scan.ClamdOptions{Timeout: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			err := c.Ping(ctx)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Ping canceled: %v, want context.Canceled", err)
		}
	})
}

// fakeClamd serves over TCP a clamd that answers VERSION properly and
// INSTREAM with a fixed answer, for answers a real clamd gives rarely.
func fakeClamd(t *testing.T, instreamAnswer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				serveFake(conn, instreamAnswer)
			})
		}
	})
	return "tcp:" + ln.Addr().String()
}

func serveFake(conn net.Conn, instreamAnswer string) {
	br := bufio.NewReader(conn)
	cmd, err := br.ReadString(0)
	if err != nil {
		return
	}
	switch cmd {
	case "zVERSION\x00":
		_, _ = io.WriteString(conn, "ClamAV 9.9.9/1/fake\x00")
	case "zINSTREAM\x00":
		for {
			var n uint32
			if binary.Read(br, binary.BigEndian, &n) != nil {
				return
			}
			if n == 0 {
				break
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
		}
		_, _ = io.WriteString(conn, instreamAnswer)
	}
}

func TestClamdAnswers(t *testing.T) {
	tests := []struct {
		answer string
		want   scan.Result
		err    error
	}{
		{"stream: OK\x00", scan.Result{Engine: "ClamAV 9.9.9/1/fake"}, nil},
		{"stream: Eicar-Test-Signature FOUND\x00", scan.Result{Infected: true, Signature: "Eicar-Test-Signature", Engine: "ClamAV 9.9.9/1/fake"}, nil},
		{"stream: OK", scan.Result{Engine: "ClamAV 9.9.9/1/fake"}, nil}, // closed without NUL
		{"", scan.Result{}, nil},
		{"PONG\x00", scan.Result{}, scan.ErrClamd},
		{"stream: FOUND\x00", scan.Result{}, scan.ErrClamd},
		{"stream: Heuristics.Limits.Exceeded ERROR\x00", scan.Result{}, scan.ErrClamd},
		{"INSTREAM size limit exceeded. ERROR\x00", scan.Result{}, scan.ErrSizeLimit},
	}
	for _, tt := range tests {
		addr := fakeClamd(t, tt.answer)
		c := newClamd(t, addr, scan.ClamdOptions{ChunkSize: 3})
		res, err := c.Scan(testContext(t), strings.NewReader("some content"))
		if tt.want.Engine != "" {
			if err != nil || res != tt.want {
				t.Errorf("answer %q: Scan = %+v, %v; want %+v", tt.answer, res, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("answer %q: Scan = %+v, want an error", tt.answer, res)
			continue
		}
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("answer %q: error %v, want %v", tt.answer, err, tt.err)
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("answer %q: error %q does not name %s", tt.answer, err, addr)
		}
	}
}

func TestClamdReadError(t *testing.T) {
	c := newClamd(t, fakeClamd(t, "stream: OK\x00"), scan.ClamdOptions{})
	boom := errors.New("disk on fire")
	_, err := c.Scan(testContext(t), io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("Scan of a failing reader: %v, want the reader's error", err)
	}
}

func TestParseAddr(t *testing.T) {
	good := []string{"unix:/run/clamav/clamd.ctl", "/run/clamav/clamd.ctl", "tcp:127.0.0.1:3310", "tcp:clamd.internal:3310", "tcp:[::1]:3310"}
	for _, a := range good {
		c, err := scan.NewClamd(a, scan.ClamdOptions{})
		if err != nil {
			t.Errorf("NewClamd(%q): %v", a, err)
			continue
		}
		if !strings.Contains(c.String(), a) {
			t.Errorf("NewClamd(%q).String() = %q", a, c.String())
		}
	}
	bad := []string{"", "clamd.ctl", "unix:relative.sock", "tcp:127.0.0.1", "tcp::3310", "tcp:host:", "http://clamd:3310", "udp:1.2.3.4:5"}
	for _, a := range bad {
		if _, err := scan.NewClamd(a, scan.ClamdOptions{}); err == nil {
			t.Errorf("NewClamd(%q): no error", a)
		}
	}
	for _, opts := range []scan.ClamdOptions{{Timeout: -1}, {ChunkSize: -1}, {ChunkSize: scan.MaxChunkSize + 1}} {
		if _, err := scan.NewClamd("tcp:127.0.0.1:3310", opts); err == nil {
			t.Errorf("NewClamd with %+v: no error", opts)
		}
	}
}
