package tiles

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// The benchmarks run on pairs of 1280x800 frames of Chromium's screencast
// at quality 70, a still page and the same page after one typed
// character: "light", a form with little text (36 kB frames), and
// "dense", a page of small text (133 kB frames, as the real pages):
//
//	go test -run ^$ -bench . -benchmem ./broker/tiles/
//
// Those that send the change report crop-B (the bytes of the crops) and
// frame-B (the full frame's).

// benchPairs are the frame pairs the benchmarks run on.
var benchPairs = []struct{ name, prev, cur string }{
	{"light", "still.jpg", "typed.jpg"},
	{"dense", "dense-still.jpg", "dense-typed.jpg"},
}

// eachPair runs f as a sub-benchmark on each pair of frames.
func eachPair(b *testing.B, f func(b *testing.B, prev, cur []byte)) {
	for _, p := range benchPairs {
		b.Run(p.name, func(b *testing.B) { f(b, frame(b, p.prev), frame(b, p.cur)) })
	}
}

func BenchmarkParse(b *testing.B) { eachPair(b, benchParse) }

func benchParse(b *testing.B, _, cur []byte) {
	b.SetBytes(int64(len(cur)))
	for b.Loop() {
		if _, err := Parse(cur); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff(b *testing.B) { eachPair(b, benchDiff) }

func benchDiff(b *testing.B, p, c []byte) {
	prev, cur := mustParse(b, p), mustParse(b, c)
	for b.Loop() {
		if len(Diff(prev, cur)) == 0 {
			b.Fatal("no change")
		}
	}
}

func BenchmarkCrop(b *testing.B) { eachPair(b, benchCrop) }

func benchCrop(b *testing.B, p, c []byte) {
	prev, cur := mustParse(b, p), mustParse(b, c)
	rects := Diff(prev, cur)
	n := 0
	for b.Loop() {
		n = 0
		for _, r := range rects {
			n += len(mustCrop(b, cur, r))
		}
	}
	b.ReportMetric(float64(n), "crop-B")
	b.ReportMetric(float64(len(c)), "frame-B")
}

// BenchmarkParseDiffCrop is the whole lossless path for one pair of
// frames: parse both, diff, crop the change.
func BenchmarkParseDiffCrop(b *testing.B) { eachPair(b, benchParseDiffCrop) }

func benchParseDiffCrop(b *testing.B, p, c []byte) {
	n := 0
	for b.Loop() {
		prev, cur := mustParse(b, p), mustParse(b, c)
		n = 0
		for _, r := range Diff(prev, cur) {
			n += len(mustCrop(b, cur, r))
		}
	}
	b.ReportMetric(float64(n), "crop-B")
	b.ReportMetric(float64(len(c)), "frame-B")
}

// BenchmarkDecodeCompareEncode is the other way, for comparison: decode
// both frames with image/jpeg, compare their 16x16 tiles' pixels, merge
// the changed tiles as Diff does and encode each rectangle again at the
// screencast's quality (a second, lossy encoding).
func BenchmarkDecodeCompareEncode(b *testing.B) { eachPair(b, benchDecodeCompareEncode) }

func benchDecodeCompareEncode(b *testing.B, p, c []byte) {
	overhead := mustParse(b, c).Overhead()
	n := 0
	var buf bytes.Buffer
	for b.Loop() {
		prev, cur := decode(b, p), decode(b, c)
		n = 0
		for _, r := range changedTiles(prev, cur, overhead) {
			buf.Reset()
			if err := jpeg.Encode(&buf, cur.SubImage(r), &jpeg.Options{Quality: screencastQuality}); err != nil {
				b.Fatal(err)
			}
			n += buf.Len()
		}
	}
	b.ReportMetric(float64(n), "crop-B")
	b.ReportMetric(float64(len(c)), "frame-B")
}

// changedTiles compares a and b's 4:2:0 samples by 16x16 tile and returns
// the changed tiles merged as Diff merges MCUs.
func changedTiles(a, b *image.YCbCr, overhead int) []image.Rectangle {
	w, h := (b.Rect.Dx()+15)/16, (b.Rect.Dy()+15)/16
	changed := make([]bool, w*h)
	for ty := range h {
		for tx := range w {
			r := image.Rect(tx*16, ty*16, tx*16+16, ty*16+16).Intersect(b.Rect)
			changed[ty*w+tx] = !sameSamples(a, b, r)
		}
	}
	var out []image.Rectangle
	for _, r := range merge(runs(changed, w, h), overhead) {
		out = append(out, image.Rect(r.Min.X*16, r.Min.Y*16, r.Max.X*16, r.Max.Y*16).Intersect(b.Rect))
	}
	return out
}

func sameSamples(a, b *image.YCbCr, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		i, j := a.YOffset(r.Min.X, y), b.YOffset(r.Min.X, y)
		if !bytes.Equal(a.Y[i:i+r.Dx()], b.Y[j:j+r.Dx()]) {
			return false
		}
	}
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		i, j := a.COffset(r.Min.X, y), b.COffset(r.Min.X, y)
		n := (r.Dx() + 1) / 2
		if !bytes.Equal(a.Cb[i:i+n], b.Cb[j:j+n]) || !bytes.Equal(a.Cr[i:i+n], b.Cr[j:j+n]) {
			return false
		}
	}
	return true
}

// BenchmarkDiffShifted compares a 1280x800 frame of a page with a fixed
// header scrolled by 48 pixels (frames built by scrolledFrame with
// image/jpeg at quality 70) against the previous one shifted, and crops what the copy does not bring ("shifted"), next to the
// unshifted comparison of the same pair ("plain"). Both report crop-B.
func BenchmarkDiffShifted(b *testing.B) {
	page := tallPage(b)
	prev, cur := scrolledFrame(b, page, 1280, 800, 0, 0), scrolledFrame(b, page, 1280, 800, 0, 48)
	pi, ci := mustParse(b, prev.JPEG), mustParse(b, cur.JPEG)
	for _, bc := range []struct {
		name  string
		shift image.Point
	}{{"shifted", image.Pt(0, -48)}, {"plain", image.Point{}}} {
		b.Run(bc.name, func(b *testing.B) {
			var rects []image.Rectangle
			for b.Loop() {
				rects = DiffShifted(pi, ci, bc.shift, nil)
			}
			size := 0
			for _, r := range rects {
				size += len(mustCrop(b, ci, r))
			}
			b.ReportMetric(float64(size), "crop-B")
			b.ReportMetric(float64(len(cur.JPEG)), "frame-B")
		})
	}
}
