package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/isolation/netns"
)

// requireNetNS skips where network namespaces cannot be used, except as
// root under SHOJI_REQUIRE_DEPS=1 (CI), where it fails.
func requireNetNS(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" && os.Geteuid() == 0 {
			t.Fatalf("network namespaces required (SHOJI_REQUIRE_DEPS=1, root): %v", err)
		}
		t.Skipf("network namespaces: %v", err)
	}
}

// ourNamespaces lists the namespaces this test process's broker made.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	prefix := netns.Prefix + strconv.Itoa(os.Getpid()) + "-"
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitNoNamespaces waits until the broker's namespaces are all removed.
func waitNoNamespaces(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(ourNamespaces(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("network namespaces left behind: %v", ourNamespaces(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// netnsID returns the identity of the network namespace of process pid
// ("self" for this one).
func netnsID(t *testing.T, pid string) string {
	t.Helper()
	id, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// dialFromNamespaceOf connects to address from the network namespace of
// process pid, as any process of the browser's could, and returns the
// dial's error. Failing to enter the namespace fails the test.
func dialFromNamespaceOf(t *testing.T, pid int, address string) error {
	t.Helper()
	type result struct{ enter, dial error }
	res := make(chan result, 1) // one send; never blocks
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			res <- result{enter: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			res <- result{enter: err}
			return
		}
		c, err := net.DialTimeout("tcp", address, 5*time.Second)
		if err == nil {
			c.Close()
		}
		res <- result{dial: err}
	}()
	r := <-res
	if r.enter != nil {
		t.Fatalf("enter the namespace of process %d: %v", pid, r.enter)
	}
	return r.dial
}

// proxyFlag returns the --proxy-server address on process pid's command
// line.
func proxyFlag(t *testing.T, pid int) string {
	t.Helper()
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Split(string(cmd), "\x00") {
		if v, ok := strings.CutPrefix(a, "--proxy-server="); ok {
			v = strings.TrimPrefix(v, "http://")
			return v
		}
	}
	t.Fatalf("no --proxy-server flag on the browser's command line %q", cmd)
	return ""
}

// TestBrowserInOwnNetworkNamespace runs the broker with netns on: the
// browser runs in a namespace of its own that holds only loopback, where
// its egress listener is the one thing to connect to; the allowed demo site
// still loads through the proxy; and the namespace is removed when the
// browser crashes, when the clinician logs out and when the broker stops.
func TestBrowserInOwnNetworkNamespace(t *testing.T) {
	requireNetNS(t)
	if n := ourNamespaces(t); len(n) > 0 {
		t.Fatalf("namespaces exist before the test: %v", n)
	}
	b := startBroker(t, func(c *broker.Config) { c.NetNS = true })
	v := newViewer(t, 1024, 700)
	v.login(b)
	waitRemote(t, b, "the demo start page", `location.pathname === '/' && document.readyState === 'complete' && document.body.innerText.length > 0`)
	profiles := filepath.Join(b.data, "profiles")
	_, brokerPort, _ := net.SplitHostPort(b.srv.Addr().String())
	demo := demoPort(t, b)

	pid := mainBrowserPID(t, profiles)
	names := ourNamespaces(t)
	if len(names) != 1 {
		t.Fatalf("namespaces for one session: %v", names)
	}
	browserNS := netnsID(t, strconv.Itoa(pid))
	if browserNS == netnsID(t, "self") {
		t.Fatalf("the browser (pid %d) runs in the broker's network namespace %s", pid, browserNS)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+names[0], &st); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", st.Ino); browserNS != want {
		t.Errorf("browser namespace %s, want %s (%s)", browserNS, want, names[0])
	}

	t.Run("only loopback in the namespace", func(t *testing.T) {
		out, err := exec.Command("ip", "-n", names[0], "-o", "link").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link: %v: %s", err, out)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], " lo:") {
			t.Errorf("links in the browser's namespace: %q", out)
		}
	})

	t.Run("the broker and the demo site are out of reach of the browser's processes", func(t *testing.T) {
		// The egress listener is there: the dials below fail for want of a
		// way out, not for want of a namespace.
		if proxy := proxyFlag(t, pid); dialFromNamespaceOf(t, pid, proxy) != nil {
			t.Fatalf("the egress listener %s is not reachable in the browser's namespace", proxy)
		}
		for _, addr := range []string{"127.0.0.1:" + brokerPort, "127.0.0.1:" + demo, "[::1]:" + brokerPort, "10.0.0.1:80"} {
			if err := dialFromNamespaceOf(t, pid, addr); err == nil {
				t.Errorf("a process in the browser's namespace connected to %s", addr)
			}
		}
	})

	t.Run("the page reaches the allowed site only, through the proxy", func(t *testing.T) {
		ok := remote[string](t, b, `fetch('/form').then(r => String(r.status), e => 'error: ' + e)`)
		if ok != "200" {
			t.Errorf("fetch of the allowed demo site: %s", ok)
		}
		got := remote[string](t, b, fmt.Sprintf(`fetch('http://127.0.0.1:%s/healthz').then(r => r.text().then(s => r.status + ' ' + s), e => 'error')`, brokerPort))
		if strings.HasPrefix(got, "200") {
			t.Errorf("the page reached the broker's port: %q", got)
		}
	})

	t.Run("a crash removes the namespace, a restart makes a new one", func(t *testing.T) {
		v := v.in(t)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		v.waitFor("the crash to be reported", `document.body.dataset.state === 'crashed' && !document.getElementById('restart').hidden`)
		waitGone(t, b.data)
		waitNoNamespaces(t)
		v.do(chromedp.Click(chromedp.CSS(`#restart`)))
		v.waitFor("a live session again", `document.body.dataset.state === 'live'`)
		waitRemote(t, b, "the start page in the new browser", `location.pathname === '/'`)
		now := ourNamespaces(t)
		if len(now) != 1 || now[0] == names[0] {
			t.Fatalf("namespaces after restart: %v (before: %v)", now, names)
		}
		if id := netnsID(t, strconv.Itoa(mainBrowserPID(t, profiles))); id == netnsID(t, "self") {
			t.Errorf("the restarted browser runs in the broker's namespace")
		}
	})

	t.Run("logout removes the namespace", func(t *testing.T) {
		v := v.in(t)
		v.do(chromedp.Click(chromedp.CSS(`#logout`)))
		v.waitFor("the login form", `!!document.querySelector('form#login') && document.querySelector('form#login').offsetParent !== null`)
		waitGone(t, b.data)
		waitNoNamespaces(t)
	})

	t.Run("broker shutdown removes the namespaces", func(t *testing.T) {
		v := v.in(t)
		v.login(b)
		if len(ourNamespaces(t)) != 1 {
			t.Fatalf("namespaces after a new login: %v", ourNamespaces(t))
		}
		b.stop()
		waitGone(t, b.data)
		waitNoNamespaces(t)
	})
}
