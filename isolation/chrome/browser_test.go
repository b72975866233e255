package chrome

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// siteHost is the name the test pages are served under. It resolves
// nowhere: only the test proxy knows it.
const siteHost = "site.test"

// pages are the test site's pages.
var pages = map[string]string{
	"/color": `<!doctype html><title>color</title>
<body style="margin:0;background:rgb(255,0,0)">
<div style="position:absolute;left:0;top:0;width:50px;height:50px;background:rgb(0,0,255)"></div>`,

	"/link": `<!doctype html><title>link</title><body style="margin:0">
<a href="/target" style="position:absolute;left:0;top:0;width:200px;height:100px;display:block">go</a>`,

	"/target": `<!doctype html><title>target</title><body>target`,

	"/animate": `<!doctype html><title>animate</title><body style="margin:0">
<style>@keyframes m { from { transform: translateX(0) } to { transform: translateX(300px) } }</style>
<div style="width:80px;height:80px;background:rgb(0,0,255);animation:m 1s linear infinite alternate"></div>`,

	"/scroll": `<!doctype html><title>scroll</title><body style="margin:0">
<div style="height:5000px;background:linear-gradient(white,black)"></div>`,

	"/form": `<!doctype html><title>form</title><body style="margin:0">
<form action="/target" method="get">
<input id="a" name="a" style="position:absolute;left:0;top:0;width:300px;height:40px">
<input id="b" name="b" style="position:absolute;left:0;top:100px;width:300px;height:40px">
<input type="submit" style="position:absolute;left:0;top:200px">
</form>
<script>
window.events = [];
const a = document.getElementById('a');
for (const t of ['compositionstart', 'compositionupdate', 'compositionend'])
  a.addEventListener(t, e => window.events.push(t));
</script>`,

	"/popup": `<!doctype html><title>popup</title><body style="margin:0">
<a id="blank" href="/target" target="_blank"
   style="position:absolute;left:0;top:0;width:200px;height:100px;display:block">blank</a>
<button id="open" onclick="window.open('/color')"
   style="position:absolute;left:0;top:200px;width:200px;height:100px">open</button>`,

	"/leave": `<!doctype html><title>leave</title><body style="margin:0">
<script>window.addEventListener('beforeunload', e => { e.preventDefault(); e.returnValue = ''; });</script>
<input style="position:absolute;left:0;top:0;width:200px;height:50px">`,

	"/dialogs": `<!doctype html><title>dialogs</title><body style="margin:0">
<button onclick="alert('hello'); window.result = 'alerted'"
   style="position:absolute;left:0;top:0;width:200px;height:50px">alert</button>
<button onclick="window.result = confirm('sure?')"
   style="position:absolute;left:0;top:100px;width:200px;height:50px">confirm</button>
<button onclick="window.result = prompt('name?', 'def')"
   style="position:absolute;left:0;top:200px;width:200px;height:50px">prompt</button>`,
}

// newSite serves pages.
func newSite(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// requireChromium skips the test when Chromium is missing, or fails it when
// SHOJI_REQUIRE_DEPS=1.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultExecPath); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("chromium is required: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
}

// recorder is an Observer that keeps what it gets.
type recorder struct {
	mu       sync.Mutex
	frames   int
	last     isolation.Frame
	state    isolation.State
	states   int
	dialogs  []isolation.Dialog
	closed   []string
	navs     []string
	blocked  []blockedReport
	access   []accessReport
	observer isolation.Observer
}

// blockedReport is one call of Observer.Blocked.
type blockedReport struct {
	tab, url string
	d        isolation.NavDecision
}

// accessReport is one call of Observer.AccessRequested.
type accessReport struct{ tab, host, url string }

// blockedReports returns the Blocked calls so far.
func (r *recorder) blockedReports() []blockedReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]blockedReport(nil), r.blocked...)
}

// accessReports returns the AccessRequested calls so far.
func (r *recorder) accessReports() []accessReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]accessReport(nil), r.access...)
}

func newRecorder() *recorder {
	r := &recorder{}
	r.observer = isolation.Observer{
		Frame: func(f isolation.Frame) {
			r.mu.Lock()
			r.frames++
			r.last = f
			r.mu.Unlock()
		},
		State: func(s isolation.State) {
			r.mu.Lock()
			r.state = s
			r.states++
			r.mu.Unlock()
		},
		Dialog: func(d isolation.Dialog) {
			r.mu.Lock()
			r.dialogs = append(r.dialogs, d)
			r.mu.Unlock()
		},
		DialogClosed: func(id string) {
			r.mu.Lock()
			r.closed = append(r.closed, id)
			r.mu.Unlock()
		},
		Navigated: func(tab, u string) {
			r.mu.Lock()
			r.navs = append(r.navs, u)
			r.mu.Unlock()
		},
		Blocked: func(tab, u string, d isolation.NavDecision) {
			r.mu.Lock()
			r.blocked = append(r.blocked, blockedReport{tab, u, d})
			r.mu.Unlock()
		},
		AccessRequested: func(tab, host, u string) {
			r.mu.Lock()
			r.access = append(r.access, accessReport{tab, host, u})
			r.mu.Unlock()
		},
	}
	return r
}

// frameCount returns how many frames arrived so far.
func (r *recorder) frameCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames
}

// lastState returns the last state reported.
func (r *recorder) lastState() isolation.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// eventually polls cond until it holds, and fails the test after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFrame waits for a frame that arrived after the first n and satisfies
// ok, and returns it decoded.
func waitFrame(t *testing.T, r *recorder, n int, ok func(image.Image) bool) image.Image {
	t.Helper()
	var img image.Image
	var lastBad string
	defer func() {
		if img == nil {
			t.Logf("last frame that did not match: %s", lastBad)
		}
	}()
	eventually(t, "a matching frame", func() bool {
		r.mu.Lock()
		count, f := r.frames, r.last
		r.mu.Unlock()
		if count <= n {
			return false
		}
		m, err := jpeg.Decode(bytes.NewReader(f.JPEG))
		if err != nil {
			t.Fatalf("decode frame: %v", err)
		}
		if m.Bounds().Dx() != f.Width || m.Bounds().Dy() != f.Height {
			t.Fatalf("frame says %dx%d, image is %v", f.Width, f.Height, m.Bounds())
		}
		if ok != nil && !ok(m) {
			lastBad = fmt.Sprintf("%v, (10,10)=%v, (w-10,h-10)=%v", m.Bounds(), m.At(10, 10), m.At(m.Bounds().Dx()-10, m.Bounds().Dy()-10))
			return false
		}
		img = m
		return true
	})
	return img
}

// near reports whether c is within a JPEG's error of want.
func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) bool {
		v := int(x>>8) - int(y)
		return v > -48 && v < 48
	}
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

// fixture is a browser on the test site through the test proxy.
type fixture struct {
	b     *browser
	rec   *recorder
	proxy *testProxy
	base  string
	root  string
}

// secureHost is the name the test site is served under over HTTPS. The
// test server's certificate names it; the browser accepts the certificate
// because its key is on the --ignore-certificate-errors-spki-list.
const secureHost = "example.com"

// launchFixture starts a browser for a test and closes it at the end. edit,
// if any, changes the Config.
func launchFixture(t *testing.T, v isolation.Viewport, start string, edit ...func(*Config)) *fixture {
	t.Helper()
	return launchFixtureWith(t, v, start, fixtureSetup{config: edit})
}

// fixtureSetup changes how launchFixtureWith starts a browser.
type fixtureSetup struct {
	// config edits the Config.
	config []func(*Config)
	// site, if set, serves siteHost instead of the pages.
	site http.Handler
	// hosts are more host:port names the test proxy serves, and the
	// addresses it sends them to.
	hosts map[string]string
	// aliases are more host names the site is served under, on port 80.
	aliases []string
	// options edits the LaunchOptions.
	options func(*isolation.LaunchOptions)
}

// launchFixtureWith starts a browser for a test as setup says and closes
// it at the end.
func launchFixtureWith(t *testing.T, v isolation.Viewport, start string, setup fixtureSetup) *fixture {
	t.Helper()
	requireChromium(t)
	var site *httptest.Server
	if setup.site != nil {
		site = httptest.NewServer(setup.site)
		t.Cleanup(site.Close)
	} else {
		site = newSite(t)
	}
	tlsSite := httptest.NewTLSServer(site.Config.Handler)
	t.Cleanup(tlsSite.Close)
	hosts := map[string]string{
		siteHost + ":80":    site.Listener.Addr().String(),
		secureHost + ":443": tlsSite.Listener.Addr().String(),
	}
	for k, v := range setup.hosts {
		hosts[k] = v
	}
	for _, a := range setup.aliases {
		hosts[a+":80"] = site.Listener.Addr().String()
	}
	proxy := newTestProxy(t, hosts)
	root := t.TempDir()
	cfg := Config{ProfileRoot: root, DialogTimeout: time.Minute}
	for _, e := range setup.config {
		e(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A flag that New refuses, for the test's own certificate only.
	spki := sha256.Sum256(tlsSite.Certificate().RawSubjectPublicKeyInfo)
	l.cfg.ExtraFlags = append(l.cfg.ExtraFlags, "--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]))
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := isolation.LaunchOptions{
		SessionID: "test",
		Viewport:  v,
		StartURL:  start,
		ProxyAddr: proxy.addr(),
		Observer:  rec.observer,
	}
	if setup.options != nil {
		setup.options(&opts)
	}
	ib, err := l.Launch(ctx, opts)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	b := ib.(*browser)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &fixture{b: b, rec: rec, proxy: proxy, base: "http://" + siteHost, root: root}
}

// ctx returns a context for one call of the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eval evaluates expr in the active tab.
//
// A page that is navigating answers with a transient error (its context is
// gone before the next one exists); eval asks again for a few seconds then.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.tabs.mu.Lock()
		tb := b.tabs.active
		b.tabs.mu.Unlock()
		v, err := chromedp.Evaluate[T](expr)(testCtx(t), tb.sess)
		if err == nil {
			return v
		}
		if !navigating(err) || time.Now().After(deadline) {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// open navigates the active tab to path on the test site and waits until
// it has loaded.
func (f *fixture) open(t *testing.T, path string) {
	t.Helper()
	u := f.base + path
	if err := f.b.Navigate(testCtx(t), u); err != nil {
		t.Fatalf("navigate %s: %v", u, err)
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", last)
		}
	}()
	eventually(t, "load of "+u, func() bool {
		s := f.b.State()
		ready, href := eval[string](t, f.b, "document.readyState"), eval[string](t, f.b, "location.href")
		last = fmt.Sprintf("state %+v, readyState %s, location %s, dialogs %+v", s, ready, href, f.b.PendingDialogs())
		return s.URL == u && !s.Loading && ready == "complete" && href == u
	})
}

// click presses and releases the left button at x, y.
func (f *fixture) click(t *testing.T, x, y float64) {
	t.Helper()
	for _, a := range []isolation.MouseAction{isolation.MouseMove, isolation.MouseDown, isolation.MouseUp} {
		ev := isolation.MouseEvent{Action: a, X: x, Y: y, Button: isolation.ButtonLeft, ClickCount: 1}
		switch a {
		case isolation.MouseMove:
			ev.Button, ev.ClickCount = isolation.ButtonNone, 0
		case isolation.MouseDown:
			ev.Buttons = 1
		}
		if err := f.b.Mouse(testCtx(t), ev); err != nil {
			t.Fatalf("mouse %s: %v", a, err)
		}
	}
}

// key presses and releases one key.
func (f *fixture) key(t *testing.T, key, code string, keyCode, mods int) {
	t.Helper()
	for _, a := range []isolation.KeyAction{isolation.KeyDown, isolation.KeyUp} {
		ev := isolation.KeyEvent{Action: a, Key: key, Code: code, KeyCode: keyCode, Modifiers: mods}
		if err := f.b.Key(testCtx(t), ev); err != nil {
			t.Fatalf("key %s %s: %v", a, key, err)
		}
	}
}

// typeText types s key by key as a US keyboard would.
func (f *fixture) typeText(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		key, code, keyCode, mods := usKey(r)
		if mods != 0 {
			f.keyEvent(t, isolation.KeyDown, "Shift", "ShiftLeft", 16, isolation.ModShift)
		}
		f.key(t, key, code, keyCode, mods)
		if mods != 0 {
			f.keyEvent(t, isolation.KeyUp, "Shift", "ShiftLeft", 16, 0)
		}
	}
}

func (f *fixture) keyEvent(t *testing.T, a isolation.KeyAction, key, code string, keyCode, mods int) {
	t.Helper()
	if err := f.b.Key(testCtx(t), isolation.KeyEvent{Action: a, Key: key, Code: code, KeyCode: keyCode, Modifiers: mods}); err != nil {
		t.Fatalf("key %s %s: %v", a, key, err)
	}
}

// usKey describes the key that types r on a US keyboard.
func usKey(r rune) (key, code string, keyCode, mods int) {
	switch {
	case r >= 'a' && r <= 'z':
		return string(r), "Key" + strings.ToUpper(string(r)), int(r - 'a' + 'A'), 0
	case r >= 'A' && r <= 'Z':
		return string(r), "Key" + string(r), int(r), isolation.ModShift
	case r >= '0' && r <= '9':
		return string(r), "Digit" + string(r), int(r), 0
	}
	switch r {
	case ' ':
		return " ", "Space", 32, 0
	case ',':
		return ",", "Comma", 188, 0
	case '.':
		return ".", "Period", 190, 0
	case '!':
		return "!", "Digit1", '1', isolation.ModShift
	case '?':
		return "?", "Slash", 191, isolation.ModShift
	}
	panic("usKey: no key for " + string(r))
}

func TestBrowser(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 400, Height: 300, DPR: 2}, "http://"+siteHost+"/color")
	b, rec := f.b, f.rec

	t.Run("Frames", func(t *testing.T) {
		// The browser's real scale factor is the launch's DPR, 2; DPR 1
		// frames are scaled down to the canvas. A viewport larger than the
		// launch's window works too.
		for i, v := range []isolation.Viewport{
			{Width: 400, Height: 300, DPR: 2},
			{Width: 400, Height: 300, DPR: 1},
			{Width: 1000, Height: 700, DPR: 2},
			{Width: 400, Height: 300, DPR: 1},
		} {
			n := 0 // the start page at the launch's viewport
			if i > 0 {
				n = rec.frameCount()
				if err := b.SetViewport(testCtx(t), v); err != nil {
					t.Fatal(err)
				}
			}
			dpr := v.DPR
			w, h := int(float64(v.Width)*dpr), int(float64(v.Height)*dpr)
			waitFrame(t, rec, n, func(m image.Image) bool {
				return m.Bounds().Dx() == w && m.Bounds().Dy() == h &&
					near(m.At(int(10*dpr), int(10*dpr)), color.RGBA{0, 0, 255, 255}) &&
					near(m.At(int(45*dpr), int(45*dpr)), color.RGBA{0, 0, 255, 255}) &&
					near(m.At(int(55*dpr), int(55*dpr)), color.RGBA{255, 0, 0, 255}) &&
					near(m.At(w-int(10*dpr), h-int(10*dpr)), color.RGBA{255, 0, 0, 255})
			})
			if got := eval[float64](t, b, "window.devicePixelRatio"); got != dpr {
				t.Errorf("devicePixelRatio = %v, want %v", got, dpr)
			}
			if got := eval[float64](t, b, "window.innerWidth"); got != float64(v.Width) {
				t.Errorf("innerWidth = %v, want %v", got, v.Width)
			}
		}
		if !f.proxy.requested(siteHost + ":80") {
			t.Error("the page did not come through the proxy")
		}
	})

	t.Run("KeyFrame", func(t *testing.T) {
		// The page stands still: only a key frame makes a new frame.
		for range 3 {
			n := rec.frameCount()
			if err := b.KeyFrame(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			waitFrame(t, rec, n, nil)
		}
	})
	t.Run("ClickLink", func(t *testing.T) {
		f.open(t, "/link")
		f.click(t, 50, 50)
		eventually(t, "navigation to /target", func() bool {
			s := b.State()
			return s.URL == f.base+"/target" && s.Host == siteHost && s.CanGoBack && !s.Secure
		})
		if err := b.Back(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "back to /link", func() bool {
			s := b.State()
			return s.URL == f.base+"/link" && s.CanGoForward
		})
		if err := b.Forward(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "forward to /target", func() bool { return b.State().URL == f.base+"/target" })
		eventually(t, "state reported to the observer", func() bool {
			s := rec.lastState()
			return s.URL == f.base+"/target" && s.Title == "target"
		})
		rec.mu.Lock()
		navs := strings.Join(rec.navs, " ")
		rec.mu.Unlock()
		if want := f.base + "/link " + f.base + "/target " + f.base + "/link " + f.base + "/target"; !strings.HasSuffix(navs, want) {
			t.Errorf("navigations = %s, want them to end with %s", navs, want)
		}
	})

	t.Run("Wheel", func(t *testing.T) {
		f.open(t, "/scroll")
		if err := b.Wheel(testCtx(t), isolation.WheelEvent{X: 100, Y: 100, DeltaY: 400}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "scroll", func() bool { return eval[float64](t, b, "window.scrollY") > 0 })
	})

	t.Run("Keys", func(t *testing.T) {
		f.open(t, "/form")
		f.click(t, 10, 10)
		f.typeText(t, "Hello, world!")
		if got := eval[string](t, b, "document.getElementById('a').value"); got != "Hello, world!" {
			t.Fatalf("value = %q", got)
		}
		f.key(t, "Backspace", "Backspace", 8, 0)
		f.key(t, "ArrowLeft", "ArrowLeft", 37, 0)
		f.key(t, "ArrowLeft", "ArrowLeft", 37, 0)
		f.typeText(t, "X")
		if got := eval[string](t, b, "document.getElementById('a').value"); got != "Hello, worXld" {
			t.Fatalf("value after editing = %q", got)
		}
		// Select all, then typing replaces.
		f.key(t, "a", "KeyA", 65, isolation.ModCtrl)
		f.typeText(t, "new")
		if got := eval[string](t, b, "document.getElementById('a').value"); got != "new" {
			t.Fatalf("value after select-all = %q", got)
		}
		// Undo brings the old text back, once; redo both ways.
		for _, tc := range []struct {
			key, code string
			keyCode   int
			mods      int
			want      string
		}{
			{"z", "KeyZ", 90, isolation.ModCtrl, "Hello, worXld"},
			{"y", "KeyY", 89, isolation.ModCtrl, "new"},
			{"z", "KeyZ", 90, isolation.ModCtrl, "Hello, worXld"},
			{"Z", "KeyZ", 90, isolation.ModCtrl | isolation.ModShift, "new"},
		} {
			f.key(t, tc.key, tc.code, tc.keyCode, tc.mods)
			if got := eval[string](t, b, "document.getElementById('a').value"); got != tc.want {
				t.Fatalf("value after %s+%d = %q, want %q", tc.code, tc.mods, got, tc.want)
			}
		}
		f.key(t, "Tab", "Tab", 9, 0)
		if got := eval[string](t, b, "document.activeElement.id"); got != "b" {
			t.Fatalf("focus after Tab = %q", got)
		}
		f.typeText(t, "two")
		f.key(t, "Enter", "Enter", 13, 0)
		eventually(t, "form submission", func() bool {
			return strings.HasPrefix(b.State().URL, f.base+"/target?") && strings.HasSuffix(b.State().URL, "&b=two")
		})
	})

	t.Run("IME", func(t *testing.T) {
		f.open(t, "/form")
		f.click(t, 10, 10)
		caret, err := b.Compose(testCtx(t), "にほんご", 4, 4)
		if err != nil {
			t.Fatal(err)
		}
		if caret.Height <= 0 || caret.X <= 0 || caret.X > 300 || caret.Y < 0 || caret.Y > 40 {
			t.Errorf("caret = %+v, want one inside the input", caret)
		}
		if err := b.InsertText(testCtx(t), "日本語"); err != nil {
			t.Fatal(err)
		}
		if got := eval[string](t, b, "document.getElementById('a').value"); got != "日本語" {
			t.Fatalf("value = %q", got)
		}
		got := eval[string](t, b, "window.events.join(',')")
		if !strings.HasPrefix(got, "compositionstart,") || !strings.HasSuffix(got, ",compositionend") {
			t.Fatalf("composition events = %q", got)
		}
		// An empty composition cancels.
		if _, err := b.Compose(testCtx(t), "かな", 2, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Compose(testCtx(t), "", 0, 0); err != nil {
			t.Fatal(err)
		}
		if got := eval[string](t, b, "document.getElementById('a').value"); got != "日本語" {
			t.Fatalf("value after cancel = %q", got)
		}
	})

	t.Run("Dialogs", func(t *testing.T) {
		f.open(t, "/dialogs")
		for _, tc := range []struct {
			y      float64
			kind   isolation.DialogKind
			accept bool
			text   string
			want   string
		}{
			{25, isolation.DialogAlert, true, "", `"alerted"`},
			{125, isolation.DialogConfirm, true, "", `true`},
			{125, isolation.DialogConfirm, false, "", `false`},
			{225, isolation.DialogPrompt, true, "山田", `"山田"`},
		} {
			rec.mu.Lock()
			nd := len(rec.dialogs)
			rec.mu.Unlock()
			f.click(t, 50, tc.y)
			var d isolation.Dialog
			eventually(t, "dialog "+string(tc.kind), func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if len(rec.dialogs) <= nd {
					return false
				}
				d = rec.dialogs[len(rec.dialogs)-1]
				return true
			})
			if d.Kind != tc.kind {
				t.Fatalf("dialog kind = %q, want %q", d.Kind, tc.kind)
			}
			if p := b.PendingDialogs(); len(p) != 1 || p[0].ID != d.ID {
				t.Fatalf("pending = %+v", p)
			}
			if err := b.AnswerDialog(testCtx(t), d.ID, tc.accept, tc.text); err != nil {
				t.Fatal(err)
			}
			eventually(t, "dialog closed", func() bool { return len(b.PendingDialogs()) == 0 })
			if got := eval[string](t, b, "JSON.stringify(window.result)"); got != tc.want {
				t.Fatalf("%s result = %s, want %s", tc.kind, got, tc.want)
			}
		}
		if err := b.AnswerDialog(testCtx(t), "nope", true, ""); !errors.Is(err, ErrNoDialog) {
			t.Fatalf("answer unknown dialog: %v", err)
		}

		// A navigation away from a page that asks first returns at once;
		// the question is a dialog.
		f.open(t, "/leave")
		f.click(t, 50, 25) // beforeunload needs a user gesture
		rec.mu.Lock()
		nd := len(rec.dialogs)
		rec.mu.Unlock()
		if err := b.Navigate(testCtx(t), f.base+"/target"); err != nil {
			t.Fatal(err)
		}
		var d isolation.Dialog
		eventually(t, "the beforeunload dialog", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.dialogs) <= nd {
				return false
			}
			d = rec.dialogs[len(rec.dialogs)-1]
			return true
		})
		if d.Kind != isolation.DialogBeforeUnload {
			t.Fatalf("dialog kind = %q", d.Kind)
		}
		if err := b.AnswerDialog(testCtx(t), d.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the navigation after leaving", func() bool { return b.State().URL == f.base+"/target" })
	})

	t.Run("Tabs", func(t *testing.T) {
		f.open(t, "/popup")
		first := b.State().Tabs
		if len(first) != 1 {
			t.Fatalf("tabs = %+v", first)
		}
		home := first[0].ID
		f.click(t, 50, 50) // target=_blank
		eventually(t, "the _blank tab", func() bool {
			s := b.State()
			return len(s.Tabs) == 2 && s.URL == f.base+"/target" && !s.Tabs[0].Active && s.Tabs[1].Active
		})
		if err := b.SwitchTab(testCtx(t), home); err != nil {
			t.Fatal(err)
		}
		eventually(t, "switch back", func() bool { return b.State().URL == f.base+"/popup" })
		n := rec.frameCount()
		f.click(t, 50, 250) // window.open
		eventually(t, "the window.open tab", func() bool {
			s := b.State()
			return len(s.Tabs) == 3 && s.URL == f.base+"/color"
		})
		// The new tab's screencast runs.
		waitFrame(t, rec, n, func(m image.Image) bool {
			return near(m.At(390, 290), color.RGBA{255, 0, 0, 255})
		})
		active := b.State()
		var popup string
		for _, tb := range active.Tabs {
			if tb.Active {
				popup = tb.ID
			}
		}
		if err := b.CloseTab(testCtx(t), popup); err != nil {
			t.Fatal(err)
		}
		// The most recently active tab comes back.
		eventually(t, "the opener after close", func() bool {
			s := b.State()
			return len(s.Tabs) == 2 && s.URL == f.base+"/popup"
		})
		for _, tb := range b.State().Tabs {
			if tb.ID != home {
				if err := b.CloseTab(testCtx(t), tb.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Closing the last tab leaves a blank one.
		if err := b.CloseTab(testCtx(t), home); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a blank tab", func() bool {
			s := b.State()
			return len(s.Tabs) == 1 && s.Tabs[0].ID != home && s.Tabs[0].Active && s.URL == "about:blank"
		})
		if err := b.SwitchTab(testCtx(t), home); !errors.Is(err, ErrNoTab) {
			t.Fatalf("switch to a closed tab: %v", err)
		}
		f.open(t, "/color")
	})

	t.Run("Secure", func(t *testing.T) {
		u := "https://" + secureHost + "/target"
		if err := b.Navigate(testCtx(t), secureHost+"/target"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the https page", func() bool {
			s := b.State()
			return s.URL == u && s.Host == secureHost && s.Secure
		})
		f.open(t, "/color")
		if s := b.State(); s.Secure {
			t.Fatalf("http page is secure: %+v", s)
		}
	})

	t.Run("RendererCrash", func(t *testing.T) {
		f.open(t, "/color")
		b.tabs.mu.Lock()
		tb := b.tabs.active
		b.tabs.mu.Unlock()
		n := rec.frameCount()
		// Page.crash does not answer: the renderer is gone.
		ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
		_, _ = cdp.Call(ctx, tb.sess, page.Crash, cdp.Empty{})
		cancel()
		// The tab is reloaded, and its frames come back.
		waitFrame(t, rec, n, func(m image.Image) bool {
			return near(m.At(390, 290), color.RGBA{255, 0, 0, 255})
		})
		eventually(t, "the reloaded page", func() bool {
			ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			defer cancel()
			v, err := chromedp.Evaluate[string]("document.readyState")(ctx, tb.sess)
			return err == nil && v == "complete"
		})
	})

	t.Run("NavigateRefused", func(t *testing.T) {
		for _, u := range []string{"file:///etc/passwd", "chrome://settings", "javascript:alert(1)", "data:text/html,hi"} {
			err := b.Navigate(testCtx(t), u)
			if !errors.Is(err, ErrScheme) {
				t.Errorf("Navigate(%q) = %v, want ErrScheme", u, err)
			}
			scheme, _, _ := strings.Cut(u, ":")
			if err != nil && !strings.Contains(err.Error(), scheme) {
				t.Errorf("error %q does not name the scheme", err)
			}
		}
		if got := b.State().URL; got != f.base+"/color" {
			t.Errorf("url after refused navigations = %q", got)
		}
	})
}

// TestClose checks that Close leaves no process and no profile behind.
func TestClose(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 300, Height: 200, DPR: 1}, "")
	b := f.b
	pgid := b.pid
	if pgid <= 0 {
		t.Fatal("no pid")
	}
	if _, err := os.Stat(b.profileDir); err != nil {
		t.Fatalf("profile dir: %v", err)
	}
	if filepath.Dir(b.profileDir) != f.root {
		t.Fatalf("profile dir %s is not under %s", b.profileDir, f.root)
	}
	if fi, err := os.Stat(b.profileDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("profile dir mode: %v %v", fi.Mode(), err)
	}
	if err := b.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := b.Err(); err != nil {
		t.Fatalf("Err after Close = %v", err)
	}
	assertGroupGone(t, pgid)
	if _, err := os.Stat(b.profileDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("profile dir after close: %v", err)
	}
	if err := b.Close(testCtx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Navigate(testCtx(t), "http://"+siteHost+"/"); !errors.Is(err, isolation.ErrClosed) {
		t.Fatalf("Navigate after Close = %v", err)
	}
}

// TestCrash checks that a browser killed from outside reports a crash and
// cleans up.
func TestCrash(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 300, Height: 200, DPR: 1}, "")
	b := f.b
	if err := syscall.Kill(b.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed after the browser was killed")
	}
	if err := b.Err(); !errors.Is(err, isolation.ErrCrashed) {
		t.Fatalf("Err = %v, want ErrCrashed", err)
	}
	assertGroupGone(t, b.pid)
	if _, err := os.Stat(b.profileDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("profile dir after crash: %v", err)
	}
}

// assertGroupGone fails unless the process group pgid has no process left,
// not even a zombie.
func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			if _, pg, ok := parseStat(stat); ok && pg == pgid {
				t.Logf("left: %s", stat)
			}
		}
		t.Fatalf("kill(-%d, 0) = %v, want ESRCH", pgid, err)
	}
}

// TestDialogTimeout checks that a dialog nobody answers is dismissed.
func TestDialogTimeout(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 300, Height: 300, DPR: 1}, "", func(c *Config) {
		c.DialogTimeout = 50 * time.Millisecond
	})
	f.open(t, "/dialogs")
	f.click(t, 50, 125) // confirm
	eventually(t, "the dialog to be dismissed", func() bool {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		return len(f.rec.dialogs) == 1 && len(f.rec.closed) == 1 && f.rec.closed[0] == f.rec.dialogs[0].ID
	})
	if got := eval[string](t, f.b, "JSON.stringify(window.result)"); got != "false" {
		t.Fatalf("confirm result = %s, want false", got)
	}
	if p := f.b.PendingDialogs(); len(p) != 0 {
		t.Fatalf("pending = %+v", p)
	}
}

// TestLaunchFails checks that a launch that fails leaves nothing behind.
func TestLaunchFails(t *testing.T) {
	requireChromium(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		execPath string
		ctx      context.Context
	}{
		{"browser exits", "/bin/false", context.Background()},
		{"context canceled", DefaultExecPath, canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l, err := New(Config{ProfileRoot: root, ExecPath: tc.execPath})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(tc.ctx, 2*time.Minute)
			defer cancel()
			_, err = l.Launch(ctx, isolation.LaunchOptions{
				SessionID: "fail",
				Viewport:  isolation.Viewport{Width: 300, Height: 300, DPR: 1},
				ProxyAddr: "127.0.0.1:9",
			})
			if err == nil {
				t.Fatal("Launch succeeded")
			}
			// A browser that exits is seen when it exits, not when the
			// launch gives up: its pipe must end with it.
			if tc.ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Launch waited for its deadline instead of seeing the exit: %v", err)
			}
			left, _ := os.ReadDir(root)
			if len(left) != 0 {
				t.Fatalf("left in the profile root: %v", left)
			}
		})
	}
}
