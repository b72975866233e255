package stream

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/tiles"
	"github.com/shoji-rbi/shoji/isolation"
)

// scrolled is frame(name) at scroll offset (0, y) device pixels, known.
func scrolled(name string, y int) isolation.Frame {
	f := frame(name)
	f.ScrollY, f.Scrolled = y, true
	return f
}

// strip answers a shifted comparison with one 100-byte tile of the strip
// the scroll exposed at the bottom of the 800×600 frame.
func strip(_, cur string, shift image.Point) ([]protocol.Tile, bool, error) {
	return []protocol.Tile{{Rect: image.Rect(0, 600+shift.Y, 800, 600), JPEG: jpegOf("strip-"+cur, 100)}}, false, nil
}

// bigTiles answers with one tile of 3000 bytes: more than a strip.
func bigTiles(_, cur string) ([]protocol.Tile, bool, error) {
	return []protocol.Tile{{Rect: image.Rect(0, 0, 800, 320), JPEG: jpegOf("big-"+cur, 3000)}}, false, nil
}

// TestScrollCopies proves when a frame goes as a copy of the viewer's
// canvas plus the exposed strip: a viewer of the copies' version, both
// frames' scroll offsets known and differing by a multiple of the grid,
// and the copy smaller than the plain partial frame; otherwise the plain
// partial frame (or the whole frame) goes as before.
func TestScrollCopies(t *testing.T) {
	copyB := "partial 800x600: copy (0,48)-(800,600)→(0,0) strip-B@(0,552)-(800,600)"
	for _, tc := range []struct {
		name    string
		version int
		second  isolation.Frame
		answer  func(prev, cur string) ([]protocol.Tile, bool, error)
		shifted func(prev, cur string, shift image.Point) ([]protocol.Tile, bool, error)
		want    string
		calls   []string
	}{
		{"scroll down", protocol.CopiesVersion, scrolled("B", 48), bigTiles, strip, copyB, []string{"A⇒B (0,-48)", "A→B"}},
		{"the plain change is whole", protocol.CopiesVersion, scrolled("B", 48), func(string, string) ([]protocol.Tile, bool, error) { return nil, true, nil }, strip, copyB, []string{"A⇒B (0,-48)", "A→B"}},
		{"scroll up", protocol.CopiesVersion, scrolled("B", -32), bigTiles, func(_, cur string, shift image.Point) ([]protocol.Tile, bool, error) {
			return []protocol.Tile{{Rect: image.Rect(0, 0, 800, 32), JPEG: jpegOf("strip-"+cur, 100)}}, false, nil
		}, "partial 800x600: copy (0,0)-(800,568)→(0,32) strip-B@(0,0)-(800,32)", []string{"A⇒B (0,32)", "A→B"}},
		{"plain is smaller", protocol.CopiesVersion, scrolled("B", 48), oneTile, func(_, cur string, _ image.Point) ([]protocol.Tile, bool, error) { return bigTiles("", cur) }, "partial 800x600: tile-B@(16,32)-(32,48)", []string{"A⇒B (0,-48)", "A→B"}},
		{"the copy does not help", protocol.CopiesVersion, scrolled("B", 48), oneTile, nil, "partial 800x600: tile-B@(16,32)-(32,48)", []string{"A⇒B (0,-48)", "A→B"}},
		{"off the grid", protocol.CopiesVersion, scrolled("B", 40), bigTiles, strip, "partial 800x600: big-B@(0,0)-(800,320)", []string{"A→B"}},
		{"a screen or more", protocol.CopiesVersion, scrolled("B", 608), bigTiles, strip, "partial 800x600: big-B@(0,0)-(800,320)", []string{"A→B"}},
		{"scroll unknown", protocol.CopiesVersion, frame("B"), bigTiles, strip, "partial 800x600: big-B@(0,0)-(800,320)", []string{"A→B"}},
		{"not scrolled", protocol.CopiesVersion, scrolled("B", 0), bigTiles, strip, "partial 800x600: big-B@(0,0)-(800,320)", []string{"A→B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDelta{answer: tc.answer, shifted: tc.shifted}
			fc := &frameCounts{}
			f := newDeltaFixture(t, d, fc)
			c := f.connectVersion(t, "alice", tc.version)
			b := f.l.Last()
			b.EmitFrame(scrolled("A", 0))
			readFrame(t, c)
			b.EmitFrame(tc.second)
			if got := describe(t, readFrame(t, c)); got != tc.want {
				t.Errorf("sent %s, want %s", got, tc.want)
			}
			if got := d.seen(); !slices.Equal(got, tc.calls) {
				t.Errorf("compared %q, want %q", got, tc.calls)
			}
		})
	}
}

// TestScrollCopyReferences proves what the writer assumes of the canvas
// after a copy: the region the moving reference lacked moves with the
// copy; the frame becomes the moving reference with nothing stale, so the
// next scroll compares with it; and the sharp reference no longer lines
// up anywhere, so the settle refresh goes whole.
func TestScrollCopyReferences(t *testing.T) {
	// Sharp frames change a tile; moving ones a lot unless copied.
	d := &fakeDelta{answer: func(prev, cur string) ([]protocol.Tile, bool, error) {
		if cur[0] == 'S' {
			return oneTile(prev, cur)
		}
		return bigTiles(prev, cur)
	}, shifted: strip}
	fc := &frameCounts{}
	f := newDeltaFixture(t, d, fc)
	c := f.connectVersion(t, "alice", protocol.CopiesVersion)
	b := f.l.Last()
	sharpAt := func(name string, y int) isolation.Frame {
		s := scrolled(name, y)
		s.Quality = 90
		return s
	}
	want := []string{
		"full A",
		"full S1", // no sharp reference yet
		"partial 800x600: tile-S2@(16,32)-(32,48)",                               // sharp after sharp: stale for the moving A
		"partial 800x600: copy (0,48)-(800,600)→(0,0) strip-B@(0,552)-(800,600)", // A's stale region shifted with the copy
		"partial 800x600: copy (0,32)-(800,600)→(0,0) strip-C@(0,568)-(800,600)", // compared with B, nothing stale
		"full S3", // the sharp reference no longer lines up
		"partial 800x600: copy (0,16)-(800,600)→(0,0) strip-D@(0,584)-(800,600)", // the refresh showed C's picture
	}
	frames := []isolation.Frame{scrolled("A", 0), sharpAt("S1", 0), sharpAt("S2", 0), scrolled("B", 48), scrolled("C", 80), sharpAt("S3", 80), scrolled("D", 96)}
	for i, fr := range frames {
		b.EmitFrame(fr)
		if got := describe(t, readFrame(t, c)); got != want[i] {
			t.Errorf("frame %d: sent %s, want %s", i, got, want[i])
		}
	}
	wantCalls := []string{
		"S1→S2",
		"A⇒B (0,-48)+[(16,-16)-(32,0)]", "A→B+[(16,32)-(32,48)]",
		"B⇒C (0,-32)", "B→C",
		"C⇒D (0,-16)", "C→D",
	}
	if got := d.seen(); !slices.Equal(got, wantCalls) {
		t.Errorf("compared %q, want %q", got, wantCalls)
	}
	waitCount(t, "copied frames", &fc.copied, 3)
}

// waitCount waits until counter reaches want: the writer counts a frame
// after its write returned, which may be after the viewer read it.
func waitCount(t *testing.T, what string, counter interface{ Load() int64 }, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for counter.Load() != want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := counter.Load(); got != want {
		t.Errorf("%s: %d, want %d", what, got, want)
	}
}

// scrolledPage is the 640×400 screen of a tall page of busy "text"
// scrolled down by dy pixels, under a fixed header bar of 32 rows.
func scrolledPage(dy int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 640, 400))
	for y := range 400 {
		rng := rand.New(rand.NewPCG(uint64(y+dy), 7)) // row by row: the same row of the page looks the same at any offset
		for x := range 640 {
			v := uint8(255)
			if ((y+dy)/12)%2 == 0 && rng.IntN(3) == 0 {
				v = uint8(rng.IntN(120))
			}
			c := color.RGBA{v, v, v, 255}
			if y < 32 {
				c = color.RGBA{30, 80, 140, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// TestScrollRealEngine runs a scroll through the stream with the real tile
// engine on image/jpeg frames at the moving and the sharp quality: each
// moving frame of the scroll goes as a copy plus the header and the
// exposed strip, a small part of its JPEG, and leaves the canvas as close
// to the page as the frame itself is; each settle refresh after a scroll
// goes whole (the sharp reference no longer lines up) and leaves the
// canvas exactly the sharp frame.
func TestScrollRealEngine(t *testing.T) {
	f := newDeltaFixture(t, tiles.NewDelta(0), nil)
	ws := f.connectVersion(t, "alice", protocol.CopiesVersion)
	b := f.l.Last()
	cv := &canvas{}
	shotAt := func(dy, q int) step {
		pg := scrolledPage(dy)
		fr := shot(t, pg, q)
		fr.ScrollY, fr.Scrolled = dy, true
		return step{name: fmt.Sprintf("at %d, quality %d", dy, q), page: pg, frame: fr}
	}
	steps := []struct {
		s      step
		copied bool
	}{
		{shotAt(0, movingQ), false},
		{shotAt(0, sharpQ), false},
		{shotAt(48, movingQ), true},
		{shotAt(96, movingQ), true},
		{shotAt(96, sharpQ), false},
		{shotAt(64, movingQ), true},
		{shotAt(64, sharpQ), false},
	}
	var copyBytes, fullBytes int
	for _, st := range steps {
		st.s.partial = st.copied
		b.EmitFrame(st.s.frame)
		msg := readFrame(t, ws)
		copied := false
		if protocol.IsPartial(msg) {
			p, err := protocol.DecodePartial(msg)
			if err != nil {
				t.Fatal(err)
			}
			copied = len(p.Copies) > 0
		}
		if got := cv.draw(t, msg); got != st.copied || copied != st.copied {
			t.Errorf("%s: partial %v, with a copy %v; want %v", st.s.name, got, copied, st.copied)
		}
		if copied {
			copyBytes += len(msg)
			fullBytes += len(st.s.frame.JPEG)
		}
		cv.check(t, st.s)
	}
	t.Logf("frames with a copy: %d bytes for %d bytes of JPEG (%.1f%%)", copyBytes, fullBytes, 100*float64(copyBytes)/float64(max(fullBytes, 1)))
	if copyBytes*3 > fullBytes {
		t.Errorf("frames with a copy took %d bytes of %d: want a small part", copyBytes, fullBytes)
	}
}
