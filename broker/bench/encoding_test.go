package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPSNR(t *testing.T) {
	white := [3]uint8{255, 255, 255}
	ref := filled(10, 10, white)
	for _, tc := range []struct {
		name string
		img  image.Image
		want float64
	}{
		{"equal", ref, math.Inf(1)},
		// One channel of every pixel off by 255: MSE 255²/3.
		{"blue gone", filled(10, 10, [3]uint8{255, 255, 0}), 10 * math.Log10(3)},
		// Every channel off by 1: MSE 1.
		{"off by one", filled(10, 10, [3]uint8{254, 254, 254}), 10 * math.Log10(255*255)},
		// A quarter of the pixels black: MSE 255²/4.
		{"a black quarter", paint(ref, image.Rect(0, 0, 5, 5), [3]uint8{}), 10 * math.Log10(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := psnr(ref, tc.img)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tc.want) > 1e-9 && !(math.IsInf(got, 1) && math.IsInf(tc.want, 1)) {
				t.Errorf("psnr = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := psnr(ref, filled(10, 11, white)); err == nil || !strings.Contains(err.Error(), "sizes differ") {
		t.Errorf("psnr of different sizes: err = %v, want sizes differ", err)
	}
}

func TestPSNROffsetBounds(t *testing.T) {
	// A sub-image starts elsewhere than (0, 0); pixels are paired by their
	// place in each image.
	a := paint(filled(20, 20, [3]uint8{10, 10, 10}), image.Rect(10, 10, 20, 20), [3]uint8{200, 0, 0})
	sub := a.SubImage(image.Rect(10, 10, 20, 20))
	got, err := psnr(filled(10, 10, [3]uint8{200, 0, 0}), sub)
	if err != nil || !math.IsInf(got, 1) {
		t.Errorf("psnr = %v, %v; want +Inf", got, err)
	}
}

func TestWebPRGB(t *testing.T) {
	// Studio-swing white, black and red as libwebp stores them.
	yc := image.NewYCbCr(image.Rect(0, 0, 3, 1), image.YCbCrSubsampleRatio444)
	for i, v := range [][3]uint8{{235, 128, 128}, {16, 128, 128}, {81, 90, 240}} {
		yc.Y[i], yc.Cb[i], yc.Cr[i] = v[0], v[1], v[2]
	}
	img, err := webpRGB(yc)
	if err != nil {
		t.Fatal(err)
	}
	want := []color.RGBA{{255, 255, 255, 255}, {0, 0, 0, 255}, {255, 0, 0, 255}}
	for i, w := range want {
		r, g, b, _ := img.At(i, 0).RGBA()
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		for c, v := range []uint8{w.R, w.G, w.B} {
			if d := got[c] - int(v); d < -2 || d > 2 {
				t.Errorf("pixel %d = %v, want %v within 2", i, got, w)
				break
			}
		}
	}
	rgba := filled(2, 2, [3]uint8{1, 2, 3})
	if out, _ := webpRGB(rgba); out != image.Image(rgba) {
		t.Error("an RGB picture (lossless WebP) was converted")
	}
}

func TestDecodeAny(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, filled(4, 3, [3]uint8{9, 8, 7})); err != nil {
		t.Fatal(err)
	}
	img, err := decodeAny(encPNG, buf.Bytes())
	if err != nil || img.Bounds().Dx() != 4 {
		t.Errorf("decode PNG: %v, %v", img, err)
	}
	if _, err := decodeAny(encWebP, []byte("not a picture")); err == nil || !strings.Contains(err.Error(), "decode webp") {
		t.Errorf("decode garbage as WebP: err = %v", err)
	}
	if _, err := decodeAny("gif", nil); err == nil {
		t.Error("decode gif: no error")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Error("median sorted its argument")
	}
}

func TestEncodingRowName(t *testing.T) {
	for _, tc := range []struct {
		r    EncodingRow
		want string
	}{
		{EncodingRow{Format: encJPEG, Quality: 70}, "JPEG 70"},
		{EncodingRow{Format: encWebP, Quality: 85}, "WEBP 85"},
		{EncodingRow{Format: encPNG}, "PNG"},
	} {
		if got := tc.r.Name(); got != tc.want {
			t.Errorf("Name = %q, want %q", got, tc.want)
		}
	}
}

// encRows are two pages' encodings with the sizes, capture times and
// PSNRs given, in the order of the arguments: PNG, JPEG 50, 70, 85, WebP
// 50, 70, 85.
func encRows(page string, bytes []int, capture []float64, psnrs []float64) []EncodingRow {
	encs := []encoding{{encPNG, 0}, {encJPEG, 50}, {encJPEG, 70}, {encJPEG, 85}, {encWebP, 50}, {encWebP, 70}, {encWebP, 85}}
	var rows []EncodingRow
	for i, e := range encs {
		r := EncodingRow{Page: page, Format: e.format, Quality: e.quality, Captures: 5, Bytes: bytes[i], CaptureMS: capture[i]}
		if i > 0 {
			r.PSNR = ptr(psnrs[i-1])
		}
		rows = append(rows, r)
	}
	return rows
}

func TestEncodingAdvice(t *testing.T) {
	kib := func(xs ...int) []int {
		for i := range xs {
			xs[i] *= 1024
		}
		return xs
	}
	for _, tc := range []struct {
		name string
		rows []EncodingRow
		want []string
	}{
		{
			name: "WebP 85 is smaller at JPEG 85's PSNR; JPEG 50 is as fast as JPEG 70",
			rows: append(
				encRows("text", kib(300, 80, 100, 140, 60, 70, 90), []float64{100, 30, 31, 32, 90, 95, 99}, []float64{30, 34, 40, 33, 37, 41}),
				encRows("photo", kib(600, 40, 60, 100, 20, 30, 60), []float64{200, 30, 30, 31, 90, 95, 99}, []float64{35, 37, 40, 36, 38, 40.5})...),
			want: []string{
				"Sharp refresh when the page settles: WEBP 85 — 150 KiB over the 2 pages, 62 % of JPEG 85's 240 KiB, at a PSNR at least JPEG 85's " +
					"on every page (+0.5 dB at the least); capture 198 ms against 63 ms (sums of the pages' medians).",
				"While the page moves: JPEG 50 — 75 % of JPEG 70's bytes, at a mean PSNR of 32.5 dB against 35.5 dB, capture 60 ms against 61 ms " +
					"(the smallest lossy picture of quality ≤ 70 whose capture is at most 10 % or 5 ms a page slower than JPEG 70's).",
			},
		},
		{
			name: "WebP falls short on one page",
			rows: append(
				encRows("text", kib(300, 80, 100, 140, 60, 70, 90), []float64{100, 30, 31, 32, 90, 95, 99}, []float64{30, 34, 40, 33, 37, 39.9}),
				encRows("photo", kib(600, 40, 60, 100, 20, 30, 60), []float64{200, 30, 30, 31, 90, 95, 99}, []float64{35, 37, 40, 36, 38, 40.5})...),
			want: []string{
				"Sharp refresh when the page settles: JPEG 85 itself (240 KiB over the 2 pages): no other format and quality reaches its PSNR on every page in fewer bytes.",
				"While the page moves: JPEG 50 — 75 % of JPEG 70's bytes, at a mean PSNR of 32.5 dB against 35.5 dB, capture 60 ms against 61 ms " +
					"(the smallest lossy picture of quality ≤ 70 whose capture is at most 10 % or 5 ms a page slower than JPEG 70's).",
			},
		},
		{name: "nothing measured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, encodingAdvice(tc.rows)); diff != "" {
				t.Errorf("advice (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteEncodingMarkdown(t *testing.T) {
	rows := encRows("dense", []int{2048, 1024, 1536, 2048, 512, 768, 1024}, []float64{10, 5, 5, 5, 9, 9, 9}, []float64{30, 34, 40, 33, 37, 41})
	var b strings.Builder
	writeEncodingMarkdown(&b, rows, []string{"advice line"})
	for _, want := range []string{
		"medians of 5 pictures per format",
		"| dense | PNG | 2.0 KiB | 10.0 ms | 0.0 ms | reference |",
		"| dense | WEBP 85 | 1.0 KiB | 9.0 ms | 0.0 ms | 41.0 dB |",
		"- advice line",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	writeEncodingMarkdown(&b, nil, nil)
	if b.Len() != 0 {
		t.Errorf("markdown without rows: %q", b.String())
	}
}

func TestGeneratedPages(t *testing.T) {
	doc := pagePhoto.html()
	if n := strings.Count(doc, `src="data:image/jpeg;base64,`); n != 6 {
		t.Errorf("the photo page has %d pictures, want 6", n)
	}
	if doc != pagePhoto.html() {
		t.Error("the photo page differs from one build to the next")
	}
	if !strings.Contains(pageDense.html(), "<table>") || !strings.Contains(pageDense.html(), "電子カルテ") {
		t.Error("the dense page lacks its table or its Japanese header")
	}
	a, b := photo(64, 48, 1, false), photo(64, 48, 1, false)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("photo is not deterministic")
	}
	if c := photo(64, 48, 2, false); bytes.Equal(a.Pix, c.Pix) {
		t.Error("photos of different seeds are equal")
	}
}
