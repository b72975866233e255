package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is a syslog collector for tests: it accepts RFC 5424 messages
// with octet-counting framing over TCP and keeps them.
type collector struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	msgs  []syslogMsg
	bad   []string
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

type syslogMsg struct {
	pri, msgid, sd, msg string
	seq                 uint64
	raw                 string // the message as received, without its length
}

var syslogRE = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[[^\]]*\]|-) (.*)$`)

func newCollector(t *testing.T) *collector {
	c := &collector{t: t, addr: "127.0.0.1:0"}
	c.start()
	t.Cleanup(c.stop)
	return c
}

// start listens on the collector's address (the same port after a stop).
func (c *collector) start() {
	var ln net.Listener
	var err error
	waitFor(c.t, "the collector's port", func() bool {
		ln, err = net.Listen("tcp", c.addr)
		return err == nil
	})
	c.mu.Lock()
	c.ln, c.addr = ln, ln.Addr().String()
	c.mu.Unlock()
	c.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.wg.Go(func() { c.read(conn) })
		}
	})
}

func (c *collector) read(conn net.Conn) {
	r := bufio.NewReader(conn)
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(n[:len(n)-1])
		if err != nil {
			c.fail(fmt.Sprintf("bad frame length %q", n))
			return
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return // cut off by a stop: the forwarder sends it again
		}
		m := syslogRE.FindStringSubmatch(string(frame))
		if m == nil {
			c.fail(fmt.Sprintf("not RFC 5424: %q", frame))
			return
		}
		msg := syslogMsg{pri: m[1], msgid: m[6], sd: m[7], msg: m[8], raw: string(frame)}
		if l, err := parseLink([]byte(msg.msg)); err == nil {
			msg.seq = l.Seq
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, msg)
		c.mu.Unlock()
	}
}

func (c *collector) fail(s string) {
	c.mu.Lock()
	c.bad = append(c.bad, s)
	c.mu.Unlock()
}

// stop closes the listener and every connection, like a collector that
// goes down.
func (c *collector) stop() {
	c.mu.Lock()
	if c.ln != nil {
		_ = c.ln.Close()
		c.ln = nil
	}
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *collector) received() []syslogMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		c.t.Errorf("collector: %v", c.bad)
	}
	return append([]syslogMsg(nil), c.msgs...)
}

// commitN commits n events, half with Commit from two goroutines and the
// rest with Record.
func commitN(t *testing.T, f *File, c *clock, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range n / 2 {
				e := sampleEvent(c, w*1000+i)
				if i%2 == 0 {
					f.Record(e)
					continue
				}
				if _, err := f.Commit(context.Background(), e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// Record events are written with or before the next Commit.
	if _, err := f.Commit(context.Background(), Login(c.Now(), Actor{User: "sync"})); err != nil {
		t.Fatal(err)
	}
}

// chainLines maps seq to the line in the trail.
func chainLines(t *testing.T, dir string) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	files, _ := listFiles(dir)
	for _, cf := range files {
		for _, l := range lines(t, cf.path) {
			out[seqOf(t, l)] = string(l)
		}
	}
	return out
}

// waitForwarded waits until the forwarder has the collector's
// acknowledgement for every record up to head, and the collector has read
// them: an acknowledgement comes from the collector's TCP stack, before
// the collector reads.
func waitForwarded(t *testing.T, fw *Forwarder, col *collector, head uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("records up to seq %d to be forwarded", head), func() bool {
		return fw.Forwarded() == head && uint64(len(col.received())) >= head
	})
}

// checkReceived checks that the collector got records 1..head in order,
// each exactly once and exactly as in the chain.
func checkReceived(t *testing.T, col *collector, dir string, head uint64) {
	t.Helper()
	msgs := col.received()
	chain := chainLines(t, dir)
	if uint64(len(msgs)) != head {
		t.Errorf("collector has %d messages, want %d", len(msgs), head)
	}
	for i, m := range msgs {
		want := uint64(i + 1)
		if m.seq != want {
			t.Fatalf("message %d has seq %d, want %d (in order, no duplicates)", i, m.seq, want)
		}
		if m.msg != chain[want] {
			t.Errorf("seq %d: MSG %q, want the chain line %q", want, m.msg, chain[want])
		}
		if m.sd != fmt.Sprintf(`[shoji@32473 seq="%d"]`, want) {
			t.Errorf("seq %d: structured data %q", want, m.sd)
		}
	}
}

// TestForwarder sends a trail to a collector that goes down and comes back,
// and checks that every record arrives, once, in order.
func TestForwarder(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 4<<10) // several files
	c := newClock()
	commitN(t, f, c, 40)

	col := newCollector(t)
	opts := ForwarderOptions{Hostname: "broker 1", MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	fw, err := NewForwarder(f, col.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	head, _ := f.Head()
	waitForwarded(t, fw, col, head)
	checkReceived(t, col, dir, head)
	if m := col.received()[0]; m.pri != "110" && m.pri != "109" && m.pri != "108" {
		t.Errorf("PRI %s, want facility 13 (log audit)", m.pri)
	}

	// The collector goes down; the trail goes on.
	col.stop()
	commitN(t, f, c, 40)
	if fw.Forwarded() != head {
		t.Errorf("forwarded %d with the collector down, want %d", fw.Forwarded(), head)
	}

	// It comes back on the same port, and gets what it missed.
	col.start()
	head, _ = f.Head()
	waitForwarded(t, fw, col, head)
	checkReceived(t, col, dir, head)

	// The broker restarts: the cursor says where forwarding stopped.
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	commitN(t, f, c, 20)
	fw, err = NewForwarder(f, col.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	head, _ = f.Head()
	waitForwarded(t, fw, col, head)
	checkReceived(t, col, dir, head)
	if files, _ := listFiles(dir); len(files) < 3 {
		t.Errorf("only %d files: the test should cross rotations", len(files))
	}
}

// A cursor that does not match the trail is found again by seq, or, when
// the seq is not there, forwarding starts over.
func TestForwarderCursorRecovery(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 2<<10)
	c := newClock()
	commitN(t, f, c, 30)
	cursor := filepath.Join(dir, "siem.cursor")
	if err := os.WriteFile(cursor, []byte(`{"seq":10,"file":"audit-000001.jsonl","offset":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	col := newCollector(t)
	fw, err := NewForwarder(f, col.addr, ForwarderOptions{Name: "siem", MinBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := f.Head()
	waitFor(t, "forwarding", func() bool { return fw.Forwarded() == head && uint64(len(col.received())) >= head-10 })
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := col.received()
	if len(msgs) == 0 || msgs[0].seq != 11 || msgs[len(msgs)-1].seq != head || uint64(len(msgs)) != head-10 {
		t.Errorf("got seqs %d..%d (%d), want 11..%d", msgs[0].seq, msgs[len(msgs)-1].seq, len(msgs), head)
	}

	if err := os.WriteFile(cursor, []byte(`not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	col2 := newCollector(t)
	fw, err = NewForwarder(f, col2.addr, ForwarderOptions{Name: "siem", MinBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	waitForwarded(t, fw, col2, head)
	checkReceived(t, col2, dir, head)
}

func TestNewForwarderRefusals(t *testing.T) {
	f := openTest(t, t.TempDir(), 0)
	if _, err := NewForwarder(f, "no-port", ForwarderOptions{}); err == nil {
		t.Error("address without port accepted")
	}
	if _, err := NewForwarder(f, "127.0.0.1:514", ForwarderOptions{Name: "../x"}); err == nil {
		t.Error("name with a path accepted")
	}
}

func TestFrame(t *testing.T) {
	fw := &Forwarder{opts: ForwarderOptions{Facility: 13, Hostname: "broker-1", AppName: "shoji", SDID: "shoji@32473"}}
	line := []byte(`{"seq":7,"time":"2026-11-23T00:00:00.123456789Z","type":"lockout","user":"bob","prev":"` + ZeroHash + `"}`)
	l, err := parseLink(line)
	if err != nil {
		t.Fatal(err)
	}
	got := string(fw.frame(outRecord{line: line, link: l, ok: true}))
	head := `<108>1 2026-11-23T00:00:00.123456Z broker-1 shoji - lockout [shoji@32473 seq="7"] `
	want := strconv.Itoa(len(head)+len(line)) + " " + head + string(line)
	if got != want {
		t.Errorf("frame\n%s\nwant\n%s", got, want)
	}
	if syslogToken("a b\x01c", 255) != "abc" || syslogToken("", 5) != "-" || syslogToken("abcdef", 3) != "abc" {
		t.Error("syslogToken")
	}
}

// A trail whose sink has closed is still forwarded to the end.
func TestForwarderClosedFile(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	commitN(t, f, newClock(), 10)
	head, _ := f.Head()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	col := newCollector(t)
	fw, err := NewForwarder(f, col.addr, ForwarderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitForwarded(t, fw, col, head)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	checkReceived(t, col, dir, head)
	data, err := os.ReadFile(filepath.Join(dir, "syslog.cursor"))
	if err != nil || !strings.Contains(string(data), fmt.Sprintf(`"seq":%d,`, head)) {
		t.Errorf("cursor file = %s, %v; want seq %d", data, err, head)
	}
}
