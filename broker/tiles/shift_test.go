package tiles

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"slices"
	"testing"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// headerRows is the height of the fixed header of scrolledFrames' page.
const headerRows = 32

// tallPage is a page twice the screen's height: the dense text frame on
// top of the light form frame, as RGBA.
func tallPage(t testing.TB) *image.RGBA {
	t.Helper()
	top, bottom := decode(t, frame(t, "dense-still.jpg")), decode(t, frame(t, "still.jpg"))
	b := top.Bounds()
	page := image.NewRGBA(image.Rect(0, 0, b.Dx(), 2*b.Dy()))
	draw.Draw(page, b, top, b.Min, draw.Src)
	draw.Draw(page, b.Add(image.Pt(0, b.Dy())), bottom, bottom.Bounds().Min, draw.Src)
	return page
}

// scrolledFrame renders the screen of page scrolled by (sx, sy) CSS pixels
// with a fixed header bar of headerRows on top, as a JPEG that image/jpeg
// encodes at quality 70 with 4:2:0 chroma (16x16 MCUs, as Chromium's).
func scrolledFrame(t testing.TB, page *image.RGBA, w, h, sx, sy int) *isolation.Frame {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), page, image.Pt(sx, sy), draw.Src)
	draw.Draw(img, image.Rect(0, 0, w, headerRows), &image.Uniform{color.RGBA{0x20, 0x50, 0x90, 0xFF}}, image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	f := &isolation.Frame{JPEG: buf.Bytes(), Width: w, Height: h, Quality: 70, ScrollX: sx, ScrollY: sy, Scrolled: true}
	if mw, mh := mustParse(t, f.JPEG).MCUSize(); mw != 16 || mh != 16 {
		t.Fatalf("image/jpeg encoded %dx%d MCUs, want 16x16 (4:2:0)", mw, mh)
	}
	return f
}

// copyCanvas copies the rectangle src of canvas to dst, as the viewer's
// drawImage of its canvas onto itself does (the source is read whole
// before it is drawn).
func copyCanvas(canvas *image.YCbCr, src image.Rectangle, dst image.Point) {
	from := *canvas
	from.Y, from.Cb, from.Cr = slices.Clone(canvas.Y), slices.Clone(canvas.Cb), slices.Clone(canvas.Cr)
	d := dst.Sub(src.Min)
	for y := src.Min.Y; y < src.Max.Y; y++ {
		for x := src.Min.X; x < src.Max.X; x++ {
			canvas.Y[canvas.YOffset(x+d.X, y+d.Y)] = from.Y[from.YOffset(x, y)]
			if (x+d.X)%2 == 0 && (y+d.Y)%2 == 0 {
				canvas.Cb[canvas.COffset(x+d.X, y+d.Y)] = from.Cb[from.COffset(x, y)]
				canvas.Cr[canvas.COffset(x+d.X, y+d.Y)] = from.Cr[from.COffset(x, y)]
			}
		}
	}
}

// TestDeltaShifted proves that after the viewer copies its canvas by the
// scroll's shift, the crops DeltaShifted returns make the canvas the new
// frame exactly, that they are the exposed strip and the fixed header (a
// small part of the frame), that the region asked for is sent too, and
// that a shift off the MCU grid or as large as the frame sends the frame
// whole.
func TestDeltaShifted(t *testing.T) {
	page := tallPage(t)
	const w, h = 1280, 800
	at := func(sx, sy int) *isolation.Frame { return scrolledFrame(t, page, w, h, sx, sy) }
	top := at(0, 0)
	for _, tc := range []struct {
		name      string
		prev, cur *isolation.Frame
		also      []image.Rectangle
		full      bool
		maxRows   int // at most this many pixel rows sent (header, strip, also)
	}{
		{"down 48", top, at(0, 48), nil, false, headerRows + 48},
		{"down 160", at(0, 96), at(0, 256), nil, false, headerRows + 160},
		{"up 64", at(0, 320), at(0, 256), nil, false, headerRows + 64},
		{"down 48 with a region", top, at(0, 48), []image.Rectangle{image.Rect(100, 400, 120, 410)}, false, headerRows + 48 + 16},
		{"off the grid", top, at(0, 40), nil, true, 0},
		{"a screen's height", top, at(0, 800), nil, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shift := image.Pt(tc.prev.ScrollX-tc.cur.ScrollX, tc.prev.ScrollY-tc.cur.ScrollY)
			d := NewDelta(0)
			tiles, full, err := d.DeltaShifted(tc.prev, tc.cur, shift, tc.also)
			if err != nil {
				t.Fatal(err)
			}
			if full != tc.full {
				t.Fatalf("full %v with %d tiles, want full %v", full, len(tiles), tc.full)
			}
			if full {
				return
			}
			frameRect := image.Rect(0, 0, w, h)
			src := frameRect.Intersect(frameRect.Sub(shift))
			canvas := decode(t, tc.prev.JPEG)
			copyCanvas(canvas, src, src.Min.Add(shift))
			want := decode(t, tc.cur.JPEG)
			rows := map[int]bool{}
			size := 0
			for _, tile := range tiles {
				jpg, err := protocol.CompleteJPEG(tile.JPEG, tc.cur.Quality)
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := samePixels(want, decode(t, jpg), tile.Rect); !ok {
					t.Errorf("tile %v differs from the new frame at %v", tile.Rect, p)
				}
				paste(canvas, want, tile.Rect)
				for y := tile.Rect.Min.Y; y < tile.Rect.Max.Y; y++ {
					rows[y] = true
				}
				size += len(tile.JPEG)
			}
			if p, ok := samePixels(want, canvas, want.Rect); !ok {
				t.Errorf("the canvas after the copy and the tiles differs from the new frame at %v", p)
			}
			if len(rows) > tc.maxRows {
				t.Errorf("tiles cover %d rows, want at most %d (header and exposed strip)", len(rows), tc.maxRows)
			}
			for _, r := range tc.also {
				covered := false
				for _, tile := range tiles {
					covered = covered || r.In(tile.Rect)
				}
				if !covered {
					t.Errorf("region %v not sent", r)
				}
			}
			// The plain comparison sends most of the screen.
			plain, plainFull, err := d.Delta(tc.prev, tc.cur, nil)
			if err != nil {
				t.Fatal(err)
			}
			plainSize := len(tc.cur.JPEG)
			if !plainFull {
				plainSize = 0
				for _, tile := range plain {
					plainSize += len(tile.JPEG)
				}
			}
			t.Logf("shifted: %d bytes in %d tiles; unshifted: %d bytes; frame %d bytes", size, len(tiles), plainSize, len(tc.cur.JPEG))
			if size >= plainSize {
				t.Errorf("shifted tiles of %d bytes are not fewer than the %d bytes unshifted", size, plainSize)
			}
		})
	}
}

// TestDiffShiftedEdges proves that a frame whose size is not a multiple of
// the MCU never takes a cut MCU from another row or column (its padding is
// not on the viewer's canvas), and that the whole-frame cases hold.
func TestDiffShiftedEdges(t *testing.T) {
	page := tallPage(t)
	const w, h = 1000, 600 // 62.5 and 37.5 MCUs
	for _, sc := range [][4]int{{0, 0, 0, 64}, {0, 0, 32, 64}, {48, 160, 16, 96}, {0, 64, 0, 0}} {
		prev, cur := scrolledFrame(t, page, w, h, sc[0], sc[1]), scrolledFrame(t, page, w, h, sc[2], sc[3])
		shift := image.Pt(sc[0]-sc[2], sc[1]-sc[3])
		pi, ci := mustParse(t, prev.JPEG), mustParse(t, cur.JPEG)
		rects := DiffShifted(pi, ci, shift, nil)
		canvas := decode(t, prev.JPEG)
		frameRect := image.Rect(0, 0, w, h)
		src := frameRect.Intersect(frameRect.Sub(shift))
		copyCanvas(canvas, src, src.Min.Add(shift))
		want := decode(t, cur.JPEG)
		for _, r := range rects {
			paste(canvas, want, r)
		}
		if p, ok := samePixels(want, canvas, want.Rect); !ok {
			t.Errorf("shift %v: the canvas after the copy and the rectangles %v differs from the new frame at %v", shift, rects, p)
		}
	}
	ci := mustParse(t, scrolledFrame(t, page, w, h, 0, 0).JPEG)
	pi := ci
	if got := DiffShifted(pi, ci, image.Pt(0, -8), nil); len(got) != 1 || got[0] != ci.Bounds() {
		t.Errorf("a shift off the grid gives %v, want the whole frame", got)
	}
	if got := DiffShifted(nil, ci, image.Pt(0, -64), nil); len(got) != 1 || got[0] != ci.Bounds() {
		t.Errorf("no previous frame gives %v, want the whole frame", got)
	}
}
