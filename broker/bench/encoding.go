package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/page"
	"golang.org/x/image/webp"
)

// EncodingRow is one format and quality of one page in the encoding
// scenario: medians over Captures pictures of the same still viewport.
type EncodingRow struct {
	Page    string `json:"page"`
	Format  string `json:"format"`            // "jpeg", "webp" or "png"
	Quality int    `json:"quality,omitempty"` // none for PNG
	// Captures is how many pictures the medians are over.
	Captures int `json:"captures"`
	// Bytes is the median size of a picture.
	Bytes int `json:"bytes"`
	// CaptureMS is the median round trip of Page.captureScreenshot:
	// Chromium's drawing, encoding and base64, and the transfer.
	CaptureMS float64 `json:"capture_ms"`
	// DecodeMS is the median decode time in Go (image/jpeg, image/png,
	// golang.org/x/image/webp).
	DecodeMS float64 `json:"decode_ms"`
	// PSNR is the peak signal-to-noise ratio over red, green and blue
	// against the PNG picture, in dB; nil for the PNG picture itself.
	PSNR *float64 `json:"psnr_db,omitempty"`
}

// Name is the row's format and quality: "JPEG 70", "PNG".
func (r EncodingRow) Name() string {
	if r.Format == encPNG {
		return "PNG"
	}
	return fmt.Sprintf("%s %d", strings.ToUpper(r.Format), r.Quality)
}

// Formats of the encoding scenario.
const (
	encJPEG = "jpeg"
	encWebP = "webp"
	encPNG  = "png"
)

// encoding is one format and quality to capture.
type encoding struct {
	format  string
	quality int
}

// encodings are the formats and qualities compared; the PNG picture is
// the reference of the others' PSNR.
var encodings = func() []encoding {
	out := []encoding{{encPNG, 0}}
	for _, f := range []string{encJPEG, encWebP} {
		for _, q := range []int{50, 70, 85, 95} {
			out = append(out, encoding{f, q})
		}
	}
	return out
}()

// encodingPages are the pages whose pictures are compared: long text,
// dense small text, and photographs.
var encodingPages = []webPage{pageArticle, pageDense, pagePhoto}

// decodeAny decodes a picture of format.
func decodeAny(format string, data []byte) (image.Image, error) {
	var img image.Image
	var err error
	switch format {
	case encJPEG:
		return decodeJPEG(data)
	case encPNG:
		img, err = png.Decode(bytes.NewReader(data))
	case encWebP:
		img, err = webp.Decode(bytes.NewReader(data))
		if err == nil {
			img, err = webpRGB(img)
		}
	default:
		return nil, fmt.Errorf("no decoder for %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s (%d bytes): %w", format, len(data), err)
	}
	return img, nil
}

// webpRGB converts a picture decoded by golang.org/x/image/webp to RGB.
// Lossy WebP (VP8) stores BT.601 "studio swing" YCbCr (Y in 16–235), but
// the decoder returns it as an image.YCbCr, which Go converts as JFIF's
// full range: white would come out as 235 grey. The conversion is
// libwebp's (VP8YUVToR and its siblings). A lossless WebP is already RGB.
func webpRGB(img image.Image) (image.Image, error) {
	var yc *image.YCbCr
	switch v := img.(type) {
	case *image.YCbCr:
		yc = v
	case *image.NYCbCrA:
		yc = &v.YCbCr
	default:
		return img, nil
	}
	b := yc.Rect
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			yy := float64(yc.Y[yc.YOffset(x, y)]) - 16
			ci := yc.COffset(x, y)
			cb, cr := float64(yc.Cb[ci])-128, float64(yc.Cr[ci])-128
			i := out.PixOffset(x, y)
			out.Pix[i+0] = clamp8(1.164*yy + 1.596*cr)
			out.Pix[i+1] = clamp8(1.164*yy - 0.813*cr - 0.391*cb)
			out.Pix[i+2] = clamp8(1.164*yy + 2.018*cb)
			out.Pix[i+3] = 255
		}
	}
	return out, nil
}

// clamp8 rounds v to a byte, clamping.
func clamp8(v float64) uint8 {
	return uint8(math.Round(math.Max(0, math.Min(255, v))))
}

// runEncoding pictures the viewport of each text and photo page in every
// format and quality with Page.captureScreenshot, on a raw-CDP browser
// without screencast, and measures size, capture time, decode time and
// fidelity.
func runEncoding(ctx context.Context, e *env) error {
	var rows []EncodingRow
	var errs []error
	for _, pg := range encodingPages {
		r, err := e.encodePage(ctx, pg)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			e.fail(key("encoding", strings.TrimPrefix(pg.path, "/")), err)
			errs = append(errs, fmt.Errorf("%s: %w", pg.path, err))
			continue
		}
		rows = append(rows, r...)
	}
	e.res.Encoding = append(e.res.Encoding, rows...)
	if len(rows) == 0 {
		return errors.Join(errs...)
	}
	return nil
}

// encodePage measures every encoding of pg, n rounds, each round taking
// one picture of each encoding in turn so that the machine's noise falls
// on all alike.
func (e *env) encodePage(ctx context.Context, pg webPage) ([]EncodingRow, error) {
	c, err := e.captureOn(ctx, pg)
	if err != nil {
		return nil, err
	}
	// Fonts and pictures settle, then the page must stand still: two PNG
	// pictures a while apart must be equal.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	still := false
	var prev []byte
	for range 10 {
		data, err := captureAs(ctx, c.r, page.CaptureScreenshotFormatPng, 0, false)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(data, prev) {
			still = true
			break
		}
		prev = data
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if !still {
		return nil, fmt.Errorf("%s does not stand still: its PNG pictures keep changing", pg.path)
	}
	n := e.encodeRounds()
	size := make([][]float64, len(encodings))
	took := make([][]float64, len(encodings))
	dec := make([][]float64, len(encodings))
	last := make([]image.Image, len(encodings))
	for range n {
		for i, enc := range encodings {
			t0 := time.Now()
			data, err := captureAs(ctx, c.r, page.CaptureScreenshotFormat(enc.format), enc.quality, false)
			d := time.Since(t0)
			if err != nil {
				return nil, err
			}
			t1 := time.Now()
			img, err := decodeAny(enc.format, data)
			dd := time.Since(t1)
			if err != nil {
				return nil, err
			}
			size[i] = append(size[i], float64(len(data)))
			took[i] = append(took[i], ms(d))
			dec[i] = append(dec[i], ms(dd))
			last[i] = img
		}
	}
	rows := make([]EncodingRow, len(encodings))
	for i, enc := range encodings {
		rows[i] = EncodingRow{
			Page: strings.TrimPrefix(pg.path, "/"), Format: enc.format, Quality: enc.quality, Captures: n,
			Bytes: int(math.Round(median(size[i]))), CaptureMS: median(took[i]), DecodeMS: median(dec[i]),
		}
		if enc.format != encPNG {
			v, err := psnr(last[0], last[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rows[i].Name(), err)
			}
			rows[i].PSNR = num(v)
		}
	}
	return rows, nil
}

// encodeRounds is how many pictures of each encoding the scenario takes
// per page.
func (e *env) encodeRounds() int {
	if e.o.Quick {
		return 2
	}
	return 7
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs, or NaN for none.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Percentile(s, 50)
}

// psnr returns the peak signal-to-noise ratio of img against ref over the
// red, green and blue channels at 8 bits, in dB; +Inf when they are equal.
// The images must have the same size.
func psnr(ref, img image.Image) (float64, error) {
	rb, ib := ref.Bounds(), img.Bounds()
	if rb.Dx() != ib.Dx() || rb.Dy() != ib.Dy() {
		return 0, fmt.Errorf("psnr: sizes differ: %dx%d and %dx%d", rb.Dx(), rb.Dy(), ib.Dx(), ib.Dy())
	}
	if rb.Empty() {
		return 0, errors.New("psnr: empty images")
	}
	var sum float64
	for y := 0; y < rb.Dy(); y++ {
		for x := 0; x < rb.Dx(); x++ {
			r1, g1, b1, _ := ref.At(rb.Min.X+x, rb.Min.Y+y).RGBA()
			r2, g2, b2, _ := img.At(ib.Min.X+x, ib.Min.Y+y).RGBA()
			for _, d := range [3]float64{
				float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8),
			} {
				sum += d * d
			}
		}
	}
	mse := sum / float64(3*rb.Dx()*rb.Dy())
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(255*255/mse), nil
}

// encodingTotal is one encoding summed over the pages.
type encodingTotal struct {
	name      string
	format    string
	quality   int
	bytes     int
	captureMS float64 // the sum of the pages' medians
	pages     int
	minMargin float64 // the least, over the pages, of PSNR minus the reference's; +Inf for PNG
	psnrMean  float64 // mean PSNR over the pages; +Inf for PNG
}

// encodingTotals sums the rows by encoding, with each page's PSNR margin
// against ref ("JPEG 85") on that page. Encodings missing on a page are
// left out.
func encodingTotals(rows []EncodingRow, ref string) []encodingTotal {
	refPSNR := map[string]float64{}
	pages := map[string]bool{}
	for _, r := range rows {
		pages[r.Page] = true
		if r.Name() == ref && r.PSNR != nil {
			refPSNR[r.Page] = *r.PSNR
		}
	}
	byName := map[string]*encodingTotal{}
	var order []string
	for _, r := range rows {
		t, ok := byName[r.Name()]
		if !ok {
			t = &encodingTotal{name: r.Name(), format: r.Format, quality: r.Quality, minMargin: math.Inf(1)}
			byName[r.Name()] = t
			order = append(order, r.Name())
		}
		t.bytes += r.Bytes
		t.captureMS += r.CaptureMS
		t.pages++
		p := math.Inf(1)
		if r.PSNR != nil {
			p = *r.PSNR
		}
		t.psnrMean += p
		if ref, ok := refPSNR[r.Page]; ok {
			t.minMargin = math.Min(t.minMargin, p-ref)
		} else {
			t.minMargin = math.NaN()
		}
	}
	var out []encodingTotal
	for _, n := range order {
		t := byName[n]
		if t.pages != len(pages) {
			continue
		}
		t.psnrMean /= float64(t.pages)
		out = append(out, *t)
	}
	return out
}

// encodingAdvice computes the recommendation lines of the encoding
// scenario: the format and quality of the one sharp picture sent when the
// page settles (the smallest, over all pages, whose PSNR is at least JPEG
// 85's on every page), and the quality while the page moves (the smallest
// lossy picture of quality ≤ 70 whose capture is no slower than JPEG 70's
// by more than a tenth or 5 ms a page, whichever is more).
func encodingAdvice(rows []EncodingRow) []string {
	const ref, moving = "JPEG 85", "JPEG 70"
	totals := encodingTotals(rows, ref)
	get := func(name string) (encodingTotal, bool) {
		for _, t := range totals {
			if t.name == name {
				return t, true
			}
		}
		return encodingTotal{}, false
	}
	smallest := func(ok func(encodingTotal) bool) *encodingTotal {
		var best *encodingTotal
		for i, t := range totals {
			if ok(t) && (best == nil || t.bytes < best.bytes) {
				best = &totals[i]
			}
		}
		return best
	}
	pct := func(a, b int) float64 { return 100 * float64(a) / float64(b) }
	var out []string
	if r, ok := get(ref); ok && r.bytes > 0 {
		// A NaN margin (the reference missing on a page) is no margin.
		if best := smallest(func(t encodingTotal) bool { return t.minMargin >= 0 }); best != nil {
			if best.name == ref {
				out = append(out, fmt.Sprintf("Sharp refresh when the page settles: %s itself (%d KiB over the %d pages): "+
					"no other format and quality reaches its PSNR on every page in fewer bytes.", ref, r.bytes/1024, r.pages))
			} else {
				margin := "lossless"
				if !math.IsInf(best.minMargin, 1) {
					margin = fmt.Sprintf("%+.1f dB at the least", best.minMargin)
				}
				out = append(out, fmt.Sprintf("Sharp refresh when the page settles: %s — %d KiB over the %d pages, %.0f %% of %s's %d KiB, "+
					"at a PSNR at least %s's on every page (%s); capture %.0f ms against %.0f ms (sums of the pages' medians).",
					best.name, best.bytes/1024, best.pages, pct(best.bytes, r.bytes), ref, r.bytes/1024, ref, margin, best.captureMS, r.captureMS))
			}
		}
	}
	if m, ok := get(moving); ok && m.bytes > 0 {
		limit := max(1.1*m.captureMS, m.captureMS+5*float64(m.pages))
		best := smallest(func(t encodingTotal) bool { return t.format != encPNG && t.quality <= 70 && t.captureMS <= limit })
		if best != nil {
			out = append(out, fmt.Sprintf("While the page moves: %s — %.0f %% of %s's bytes, at a mean PSNR of %.1f dB against %.1f dB, "+
				"capture %.0f ms against %.0f ms (the smallest lossy picture of quality ≤ 70 whose capture is at most 10 %% or 5 ms a page slower than %s's).",
				best.name, pct(best.bytes, m.bytes), moving, best.psnrMean, m.psnrMean, best.captureMS, m.captureMS, moving))
		}
	}
	return out
}

// writeEncodingMarkdown writes the encoding scenario's table and advice.
func writeEncodingMarkdown(b *strings.Builder, rows []EncodingRow, advice []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Encoding: one still viewport in each format\n\n"+
		"Page.captureScreenshot of the viewport on a raw-CDP Chromium without screencast; medians of %d pictures per format, "+
		"the formats taken in turn. Capture: the command's round trip (drawing, encoding, base64, transfer). Decode: Go "+
		"(image/jpeg, image/png, golang.org/x/image/webp). PSNR: red, green and blue against the PNG picture.\n\n"+
		"| page | format | bytes | capture | Go decode | PSNR |\n|---|---|---|---|---|---|\n", rows[0].Captures)
	for _, r := range rows {
		p := "reference"
		if r.PSNR != nil {
			p = fmt.Sprintf("%.1f dB", *r.PSNR)
		}
		fmt.Fprintf(b, "| %s | %s | %.1f KiB | %.1f ms | %.1f ms | %s |\n", r.Page, r.Name(), float64(r.Bytes)/1024, r.CaptureMS, r.DecodeMS, p)
	}
	if len(advice) > 0 {
		b.WriteString("\n")
		for _, a := range advice {
			fmt.Fprintf(b, "- %s\n", a)
		}
	}
}
