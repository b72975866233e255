package chrome

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// TestEgressOwner runs a browser through the real egress proxy, with the
// listener owned by the browser's process group from the moment its
// process runs: the browser's own connections (from its network process)
// are served, and a connection from any other process is refused.
func TestEgressOwner(t *testing.T) {
	requireChromium(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<title>via egress</title>hello")
	}))
	t.Cleanup(site.Close)
	ap := netip.MustParseAddrPort(site.Listener.Addr().String())
	target := fmt.Sprintf("%s:%d", siteHost, ap.Port())
	pol, err := egress.NewStaticPolicy([]string{target})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []egress.Event
	proxy, err := egress.New(egress.Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{ap},
		Hosts:      map[string]netip.Addr{siteHost: ap.Addr()},
		OnDecision: func(ev egress.Event) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	l, err := proxy.OpenWith("egress-test", egress.ListenerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	launcher, err := New(Config{ProfileRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pgids := make(chan int, 1) // one call; never blocks the browser
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ib, err := launcher.Launch(ctx, isolation.LaunchOptions{
		SessionID: "egress-test",
		Viewport:  isolation.Viewport{Width: 400, Height: 300, DPR: 1},
		ProxyAddr: l.Addr(),
		ProcessGroup: func(pgid int) {
			l.SetOwner(pgid)
			pgids <- pgid
		},
	})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	b := ib.(*browser)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	if pgid := <-pgids; pgid != b.PID() {
		t.Errorf("ProcessGroup got %d, want the browser's pid %d", pgid, b.PID())
	}

	u := "http://" + target + "/"
	if err := b.Navigate(testCtx(t), u); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the page through the egress proxy", func() bool {
		s := b.State()
		return s.URL == u && s.Title == "via egress"
	})

	// The test process is not the browser.
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u, target)
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Errorf("a stranger got an answer: %s", resp.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	allowed, refused := 0, 0
	for _, ev := range events {
		switch {
		case ev.Allow && ev.Host == siteHost:
			allowed++
		case ev.Rule == egress.RuleNotOwner:
			refused++
		}
	}
	if allowed == 0 || refused != 1 {
		t.Errorf("%d allowed and %d refused connections, want some and 1: %+v", allowed, refused, events)
	}
}

// egressEvents keeps the egress proxy's decisions for a test.
type egressEvents struct {
	mu     sync.Mutex
	events []egress.Event
}

func (e *egressEvents) record(ev egress.Event) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

// wait polls until some event satisfies ok and returns the events up to
// and including the first that does. The deadline only keeps a broken test
// from hanging.
func (e *egressEvents) wait(t *testing.T, what string, ok func(egress.Event) bool) []egress.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		e.mu.Lock()
		for i, ev := range e.events {
			if ok(ev) {
				out := append([]egress.Event(nil), e.events[:i+1]...)
				e.mu.Unlock()
				return out
			}
		}
		all := append([]egress.Event(nil), e.events...)
		e.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; events: %+v", what, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackgroundRequests runs a fresh browser through the real egress
// proxy. Chromium's own services that no flag turns off (the account check
// and the component updater's on-demand check, see QuietFlags) reach the
// proxy at isolation.BackgroundDomain and are reported as the browser's own
// (Background), and until both have spoken the proxy has refused nothing
// else: an idle browser produces no refusal. The window is closed by those
// two events, not by a timer. Then a page asks for the real host of the
// account service, accounts.google.com, and that is an ordinary refusal.
func TestBackgroundRequests(t *testing.T) {
	requireChromium(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<title>idle</title>a page that asks for nothing")
	}))
	t.Cleanup(site.Close)
	ap := netip.MustParseAddrPort(site.Listener.Addr().String())
	target := fmt.Sprintf("%s:%d", siteHost, ap.Port())
	pol, err := egress.NewStaticPolicy([]string{target})
	if err != nil {
		t.Fatal(err)
	}
	var rec egressEvents
	proxy, err := egress.New(egress.Config{
		Policy:     pol,
		AllowAddrs: []netip.AddrPort{ap},
		Hosts:      map[string]netip.Addr{siteHost: ap.Addr()},
		OnDecision: rec.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	l, err := proxy.OpenWith("background-test", egress.ListenerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	launcher, err := New(Config{ProfileRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := "http://" + target + "/"
	ib, err := launcher.Launch(ctx, isolation.LaunchOptions{
		SessionID:    "background-test",
		Viewport:     isolation.Viewport{Width: 400, Height: 300, DPR: 1},
		ProxyAddr:    l.Addr(),
		StartURL:     u,
		ProcessGroup: l.SetOwner,
	})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	b := ib.(*browser)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Close(ctx)
	})

	spoke := map[string]bool{}
	for _, svc := range []string{"accounts", "update"} {
		host := svc + "." + isolation.BackgroundDomain
		for _, ev := range rec.wait(t, "the browser's own request to "+host, func(ev egress.Event) bool { return ev.Host == host }) {
			switch {
			case ev.Background:
				spoke[ev.Host] = true
				if ev.Allow || ev.Rule != egress.RuleBackground {
					t.Errorf("background request not refused as the browser's own: %+v", ev)
				}
			case !ev.Allow:
				t.Errorf("an idle browser had a request refused: %+v", ev)
			}
		}
	}
	if len(spoke) != 2 {
		t.Errorf("background requests seen: %v", spoke)
	}

	eventually(t, "the start page", func() bool { return b.State().Title == "idle" })
	eval[string](t, b, `fetch('https://accounts.google.com/ListAccounts', {method: 'POST', mode: 'no-cors'}).then(() => 'answered', e => 'refused'), 'asked'`)
	got := rec.wait(t, "the page's refused request to accounts.google.com", func(ev egress.Event) bool { return ev.Host == "accounts.google.com" })
	if ev := got[len(got)-1]; ev.Allow || ev.Background || ev.Rule != egress.RuleDefaultDeny {
		t.Errorf("the page's request: %+v, want an ordinary refusal (rule %s)", ev, egress.RuleDefaultDeny)
	}
}
