package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
)

// mainBrowserPID finds the remote browser's main process: the Chromium
// process with the profile on its command line and no --type= flag.
func mainBrowserPID(t *testing.T, profiles string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		s := string(cmd)
		if strings.Contains(s, profiles) && !strings.Contains(s, "--type=") {
			return pid
		}
	}
	t.Fatalf("no main browser process under %s", profiles)
	return 0
}

// TestCrashIsReportedAndRestartable kills the remote browser and restarts it
// from the viewer, without logging in again.
func TestCrashIsReportedAndRestartable(t *testing.T) {
	b := startBroker(t, nil)
	v := newViewer(t, 1280, 720)
	v.login(b)
	profiles := filepath.Join(b.data, "profiles")

	if err := syscall.Kill(mainBrowserPID(t, profiles), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	v.waitFor("the crash to be reported", `document.body.dataset.state === 'crashed' && !document.getElementById('restart').hidden`)
	waitGone(t, b.data) // the crashed browser's processes and profile are cleaned up

	n := v.frames()
	v.do(chromedp.Click(chromedp.CSS(`#restart`)))
	v.waitFor("a live session again", `document.body.dataset.state === 'live'`)
	v.waitNewFrames(n)
	waitRemote(t, b, "the start page in the new browser", `location.pathname === '/'`)
	if got := len(chromiumProcesses(profiles)); got == 0 {
		t.Error("no browser process after restart")
	}
}

// TestViewerReconnectsAfterNetworkDrop cuts the viewer's connection in the
// network and checks it comes back by itself to the same remote page.
func TestViewerReconnectsAfterNetworkDrop(t *testing.T) {
	fwd := newForwarder(t)
	b := startBroker(t, func(c *broker.Config) { c.PublicURL = "http://" + fwd.addr() })
	fwd.setTarget(b.srv.Addr().String())
	b.url = "http://" + fwd.addr()
	v := newViewer(t, 1280, 720)
	v.login(b)
	navigate(t, v, b, "/form")
	sess, _ := b.srv.Sessions().Get(b.user)

	fwd.cut()
	v.waitFor("the viewer to notice the drop", `document.body.dataset.state === 'reconnecting' || document.body.dataset.state === 'connecting'`)
	n := v.frames()
	v.waitFor("the viewer to reconnect", `document.body.dataset.state === 'live'`)
	v.waitNewFrames(n) // a key frame arrives at once on reconnect
	v.waitFor("the same page", `document.getElementById('address').value.endsWith('/form')`)
	if s2, ok := b.srv.Sessions().Get(b.user); !ok || s2 != sess {
		t.Error("the drop started a new session")
	}
}

// forwarder is a TCP relay between the viewer and the broker whose
// connections the test can cut, as a network drop would.
type forwarder struct {
	t      *testing.T
	l      net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
}

func newForwarder(t *testing.T) *forwarder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{t: t, l: l}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		f.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.getTarget())
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	return f
}

func (f *forwarder) addr() string { return f.l.Addr().String() }

func (f *forwarder) setTarget(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = addr
}

func (f *forwarder) getTarget() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.target
}

// cut closes every relayed connection; new ones are still accepted.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// TestSoakStartStop starts and ends a real session 50 times and checks that
// no Chromium process and no profile directory is left behind.
func TestSoakStartStop(t *testing.T) {
	b := startBroker(t, nil)
	m := b.srv.Sessions()
	vp := isolation.Viewport{Width: 800, Height: 600, DPR: 1}
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		s, err := m.Attach(ctx, session.Owner{User: "soak", Role: "clinician"}, vp)
		cancel()
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := s.Browser(); err != nil {
			t.Fatalf("cycle %d: browser not live: %v", i, err)
		}
		s.End(session.ReasonLogout)
	}
	waitGone(t, b.data)
}
