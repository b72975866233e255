package tiles

import (
	"errors"
	"image"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// screen is a frame of testdata as the stream gets it.
func screen(t testing.TB, name string) *isolation.Frame {
	t.Helper()
	data := frame(t, name)
	m := mustParse(t, data)
	return &isolation.Frame{JPEG: data, Width: m.Width, Height: m.Height, Quality: 70}
}

// TestDelta proves what the stream's engine answers: crops of the new
// frame that, drawn over the previous one, give the new frame's pixels
// exactly; the rectangles asked for besides the change; nothing for the
// same picture; the whole frame when the region is the whole screen; and
// an error naming the frame that does not parse.
func TestDelta(t *testing.T) {
	still, typed := screen(t, "still.jpg"), screen(t, "typed.jpg")
	corner := image.Rect(3, 3, 20, 20) // rounded out to (0,0)-(32,32)
	for _, tc := range []struct {
		name       string
		prev, cur  *isolation.Frame
		also       []image.Rectangle
		wantTiles  bool
		wantFull   bool
		wantCorner bool
	}{
		{"typed character", still, typed, nil, true, false, false},
		{"same picture", still, still, nil, false, false, false},
		{"same picture, a region to send", still, still, []image.Rectangle{corner}, true, false, true},
		{"change and region", still, typed, []image.Rectangle{corner}, true, false, true},
		{"the region is the whole screen", still, typed, []image.Rectangle{image.Rect(0, 0, 1280, 800)}, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDelta(0)
			tiles, full, err := d.Delta(tc.prev, tc.cur, tc.also)
			if err != nil {
				t.Fatal(err)
			}
			if full != tc.wantFull || (len(tiles) > 0) != tc.wantTiles {
				t.Fatalf("%d tiles, full %v; want tiles %v, full %v", len(tiles), full, tc.wantTiles, tc.wantFull)
			}
			canvas := decode(t, tc.prev.JPEG)
			want := decode(t, tc.cur.JPEG)
			size := 0
			sawCorner := false
			for _, tile := range tiles {
				size += len(tile.JPEG)
				jpg, err := protocol.CompleteJPEG(tile.JPEG, tc.cur.Quality)
				if err != nil {
					t.Fatal(err)
				}
				if p, ok := samePixels(want, decode(t, jpg), tile.Rect); !ok {
					t.Errorf("tile %v differs from the new frame at %v", tile.Rect, p)
				}
				if image.Rect(0, 0, 32, 32).In(tile.Rect) {
					sawCorner = true
				}
				paste(canvas, want, tile.Rect)
			}
			if sawCorner != tc.wantCorner {
				t.Errorf("the corner region sent: %v, want %v", sawCorner, tc.wantCorner)
			}
			if !full {
				if p, ok := samePixels(want, canvas, want.Rect); !ok {
					t.Errorf("the canvas after the tiles differs from the new frame at %v", p)
				}
			}
			if tc.wantTiles && size*10 > len(tc.cur.JPEG) {
				t.Errorf("tiles of %d bytes for a %d-byte frame: not a small fraction", size, len(tc.cur.JPEG))
			}
		})
	}
}

// paste copies r of src into dst, sample by sample.
func paste(dst, src *image.YCbCr, r image.Rectangle) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.Y[dst.YOffset(x, y)] = src.Y[src.YOffset(x, y)]
			dst.Cb[dst.COffset(x, y)] = src.Cb[src.COffset(x, y)]
			dst.Cr[dst.COffset(x, y)] = src.Cr[src.COffset(x, y)]
		}
	}
}

// TestDeltaRefusesBadFrames proves that a frame that does not parse is an
// error naming which one, never tiles.
func TestDeltaRefusesBadFrames(t *testing.T) {
	still := screen(t, "still.jpg")
	bad := &isolation.Frame{JPEG: []byte{0xFF, 0xD8, 0xFF}, Width: 1280, Height: 800}
	d := NewDelta(0)
	for _, tc := range []struct {
		name      string
		prev, cur *isolation.Frame
		want      string
	}{
		{"previous", bad, still, "previous frame: "},
		{"new", still, bad, "new frame: "},
	} {
		_, _, err := d.Delta(tc.prev, tc.cur, nil)
		if !errors.Is(err, ErrCorrupt) || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("%s: err %v, want %q… wrapping ErrCorrupt", tc.name, err, tc.want)
		}
	}
}

// TestDeltaCache proves that the parsed frames are bounded, and that
// several goroutines may compare the same frames at once (go test -race).
func TestDeltaCache(t *testing.T) {
	still, typed := screen(t, "still.jpg"), screen(t, "typed.jpg")
	d := NewDelta(3)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := d.Delta(still, typed, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := d.Cached(); n != 2 {
		t.Errorf("%d frames cached after comparing two, want 2", n)
	}
	for range 5 {
		f := *typed // another frame with the same picture
		if _, _, err := d.Delta(still, &f, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.Cached(); n != 3 {
		t.Errorf("%d frames cached, want the bound, 3", n)
	}
}
