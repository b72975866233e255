package web

// Tests of the viewer's frame and input path in real headless Chromium:
// screen.js on a test page, and the viewer page itself against a stand-in
// for the broker's stream endpoint that speaks docs/protocol.md. Both are
// served with the broker's Content-Security-Policy.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// brokerCSP is the Content-Security-Policy the broker serves these pages
// with (broker/api.go).
const brokerCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// chromiumPath is the browser the tests drive.
func chromiumPath() string {
	if p := os.Getenv("SHOJI_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/lib/chromium/chromium"
}

// newBrowser starts headless Chromium with a window of w×h and returns a
// context for its tab. It skips the test when Chromium is missing, or
// fails it when SHOJI_REQUIRE_DEPS=1.
func newBrowser(t *testing.T, w, h int) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath()); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("Chromium not found at %s (SHOJI_REQUIRE_DEPS=1): %v", chromiumPath(), err)
		}
		t.Skipf("Chromium not found at %s", chromiumPath())
	}
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
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	return ctx
}

// evalJS evaluates expr in the tab and returns its value.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(cctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs actions in the tab.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// waitJS polls until cond is true in the tab.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !evalJS[bool](t, ctx, "!!("+cond+")") {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, cond)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// colorOf is the solid colour of test frame i.
func colorOf(i int) [3]int {
	return [3]int{(i * 37) % 200, 240 - (i*53)%200, (60 + i*91) % 240}
}

// jpegFrame encodes a w×h frame of one colour, as Chromium's screencast
// would send it.
func jpegFrame(t *testing.T, c [3]int, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(c[0]), uint8(c[1]), uint8(c[2]), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// near reports whether two colours match within JPEG's error.
func near(a, b [3]int) bool {
	for i := range a {
		if d := a[i] - b[i]; d < -10 || d > 10 {
			return false
		}
	}
	return true
}

// withCSP serves h with the broker's security headers.
func withCSP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", brokerCSP)
		h.ServeHTTP(w, r)
	})
}

const screenHarnessPage = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="/static/style.css">
<script type="module" src="/test/screen.js"></script></head>
<body data-frames="0"><div id="viewer"><div id="stage"><canvas id="screen"></canvas></div></div></body></html>`

const screenHarnessModule = `import { Screen } from '/static/screen.js';
const screen = new Screen(document.getElementById('screen'), document.getElementById('stage'), () => {});
const seqs = [];
screen.onDrawn = (seq) => seqs.push(seq);
const frames = await Promise.all([...Array(FRAMES).keys()].map((i) => fetch('/test/frame/' + i).then((r) => r.arrayBuffer())));
const settled = () => !screen.decoding && !screen.pending;
const pixel = () => [...screen.ctx.getImageData(Math.floor(screen.canvas.width / 2), Math.floor(screen.canvas.height / 2), 1, 1).data.slice(0, 3)];
window.harness = { screen, seqs, frames, settled, pixel };
`

// TestScreenLatestWins pushes a burst of frames into screen.js faster than
// it can decode them: only the newest is drawn at the end, frames are
// drawn in order, and every frame is either drawn or counted as dropped. A
// decoded frame is drawn without waiting for an animation frame, and one
// not newer than the frame on screen is never drawn. Partial frames are not
// replaced but wait in order, at most 32: past that they are dropped and a
// key frame is asked for, and partial frames are dropped until it comes.
func TestScreenLatestWins(t *testing.T) {
	const frames = 20
	mux := http.NewServeMux()
	mux.Handle("/static/", Handler())
	mux.HandleFunc("/test/screen.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, screenHarnessPage)
	})
	mux.HandleFunc("/test/screen.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		fmt.Fprint(w, strings.Replace(screenHarnessModule, "FRAMES", strconv.Itoa(frames), 1))
	})
	bodies := make([][]byte, frames)
	for i := range bodies {
		bodies[i] = jpegFrame(t, colorOf(i), 320, 200)
	}
	mux.HandleFunc("/test/frame/{i}", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.PathValue("i"))
		if err != nil || i < 0 || i >= frames {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(bodies[i])
	})
	// A partial frame of one 16×16 rectangle at the frames' top-left
	// corner (partial_browser_test.go).
	partial := partialMessage(320, 200, []wireTile{{0, 0, 16, 16, jpegFrame(t, colorOf(9), 16, 16)}})
	mux.HandleFunc("/test/partial", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(partial)
	})
	ts := httptest.NewServer(withCSP(mux))
	t.Cleanup(ts.Close)
	ctx := newBrowser(t, 640, 480)
	do(t, ctx, chromedp.Navigate(ts.URL+"/test/screen.html"))
	waitJS(t, ctx, "the test page", `window.harness`)

	t.Run("burst", func(t *testing.T) {
		evalJS[bool](t, ctx, `harness.frames.forEach((f) => harness.screen.push(f)), true`)
		waitJS(t, ctx, "the burst to settle", `harness.settled()`)
		type result struct {
			Seqs   []int
			Counts struct{ Received, Drawn, Dropped, Bytes int }
			Frames string
			Pixel  [3]int
		}
		r := evalJS[result](t, ctx, `({seqs: harness.seqs, counts: harness.screen.counts, frames: document.body.dataset.frames, pixel: harness.pixel()})`)
		if r.Counts.Received != frames || r.Counts.Drawn+r.Counts.Dropped != frames {
			t.Errorf("counts %+v: want %d received, each drawn or dropped", r.Counts, frames)
		}
		if r.Counts.Drawn > 2 {
			t.Errorf("drew %d frames of a burst pushed at once; want the first and the last at most", r.Counts.Drawn)
		}
		if len(r.Seqs) == 0 || r.Seqs[len(r.Seqs)-1] != frames || !slices.IsSorted(r.Seqs) || len(slices.Compact(slices.Clone(r.Seqs))) != len(r.Seqs) {
			t.Errorf("drew frames %v; want increasing, ending with %d", r.Seqs, frames)
		}
		if r.Frames != strconv.Itoa(r.Counts.Drawn) {
			t.Errorf("body data-frames = %q, drawn %d", r.Frames, r.Counts.Drawn)
		}
		if want := colorOf(frames - 1); !near(r.Pixel, want) {
			t.Errorf("canvas shows %v, want the last frame's %v", r.Pixel, want)
		}
	})

	t.Run("older frame never drawn", func(t *testing.T) {
		// Decoded frames handed over out of order (as if an older decode
		// finished late): the newer one is drawn, the older one and one as
		// old as the frame on screen are dropped, never drawn.
		got := evalJS[[]int](t, ctx, `(async () => {
			const s = harness.screen;
			const before = [s.counts.drawn, s.counts.dropped];
			const bmp = (i) => createImageBitmap(new Blob([harness.frames[i]], {type: 'image/jpeg'}));
			const [a, b, c] = await Promise.all([bmp(0), bmp(1), bmp(2)]);
			const seq = s.seq;
			s.seq += 2; // as if the two frames had arrived
			s.show(b, seq + 2);
			s.show(a, seq + 1);
			s.show(c, seq + 2);
			return [s.counts.drawn - before[0], s.counts.dropped - before[1], s.shownSeq - seq, harness.seqs.at(-1) - seq];
		})()`)
		if !slices.Equal(got, []int{1, 2, 2, 2}) {
			t.Errorf("drawn, dropped, shown and last drawn sequence changed by %v; want 1, 2, 2, 2", got)
		}
		if want, px := colorOf(1), evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, want) {
			t.Errorf("canvas shows %v after an older frame, want the newer frame's %v", px, want)
		}
	})

	t.Run("drawn without waiting for an animation frame", func(t *testing.T) {
		// With requestAnimationFrame never calling back, a frame is still
		// drawn as soon as it is decoded.
		counts := `[harness.screen.counts.received, harness.screen.counts.drawn, harness.screen.counts.dropped]`
		before := evalJS[[]int](t, ctx, `(() => {
			const before = `+counts+`;
			harness.raf = window.requestAnimationFrame;
			window.requestAnimationFrame = () => 0;
			harness.screen.push(harness.frames[7]);
			return before;
		})()`)
		waitJS(t, ctx, "the frame drawn with no animation frame", fmt.Sprintf(`harness.settled() && harness.screen.counts.drawn > %d`, before[1]))
		evalJS[bool](t, ctx, `(window.requestAnimationFrame = harness.raf, true)`)
		if want, px := colorOf(7), evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, want) {
			t.Errorf("canvas shows %v, want %v", px, want)
		}
		after := evalJS[[]int](t, ctx, counts)
		if d := []int{after[0] - before[0], after[1] - before[1], after[2] - before[2]}; !slices.Equal(d, []int{1, 1, 0}) {
			t.Errorf("received, drawn, dropped changed by %v; want 1, 1, 0", d)
		}
	})

	t.Run("clear during decode", func(t *testing.T) {
		// One frame decoding and one waiting when clear() comes.
		counts := `[harness.screen.counts.drawn, harness.screen.counts.dropped, harness.screen.counts.received]`
		before := evalJS[[]int](t, ctx, counts)
		drawn := before[0]
		evalJS[bool](t, ctx, `harness.screen.push(harness.frames[3]), harness.screen.push(harness.frames[4]), harness.screen.clear(), true`)
		waitJS(t, ctx, "the decode to finish", `harness.settled()`)
		after := evalJS[[]int](t, ctx, counts)
		if d := []int{after[0] - before[0], after[1] - before[1], after[2] - before[2]}; !slices.Equal(d, []int{0, 2, 2}) {
			t.Errorf("drawn, dropped, received changed by %v; want 0, 2, 2: frames pushed before clear() are dropped", d)
		}
		if px := evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, [3]int{0xe9, 0xec, 0xef}) {
			t.Errorf("canvas shows %v after clear(), want the blank colour", px)
		}
		evalJS[bool](t, ctx, `harness.screen.push(harness.frames[5]), true`)
		waitJS(t, ctx, "the next frame", fmt.Sprintf(`harness.settled() && harness.screen.counts.drawn > %d`, drawn))
		if want, px := colorOf(5), evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, want) {
			t.Errorf("canvas shows %v, want %v", px, want)
		}
	})
	t.Run("partial frames wait, bounded", func(t *testing.T) {
		// 40 partial frames pushed at once: the first decodes, 32 wait
		// behind it, the 34th overflows the queue, which is dropped with
		// it, and a key frame is asked for once; the rest are dropped
		// until a full frame comes. Then partial frames are drawn again.
		counts := `[harness.screen.counts.received, harness.screen.counts.drawn, harness.screen.counts.dropped, harness.screen.counts.partial, harness.keys]`
		before := evalJS[[]int](t, ctx, `(async () => {
			const s = harness.screen;
			const p = await (await fetch('/test/partial')).arrayBuffer();
			harness.partial = p;
			harness.keys = 0;
			s.onKeyFrameNeeded = () => harness.keys++;
			const before = `+counts+`;
			for (let i = 0; i < 40; i++) {
				s.push(p.slice(0));
			}
			return before;
		})()`)
		waitJS(t, ctx, "the partial frames to settle", `harness.settled()`)
		after := evalJS[[]int](t, ctx, counts)
		if d := []int{after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3], after[4]}; !slices.Equal(d, []int{40, 1, 39, 1, 1}) {
			t.Errorf("received, drawn, dropped, partial, key frames asked changed by %v; want 40, 1, 39, 1, 1", d)
		}
		evalJS[bool](t, ctx, `harness.screen.push(harness.frames[6]), true`)
		waitJS(t, ctx, "the key frame", fmt.Sprintf(`harness.settled() && harness.screen.counts.drawn === %d`, after[1]+1))
		evalJS[bool](t, ctx, `harness.screen.push(harness.partial.slice(0)), true`)
		waitJS(t, ctx, "a partial frame after the key frame", fmt.Sprintf(`harness.settled() && harness.screen.counts.partial === %d`, after[3]+1))
		corner := evalJS[[3]int](t, ctx, `[...harness.screen.ctx.getImageData(2, 2, 1, 1).data.slice(0, 3)]`)
		if want := colorOf(9); !near(corner, want) {
			t.Errorf("the rectangle's corner shows %v, want %v", corner, want)
		}
		if want, px := colorOf(6), evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, want) {
			t.Errorf("outside the rectangle the canvas shows %v, want the full frame's %v", px, want)
		}
	})

	t.Run("broken full frame", func(t *testing.T) {
		// A full frame that does not decode: the partial frames behind it
		// are dropped until the next full frame, and no key frame is
		// asked for (the broker would resend the same frame).
		evalJS[bool](t, ctx, `harness.screen.push(harness.frames[2]), true`)
		waitJS(t, ctx, "a full frame", `harness.settled() && !harness.screen.needKey`)
		before := evalJS[[]int](t, ctx, `(() => {
			const s = harness.screen;
			harness.keys = 0;
			const before = [s.counts.received, s.counts.drawn, s.counts.dropped];
			s.push(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]).buffer);
			return before;
		})()`)
		waitJS(t, ctx, "the broken frame", `harness.settled() && harness.screen.needKey`)
		evalJS[bool](t, ctx, `harness.screen.push(harness.partial.slice(0)), true`)
		waitJS(t, ctx, "the partial frame", `harness.settled()`)
		after := evalJS[[]int](t, ctx, `[harness.screen.counts.received, harness.screen.counts.drawn, harness.screen.counts.dropped, harness.keys]`)
		if d := []int{after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3]}; !slices.Equal(d, []int{2, 0, 2, 0}) {
			t.Errorf("received, drawn, dropped, key frames asked changed by %v; want 2, 0, 2, 0", d)
		}
		if want, px := colorOf(2), evalJS[[3]int](t, ctx, `harness.pixel()`); !near(px, want) {
			t.Errorf("canvas shows %v, want the last good frame's %v", px, want)
		}
	})

	t.Run("hidden tab asks for the key frame when shown", func(t *testing.T) {
		// A hidden tab decodes nothing: its partial frames overflow the
		// queue, and the key frame is asked for only once the tab is
		// shown again.
		evalJS[bool](t, ctx, `harness.screen.push(harness.frames[6]), true`)
		waitJS(t, ctx, "a full frame", `harness.settled() && !harness.screen.needKey`)
		keys := evalJS[int](t, ctx, `(() => {
			harness.keys = 0;
			Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
			for (let i = 0; i < 40; i++) {
				harness.screen.push(harness.partial.slice(0));
			}
			return harness.keys;
		})()`)
		if keys != 0 {
			t.Errorf("a hidden tab asked for %d key frames", keys)
		}
		keys = evalJS[int](t, ctx, `(() => {
			delete document.hidden;
			document.dispatchEvent(new Event('visibilitychange'));
			return harness.keys;
		})()`)
		if keys != 1 || !evalJS[bool](t, ctx, `harness.screen.needKey && harness.settled()`) {
			t.Errorf("shown again: %d key frames asked (want 1), waiting for one %v", keys, evalJS[bool](t, ctx, `harness.screen.needKey`))
		}
	})
}

// fakeStream stands in for the broker's /api/stream: it answers hello with
// ready, live and a frame, records every message the viewer sends and
// sends the frames the test gives it.
type fakeStream struct {
	t     *testing.T
	out   chan wsMessage // to send; the sender blocks while the writer is busy
	msgs  chan map[string]any
	done  chan struct{}
	wg    sync.WaitGroup
	first []byte
}

// wsMessage is one message for the viewer: websocket.BinaryMessage (a
// frame), websocket.TextMessage (JSON) or websocket.CloseMessage (the
// close frame, after which the connection ends).
type wsMessage struct {
	kind int
	data []byte
}

func newFakeStream(t *testing.T, first []byte) *fakeStream {
	return &fakeStream{
		t:     t,
		out:   make(chan wsMessage),
		msgs:  make(chan map[string]any, 4096),
		done:  make(chan struct{}),
		first: first,
	}
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "http://"+r.Host }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	// The reader hands every message to msgs; it ends when the connection
	// closes. msgs is buffered far beyond what a test sends: it blocks, never
	// drops.
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				f.t.Errorf("viewer sent bad JSON %q: %v", data, err)
				return
			}
			if m["type"] == "hello" {
				f.wg.Add(1)
				go func() {
					defer f.wg.Done()
					f.greet()
				}()
			}
			select {
			case f.msgs <- m:
			case <-f.done:
				return
			}
		}
	}()
	for {
		select {
		case m := <-f.out:
			if m.kind == websocket.CloseMessage {
				// The server ends the connection, as after a status ended.
				_ = conn.WriteControl(websocket.CloseMessage, m.data, time.Now().Add(time.Second))
				return
			}
			if err := conn.WriteMessage(m.kind, m.data); err != nil {
				return
			}
		case <-f.done:
			return
		}
	}
}

// greet sends what the broker sends after hello, through the writer.
func (f *fakeStream) greet() {
	for _, m := range []string{
		`{"type":"ready","version":1,"user":"dr.test","role":"clinician","sessionId":"s1","idleTimeoutSec":900,"maxLifetimeSec":3600,"notice":""}`,
		`{"type":"status","state":"live"}`,
	} {
		f.write(wsMessage{websocket.TextMessage, []byte(m)})
	}
	f.send(f.first)
}

// send sends a frame.
func (f *fakeStream) send(frame []byte) {
	f.write(wsMessage{websocket.BinaryMessage, frame})
}

func (f *fakeStream) write(m wsMessage) {
	select {
	case f.out <- m:
	case <-f.done:
	}
}

// next returns the next message the viewer sent for which want is true,
// skipping others.
func (f *fakeStream) next(what string, want func(m map[string]any) bool) map[string]any {
	f.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-f.msgs:
			if want(m) {
				return m
			}
		case <-timeout:
			f.t.Fatalf("the viewer sent no %s", what)
			return nil
		}
	}
}

// isPress reports whether m is a mouse message other than a move (which
// the terminal browser may also generate on its own).
func isPress(m map[string]any) bool {
	return m["type"] == "mouse" && m["action"] != "move"
}

// drain forgets the messages received so far.
func (f *fakeStream) drain() {
	for {
		select {
		case <-f.msgs:
		default:
			return
		}
	}
}

// TestViewerStream runs the viewer page against a stand-in stream: frames
// are drawn and counted in window.shojiViewerStats, the stats overlay
// opens from the toolbar and measures input→frame, moves and wheel events
// are coalesced per animation frame, buttons go after them in order,
// buttons, keys and IME commits are sent in their event's own task, and an
// IME commit goes without an update of its text ahead of it.
func TestViewerStream(t *testing.T) {
	fs := newFakeStream(t, jpegFrame(t, colorOf(0), 900, 560))
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"user": "dr.test", "role": "clinician", "pledgeAccepted": true})
	})
	mux.HandleFunc("GET /api/transfers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, []any{}) })
	mux.HandleFunc("GET /api/destinations", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, []any{}) })
	mux.Handle("/api/stream", fs)
	ts := httptest.NewServer(withCSP(mux))
	t.Cleanup(func() {
		close(fs.done)
		ts.Close()
		fs.wg.Wait()
	})
	ctx := newBrowser(t, 1000, 700)
	do(t, ctx, chromedp.Navigate(ts.URL+"/"))
	waitJS(t, ctx, "a live session with a frame", `document.body.dataset.state === 'live' && Number(document.body.dataset.frames) > 0`)

	t.Run("instrumentation", func(t *testing.T) {
		type snapshot struct {
			Keys   []string
			Frozen bool
			Kept   bool
			Frames string
			Stats  struct{ FramesReceived, FramesDrawn, FramesDropped, BytesReceived, LastDrawAt float64 }
		}
		s := evalJS[snapshot](t, ctx, `(() => {
			const s = window.shojiViewerStats;
			try { window.shojiViewerStats = null; } catch {}
			return {keys: Object.keys(s), frozen: Object.isFrozen(s), kept: window.shojiViewerStats !== null,
				frames: document.body.dataset.frames, stats: s};
		})()`)
		want := []string{"framesReceived", "framesDrawn", "framesDropped", "framesPartial", "framesCopied", "framesRejected", "bytesReceived", "lastDrawAt"}
		if !slices.Equal(s.Keys, want) {
			t.Errorf("shojiViewerStats has %v, want %v", s.Keys, want)
		}
		if !s.Frozen || !s.Kept {
			t.Errorf("shojiViewerStats can be changed by the page (frozen %v, kept %v)", s.Frozen, s.Kept)
		}
		st := s.Stats
		if st.FramesReceived < 1 || st.FramesDrawn < 1 || st.BytesReceived < 1 || st.LastDrawAt <= 0 || strconv.Itoa(int(st.FramesDrawn)) != s.Frames {
			t.Errorf("shojiViewerStats = %+v with body data-frames %q", st, s.Frames)
		}
	})

	t.Run("stats overlay", func(t *testing.T) {
		if !evalJS[bool](t, ctx, `document.getElementById('stats').hidden`) {
			t.Fatal("#stats is shown before it was asked for")
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`#stats-toggle`)))
		if got := evalJS[string](t, ctx, `document.getElementById('stats-toggle').getAttribute('aria-expanded')`); got != "true" {
			t.Errorf("#stats-toggle aria-expanded = %q after opening", got)
		}
		if evalJS[bool](t, ctx, `document.getElementById('stats').hidden`) {
			t.Fatal("#stats is hidden after the toggle")
		}
		if got := evalJS[string](t, ctx, `document.activeElement.id`); got != "ime" {
			t.Errorf("focus is on #%s after the toggle, want the remote page (#ime)", got)
		}
		// A click on the remote page, answered by a frame that shows it.
		r := evalJS[[]float64](t, ctx, `(() => { const r = document.getElementById('screen').getBoundingClientRect(); return [r.left, r.top]; })()`)
		fs.drain()
		do(t, ctx, chromedp.MouseClickXY(r[0]+100, r[1]+100))
		fs.next("mouse down", func(m map[string]any) bool { return m["type"] == "mouse" && m["action"] == "down" })
		fs.send(jpegFrame(t, colorOf(1), 900, 560))
		waitJS(t, ctx, "input→frame in the overlay", `document.getElementById('stats').dataset.inputFrame !== undefined && document.getElementById('stats').dataset.inputFrame !== ''`)
		d := evalJS[map[string]string](t, ctx, `({...document.getElementById('stats').dataset})`)
		for _, k := range []string{"fps", "bytes", "inputFrame", "drops"} {
			if _, err := strconv.ParseFloat(d[k], 64); err != nil {
				t.Errorf("#stats data-%s = %q, want a number", k, d[k])
			}
		}
		shown := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#stats span')].map((e) => e.textContent)`)
		if len(shown) != 8 || !strings.HasSuffix(shown[5], " ms") {
			t.Errorf("#stats shows %q", shown)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`#stats-toggle`)))
		if !evalJS[bool](t, ctx, `document.getElementById('stats').hidden`) {
			t.Error("#stats is still shown after the toggle closed it")
		}
	})

	t.Run("moves coalesced", func(t *testing.T) {
		fs.drain()
		// Ten moves and a press in one task, so no animation frame comes
		// between them: one move (the last) goes, then the press.
		evalJS[bool](t, ctx, `(() => {
			const c = document.getElementById('screen'), r = c.getBoundingClientRect();
			for (let i = 1; i <= 10; i++) {
				c.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: r.left + 10 * i, clientY: r.top + 20}));
			}
			c.dispatchEvent(new MouseEvent('mousedown', {bubbles: true, button: 0, buttons: 1, clientX: r.left + 100, clientY: r.top + 20}));
			c.dispatchEvent(new MouseEvent('mouseup', {bubbles: true, button: 0, buttons: 0, clientX: r.left + 100, clientY: r.top + 20}));
			return true;
		})()`)
		// Moves the terminal browser makes up on its own (after a layout
		// change) may come too; the test's moves are those at y = 20.
		var got []string
		for {
			m := fs.next("mouse messages", func(m map[string]any) bool {
				return m["type"] == "mouse" && (m["action"] != "move" || m["y"] == 20.0)
			})
			got = append(got, fmt.Sprintf("%v@%v,%v", m["action"], m["x"], m["y"]))
			if m["action"] == "up" {
				break
			}
		}
		if want := []string{"move@100,20", "down@100,20", "up@100,20"}; !slices.Equal(got, want) {
			t.Errorf("the viewer sent %v, want %v", got, want)
		}
	})

	t.Run("wheel batched", func(t *testing.T) {
		fs.drain()
		// Five wheel events at one point and one far away, then a press,
		// in one task: two wheel messages (deltas summed) go before it.
		evalJS[bool](t, ctx, `(() => {
			const c = document.getElementById('screen'), r = c.getBoundingClientRect();
			const wheel = (x, y, dy) => c.dispatchEvent(new WheelEvent('wheel', {bubbles: true, cancelable: true,
				clientX: r.left + x, clientY: r.top + y, deltaY: dy, deltaMode: 0}));
			for (let i = 0; i < 5; i++) {
				wheel(200 + i, 200, 10);
			}
			wheel(500, 400, 7);
			c.dispatchEvent(new MouseEvent('mousedown', {bubbles: true, button: 0, buttons: 1, clientX: r.left + 500, clientY: r.top + 400}));
			c.dispatchEvent(new MouseEvent('mouseup', {bubbles: true, button: 0, buttons: 0, clientX: r.left + 500, clientY: r.top + 400}));
			return true;
		})()`)
		var got []string
		for {
			m := fs.next("wheel or button", func(m map[string]any) bool { return m["type"] == "wheel" || isPress(m) })
			if m["type"] == "mouse" {
				got = append(got, fmt.Sprint(m["action"]))
				if m["action"] == "up" {
					break
				}
				continue
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"dx", "dy", "mode", "mods", "type", "x", "y"}; !slices.Equal(keys, want) {
				t.Errorf("wheel message has fields %v, want %v (docs/protocol.md)", keys, want)
			}
			got = append(got, fmt.Sprintf("wheel %v@%v,%v", m["dy"], m["x"], m["y"]))
		}
		if want := []string{"wheel 50@204,200", "wheel 7@500,400", "down", "up"}; !slices.Equal(got, want) {
			t.Errorf("the viewer sent %v, want %v", got, want)
		}
	})

	t.Run("presses go in their own task", func(t *testing.T) {
		// A button, a key and an IME commit are sent from the handler of
		// their event, not from a later animation frame or task: the
		// WebSocket has them before the dispatching task returns.
		got := evalJS[[]string](t, ctx, `(() => {
			const sent = [];
			const send = WebSocket.prototype.send;
			WebSocket.prototype.send = function (data) { sent.push(JSON.parse(data)); return send.call(this, data); };
			try {
				const c = document.getElementById('screen'), ime = document.getElementById('ime'), r = c.getBoundingClientRect();
				c.dispatchEvent(new MouseEvent('mousedown', {bubbles: true, cancelable: true, button: 0, buttons: 1, clientX: r.left + 30, clientY: r.top + 30}));
				window.dispatchEvent(new MouseEvent('mouseup', {bubbles: true, cancelable: true, button: 0, buttons: 0, clientX: r.left + 30, clientY: r.top + 30}));
				ime.dispatchEvent(new KeyboardEvent('keydown', {bubbles: true, cancelable: true, key: 'F2', code: 'F2', keyCode: 113}));
				ime.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, cancelable: true, key: 'F2', code: 'F2', keyCode: 113}));
				ime.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true, data: ''}));
				ime.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: '日本'}));
			} finally {
				WebSocket.prototype.send = send;
			}
			return sent.filter((m) => m.type !== 'mouse' || m.action !== 'move').map((m) => m.type + ' ' + (m.action || '') + ' ' + (m.text || m.key || m.button || ''));
		})()`)
		// The composition had no update yet, so one goes with the commit.
		want := []string{"mouse down left", "mouse up left", "key down F2", "key up F2", "ime update 日本", "ime commit 日本"}
		if !slices.Equal(got, want) {
			t.Errorf("sent within the events' task: %q, want %q", got, want)
		}
	})

	t.Run("IME commit goes alone", func(t *testing.T) {
		// The terminal's IME composes にほんご, then commits 日本語. The
		// composition goes as updates; the commit goes as one commit, with
		// no update of the final text ahead of it (which would make the
		// remote page compose before it commits).
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('ime').focus()`))
		fs.drain()
		tgt := chromedp.FromContext(ctx).Target
		for _, text := range []string{"に", "にほ", "にほん", "にほんご"} {
			n := int64(len([]rune(text)))
			if _, err := cdp.Call(ctx, tgt, input.ImeSetComposition, input.ImeSetCompositionParams{Text: text, SelectionStart: n, SelectionEnd: n}); err != nil {
				t.Fatalf("compose %q: %v", text, err)
			}
		}
		isIME := func(m map[string]any) bool { return m["type"] == "ime" }
		for m := fs.next("ime update", isIME); m["text"] != "にほんご"; m = fs.next("ime update にほんご", isIME) {
			if m["action"] != "update" {
				t.Fatalf("the viewer sent %v while composing", m)
			}
		}
		if _, err := cdp.Call(ctx, tgt, input.InsertText, input.InsertTextParams{Text: "日本語"}); err != nil {
			t.Fatalf("commit: %v", err)
		}
		m := fs.next("ime commit", isIME)
		if m["action"] != "commit" || m["text"] != "日本語" {
			t.Errorf("after the commit the viewer sent %v first, want ime commit 日本語", m)
		}
	})

	t.Run("IME committed before any update still composes", func(t *testing.T) {
		// A composition that starts and commits in one task: no update
		// went, so the commit is preceded by one, and the remote page sees
		// a composition rather than bare text.
		fs.drain()
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`(() => {
			const t = document.getElementById('ime');
			t.focus();
			t.dispatchEvent(new CompositionEvent('compositionstart', {data: ''}));
			t.dispatchEvent(new CompositionEvent('compositionupdate', {data: '東京'}));
			t.dispatchEvent(new CompositionEvent('compositionend', {data: '東京'}));
		})()`))
		isIME := func(m map[string]any) bool { return m["type"] == "ime" }
		if m := fs.next("ime update", isIME); m["action"] != "update" || m["text"] != "東京" {
			t.Fatalf("first IME message %v, want update 東京", m)
		}
		if m := fs.next("ime commit", isIME); m["action"] != "commit" || m["text"] != "東京" {
			t.Fatalf("second IME message %v, want commit 東京", m)
		}
	})

	t.Run("frames in order", func(t *testing.T) {
		before := evalJS[int](t, ctx, `window.shojiViewerStats.framesReceived`)
		const n = 12
		for i := range n {
			fs.send(jpegFrame(t, colorOf(10+i), 900, 560))
		}
		waitJS(t, ctx, "every frame drawn or dropped", fmt.Sprintf(`(() => {
			const s = window.shojiViewerStats;
			return s.framesReceived === %d && s.framesDrawn + s.framesDropped === s.framesReceived;
		})()`, before+n))
		px := evalJS[[3]int](t, ctx, `(() => {
			const c = document.getElementById('screen');
			return [...c.getContext('2d').getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data.slice(0, 3)];
		})()`)
		if want := colorOf(10 + n - 1); !near(px, want) {
			t.Errorf("canvas shows %v, want the last frame's %v", px, want)
		}
	})
}
