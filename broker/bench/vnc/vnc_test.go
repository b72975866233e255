package vnc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The colours of the test page before and after a click.
const (
	colourBefore = "rgb(200, 30, 30)"
	colourAfter  = "rgb(30, 160, 60)"
)

// testPage is a page that one coloured block fills, which changes colour on
// mousedown.
const testPage = `<!doctype html>
<html><head><style>
html, body { margin: 0; height: 100%; overflow: hidden; }
#block { width: 100%; height: 100%; background: ` + colourBefore + `; }
</style></head><body><div id="block"></div>
<script>
document.getElementById('block').addEventListener('mousedown', (e) => {
	e.currentTarget.style.background = '` + colourAfter + `';
});
</script></body></html>`

// pageServer serves testPage on loopback.
func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, testPage)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startPeer starts a peer on the test page, closed when the test ends.
func startPeer(ctx context.Context, t *testing.T, w, h int) *Peer {
	t.Helper()
	srv := pageServer(t)
	p, err := Start(ctx, Options{PageURL: srv.URL + "/", Width: w, Height: h})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("peer logs:\n%s", p.Logs())
		}
		_ = p.Close()
	})
	return p
}

// ours is what a peer started: its process groups, its temporary directory
// and its X display.
type ours struct {
	groups  map[int]bool
	dir     string
	display int
}

// snapshot records what p started.
func snapshot(p *Peer) ours {
	o := ours{groups: map[int]bool{}, dir: p.dir, display: p.display}
	for _, pr := range p.procs {
		o.groups[pr.pid()] = true
	}
	return o
}

// check fails t when a process, file or display of o is left.
func (o ours) check(t *testing.T) {
	t.Helper()
	if live := liveProcesses(o.groups, o.dir); len(live) > 0 {
		for _, pid := range live {
			cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			t.Errorf("process %d left: %s", pid, strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	for pg := range o.groups {
		for _, pid := range liveProcesses(map[int]bool{pg: true}, "") {
			t.Errorf("process %d of group %d left", pid, pg)
		}
	}
	if _, err := os.Stat(o.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory %s left: %v", o.dir, err)
	}
	lock := "/tmp/.X" + strconv.Itoa(o.display) + "-lock"
	if _, err := os.Stat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("X lock %s left: %v", lock, err)
	}
}

// newViewer starts a headless Chromium, the clinician's browser, with a
// window of w×h.
func newViewer(t *testing.T, w, h int) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(DefaultChromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
		chromedp.Flag("force-device-scale-factor", "1"),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start viewer browser: %v", err)
	}
	return ctx
}

// pixelIs is a JavaScript condition: noVNC's canvas pixel (x, y) is within
// a few steps of the CSS colour rgb.
func pixelIs(x, y int, rgb string) string {
	var r, g, b int
	if _, err := fmt.Sscanf(rgb, "rgb(%d, %d, %d)", &r, &g, &b); err != nil {
		panic(err)
	}
	return fmt.Sprintf(`(() => {
		const c = document.querySelector('#noVNC_container canvas');
		if (!c || c.width <= %[1]d || c.height <= %[2]d) return false;
		const d = c.getContext('2d').getImageData(%[1]d, %[2]d, 1, 1).data;
		return Math.abs(d[0] - %[3]d) <= 8 && Math.abs(d[1] - %[4]d) <= 8 && Math.abs(d[2] - %[5]d) <= 8;
	})()`, x, y, r, g, b)
}

// poll waits for a JavaScript condition in the viewer.
func poll(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const c = document.querySelector('#noVNC_container canvas');
			const s = document.getElementById('noVNC_status');
			return 'canvas ' + (c ? c.width + 'x' + c.height : 'none') + ', status ' + (s ? JSON.stringify(s.textContent) : 'none');
		})()`))
		t.Fatalf("waiting for %s: %v (%s)", what, err, state)
	}
}

// eval evaluates a JavaScript expression in the viewer.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ectx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestClickThroughNoVNC opens the peer's noVNC page in a viewer browser,
// waits for the remote page on the canvas, clicks it there and waits for the
// page's answer on the canvas; then closes the peer and looks for anything
// left of it.
func TestClickThroughNoVNC(t *testing.T) {
	Require(t)
	const w, h = 800, 600
	const x, y = 400, 300
	p := startPeer(context.Background(), t, w, h)
	// Xvfb, Chromium, x11vnc and websockify, each running.
	if pids := p.PIDs(); len(pids) != 4 {
		t.Errorf("PIDs() = %v, want the 4 servers' and the browser's", pids)
	} else {
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				t.Errorf("PIDs() has %d, which is not running: %v", pid, err)
			}
		}
	}

	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatalf("Peer.URL %q: %v", p.URL, err)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("Peer.URL %q: not on loopback", p.URL)
	}

	vctx := newViewer(t, w+200, h+200)
	nctx, cancel := context.WithTimeout(vctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(p.URL)); err != nil {
		t.Fatalf("open %s: %v", p.URL, err)
	}
	poll(t, vctx, "the page's colour on the canvas", pixelIs(x, y, colourBefore))

	size := eval[[]int](t, vctx, `(() => { const c = document.querySelector('#noVNC_container canvas'); return [c.width, c.height]; })()`)
	if len(size) != 2 || size[0] != w || size[1] != h {
		t.Errorf("canvas is %v, want %dx%d: not 1:1", size, w, h)
	}
	if !eval[bool](t, vctx, ProbeScript(x, y)) {
		t.Fatal("ProbeScript did not return true")
	}
	rect := eval[[]float64](t, vctx, `(() => { const r = document.querySelector('#noVNC_container canvas').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	if rect[2] != w || rect[3] != h {
		t.Errorf("canvas is shown at %vx%v, want %dx%d: scaled", rect[2], rect[3], w, h)
	}
	cctx, ccancel := context.WithTimeout(vctx, 30*time.Second)
	defer ccancel()
	if err := chromedp.Do(cctx, chromedp.MouseClickXY(rect[0]+x, rect[1]+y)); err != nil {
		t.Fatalf("click the canvas: %v", err)
	}
	poll(t, vctx, "the page's new colour on the canvas", pixelIs(x, y, colourAfter))

	// The probe saw the old colour, then the new one after the click.
	type sample struct {
		T   float64 `json:"t"`
		RGB []int   `json:"rgb"`
	}
	poll(t, vctx, "the probe to see the new colour", `window.__probe.length >= 2`)
	samples := eval[[]sample](t, vctx, `window.__probe`)
	inputs := eval[[]float64](t, vctx, `window.__probeInputs`)
	if len(inputs) != 1 {
		t.Fatalf("probe inputs %v, want one mousedown", inputs)
	}
	first, last := samples[0], samples[len(samples)-1]
	if fmt.Sprintf("rgb(%d, %d, %d)", first.RGB[0], first.RGB[1], first.RGB[2]) != colourBefore ||
		fmt.Sprintf("rgb(%d, %d, %d)", last.RGB[0], last.RGB[1], last.RGB[2]) != colourAfter {
		t.Errorf("probe samples %v, want %s first and %s last", samples, colourBefore, colourAfter)
	}
	if last.T < inputs[0] {
		t.Errorf("probe saw the new colour at %v, before the mousedown at %v", last.T, inputs[0])
	}
	eval[bool](t, vctx, `window.__probeStop = true`)

	left := snapshot(p)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	left.check(t)
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestContextEndStopsPeer ends the context Start had and waits until
// nothing of the peer is left.
func TestContextEndStopsPeer(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := startPeer(ctx, t, 320, 240)
	left := snapshot(p)
	if len(left.groups) != 4 {
		t.Errorf("peer has %d process groups, want 4 (xvfb, chromium, x11vnc, websockify)\n%s", len(left.groups), p.Logs())
	}
	cancel()
	deadline := time.Now().Add(60 * time.Second)
	for len(liveProcesses(left.groups, left.dir)) > 0 || dirExists(left.dir) {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	left.check(t)
	if err := p.Close(); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
}

// dirExists reports whether dir is still there.
func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string // part of the error; empty for none
	}{
		{"ok", Options{PageURL: "http://127.0.0.1:8080/", Width: 1366, Height: 768}, ""},
		{"no page", Options{Width: 1366, Height: 768}, "PageURL is empty"},
		{"bad scheme", Options{PageURL: "javascript:alert(1)", Width: 1366, Height: 768}, "scheme"},
		{"no width", Options{PageURL: "http://127.0.0.1/", Height: 768}, "Width and Height"},
		{"huge", Options{PageURL: "http://127.0.0.1/", Width: 100000, Height: 768}, "Width and Height"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestStartRefusesMissingChromium(t *testing.T) {
	_, err := Start(context.Background(), Options{PageURL: "http://127.0.0.1/", Width: 640, Height: 480, Chromium: "/nonexistent/chromium"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/chromium") {
		t.Errorf("Start: %v, want an error naming the missing binary", err)
	}
}

func TestNoVNCURL(t *testing.T) {
	u, err := url.Parse(noVNCURL(6080))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "127.0.0.1:6080" || u.Path != "/vnc.html" {
		t.Errorf("noVNC page %s, want 127.0.0.1:6080/vnc.html", u)
	}
	want := map[string]string{
		"autoconnect": "1", "resize": "off", "view_clip": "0", "view_only": "0",
		"quality": strconv.Itoa(Quality), "compression": strconv.Itoa(Compression),
		"host": "127.0.0.1", "port": "6080", "path": "websockify", "encrypt": "0",
	}
	for k, v := range want {
		if got := u.Query().Get(k); got != v {
			t.Errorf("noVNC setting %s=%q, want %q", k, got, v)
		}
	}
}
