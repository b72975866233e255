package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"testing"

	"github.com/shoji-rbi/shoji/isolation"
)

// filled returns a w×h image of colour c.
func filled(w, h int, c [3]uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{C: color.RGBA{c[0], c[1], c[2], 255}}, image.Point{}, draw.Src)
	return img
}

// paint fills r of img with c.
func paint(img *image.RGBA, r image.Rectangle, c [3]uint8) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	draw.Draw(out, r, &image.Uniform{C: color.RGBA{c[0], c[1], c[2], 255}}, image.Point{}, draw.Src)
	return out
}

// jpegRoundTrip encodes img as Chromium's screencast does and decodes it.
func jpegRoundTrip(t *testing.T, img image.Image) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	out, err := decodeJPEG(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChangeCount(t *testing.T) {
	white := [3]uint8{255, 255, 255}
	ref := filled(200, 100, white)
	ch := Change{Rect: Rect{X: 50, Y: 20, W: 100, H: 60}, Step: 2, Delta: 64, MinPixels: 40}
	for _, tc := range []struct {
		name  string
		img   image.Image
		count int
		shows bool
	}{
		{"the same picture", ref, 0, false},
		{"a black block inside", paint(ref, image.Rect(60, 30, 80, 50), [3]uint8{}), 100, true},
		{"a block outside the rectangle", paint(ref, image.Rect(0, 0, 40, 100), [3]uint8{}), 0, false},
		{"a faint change below Delta", paint(ref, image.Rect(0, 0, 200, 100), [3]uint8{200, 200, 200}), 0, false},
		{"one channel past Delta", paint(ref, image.Rect(0, 0, 200, 100), [3]uint8{255, 255, 100}), 1500, true},
		{"too few pixels", paint(ref, image.Rect(60, 30, 70, 40), [3]uint8{}), 25, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ch.Count(ref, tc.img); got != tc.count {
				t.Errorf("Count = %d, want %d", got, tc.count)
			}
			if got := ch.Shows(ref, tc.img); got != tc.shows {
				t.Errorf("Shows = %v, want %v", got, tc.shows)
			}
		})
	}
}

func TestChangeClipsToImages(t *testing.T) {
	ref := filled(100, 100, [3]uint8{255, 255, 255})
	img := filled(100, 100, [3]uint8{})
	ch := Change{Rect: Rect{X: 90, Y: 90, W: 50, H: 50}, Step: 1, Delta: 64}
	if got := ch.Count(ref, img); got != 100 {
		t.Errorf("Count of a rectangle past the corner = %d, want the 10×10 inside", got)
	}
	small := filled(95, 95, [3]uint8{})
	if got := ch.Count(ref, small); got != 25 {
		t.Errorf("Count against a smaller image = %d, want the 5×5 both have", got)
	}
}

// TestChangeThroughJPEG checks the thresholds against real encodings: the
// click page's two colours are a change, a re-encoding of the same picture
// and a 96-pixel character in a field are told apart.
func TestChangeThroughJPEG(t *testing.T) {
	a := jpegRoundTrip(t, filled(320, 240, clickA))
	a2 := jpegRoundTrip(t, filled(320, 240, clickA))
	b := jpegRoundTrip(t, filled(320, 240, clickB))
	ch := change(Rect{X: 80, Y: 40, W: 160, H: 160})
	if ch.Shows(a, a2) {
		t.Errorf("two encodings of the same picture differ in %d pixels", ch.Count(a, a2))
	}
	if !ch.Shows(a, b) {
		t.Errorf("the click page's colours differ in only %d pixels", ch.Count(a, b))
	}

	field := filled(900, 360, [3]uint8{255, 255, 255})
	// A letter's strokes: two bars of a 96-pixel glyph.
	glyph := paint(paint(field, image.Rect(10, 20, 22, 110), [3]uint8{}), image.Rect(10, 100, 60, 110), [3]uint8{})
	before, after := jpegRoundTrip(t, field), jpegRoundTrip(t, glyph)
	tf := change(Rect{W: 900, H: 360})
	if !tf.Shows(before, after) {
		t.Errorf("a typed letter changes only %d sampled pixels", tf.Count(before, after))
	}
	if tf.Shows(before, jpegRoundTrip(t, field)) {
		t.Error("re-encoding the empty field counts as a change")
	}
}

func TestShowsPage(t *testing.T) {
	vp := isolation.Viewport{Width: 640, Height: 360, DPR: 1}
	for _, scale := range []int{1, 2} {
		img := filled(vp.Width*scale, vp.Height*scale, [3]uint8{255, 255, 255})
		img = paint(img, image.Rect((vp.Width-markerW)*scale, 0, vp.Width*scale, markerH*scale), pageClick.marker)
		dec := jpegRoundTrip(t, img)
		if !showsPage(dec, vp, pageClick) {
			t.Errorf("scale %d: the click page's marker is not seen", scale)
		}
		if showsPage(dec, vp, pageText) {
			t.Errorf("scale %d: the click page is taken for the text page", scale)
		}
	}
}

func TestMarkersDiffer(t *testing.T) {
	for i, a := range pages {
		for _, b := range pages[i+1:] {
			d := 0
			for c := range 3 {
				d = max(d, absInt(int(a.marker[c])-int(b.marker[c])))
			}
			if d < 80 {
				t.Errorf("pages %s and %s have markers too alike: %v and %v", a.path, b.path, a.marker, b.marker)
			}
		}
	}
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
