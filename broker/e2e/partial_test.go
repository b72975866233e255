package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/tiles"
	"github.com/shoji-rbi/shoji/isolation"
)

// viewerStats is window.shojiViewerStats (web/static/stats.js).
type viewerStats struct {
	FramesReceived int `json:"framesReceived"`
	FramesDrawn    int `json:"framesDrawn"`
	FramesDropped  int `json:"framesDropped"`
	FramesPartial  int `json:"framesPartial"`
	FramesRejected int `json:"framesRejected"`
	FramesCopied   int `json:"framesCopied"`
	BytesReceived  int `json:"bytesReceived"`
}

// stats returns the viewer's counters once every frame it received is
// drawn or dropped.
func (v *viewer) stats() viewerStats {
	v.t.Helper()
	v.waitFor("every frame received drawn or dropped", `(() => { const s = window.shojiViewerStats; return s.framesReceived === s.framesDrawn + s.framesDropped; })()`)
	return eval[viewerStats](v, `window.shojiViewerStats`)
}

// canvasMatch is how the viewer's canvas compares with a JPEG decoded by
// the viewer's own browser: the lowest PSNR over its 64x64 tiles (999 when
// equal) and where that tile is.
type canvasMatch struct {
	Worst float64 `json:"worst"`
	Where string  `json:"where"`
	Err   string  `json:"err"`
}

// compareCanvas decodes jpeg in the viewer page and compares it with the
// canvas, 64x64 tile by tile.
func (v *viewer) compareCanvas(jpeg []byte) canvasMatch {
	return eval[canvasMatch](v, fmt.Sprintf(`(async () => {
		const bytes = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
		const bmp = await createImageBitmap(new Blob([bytes], {type: 'image/jpeg'}));
		const c = document.getElementById('screen');
		if (bmp.width !== c.width || bmp.height !== c.height) {
			return {worst: 0, where: '', err: 'frame ' + bmp.width + 'x' + bmp.height + ', canvas ' + c.width + 'x' + c.height};
		}
		const o = new OffscreenCanvas(c.width, c.height);
		const ox = o.getContext('2d');
		ox.drawImage(bmp, 0, 0);
		const a = ox.getImageData(0, 0, c.width, c.height).data;
		const b = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let worst = 999, where = '';
		for (let ty = 0; ty < c.height; ty += 64) {
			for (let tx = 0; tx < c.width; tx += 64) {
				let se = 0, n = 0;
				for (let y = ty; y < Math.min(ty + 64, c.height); y++) {
					for (let x = tx; x < Math.min(tx + 64, c.width); x++) {
						const i = 4 * (y * c.width + x);
						for (let k = 0; k < 3; k++) { const d = a[i + k] - b[i + k]; se += d * d; n++; }
					}
				}
				if (se > 0) {
					const p = 10 * Math.log10(255 * 255 / (se / n));
					if (p < worst) { worst = p; where = tx + ',' + ty; }
				}
			}
		}
		return {worst, where, err: ''};
	})()`, base64.StdEncoding.EncodeToString(jpeg)))
}

// lastFrame returns the newest frame of the user's remote browser, whole.
func lastFrame(t *testing.T, b *brokerUnderTest) ([]byte, int) {
	t.Helper()
	s, ok := b.srv.Sessions().Get(b.user)
	if !ok {
		t.Fatal("no session")
	}
	f := s.LastFrame()
	if f == nil {
		t.Fatal("the session has no frame")
	}
	return f.JPEG, f.Quality
}

// waitCanvasIsLastFrame polls until the viewer's canvas matches the remote
// browser's newest full frame, PSNR ≥ 35 dB in every 64x64 tile, with the
// quality the frame must have (0: any); it fails with the worst tile.
func waitCanvasIsLastFrame(t *testing.T, v *viewer, b *brokerUnderTest, quality int) canvasMatch {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		jpeg, q := lastFrame(t, b)
		m := v.compareCanvas(jpeg)
		if m.Err == "" && m.Worst >= 35 && (quality == 0 || q == quality) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canvas does not match the browser's frame (quality %d): worst tile %.1f dB at %s %s", q, m.Worst, m.Where, m.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStill polls until the remote page has stood still for a few polls
// in a row but for a blinking caret: no frame, or a frame at another
// quality (the settle refresh, sent when nothing moved), or one that
// changed at most 64x64 pixels. The page has then finished drawing what
// the test did before.
func waitStill(t *testing.T, b *brokerUnderTest) {
	t.Helper()
	s, ok := b.srv.Sessions().Get(b.user)
	if !ok {
		t.Fatal("no session")
	}
	last, quiet := s.LastFrame(), 0
	for deadline := time.Now().Add(30 * time.Second); quiet < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the remote page never stood still")
		}
		time.Sleep(100 * time.Millisecond)
		f := s.LastFrame()
		if f == last || f.Quality != last.Quality || changedPixels(t, last, f) <= 64*64 {
			quiet++
		} else {
			quiet = 0
		}
		last = f
	}
}

// changedPixels is how many pixels the tile engine finds changed from a
// to b.
func changedPixels(t *testing.T, a, b *isolation.Frame) int {
	t.Helper()
	pa, err := tiles.Parse(a.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := tiles.Parse(b.JPEG)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range tiles.Diff(pa, pb) {
		n += r.Dx() * r.Dy()
	}
	return n
}

// metricValue reads one counter of the broker's /metrics.
func metricValue(t *testing.T, b *brokerUnderTest, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not in /metrics (status %d)", name, resp.StatusCode)
	return 0
}

// TestPartialFramesEndToEnd drives the viewer page in Chromium against a
// broker with real Chromium and proves, for a broker without the settle
// refresh (the canvas as it is before a refresh) and one with it: typing
// sends partial frames that are a small fraction of a full frame; the
// canvas then matches the browser's own full frame of the same page in
// every 64x64 tile; a moving square that stops leaves no ghost; and a
// viewer that reconnects gets a full frame, then partial frames again, and
// its canvas matches; wheel-scrolling a long article with a fixed header
// sends copies of the canvas plus the exposed strip and the header, each a
// small part of a full frame, and once scrolling stops the canvas matches
// the browser's frame. The broker's partial-frame metrics move.
func TestPartialFramesEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sharp int // stream.sharp_quality
	}{
		{"before the settle refresh", -1},
		{"with the settle refresh", broker.DefaultConfig().Stream.SharpQuality},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, func(c *broker.Config) { c.Stream.SharpQuality = tc.sharp })
			v := newViewer(t, 1024, 700)
			v.login(b)
			quality := 0
			if tc.sharp > 0 {
				quality = tc.sharp // the settled page is the sharp picture everywhere
			}
			partialFramesTyping(t, v, b, quality)
			partialFramesSpinnerStops(t, v, b, quality)
			partialFramesReconnect(t, v, b, quality)
			partialFramesScrolling(t, v, b, quality)
			if n := metricValue(t, b, "shoji_frames_partial_total"); n < 1 {
				t.Errorf("shoji_frames_partial_total = %v after partial frames", n)
			}
			saved := metricValue(t, b, "shoji_frame_bytes_saved_total")
			if saved < 1 {
				t.Errorf("shoji_frame_bytes_saved_total = %v after partial frames", saved)
			}
			t.Logf("metrics: partial frames %v, bytes saved %v", metricValue(t, b, "shoji_frames_partial_total"), saved)
		})
	}
}

// typeNote clicks the form's text area and types text into it, one key at
// a time, waiting for each to reach the page.
func typeNote(t *testing.T, v *viewer, b *brokerUnderTest, text string) {
	t.Helper()
	x, y := remoteCentre(t, b, "#note")
	v.clickRemote(x, y)
	waitRemote(t, b, "focus on #note", `document.activeElement && document.activeElement.id === 'note'`)
	before := remote[string](t, b, `document.querySelector('#note').value`)
	s, ok := b.srv.Sessions().Get(b.user)
	if !ok {
		t.Fatal("no session")
	}
	last := s.LastFrame()
	for i, r := range text {
		v.do(chromedp.KeyEvent(string(r)))
		waitRemote(t, b, "a typed character", fmt.Sprintf(`document.querySelector('#note').value === %q`, before+text[:i+1]))
	}
	// The page has the text; on a loaded machine its frames may come
	// later. Wait until the browser sent one after the typing began, so
	// that the caller's comparison of the canvas is with a frame of it.
	for deadline := time.Now().Add(30 * time.Second); s.LastFrame() == last; {
		if time.Now().After(deadline) {
			t.Fatal("no frame came from the browser after typing")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func partialFramesTyping(t *testing.T, v *viewer, b *brokerUnderTest, quality int) {
	navigate(t, v, b, "/form")
	// The first characters let the page finish loading and drawing (a
	// load is not a small change); the figures are the rest's.
	typeNote(t, v, b, "pa")
	waitStill(t, b)
	waitCanvasIsLastFrame(t, v, b, quality)
	full, _ := lastFrame(t, b)
	s0 := v.stats()
	mark := len(b.log.String())
	typeNote(t, v, b, "racetamol")
	m := waitCanvasIsLastFrame(t, v, b, quality)
	s1 := v.stats()
	frames, partial, bytes := s1.FramesReceived-s0.FramesReceived, s1.FramesPartial-s0.FramesPartial, s1.BytesReceived-s0.BytesReceived
	ratio := float64(bytes) / float64(max(frames, 1)*len(full))
	t.Logf("typing 9 characters: %d frames, %d partial, %d bytes; %.0f bytes a frame against a full frame of %d bytes (%.3f); canvas worst tile %.1f dB at %s",
		frames, partial, bytes, float64(bytes)/float64(max(frames, 1)), len(full), ratio, m.Worst, m.Where)
	if ratio > 0.1 || partial < frames {
		// What the broker sent in the window, to tell a page still drawing
		// from a stream that sends too much.
		for _, line := range strings.Split(b.log.String()[mark:], "\n") {
			if strings.Contains(line, "stream: ") && strings.Contains(line, " frame") {
				t.Logf("broker: %s", line)
			}
		}
	}
	if partial == 0 || partial < frames-2 {
		t.Errorf("typing sent %d frames, %d of them partial: want partial frames", frames, partial)
	}
	if ratio > 0.1 {
		t.Errorf("typing cost %.3f of a full frame per frame: want a small fraction", ratio)
	}
}

func partialFramesSpinnerStops(t *testing.T, v *viewer, b *brokerUnderTest, quality int) {
	navigate(t, v, b, "/animation")
	n := v.frames()
	v.waitNewFrames(n + 5)
	s0 := v.stats()
	x, y := remoteCentre(t, b, "#stop")
	v.clickRemote(x, y)
	waitRemote(t, b, "the animation stopped", `document.getElementById('anim-state').textContent === 'stopped'`)
	m := waitCanvasIsLastFrame(t, v, b, quality)
	s1 := v.stats()
	t.Logf("moving square: %d frames, %d partial, %d bytes; after it stopped the canvas's worst tile is %.1f dB at %s",
		s1.FramesReceived-s0.FramesReceived, s1.FramesPartial-s0.FramesPartial, s1.BytesReceived-s0.BytesReceived, m.Worst, m.Where)
	if s1.FramesPartial == s0.FramesPartial {
		t.Error("the moving square sent no partial frame")
	}
}

func partialFramesReconnect(t *testing.T, v *viewer, b *brokerUnderTest, quality int) {
	navigate(t, v, b, "/form")
	v.do(chromedp.Reload())
	v.waitLive()
	s0 := v.stats()
	// The page may have sent partial frames after the first by now; a
	// partial frame before any full one would have been refused.
	if s0.FramesReceived-s0.FramesPartial < 1 || s0.FramesRejected != 0 {
		t.Errorf("a reconnected viewer's first frames: %d received, %d partial, %d refused; want a full frame first", s0.FramesReceived, s0.FramesPartial, s0.FramesRejected)
	}
	waitCanvasIsLastFrame(t, v, b, quality)
	typeNote(t, v, b, "ibuprofen")
	m := waitCanvasIsLastFrame(t, v, b, quality)
	s1 := v.stats()
	t.Logf("after reconnecting: %d frames, %d partial; canvas worst tile %.1f dB at %s",
		s1.FramesReceived-s0.FramesReceived, s1.FramesPartial-s0.FramesPartial, m.Worst, m.Where)
	if s1.FramesPartial == s0.FramesPartial {
		t.Error("a reconnected viewer got no partial frame when typing")
	}
}

// copyLine is the broker's debug log line of a partial frame with a copy.
var copyLine = regexp.MustCompile(`msg="stream: partial frame with a copy".* bytes=(\d+) of=(\d+)`)

// wheelRemote turns the mouse wheel over the viewer's canvas at CSS point
// (x, y) of the remote page by dy pixels, as a clinician would.
func (v *viewer) wheelRemote(x, y, dy float64) {
	v.t.Helper()
	ox, oy := v.canvasOrigin()
	ctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
	defer cancel()
	// Chromium wants both deltas and cdproto leaves out a zero one.
	wheel := map[string]any{"type": "mouseWheel", "x": ox + x, "y": oy + y, "deltaX": 0, "deltaY": dy}
	if err := chromedp.FromContext(v.ctx).Target.Call(ctx, input.DispatchMouseEvent.Method, wheel, nil); err != nil {
		v.t.Fatal(err)
	}
}

func partialFramesScrolling(t *testing.T, v *viewer, b *brokerUnderTest, quality int) {
	navigate(t, v, b, "/article")
	// A fixed header, as many sites have: it stays where the copy moves
	// the rest, so it must be sent again with each scroll.
	remote[bool](t, b, `(() => {
		const h = document.createElement('div');
		h.textContent = 'Ward 7 · Patient notes · Isolated browsing';
		h.style.cssText = 'position:fixed;top:0;left:0;right:0;height:40px;background:#1f4e79;color:#fff;font:bold 20px sans-serif;padding:8px 16px;z-index:9';
		document.body.appendChild(h);
		return true;
	})()`)
	waitStill(t, b)
	waitCanvasIsLastFrame(t, v, b, quality)
	s0 := v.stats()
	copied0 := metricValue(t, b, "shoji_frames_copied_total")
	mark := len(b.log.String())
	const steps = 8
	for i := range steps {
		before := remote[float64](t, b, `window.scrollY`)
		drawn := v.stats().FramesDrawn
		v.wheelRemote(400, 300, 100)
		waitRemote(t, b, "the page scrolled", fmt.Sprintf(`window.scrollY > %v`, before))
		// One frame drawn per step, so that frames of several steps are
		// seldom folded into one (latest wins) and each copy is one step.
		v.waitFor(fmt.Sprintf("a frame after scroll step %d", i+1), fmt.Sprintf(`window.shojiViewerStats.framesDrawn > %d`, drawn))
	}
	scrolled := remote[float64](t, b, `window.scrollY`)
	waitStill(t, b)
	m := waitCanvasIsLastFrame(t, v, b, quality)
	s1 := v.stats()
	var copyBytes, fullBytes, copies int
	for _, line := range strings.Split(b.log.String()[mark:], "\n") {
		if c := copyLine.FindStringSubmatch(line); c != nil {
			n, _ := strconv.Atoi(c[1])
			of, _ := strconv.Atoi(c[2])
			copyBytes += n
			fullBytes += of
			copies++
		}
	}
	ratio := float64(copyBytes) / float64(max(fullBytes, 1))
	t.Logf("scrolling %v px in %d steps: %d frames, %d partial, %d with a copy, %d bytes; the %d copy frames took %d bytes for %d bytes of full frames (%.3f); canvas worst tile %.1f dB at %s",
		scrolled, steps, s1.FramesReceived-s0.FramesReceived, s1.FramesPartial-s0.FramesPartial, s1.FramesCopied-s0.FramesCopied, s1.BytesReceived-s0.BytesReceived,
		copies, copyBytes, fullBytes, ratio, m.Worst, m.Where)
	if s1.FramesCopied-s0.FramesCopied < steps/2 {
		for _, line := range strings.Split(b.log.String()[mark:], "\n") {
			if strings.Contains(line, "stream: ") && strings.Contains(line, " frame") {
				t.Logf("broker: %s", line)
			}
		}
		t.Errorf("scrolling in %d steps drew %d frames with a copy: want most of them", steps, s1.FramesCopied-s0.FramesCopied)
	}
	if copies == 0 || ratio > 0.4 {
		t.Errorf("frames with a copy took %.3f of their full frames' bytes: want a small part", ratio)
	}
	if n := metricValue(t, b, "shoji_frames_copied_total"); n < copied0+1 {
		t.Errorf("shoji_frames_copied_total = %v after scrolling, %v before", n, copied0)
	}
}
