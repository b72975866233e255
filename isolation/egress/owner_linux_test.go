//go:build linux

package egress

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process instead of running
// tests; see TestMain.
const helperEnv = "SHOJI_EGRESS_HELPER"

// runHelper runs the helper process helperEnv names, if any, and returns
// its exit code.
func runHelper() (code int, ok bool) {
	switch os.Getenv(helperEnv) {
	case "":
		return 0, false
	case "connect":
		return helperConnect(os.Getenv("SHOJI_PROXY"), os.Getenv("SHOJI_TARGET")), true
	case "hold":
		return helperHold(os.Getenv("SHOJI_PROXY")), true
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		return 2, true
	}
}

// helperConnect opens a CONNECT tunnel to target through the proxy for
// each line on stdin, echoes "ping" through it, and prints "ok" or
// "refused: …" on stdout. It ends at EOF on stdin.
func helperConnect(proxy, target string) int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(tunnelPing(proxy, target))
	}
	return 0
}

// tunnelPing opens one tunnel and sends "ping" through it.
func tunnelPing(proxy, target string) string {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangGuard))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return "refused: " + err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	io.WriteString(c, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
		return fmt.Sprintf("echo %q: %v", b, err)
	}
	return "ok"
}

// helperHold connects to addr, prints "held", and keeps the connection
// until stdin ends.
func helperHold(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close()
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// helper is a child process running the test binary as a helper, in a
// process group of its own.
type helper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	// lines carries the helper's output lines; the reader goroutine ends
	// when the helper's stdout closes. Capacity 16: a helper prints one
	// line per request, and tests read each.
	lines chan string
}

// startHelper starts a helper in mode with extra environment variables and
// stops it when the test ends.
func startHelper(t testing.TB, mode string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, in: in, lines: make(chan string, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(h.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return h
}

// pid is the helper's pid, which is also its process group.
func (h *helper) pid() int { return h.cmd.Process.Pid }

// line waits for the helper's next output line.
func (h *helper) line(t testing.TB) string {
	t.Helper()
	select {
	case s, ok := <-h.lines:
		if !ok {
			t.Fatal("helper ended")
		}
		return s
	case <-time.After(hangGuard):
		t.Fatal("helper did not answer")
	}
	return ""
}

// ping asks a "connect" helper for one tunnel and returns its result.
func (h *helper) ping(t testing.TB) string {
	t.Helper()
	if _, err := io.WriteString(h.in, "go\n"); err != nil {
		t.Fatal(err)
	}
	return h.line(t)
}

// selfPing opens a tunnel from the test process itself.
func selfPing(l *Listener, target string) string { return tunnelPing(l.Addr(), target) }

// notOwner is the event of a refused connection.
var notOwner = Event{Session: "sess-1", Rule: RuleNotOwner, Reason: ReasonNotOwner, Time: testNow}

func TestOwnerCheck(t *testing.T) {
	s := startEcho(t, false)
	p, l, rec, hp := echoProxy(t, s, Config{})
	env := func(l *Listener) []string { return []string{"SHOJI_PROXY=" + l.Addr(), "SHOJI_TARGET=" + hp} }
	a := startHelper(t, "connect", env(l)...)
	b := startHelper(t, "connect", env(l)...)

	t.Run("before SetOwner, this process and its children", func(t *testing.T) {
		if got := a.ping(t); got != "ok" {
			t.Errorf("child: %s", got)
		}
		if got := selfPing(l, hp); got != "ok" {
			t.Errorf("this process: %s", got)
		}
		for _, ev := range rec.take() {
			if !ev.Allow {
				t.Errorf("unexpected deny %+v", ev)
			}
		}
	})

	t.Run("before SetOwner, other processes", func(t *testing.T) {
		// As if the broker were b: neither the test process nor a is one
		// of its descendants.
		l2, err := p.OpenWith("sess-1", ListenerOptions{ancestor: b.pid()})
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		a2 := startHelper(t, "connect", env(l2)...)
		if got := a2.ping(t); !strings.HasPrefix(got, "refused") {
			t.Errorf("a stranger's connection: %s", got)
		}
		if got := selfPing(l2, hp); !strings.HasPrefix(got, "refused") {
			t.Errorf("the test process, not b's descendant: %s", got)
		}
		diffEvents(t, []Event{notOwner, notOwner}, rec.take())
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n != 2 {
			t.Errorf("echo server saw %d connections, want the 2 allowed before", n)
		}
	})

	t.Run("after SetOwner", func(t *testing.T) {
		l.SetOwner(a.pid())
		if got := a.ping(t); got != "ok" {
			t.Errorf("owner: %s", got)
		}
		if got := b.ping(t); !strings.HasPrefix(got, "refused") {
			t.Errorf("another group: %s", got)
		}
		if got := selfPing(l, hp); !strings.HasPrefix(got, "refused") {
			t.Errorf("the broker process itself: %s", got)
		}
		evs := rec.take()
		if len(evs) != 3 || !evs[0].Allow {
			t.Fatalf("events %+v, want one allow and two denies", evs)
		}
		diffEvents(t, []Event{notOwner, notOwner}, evs[1:])
	})

	t.Run("SetOwner with no group refuses all", func(t *testing.T) {
		l3, err := p.OpenWith("sess-1", ListenerOptions{OwnerPGID: a.pid()})
		if err != nil {
			t.Fatal(err)
		}
		defer l3.Close()
		a3 := startHelper(t, "connect", env(l3)...)
		if got := a3.ping(t); !strings.HasPrefix(got, "refused") {
			// a3 is a new process with a group of its own, not a's.
			t.Errorf("a3 on a listener owned by a: %s", got)
		}
		l3.SetOwner(a3.pid())
		if got := a3.ping(t); got != "ok" {
			t.Errorf("a3 as owner: %s", got)
		}
		l3.SetOwner(0)
		if got := a3.ping(t); !strings.HasPrefix(got, "refused") {
			t.Errorf("after SetOwner(0): %s", got)
		}
		rec.take()
	})
}

func TestSetOwnerCutsEarlierConnections(t *testing.T) {
	s := startEcho(t, false)
	_, l, rec, hp := echoProxy(t, s, Config{})
	a := startHelper(t, "connect", "SHOJI_PROXY="+l.Addr(), "SHOJI_TARGET="+hp)
	// The test process opens a tunnel while no owner is set.
	resp, _, c, br := connect(t, l, hp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	roundTrip(t, c, br, "ping")
	l.SetOwner(a.pid())
	expectCut(t, br)
	s.waitClosed(t)
	if got := a.ping(t); got != "ok" {
		t.Errorf("owner after the sweep: %s", got)
	}
	for _, ev := range rec.take() {
		if !ev.Allow {
			t.Errorf("unexpected deny %+v", ev)
		}
	}
}

func TestLookupPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := startHelper(t, "hold", "SHOJI_PROXY="+ln.Addr().String())
	if got := h.line(t); got != "held" {
		t.Fatalf("helper: %s", got)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local, remote := addrPortOf(conn.LocalAddr()), addrPortOf(conn.RemoteAddr())
	self := os.Getpid()
	// A process that is neither the holder nor one of its ancestors.
	other := startHelper(t, "connect").pid()

	ino, err := diagInode(remote, local)
	if err != nil {
		t.Fatalf("sock_diag: %v", err)
	}
	if pino, err := procNetInode(remote, local); err != nil || pino != ino {
		t.Fatalf("/proc/net/tcp: inode %d, %v; sock_diag said %d", pino, err, ino)
	}
	if _, err := procNetInode(netip.MustParseAddrPort("127.0.0.1:1"), local); !errors.Is(err, errNoSocket) {
		t.Errorf("/proc/net/tcp for no socket: %v", err)
	}
	if _, err := diagInode(netip.MustParseAddrPort("127.0.0.1:1"), local); err == nil {
		t.Error("sock_diag found a socket that does not exist")
	}

	for _, tt := range []struct {
		name            string
		owner, ancestor int
		hint            int
		want            error
	}{
		{"owner", h.pid(), self, 0, nil},
		{"owner with hint", h.pid(), self, h.pid(), nil},
		{"owner with a wrong hint", h.pid(), self, self, nil},
		{"other group", self, self, 0, errOtherGroup},
		{"other group, hint at the holder", syscall.Getpgrp(), self, h.pid(), errOtherGroup},
		{"descendant", 0, self, 0, nil},
		{"descendant with hint", 0, self, h.pid(), nil},
		{"the ancestor itself", 0, h.pid(), 0, nil},
		{"not a descendant", 0, other, 0, errNotDescendant},
		{"not a descendant, hint at the holder", 0, other, h.pid(), errNotDescendant},
		{"refuse all", -1, self, 0, errRefuseAll},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := lookupPeer(local, remote, tt.owner, tt.ancestor, tt.hint)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("lookupPeer = %+v, %v; want %v", pr, err, tt.want)
				}
				return
			}
			if err != nil || pr.pid != h.pid() || pr.pgid != h.pid() {
				t.Fatalf("lookupPeer = %+v, %v; want the helper %d", pr, err, h.pid())
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want procStat
		ok   bool
	}{
		{"12 (chromium) S 1 12 12 0", procStat{12, 1, 12}, true},
		{"13 (a) b (c) R 7 9 9", procStat{13, 7, 9}, true},
		{"14 (x)", procStat{}, false},
		{"15 (x) S y 3", procStat{}, false},
	} {
		var pid int
		fmt.Sscan(tt.in, &pid)
		got, ok := parseProcStat(pid, []byte(tt.in))
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseProcStat(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkPeerLookup measures what the owner check costs per accepted
// connection: finding the client socket's inode, and the holder among
// the candidates, for a connection held by a child process in its own
// group (as a browser's network process is) and by this process.
func BenchmarkPeerLookup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	h := startHelper(b, "hold", "SHOJI_PROXY="+ln.Addr().String())
	if got := h.line(b); got != "held" {
		b.Fatalf("helper: %s", got)
	}
	child, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer child.Close()
	own, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer own.Close()
	ownSrv, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer ownSrv.Close()
	self := os.Getpid()
	cl, cr := addrPortOf(child.LocalAddr()), addrPortOf(child.RemoteAddr())
	sl, sr := addrPortOf(ownSrv.LocalAddr()), addrPortOf(ownSrv.RemoteAddr())
	procs, _ := scanProcs()
	b.Logf("%d processes", len(procs))

	for _, bb := range []struct {
		name string
		fn   func() error
	}{
		{"inode/sock_diag", func() error { _, err := diagInode(cr, cl); return err }},
		{"inode/proc_net_tcp", func() error { _, err := procNetInode(cr, cl); return err }},
		{"owner/hint", func() error { _, err := lookupPeer(cl, cr, h.pid(), self, h.pid()); return err }},
		{"owner/scan", func() error { _, err := lookupPeer(cl, cr, h.pid(), self, 0); return err }},
		{"owner/stranger", func() error {
			_, err := lookupPeer(sl, sr, h.pid(), self, h.pid())
			if errors.Is(err, errOtherGroup) {
				return nil
			}
			return fmt.Errorf("stranger: %v", err)
		}},
		{"descendant/hint", func() error { _, err := lookupPeer(cl, cr, 0, self, h.pid()); return err }},
		{"descendant/scan", func() error { _, err := lookupPeer(cl, cr, 0, self, 0); return err }},
		{"descendant/self", func() error { _, err := lookupPeer(sl, sr, 0, self, 0); return err }},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				if err := bb.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
