package tiles

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoji-rbi/shoji/broker/protocol"
)

// frame reads testdata/name: a 1280x800 frame of Chromium's screencast at
// quality 70 (see TestChromiumScreencast for how they were made).
func frame(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustParse(t testing.TB, data []byte) *Image {
	t.Helper()
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

func decode(t testing.TB, data []byte) *image.YCbCr {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/jpeg decode: %v", err)
	}
	y, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("image/jpeg decoded a %T, not YCbCr", img)
	}
	return y
}

// samePixels reports the first pixel where crop differs from r of full.
// It compares the Y, Cb and Cr samples, as image/jpeg decodes them: its
// decoder does no cross-block filtering and no fancy upsampling (a chroma
// sample covers its 2x2 pixels as is), so that a lossless crop at MCU
// boundaries decodes to exactly the samples of the full frame.
func samePixels(full, crop *image.YCbCr, r image.Rectangle) (image.Point, bool) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cx, cy := x-r.Min.X, y-r.Min.Y
			if full.Y[full.YOffset(x, y)] != crop.Y[crop.YOffset(cx, cy)] ||
				full.Cb[full.COffset(x, y)] != crop.Cb[crop.COffset(cx, cy)] ||
				full.Cr[full.COffset(x, y)] != crop.Cr[crop.COffset(cx, cy)] {
				return image.Pt(x, y), false
			}
		}
	}
	return image.Point{}, true
}

func TestParseChromiumFrame(t *testing.T) {
	m := mustParse(t, frame(t, "still.jpg"))
	if m.Width != 1280 || m.Height != 800 {
		t.Errorf("size %dx%d, want 1280x800", m.Width, m.Height)
	}
	if w, h := m.MCUSize(); w != 16 || h != 16 {
		t.Errorf("MCU %dx%d, want 16x16 (4:2:0)", w, h)
	}
}

func TestCrop(t *testing.T) {
	for _, name := range []string{"typed.jpg", "dense-typed.jpg"} {
		t.Run(name, func(t *testing.T) { testCrop(t, frame(t, name)) })
	}
}

func testCrop(t *testing.T, data []byte) {
	m := mustParse(t, data)
	full := decode(t, data)
	tests := []struct {
		name string
		r    image.Rectangle
	}{
		{"whole image", image.Rect(0, 0, 1280, 800)},
		{"single MCU at the origin", image.Rect(0, 0, 16, 16)},
		{"single MCU inside", image.Rect(320, 160, 336, 176)},
		{"top-left corner", image.Rect(0, 0, 160, 96)},
		{"top-right corner", image.Rect(1120, 0, 1280, 64)},
		{"bottom-left corner", image.Rect(0, 704, 48, 800)},
		{"bottom-right single MCU", image.Rect(1264, 784, 1280, 800)},
		{"top edge strip", image.Rect(0, 0, 1280, 16)},
		{"left edge column", image.Rect(0, 0, 16, 800)},
		{"the text area", image.Rect(16, 96, 656, 256)},
		{"wide and short", image.Rect(64, 400, 1216, 432)},
		{"tall and narrow", image.Rect(640, 32, 672, 768)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.Crop(tt.r)
			if err != nil {
				t.Fatalf("crop %v: %v", tt.r, err)
			}
			got := decode(t, c)
			if got.Rect.Size() != tt.r.Size() {
				t.Fatalf("crop of %v decodes to %v", tt.r, got.Rect)
			}
			if p, ok := samePixels(full, got, tt.r); !ok {
				t.Fatalf("crop of %v differs from the full frame at %v", tt.r, p)
			}
			// The compact crop, once its tables are put back, decodes
			// to the same pixels, and is smaller: a quality-70 frame
			// has the standard tables, so it carries no DQT.
			cc, err := m.CropCompact(tt.r, 70)
			if err != nil {
				t.Fatalf("compact crop %v: %v", tt.r, err)
			}
			if dqt, _, err := protocol.JPEGTables(cc); err != nil || dqt {
				t.Errorf("compact crop of %v: DQT %v, %v; want none", tt.r, dqt, err)
			}
			if len(cc) >= len(c) {
				t.Errorf("compact crop of %v is %d bytes, the crop %d", tt.r, len(cc), len(c))
			}
			completed, err := protocol.CompleteJPEG(cc, 70)
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := samePixels(full, decode(t, completed), tt.r); !ok {
				t.Fatalf("compact crop of %v differs from the full frame at %v", tt.r, p)
			}
			// At another quality's tables it keeps its DQT.
			if cc, err := m.CropCompact(tt.r, 90); err != nil {
				t.Fatal(err)
			} else if dqt, _, _ := protocol.JPEGTables(cc); !dqt {
				t.Errorf("compact crop of %v at the wrong quality has no DQT", tt.r)
			}
			// A crop is itself a frame this package parses, with the same
			// coefficients.
			cm := mustParse(t, c)
			if d := Diff(mustParse(t, mustCrop(t, cm, cm.Bounds())), cm); len(d) != 0 {
				t.Errorf("re-cropped crop differs: %v", d)
			}
		})
	}
}

func mustCrop(t testing.TB, m *Image, r image.Rectangle) []byte {
	t.Helper()
	c, err := m.Crop(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCropUnevenEdges crops an image whose size is not a multiple of its
// MCU, so that the right and bottom MCUs are cut by the edge.
func TestCropUnevenEdges(t *testing.T) {
	src := decode(t, frame(t, "still.jpg"))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src.SubImage(image.Rect(0, 0, 1000, 650)), &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	m := mustParse(t, buf.Bytes())
	full := decode(t, buf.Bytes())
	for _, r := range []image.Rectangle{
		image.Rect(992, 640, 1000, 650),
		image.Rect(960, 0, 1000, 650),
		image.Rect(0, 624, 1000, 650),
		m.Bounds(),
	} {
		got := decode(t, mustCrop(t, m, r))
		if p, ok := samePixels(full, got, r); !ok {
			t.Errorf("crop of %v differs from the full frame at %v", r, p)
		}
	}
}

func TestCropRefusesBadRectangles(t *testing.T) {
	m := mustParse(t, frame(t, "still.jpg"))
	for _, r := range []image.Rectangle{
		{},
		image.Rect(0, 0, 1296, 800),
		image.Rect(-16, 0, 16, 16),
		image.Rect(0, 784, 16, 816),
		image.Rect(8, 0, 32, 16),
		image.Rect(0, 0, 24, 16),
		image.Rect(0, 4, 16, 20),
		image.Rect(0, 0, 16, 15),
	} {
		if _, err := m.Crop(r); !errors.Is(err, ErrRectangle) {
			t.Errorf("crop %v: error %v, want ErrRectangle", r, err)
		}
	}
}

func TestDiff(t *testing.T) {
	still := mustParse(t, frame(t, "still.jpg"))
	typed := mustParse(t, frame(t, "typed.jpg"))
	moved := mustParse(t, frame(t, "moved.jpg"))
	small := mustParse(t, mustCrop(t, still, image.Rect(0, 0, 640, 400)))
	tests := []struct {
		name      string
		prev, cur *Image
		// want is the area every rectangle must lie in, max the most MCUs
		// they may cover; a nil want means no rectangle.
		within   image.Rectangle
		maxMCUs  int
		wantNone bool
	}{
		{name: "identical", prev: still, cur: still, wantNone: true},
		{name: "no current frame", prev: still, cur: nil, wantNone: true},
		{name: "no previous frame", prev: nil, cur: still, within: still.Bounds(), maxMCUs: 4000},
		{name: "different size", prev: small, cur: still, within: still.Bounds(), maxMCUs: 4000},
		{name: "one typed character", prev: still, cur: typed, within: image.Rect(16, 96, 656, 256), maxMCUs: 4},
		{name: "moved box", prev: typed, cur: moved, within: image.Rect(880, 288, 1008, 368), maxMCUs: 40},
		{name: "another page", prev: moved, cur: mustParse(t, frame(t, "dense-still.jpg")), within: still.Bounds(), maxMCUs: 4000},
		{name: "one typed character on a page of text", prev: mustParse(t, frame(t, "dense-still.jpg")), cur: mustParse(t, frame(t, "dense-typed.jpg")),
			within: image.Rect(16, 16, 544, 80), maxMCUs: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.prev, tt.cur)
			if tt.wantNone {
				if len(got) != 0 {
					t.Fatalf("Diff = %v, want nothing", got)
				}
				return
			}
			if len(got) == 0 {
				t.Fatal("Diff found no change")
			}
			mcus := 0
			for i, r := range got {
				for _, o := range got[i+1:] {
					if r.Overlaps(o) {
						t.Errorf("rectangles %v and %v overlap", r, o)
					}
				}
				if !r.In(tt.within) {
					t.Errorf("rectangle %v outside %v", r, tt.within)
				}
				if err := tt.cur.CheckRect(r); err != nil {
					t.Error(err)
				}
				mcus += (r.Dx() + 15) / 16 * ((r.Dy() + 15) / 16)
			}
			if mcus > tt.maxMCUs {
				t.Errorf("Diff = %v: %d MCUs, want at most %d", got, mcus, tt.maxMCUs)
			}
			t.Logf("Diff = %v", got)
		})
	}
}

// TestDiffCoversEveryChange pastes every Diff rectangle's crop of cur over
// prev and checks that the result is cur: no changed pixel is left out.
func TestDiffCoversEveryChange(t *testing.T) {
	for _, pair := range [][2]string{{"still.jpg", "typed.jpg"}, {"typed.jpg", "moved.jpg"}, {"still.jpg", "moved.jpg"}, {"dense-still.jpg", "dense-typed.jpg"}, {"moved.jpg", "dense-still.jpg"}} {
		prevData, curData := frame(t, pair[0]), frame(t, pair[1])
		prev, cur := mustParse(t, prevData), mustParse(t, curData)
		canvas := decode(t, prevData)
		for _, r := range Diff(prev, cur) {
			tile := decode(t, mustCrop(t, cur, r))
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					canvas.Y[canvas.YOffset(x, y)] = tile.Y[tile.YOffset(x-r.Min.X, y-r.Min.Y)]
					canvas.Cb[canvas.COffset(x, y)] = tile.Cb[tile.COffset(x-r.Min.X, y-r.Min.Y)]
					canvas.Cr[canvas.COffset(x, y)] = tile.Cr[tile.COffset(x-r.Min.X, y-r.Min.Y)]
				}
			}
		}
		if p, ok := samePixels(decode(t, curData), canvas, cur.Bounds()); !ok {
			t.Errorf("%s patched towards %s differs at %v", pair[0], pair[1], p)
		}
	}
}

// TestTypedCharacterTile measures what one typed character costs
// (docs/benchmarks.md): the rectangles Diff finds between a still page and
// the same page after one character, as crops and as compact tiles. The
// testdata frames are fixed, so the sizes are too; a compact tile must
// take less than half the crop's bytes, most of which are its tables.
func TestTypedCharacterTile(t *testing.T) {
	for _, pair := range [][2]string{{"still.jpg", "typed.jpg"}, {"dense-still.jpg", "dense-typed.jpg"}} {
		a, b := mustParse(t, frame(t, pair[0])), mustParse(t, frame(t, pair[1]))
		crop, compact := 0, 0
		for _, r := range Diff(a, b) {
			c, err := b.Crop(r)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := b.CropCompact(r, 70)
			if err != nil {
				t.Fatal(err)
			}
			crop, compact = crop+len(c), compact+len(cc)
			t.Logf("%s: rectangle %v", pair[1], r)
		}
		t.Logf("%s: crop %d bytes, compact tile %d bytes", pair[1], crop, compact)
		if compact == 0 || compact*2 > crop {
			t.Errorf("%s: compact tile %d bytes against the crop's %d; want less than half", pair[1], compact, crop)
		}
	}
}
