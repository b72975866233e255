package web

// The viewer's partial frames (docs/protocol.md, "Partial frames") in real
// headless Chromium: rectangles drawn over a full frame give the picture a
// full frame of it gives, and a partial frame that does not fit is dropped
// whole, counted, and answered with keyframe.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// wireTile is one rectangle of a partial frame as the wire carries it.
type wireTile struct {
	x, y, w, h int
	jpeg       []byte
}

// partialMessage lays out a partial frame byte by byte, as
// docs/protocol.md describes it, with no checks: the test makes bad ones
// too.
func partialMessage(width, height int, tiles []wireTile) []byte {
	return partialMessageQ(width, height, 0, nil, tiles)
}

// wireCopy is one copy of a partial frame: source x, y, w, h and
// destination x, y.
type wireCopy [6]int

// copiesMessage is partialMessage with copies.
func copiesMessage(width, height int, copies []wireCopy, tiles []wireTile) []byte {
	return partialMessageQ(width, height, 0, copies, tiles)
}

// partialMessageQ is partialMessage for a frame of a quality (compact
// tiles need it), with copies.
func partialMessageQ(width, height, quality int, copies []wireCopy, tiles []wireTile) []byte {
	b := []byte{0x50, 2}
	b = binary.BigEndian.AppendUint16(b, uint16(width))
	b = binary.BigEndian.AppendUint16(b, uint16(height))
	b = binary.BigEndian.AppendUint16(b, uint16(len(tiles)))
	b = append(b, byte(quality), byte(len(copies)))
	for _, c := range copies {
		for _, v := range c {
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		}
	}
	for _, t := range tiles {
		for _, v := range []int{t.x, t.y, t.w, t.h} {
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.jpeg)))
		b = append(b, t.jpeg...)
	}
	return b
}

// pattern is the colour of picture variant v at (x, y): a page of text
// (dark strokes on a light background, lines 16 pixels apart) with a
// coloured bar, each variant with other strokes, so that a misplaced or
// missing rectangle shows.
func pattern(x, y, v int) color.RGBA {
	line := y % 16
	switch {
	case v == 0 && line < 10 && (x/3+y/5)%7 == 0:
		return color.RGBA{40, 40, 40, 255}
	case v == 0 && y%128 < 20:
		return color.RGBA{30, 90, 160, 255}
	case v == 0:
		return color.RGBA{245, 245, 245, 255}
	case line < 11 && (x/2+y/3)%5 == 0:
		return color.RGBA{20, 20, 20, 255}
	case x%96 < 24:
		return color.RGBA{200, 70, 60, 255}
	}
	return color.RGBA{255, 255, 255, 255}
}

// picture is a w×h image of variant 0 with the rectangles in changed of
// variant 1.
func picture(w, h int, changed []image.Rectangle) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := 0
			for _, r := range changed {
				if image.Pt(x, y).In(r) {
					v = 1
				}
			}
			img.SetRGBA(x, y, pattern(x, y, v))
		}
	}
	return img
}

// compactJPEG leaves out a JPEG's DQT and DHT segments: image/jpeg writes
// the standard tables, so the result is a compact tile of its quality
// (docs/protocol.md, "Compact tiles").
func compactJPEG(b []byte) []byte {
	out := []byte{0xFF, 0xD8}
	for i := 2; ; {
		code := b[i+1]
		if code == 0xDA {
			return append(out, b[i:]...)
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if code != 0xDB && code != 0xC4 {
			out = append(out, b[i:i+2+n]...)
		}
		i += 2 + n
	}
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// psnrScript returns the PSNR (dB, 99 for identical) of the canvas against
// the JPEG at /test/ref.jpg drawn to the canvas's size, over the whole
// canvas and the lowest of its 64×64 tiles.
const psnrScript = `(async () => {
	const c = document.getElementById('screen');
	const ref = await createImageBitmap(await (await fetch('/test/ref.jpg')).blob());
	const o = new OffscreenCanvas(c.width, c.height);
	const octx = o.getContext('2d');
	octx.drawImage(ref, 0, 0, c.width, c.height);
	const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
	const b = octx.getImageData(0, 0, c.width, c.height).data;
	const psnr = (x0, y0, x1, y1) => {
		let se = 0, n = 0;
		for (let y = y0; y < y1; y++) {
			for (let x = x0; x < x1; x++) {
				const i = (y * c.width + x) * 4;
				for (let k = 0; k < 3; k++) {
					const d = a[i + k] - b[i + k];
					se += d * d;
					n++;
				}
			}
		}
		return se === 0 ? 99 : 10 * Math.log10(255 * 255 / (se / n));
	};
	let worst = 99;
	for (let y = 0; y < c.height; y += 64) {
		for (let x = 0; x < c.width; x += 64) {
			worst = Math.min(worst, psnr(x, y, Math.min(x + 64, c.width), Math.min(y + 64, c.height)));
		}
	}
	return [psnr(0, 0, c.width, c.height), worst];
})()`

// canvasHash is a checksum of the canvas's pixels.
const canvasHash = `(() => {
	const c = document.getElementById('screen');
	const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
	let h = 0;
	for (let i = 0; i < d.length; i++) {
		h = (Math.imul(h, 31) + d[i]) | 0;
	}
	return h;
})()`

// viewerCounts is window.shojiViewerStats.
type viewerCounts struct {
	FramesReceived, FramesDrawn, FramesDropped, FramesPartial, FramesCopied, FramesRejected int
}

// scrolledPicture is a w×h window of a tall page of variant 0 scrolled
// down by dy pixels, with a fixed header bar of 32 rows.
func scrolledPicture(w, h, dy int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := pattern(x, y+dy, 0)
			if y < 32 {
				c = color.RGBA{120, 40, 140, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// TestViewerPartialFrames feeds the viewer page a full frame, then a
// partial frame of the rectangles that changed, made with Go's image/jpeg:
// the canvas then matches a full frame of the new picture (PSNR ≥ 35 dB
// over it and in every 64×64 tile). Partial frames that do not fit (a
// rectangle outside the frame, a frame of another size, a tile of another
// size than its rectangle, a broken layout) are dropped whole: nothing of
// them is drawn, they are counted as rejected, the viewer sends keyframe,
// and it draws no partial frame until a full frame came. A partial frame
// with a copy (a scroll: the canvas drawn onto itself, then the header and
// the exposed strip) matches a full frame of the scrolled picture, and one
// whose copy lies outside the frame is refused the same way. A resize of
// the canvas keeps the rectangles drawn since the last full frame.
func TestViewerPartialFrames(t *testing.T) {
	fs := newFakeStream(t, jpegFrame(t, colorOf(0), 64, 64))
	var ref atomic.Pointer[[]byte]
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
	mux.HandleFunc("GET /test/ref.jpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(*ref.Load())
	})
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
	if v := evalJS[int](t, ctx, `window.devicePixelRatio`); v != 1 {
		t.Fatalf("devicePixelRatio %d; the test draws frames one to one on the canvas", v)
	}
	size := evalJS[[2]int](t, ctx, `[document.getElementById('screen').width, document.getElementById('screen').height]`)
	w, h := size[0], size[1]
	if w < 400 || h < 240 {
		t.Fatalf("canvas %dx%d: too small for the test's rectangles", w, h)
	}
	counts := func() viewerCounts {
		return evalJS[viewerCounts](t, ctx, `window.shojiViewerStats`)
	}
	// settled waits until every frame received was drawn or dropped.
	settled := func(what string, received int) {
		t.Helper()
		waitJS(t, ctx, what, fmt.Sprintf(`(() => {
			const s = window.shojiViewerStats;
			return s.framesReceived === %d && s.framesDrawn + s.framesDropped === s.framesReceived;
		})()`, received))
	}

	// Rectangles on the 16-pixel grid of the JPEG's blocks, as the
	// broker's lossless crops are; the last one reaches the frame's corner.
	changed := []image.Rectangle{image.Rect(32, 48, 192, 112), image.Rect(320, 160, 384, 240), image.Rect((w-48)&^15, (h-32)&^15, w, h)}
	before := picture(w, h, nil)
	after := picture(w, h, changed)
	full := encodeJPEG(t, before)
	sendFull := func(what string, img []byte) {
		t.Helper()
		n := counts().FramesReceived
		fs.send(img)
		settled(what, n+1)
	}
	sendFull("the first full frame", full)
	var tiles []wireTile
	for _, r := range changed {
		tiles = append(tiles, wireTile{r.Min.X, r.Min.Y, r.Dx(), r.Dy(), encodeJPEG(t, after.SubImage(r))})
	}
	good := partialMessage(w, h, tiles)
	afterJPEG := encodeJPEG(t, after)
	afterGood := afterJPEG
	ref.Store(&afterJPEG)

	t.Run("tiles match a full frame", func(t *testing.T) {
		c0 := counts()
		fs.send(good)
		settled("the partial frame", c0.FramesReceived+1)
		if c := counts(); c.FramesDrawn != c0.FramesDrawn+1 || c.FramesPartial != c0.FramesPartial+1 || c.FramesRejected != c0.FramesRejected {
			t.Fatalf("counts %+v after %+v: want one partial frame drawn", c, c0)
		}
		p := evalJS[[2]float64](t, ctx, psnrScript)
		t.Logf("canvas %dx%d against a full frame: PSNR %.1f dB, worst 64×64 tile %.1f dB", w, h, p[0], p[1])
		if p[0] < 35 || p[1] < 35 {
			t.Errorf("canvas against a full frame of the same picture: PSNR %.1f dB, worst 64×64 tile %.1f dB; want ≥ 35", p[0], p[1])
		}
		// The picture before is not what the canvas shows: the
		// comparison can fail.
		old := encodeJPEG(t, before)
		ref.Store(&old)
		if p := evalJS[[2]float64](t, ctx, psnrScript); p[1] >= 35 {
			t.Errorf("canvas against the picture before the change: worst tile %.1f dB; the test cannot tell them apart", p[1])
		}
		ref.Store(&afterJPEG)
	})

	t.Run("compact tiles match a full frame", func(t *testing.T) {
		// The tiles without their tables, which the viewer puts back:
		// the standard ones at the frame's quality (90, encodeJPEG's).
		sendFull("a full frame before the compact tiles", full)
		var compact []wireTile
		for _, tl := range tiles {
			tl.jpeg = compactJPEG(tl.jpeg)
			compact = append(compact, tl)
		}
		c0 := counts()
		fs.send(partialMessageQ(w, h, 90, nil, compact))
		settled("the compact partial frame", c0.FramesReceived+1)
		if c := counts(); c.FramesPartial != c0.FramesPartial+1 || c.FramesRejected != c0.FramesRejected {
			t.Fatalf("counts %+v after %+v: want one partial frame drawn", c, c0)
		}
		if p := evalJS[[2]float64](t, ctx, psnrScript); p[0] < 35 || p[1] < 35 {
			t.Errorf("compact tiles against a full frame of the same picture: PSNR %.1f dB, worst 64×64 tile %.1f dB; want ≥ 35", p[0], p[1])
		}
	})

	red := encodeJPEG(t, picture(16, 16, []image.Rectangle{image.Rect(0, 0, 16, 16)}))
	big := encodeJPEG(t, picture(32, 32, nil))
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"rectangle right of the frame", partialMessage(w, h, []wireTile{tiles[0], {w - 8, 0, 16, 16, red}})},
		{"rectangle below the frame", partialMessage(w, h, []wireTile{{0, h - 8, 16, 16, red}})},
		{"declared frame larger than the canvas's", partialMessage(w+16, h, []wireTile{{w, 0, 16, 16, red}})},
		{"declared frame smaller than the canvas's", partialMessage(w-16, h, []wireTile{{0, 0, 16, 16, red}})},
		{"tile larger than its rectangle", partialMessage(w, h, []wireTile{{0, 0, 16, 16, big}})},
		{"not a JPEG", partialMessage(w, h, []wireTile{{0, 0, 16, 16, []byte("not a jpeg")}})},
		{"length past the end", partialMessage(w, h, []wireTile{{0, 0, 16, 16, red}})[:40]},
		{"bytes after the last rectangle", append(partialMessage(w, h, []wireTile{{0, 0, 16, 16, red}}), 0)},
		{"compact tile in a frame without a quality", partialMessage(w, h, []wireTile{{0, 0, 16, 16, compactJPEG(red)}})},
		{"quality over 100", partialMessageQ(w, h, 101, nil, []wireTile{{0, 0, 16, 16, red}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hash := evalJS[int](t, ctx, canvasHash)
			c0 := counts()
			fs.drain()
			fs.send(tc.msg)
			fs.next("keyframe", func(m map[string]any) bool { return m["type"] == "keyframe" })
			settled("the refused partial frame", c0.FramesReceived+1)
			// Until a full frame comes, even a good partial frame is
			// dropped: it builds on a canvas the viewer does not have.
			fs.send(good)
			settled("a partial frame before the key frame", c0.FramesReceived+2)
			c := counts()
			if c.FramesRejected != c0.FramesRejected+1 || c.FramesDropped != c0.FramesDropped+2 || c.FramesDrawn != c0.FramesDrawn {
				t.Errorf("counts %+v after %+v: want one rejected, two dropped, none drawn", c, c0)
			}
			if got := evalJS[int](t, ctx, canvasHash); got != hash {
				t.Errorf("the canvas changed: a refused partial frame was drawn")
			}
			// The key frame: full frames and partial frames are drawn
			// again.
			sendFull("the key frame", full)
			fs.send(good)
			settled("a partial frame after the key frame", c0.FramesReceived+4)
			if c := counts(); c.FramesPartial != c0.FramesPartial+1 {
				t.Errorf("counts %+v: the partial frame after the key frame was not drawn", c)
			}
			if p := evalJS[[2]float64](t, ctx, psnrScript); p[1] < 35 {
				t.Errorf("after the key frame and a partial frame: worst tile %.1f dB, want ≥ 35", p[1])
			}
		})
	}

	t.Run("copies then tiles match a full frame", func(t *testing.T) {
		// A scroll by 48 pixels: the canvas's picture below the header
		// moves up, then the header and the exposed strip are drawn.
		sendFull("the frame before the scroll", encodeJPEG(t, scrolledPicture(w, h, 0)))
		after := scrolledPicture(w, h, 48)
		afterJPEG := encodeJPEG(t, after)
		ref.Store(&afterJPEG)
		header := image.Rect(0, 0, w, 32)
		bottom := image.Rect(0, (h-48)&^15, w, h)
		msg := copiesMessage(w, h, []wireCopy{{0, 48, w, h - 48, 0, 0}}, []wireTile{
			{header.Min.X, header.Min.Y, header.Dx(), header.Dy(), encodeJPEG(t, after.SubImage(header))},
			{bottom.Min.X, bottom.Min.Y, bottom.Dx(), bottom.Dy(), encodeJPEG(t, after.SubImage(bottom))},
		})
		c0 := counts()
		fs.send(msg)
		settled("the partial frame with a copy", c0.FramesReceived+1)
		if c := counts(); c.FramesPartial != c0.FramesPartial+1 || c.FramesCopied != c0.FramesCopied+1 || c.FramesRejected != c0.FramesRejected {
			t.Fatalf("counts %+v after %+v: want one partial frame with a copy drawn", c, c0)
		}
		p := evalJS[[2]float64](t, ctx, psnrScript)
		t.Logf("canvas after a copy and tiles against a full frame: PSNR %.1f dB, worst 64×64 tile %.1f dB", p[0], p[1])
		if p[0] < 35 || p[1] < 35 {
			t.Errorf("canvas after a copy against a full frame of the same picture: PSNR %.1f dB, worst tile %.1f dB; want ≥ 35", p[0], p[1])
		}
		// Without the copy the canvas is another picture: the check can fail.
		sendFull("the frame before the scroll again", encodeJPEG(t, scrolledPicture(w, h, 0)))
		fs.send(copiesMessage(w, h, []wireCopy{{0, 0, w, h, 0, 0}}, []wireTile{
			{header.Min.X, header.Min.Y, header.Dx(), header.Dy(), encodeJPEG(t, after.SubImage(header))},
		}))
		settled("a copy that moves nothing", c0.FramesReceived+3)
		if p := evalJS[[2]float64](t, ctx, psnrScript); p[1] >= 35 {
			t.Errorf("a canvas not scrolled against the scrolled picture: worst tile %.1f dB; the test cannot tell them apart", p[1])
		}
		// Back to the picture the other subtests compare with.
		sendFull("the full frame", full)
		fs.send(good)
		settled("the partial frame", c0.FramesReceived+5)
		ref.Store(&afterGood)
	})

	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"copy source below the frame", copiesMessage(w, h, []wireCopy{{0, 48, w, h, 0, 0}}, nil)},
		{"copy destination right of the frame", copiesMessage(w, h, []wireCopy{{0, 0, 32, 32, w - 16, 0}}, nil)},
		{"empty copy", copiesMessage(w, h, []wireCopy{{0, 0, 0, 32, 0, 0}}, nil)},
		{"more copies than allowed", copiesMessage(w, h, make([]wireCopy, 17), nil)},
		{"copies cut short", copiesMessage(w, h, []wireCopy{{0, 16, w, h - 16, 0, 0}}, nil)[:14]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hash := evalJS[int](t, ctx, canvasHash)
			c0 := counts()
			fs.drain()
			fs.send(tc.msg)
			fs.next("keyframe", func(m map[string]any) bool { return m["type"] == "keyframe" })
			settled("the refused partial frame", c0.FramesReceived+1)
			c := counts()
			if c.FramesRejected != c0.FramesRejected+1 || c.FramesDrawn != c0.FramesDrawn || c.FramesCopied != c0.FramesCopied {
				t.Errorf("counts %+v after %+v: want one rejected, none drawn", c, c0)
			}
			if got := evalJS[int](t, ctx, canvasHash); got != hash {
				t.Errorf("the canvas changed: a refused partial frame was drawn")
			}
			sendFull("the key frame", full)
			fs.send(good)
			settled("a partial frame after the key frame", c0.FramesReceived+3)
		})
	}

	t.Run("resize keeps the rectangles", func(t *testing.T) {
		// The canvas is cleared when it is resized; the rectangles drawn
		// since the last full frame live only on it, so they must come
		// back with the redraw, not the full frame under them.
		p := evalJS[[2]float64](t, ctx, psnrScript)
		if p[1] < 35 {
			t.Fatalf("before the resize: worst tile %.1f dB", p[1])
		}
		do(t, ctx, chromedp.EmulateViewport(int64(w)*3/4, int64(h)))
		waitJS(t, ctx, "the canvas resized", fmt.Sprintf(`document.getElementById('screen').width !== %d`, w))
		p = evalJS[[2]float64](t, ctx, psnrScript)
		t.Logf("after the resize: PSNR %.1f dB, worst 64×64 tile %.1f dB", p[0], p[1])
		if p[1] < 30 {
			t.Errorf("after the resize the canvas shows another picture: worst tile %.1f dB, want ≥ 30 (both sides scaled)", p[1])
		}
	})
}
