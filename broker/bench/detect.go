package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
)

// Rect is a rectangle in CSS pixels of the remote viewport, or in image
// pixels once scaled.
type Rect struct {
	X, Y, W, H int
}

// scale returns r with every side multiplied by f, rounded.
func (r Rect) scale(f float64) Rect {
	return Rect{
		X: int(math.Round(float64(r.X) * f)),
		Y: int(math.Round(float64(r.Y) * f)),
		W: int(math.Round(float64(r.W) * f)),
		H: int(math.Round(float64(r.H) * f)),
	}
}

// Change decides whether a frame shows the effect of an input: of the
// pixels of Rect sampled every Step pixels in both directions, at least
// MinPixels differ from the reference frame by more than Delta in one of
// red, green or blue. A Delta well above JPEG's noise makes re-encodings of
// the same picture count as no change; MinPixels keeps a few stray block
// artefacts from counting as one. The real viewer's in-page probe
// (probeJS) applies the same rule to the canvas.
type Change struct {
	Rect      Rect
	Step      int
	Delta     int
	MinPixels int
}

// Defaults of a Change.
const (
	defaultStep      = 2
	defaultDelta     = 64
	defaultMinPixels = 40
)

// change returns a Change over r with the default thresholds.
func change(r Rect) Change {
	return Change{Rect: r, Step: defaultStep, Delta: defaultDelta, MinPixels: defaultMinPixels}
}

// Count returns how many sampled pixels of the rectangle differ between
// ref and img. The rectangle is in the images' pixels; the part outside
// either image is ignored.
func (c Change) Count(ref, img image.Image) int {
	step := max(c.Step, 1)
	r := image.Rect(c.Rect.X, c.Rect.Y, c.Rect.X+c.Rect.W, c.Rect.Y+c.Rect.H).
		Intersect(ref.Bounds()).Intersect(img.Bounds())
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y += step {
		for x := r.Min.X; x < r.Max.X; x += step {
			if differ(ref.At(x, y), img.At(x, y), c.Delta) {
				n++
			}
		}
	}
	return n
}

// Shows reports whether img shows the change from ref.
func (c Change) Shows(ref, img image.Image) bool {
	return c.Count(ref, img) >= max(c.MinPixels, 1)
}

// differ reports whether a and b differ by more than delta in a channel.
func differ(a, b color.Color, delta int) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := max(absDiff(ar, br), absDiff(ag, bg), absDiff(ab, bb)) >> 8
	return int(d) > delta
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// near reports whether the pixel at (x, y) of img is within tol of want in
// each channel.
func near(img image.Image, x, y int, want [3]uint8, tol int) bool {
	if !(image.Point{X: x, Y: y}).In(img.Bounds()) {
		return false
	}
	r, g, b, _ := img.At(x, y).RGBA()
	for i, v := range [3]uint32{r >> 8, g >> 8, b >> 8} {
		if d := int(v) - int(want[i]); d < -tol || d > tol {
			return false
		}
	}
	return true
}

// decodeJPEG decodes one frame.
func decodeJPEG(data []byte) (image.Image, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode frame (%d bytes): %w", len(data), err)
	}
	return img, nil
}
