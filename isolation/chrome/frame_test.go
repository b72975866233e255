package chrome

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// pageJPEG returns a w×h JPEG that looks like a rendered web page: a header
// bar, columns of text-like glyphs and a photo-like block, at the
// screencast's default quality. Its size is that of a real frame of a dense
// text page (about 250 kB at 1366×768 and DPR 1), which decides the cost of
// every copy and of the base64 decoding.
func pageJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill := func(r image.Rectangle, c color.RGBA) {
		for y := r.Min.Y; y < r.Max.Y && y < h; y++ {
			for x := r.Min.X; x < r.Max.X && x < w; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	fill(img.Bounds(), color.RGBA{255, 255, 255, 255})
	fill(image.Rect(0, 0, w, 56), color.RGBA{24, 64, 128, 255})
	// Lines of words: glyphs 6–9 px wide, 11 px high, on 18 px lines.
	for y := 80; y+11 < h; y += 18 {
		for x := 24; x < w*2/3; {
			word := 2 + rnd.IntN(8)
			for range word {
				// A glyph: a stem and a bowl or a bar, like a
				// letter of a sans-serif font.
				gw := 6 + rnd.IntN(4)
				ink := color.RGBA{30, 30, 30, 255}
				stem := x + rnd.IntN(gw-2)
				fill(image.Rect(stem, y+rnd.IntN(4), stem+1, y+11), ink)
				switch rnd.IntN(3) {
				case 0:
					fill(image.Rect(x, y+5, x+gw-1, y+6), ink)
					fill(image.Rect(x, y+10, x+gw-1, y+11), ink)
				case 1:
					fill(image.Rect(x+gw-2, y+5, x+gw-1, y+11), ink)
				}
				x += gw
			}
			x += 6
		}
	}
	// A photo: a gradient with noise.
	for y := 80; y < 80+300 && y < h; y++ {
		for x := w*2/3 + 20; x < w-20; x++ {
			n := uint8(rnd.IntN(6))
			img.SetRGBA(x, y, color.RGBA{uint8(x/6) + n, uint8(y/2) + n, 140 + n, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: DefaultJPEGQuality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// screencastMessage returns the DevTools message of a Page.screencastFrame
// event that carries jpg, as Chromium writes it to the pipe (without the
// terminating zero byte).
func screencastMessage(tb testing.TB, jpg []byte) []byte {
	tb.Helper()
	params, err := json.Marshal(map[string]any{
		"data": base64.StdEncoding.EncodeToString(jpg),
		"metadata": map[string]any{
			"offsetTop": 0, "pageScaleFactor": 1, "deviceWidth": 1366, "deviceHeight": 768,
			"scrollOffsetX": 0, "scrollOffsetY": 0, "timestamp": 1760000000.123456,
		},
		"sessionId": 1,
	})
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := json.Marshal(map[string]any{
		"method":    "Page.screencastFrame",
		"params":    json.RawMessage(params),
		"sessionId": "8E2F1C0A5B7D4E3F9A6B8C1D2E3F4A5B",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// repeatPipe is the browser's end of a DevTools pipe that sends the same
// message for ever.
type repeatPipe struct {
	msg []byte // with its terminating zero byte
	off int
}

func (p *repeatPipe) Read(b []byte) (int, error) {
	n := copy(b, p.msg[p.off:])
	p.off = (p.off + n) % len(p.msg)
	return n, nil
}

func (p *repeatPipe) Write(b []byte) (int, error) { return len(b), nil }
func (p *repeatPipe) Close() error                { return nil }

// TestFrameOf checks that a screencast event becomes a frame with the
// JPEG's own size and the event's timestamp.
func TestFrameOf(t *testing.T) {
	jpg := pageJPEG(t, 1366, 768)
	msg := new(cdproto.Message)
	if err := json.Unmarshal(screencastMessage(t, jpg), msg); err != nil {
		t.Fatal(err)
	}
	v, err := cdproto.UnmarshalMessage(msg, chromedp.DefaultUnmarshalOptions)
	if err != nil {
		t.Fatal(err)
	}
	f := frameOf(v.(*page.EventScreencastFrame))
	if !bytes.Equal(f.JPEG, jpg) {
		t.Errorf("frame holds %d bytes, want the %d of the event", len(f.JPEG), len(jpg))
	}
	if f.Width != 1366 || f.Height != 768 {
		t.Errorf("frame is %dx%d, want 1366x768", f.Width, f.Height)
	}
	if got := f.Time.UnixMicro(); got != 1760000000123456 {
		t.Errorf("frame time is %d µs, want 1760000000123456", got)
	}
}

// BenchmarkScreencastFrame measures the Go side of one screencast frame of
// a 1366×768 text page: "pipe" is all of it, from the bytes Chromium writes
// to the DevTools pipe to the isolation.Frame handed to the observer
// (chromedp's read and JSON decoding, base64 included, then frameOf);
// "unmarshal" is the event's decoding alone, "frame" is frameOf alone.
func BenchmarkScreencastFrame(b *testing.B) {
	jpg := pageJPEG(b, 1366, 768)
	raw := screencastMessage(b, jpg)
	b.Logf("frame: %d bytes of JPEG, %d bytes of DevTools message", len(jpg), len(raw))

	b.Run("pipe", func(b *testing.B) {
		pipe := &repeatPipe{msg: append(bytes.Clone(raw), 0)}
		conn := chromedp.NewPipeConn(pipe, pipe)
		b.SetBytes(int64(len(jpg)))
		b.ReportAllocs()
		for b.Loop() {
			msg := new(cdproto.Message)
			if err := conn.Read(b.Context(), msg); err != nil {
				b.Fatal(err)
			}
			v, err := cdproto.UnmarshalMessage(msg, chromedp.DefaultUnmarshalOptions)
			if err != nil {
				b.Fatal(err)
			}
			sinkFrame(frameOf(v.(*page.EventScreencastFrame)))
		}
	})

	msg := new(cdproto.Message)
	if err := json.Unmarshal(raw, msg); err != nil {
		b.Fatal(err)
	}
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(jpg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cdproto.UnmarshalMessage(msg, chromedp.DefaultUnmarshalOptions); err != nil {
				b.Fatal(err)
			}
		}
	})

	v, err := cdproto.UnmarshalMessage(msg, chromedp.DefaultUnmarshalOptions)
	if err != nil {
		b.Fatal(err)
	}
	ev := v.(*page.EventScreencastFrame)
	b.Run("frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkFrame(frameOf(ev))
		}
	})
}

// sinkFrame keeps a benchmark's result alive.
var sinkFrame = func(isolation.Frame) {}

var _ io.ReadWriteCloser = (*repeatPipe)(nil)

// TestJPEGSize checks the frame header scan against image/jpeg.
func TestJPEGSize(t *testing.T) {
	var sizes [][]byte
	for _, wh := range [][2]int{{1, 1}, {300, 200}, {1366, 768}, {2732, 1536}} {
		sizes = append(sizes, pageJPEG(t, wh[0], wh[1]))
	}
	for _, jpg := range sizes {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
		if err != nil {
			t.Fatal(err)
		}
		w, h, ok := jpegSize(jpg)
		if !ok || w != cfg.Width || h != cfg.Height {
			t.Errorf("jpegSize = %d, %d, %v; want %d, %d", w, h, ok, cfg.Width, cfg.Height)
		}
		// Every prefix cut before the frame header's end is refused, and
		// none panics.
		for n := range min(len(jpg), 4096) {
			if w, h, ok := jpegSize(jpg[:n]); ok && (w != cfg.Width || h != cfg.Height) {
				t.Fatalf("jpegSize of %d bytes = %d, %d", n, w, h)
			}
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n")},
		{"SOI only", []byte{0xFF, 0xD8}},
		{"SOS before SOF", []byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02}},
		{"short segment length", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01}},
		{"segment past the end", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x00}},
		{"short SOF", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x04, 0x08, 0x00}},
		{"zero size", []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0x01}},
	} {
		if w, h, ok := jpegSize(tc.b); ok {
			t.Errorf("%s: jpegSize = %d, %d, true; want not ok", tc.name, w, h)
		}
	}
	// Fill bytes and a restart marker before the frame header.
	b := []byte{0xFF, 0xD8, 0xFF, 0xFF, 0xD0, 0xFF, 0xC2, 0x00, 0x08, 0x08, 0x01, 0x02, 0x03, 0x04, 0x01}
	if w, h, ok := jpegSize(b); !ok || w != 0x0304 || h != 0x0102 {
		t.Errorf("jpegSize with fill bytes = %d, %d, %v; want 772, 258", w, h, ok)
	}
}

// FuzzJPEGSize checks that jpegSize never panics and agrees with
// image/jpeg on what both read.
func FuzzJPEGSize(f *testing.F) {
	f.Add(pageJPEG(f, 16, 8)[:200])
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x08, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h, ok := jpegSize(b)
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if ok && err == nil && (w != cfg.Width || h != cfg.Height) {
			t.Errorf("jpegSize = %d, %d; image/jpeg says %d, %d", w, h, cfg.Width, cfg.Height)
		}
	})
}

// TestJPEGQuality reads back the quality of JPEGs encoded at every quality
// with libjpeg's scaling of the standard tables (image/jpeg scales them
// the same way), and of real Chromium frames.
func TestJPEGQuality(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 16, 16))
	for q := 1; q <= 100; q++ {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		got := jpegQuality(b.Bytes())
		// The lowest qualities clamp the whole table to 255 and cannot
		// be told apart.
		if got != q && !(q <= 3 && got <= 3) {
			t.Errorf("quality %d read back as %d", q, got)
		}
		for n := range min(b.Len(), 300) {
			if got := jpegQuality(b.Bytes()[:n]); got != 0 && got != q {
				t.Fatalf("quality %d: %d bytes read as %d", q, n, got)
			}
		}
	}
	// Frames of Chromium's screencast at its default quality (captured
	// for broker/tiles).
	for _, name := range []string{"still.jpg", "typed.jpg", "dense-still.jpg"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "broker", "tiles", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := jpegQuality(b); got != DefaultJPEGQuality {
			t.Errorf("%s: quality %d, want %d", name, got, DefaultJPEGQuality)
		}
	}
	// A table that no quality gives.
	odd := []byte{0xFF, 0xD8, 0xFF, 0xDB, 0x00, 67, 0x00}
	odd = append(odd, bytes.Repeat([]byte{7}, 64)...)
	if got := jpegQuality(odd); got != 0 {
		t.Errorf("odd table read as quality %d", got)
	}
}

// TestFrameScroll checks that a frame's scroll offset is read from its
// metadata in the frame's device pixels, by both frame paths (chromedp's
// event through frameOf, the tap's raw JSON through metaScroll), and is
// left unknown when it is not a whole number of pixels or a value is
// missing.
func TestFrameScroll(t *testing.T) {
	tests := []struct {
		name     string
		width    int // the frame's width in pixels
		meta     string
		x, y     int
		scrolled bool
	}{
		{"DPR 1", 1280, `{"scrollOffsetX":0,"scrollOffsetY":480,"deviceWidth":1280,"pageScaleFactor":1}`, 0, 480, true},
		{"DPR 2", 2560, `{"scrollOffsetX":8,"scrollOffsetY":488,"deviceWidth":1280,"pageScaleFactor":1}`, 16, 976, true},
		{"downscaled frame", 640, `{"scrollOffsetX":0,"scrollOffsetY":64,"deviceWidth":1280,"pageScaleFactor":1}`, 0, 32, true},
		{"pinch zoom", 1280, `{"scrollOffsetX":10,"scrollOffsetY":100,"deviceWidth":1280,"pageScaleFactor":1.5}`, 15, 150, true},
		{"rounding noise", 1280, `{"scrollOffsetX":0,"scrollOffsetY":99.999,"deviceWidth":1280,"pageScaleFactor":1}`, 0, 100, true},
		{"half a pixel", 1280, `{"scrollOffsetX":0,"scrollOffsetY":10.5,"deviceWidth":1280,"pageScaleFactor":1}`, 0, 0, false},
		{"no device width", 1280, `{"scrollOffsetX":0,"scrollOffsetY":16,"pageScaleFactor":1}`, 0, 0, false},
		{"no scale", 1280, `{"scrollOffsetX":0,"scrollOffsetY":16,"deviceWidth":1280}`, 0, 0, false},
		{"no metadata", 1280, `null`, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var md page.ScreencastFrameMetadata
			if err := json.Unmarshal([]byte(tt.meta), &md); err != nil {
				t.Fatal(err)
			}
			ev := &page.EventScreencastFrame{Data: pageJPEG(t, tt.width, 16), Metadata: &md}
			if tt.meta == "null" {
				ev.Metadata = nil
			}
			viaEvent := frameOf(ev)
			viaTap := isolation.Frame{Width: tt.width}
			raw := []byte(tt.meta)
			if tt.meta == "null" {
				raw = nil
			}
			metaScroll(&viaTap, raw)
			for path, f := range map[string]isolation.Frame{"event": viaEvent, "tap": viaTap} {
				if f.ScrollX != tt.x || f.ScrollY != tt.y || f.Scrolled != tt.scrolled {
					t.Errorf("%s: scroll (%d, %d) known %v, want (%d, %d) known %v", path, f.ScrollX, f.ScrollY, f.Scrolled, tt.x, tt.y, tt.scrolled)
				}
			}
		})
	}
}
