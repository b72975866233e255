package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
)

// chromiumPath is the browser the tests use, both as the broker's isolated
// browser and as the clinician's viewer.
func chromiumPath() string {
	if p := os.Getenv("SHOJI_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/lib/chromium/chromium"
}

// requireChromium fails (SHOJI_REQUIRE_DEPS=1) or skips when Chromium is
// missing.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath()); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("Chromium not found at %s (SHOJI_REQUIRE_DEPS=1): %v", chromiumPath(), err)
		}
		t.Skipf("Chromium not found at %s", chromiumPath())
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// broker is a running shoji broker in demo mode with real Chromium.
type brokerUnderTest struct {
	srv      *broker.Server
	url      string
	data     string
	user, pw string
	log      *syncBuffer
	out      *syncBuffer
	stop     func()
}

// startBroker starts a demo broker on a loopback port.
func startBroker(t *testing.T, mod func(*broker.Config)) *brokerUnderTest {
	t.Helper()
	return startBrokerWith(t, mod, nil)
}

// startBrokerWith is startBroker with extra Chromium flags for the
// isolated browsers.
func startBrokerWith(t *testing.T, mod func(*broker.Config), chromiumFlags []string) *brokerUnderTest {
	t.Helper()
	requireChromium(t)
	data := t.TempDir()
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = data
	cfg.Demo = true
	cfg.Chromium = chromiumPath()
	if mod != nil {
		mod(&cfg)
	}
	logs, out := &syncBuffer{}, &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := broker.New(ctx, cfg, broker.Options{Logger: log, Out: out, ChromiumFlags: chromiumFlags})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	pw, err := srv.DemoLogin()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	b := &brokerUnderTest{srv: srv, url: srv.Config().PublicURL, data: data, user: broker.DemoUser, pw: pw, log: logs, out: out}
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("broker Run: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("broker did not shut down")
			}
		})
	}
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("broker log:\n%s", tail(logs.String(), 12000))
		}
	})
	waitHTTP(t, "http://"+srv.Addr().String()+"/healthz")
	return b
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// viewer is the clinician's browser tab: a second headless Chromium that
// opens the broker's viewer page, exactly as a terminal would.
type viewer struct {
	t   *testing.T
	ctx context.Context
}

// newViewer starts the clinician's browser with a window of w×h.
func newViewer(t *testing.T, w, h int) *viewer {
	t.Helper()
	return newScaledViewer(t, w, h, 1)
}

// newScaledViewer starts the clinician's browser with a window of w×h CSS
// pixels on a screen with the given scale (Windows' 125 %, 150 %…).
func newScaledViewer(t *testing.T, w, h int, scale float64) *viewer {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath()),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
		chromedp.Flag("force-device-scale-factor", strconv.FormatFloat(scale, 'f', -1, 64)),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start viewer browser: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	return &viewer{t: t, ctx: ctx}
}

// in returns the viewer reporting failures to t (a subtest).
func (v *viewer) in(t *testing.T) *viewer {
	c := *v
	c.t = t
	return &c
}

// do runs actions on the viewer page with a deadline.
func (v *viewer) do(actions ...chromedp.Action[chromedp.Void]) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		v.t.Fatalf("viewer: %v", err)
	}
}

// eval evaluates a JavaScript expression in the viewer page.
func eval[T any](v *viewer, expr string) T {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		v.t.Fatalf("viewer eval %s: %v", expr, err)
	}
	return r
}

// waitFor polls a JavaScript condition in the viewer page.
func (v *viewer) waitFor(what, cond string) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(v.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		state := eval[string](v, `document.body.dataset.state || ''`)
		v.t.Fatalf("viewer: waiting for %s (%s): %v; state %q", what, cond, err, state)
	}
}

// login opens the viewer and logs in, accepting the pledge when asked.
func (v *viewer) login(b *brokerUnderTest) {
	v.t.Helper()
	v.do(
		chromedp.Navigate(b.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form#login`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), b.user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), b.pw),
		chromedp.Click(chromedp.CSS(`form#login button[type=submit]`)),
	)
	const pledgeShown = `!!document.querySelector('#pledge-agree') && document.querySelector('#pledge-agree').offsetParent !== null`
	v.waitFor("pledge or viewer", pledgeShown+` || document.body.dataset.state === 'live'`)
	if eval[bool](v, pledgeShown) {
		v.do(chromedp.Click(chromedp.CSS(`#pledge-agree`)))
	}
	v.waitLive()
}

// waitLive waits until the viewer is live and has drawn a frame.
func (v *viewer) waitLive() {
	v.t.Helper()
	v.waitFor("a live session with a frame", `document.body.dataset.state === 'live' && Number(document.body.dataset.frames || 0) > 0`)
}

// frames returns how many frames the viewer has drawn.
func (v *viewer) frames() int {
	return eval[int](v, `Number(document.body.dataset.frames || 0)`)
}

// waitNewFrames waits until the viewer drew more than n frames.
func (v *viewer) waitNewFrames(n int) {
	v.t.Helper()
	v.waitFor("a new frame", fmt.Sprintf(`Number(document.body.dataset.frames || 0) > %d`, n))
}

// settledCanvas waits until the canvas stops changing (the page has been
// drawn) and returns its fingerprint.
func (v *viewer) settledCanvas() string {
	v.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := v.canvasHash()
	for {
		time.Sleep(300 * time.Millisecond)
		h := v.canvasHash()
		if h == last {
			return h
		}
		if time.Now().After(deadline) {
			v.t.Fatal("the canvas never settled")
		}
		last = h
	}
}

// canvasOrigin returns where the canvas's top-left corner is in the viewer.
func (v *viewer) canvasOrigin() (x, y float64) {
	r := eval[[]float64](v, `(() => { const r = document.getElementById('screen').getBoundingClientRect(); return [r.left, r.top]; })()`)
	return r[0], r[1]
}

// clickRemote clicks the remote page at CSS point (x, y) by clicking the
// viewer's canvas there, as a clinician would.
func (v *viewer) clickRemote(x, y float64) {
	v.t.Helper()
	ox, oy := v.canvasOrigin()
	v.do(chromedp.MouseClickXY(ox+x, oy+y))
}

// pixel returns the RGB of the viewer canvas at CSS point (x, y).
func (v *viewer) pixel(x, y float64) [3]int {
	v.t.Helper()
	p := eval[[]int](v, fmt.Sprintf(`(() => {
		const c = document.getElementById('screen');
		const s = c.width / c.getBoundingClientRect().width;
		const d = c.getContext('2d').getImageData(Math.floor(%g * s), Math.floor(%g * s), 1, 1).data;
		return [d[0], d[1], d[2]];
	})()`, x, y))
	return [3]int{p[0], p[1], p[2]}
}

// canvasHash returns a cheap fingerprint of the canvas pixels.
func (v *viewer) canvasHash() string {
	return eval[string](v, `(() => {
		const c = document.getElementById('screen');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let h = 2166136261;
		for (let i = 0; i < d.length; i += 16) { h = Math.imul(h ^ d[i] ^ (d[i+1] << 8) ^ (d[i+2] << 16), 16777619); }
		return String(h >>> 0);
	})()`)
}

// evaluator is the test hook of the Chromium implementation.
type evaluator interface {
	Evaluate(ctx context.Context, expr string) (json.RawMessage, error)
}

// remoteEval evaluates expr in the active tab of the user's remote browser.
func remoteEval(b *brokerUnderTest, expr string) (json.RawMessage, error) {
	s, ok := b.srv.Sessions().Get(b.user)
	if !ok {
		return nil, fmt.Errorf("%s has no session", b.user)
	}
	br, err := s.Browser()
	if err != nil {
		return nil, fmt.Errorf("remote browser: %w", err)
	}
	ev, ok := br.(evaluator)
	if !ok {
		return nil, fmt.Errorf("browser %T has no Evaluate test hook", br)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return ev.Evaluate(ctx, expr)
}

// remote evaluates JavaScript in the active tab of the user's remote
// browser, through the test hook of the Chromium implementation. The tests
// use it to check what happened in the remote page, never to cause it.
func remote[T any](t *testing.T, b *brokerUnderTest, expr string) T {
	t.Helper()
	var v T
	raw, err := remoteEval(b, expr)
	if err != nil {
		t.Fatalf("remote eval %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("remote eval %s: %v (%s)", expr, err, raw)
	}
	return v
}

// waitRemote polls a JavaScript condition in the remote page.
func waitRemote(t *testing.T, b *brokerUnderTest, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := remoteEval(b, cond)
		if err == nil && string(raw) == "true" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote: waiting for %s (%s): last %s, %v", what, cond, raw, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// remoteCentre returns the CSS-pixel centre of an element of the remote page.
func remoteCentre(t *testing.T, b *brokerUnderTest, selector string) (float64, float64) {
	t.Helper()
	r := remote[[]float64](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); return [r.left + r.width/2, r.top + r.height/2]; })()`, selector))
	return r[0], r[1]
}

// chromiumProcesses lists the processes whose command line mentions dir.
func chromiumProcesses(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmd), dir) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmd[:min(len(cmd), 120)]), "\x00", " "))
		}
	}
	return out
}

// profileDirs lists the profile directories under the broker's data dir.
func profileDirs(t *testing.T, data string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(data, "profiles"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// waitGone waits until no process or profile of the broker's browsers is left.
func waitGone(t *testing.T, data string) {
	t.Helper()
	profiles := filepath.Join(data, "profiles")
	deadline := time.Now().Add(20 * time.Second)
	for {
		procs, dirs := chromiumProcesses(profiles), profileDirs(t, data)
		if len(procs) == 0 && len(dirs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: processes %v, profile dirs %v", procs, dirs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// as returns the broker seen as another user, for remote and waitRemote
// on that user's browser.
func (b *brokerUnderTest) as(user string) *brokerUnderTest {
	c := *b
	c.user = user
	return &c
}
