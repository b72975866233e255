package tiles

import (
	"errors"
	"testing"

	"github.com/shoji-rbi/shoji/isolation"
)

// TestChanged proves the share of the screen that changed between two
// frames, which the stream's frame pace weighs: none for the same picture,
// a small share for a typed character, a large one for another page, all
// of it for a first frame; that it shares the parse cache with Delta; and
// that a frame that does not parse is an error naming it.
func TestChanged(t *testing.T) {
	still, typed, other := screen(t, "still.jpg"), screen(t, "typed.jpg"), screen(t, "dense-still.jpg")
	d := NewDelta(0)
	for _, tc := range []struct {
		name      string
		prev, cur *isolation.Frame
		min, max  float64
	}{
		{"same picture", still, still, 0, 0},
		{"typed character", still, typed, 1e-6, 0.01},
		{"another page", still, other, 0.3, 1},
	} {
		got, err := d.Changed(tc.prev, tc.cur)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		t.Logf("%s: %.4f", tc.name, got)
		if got < tc.min || got > tc.max {
			t.Errorf("%s: changed %.4f, want %v..%v", tc.name, got, tc.min, tc.max)
		}
	}
	if n := d.Cached(); n != 3 {
		t.Errorf("%d frames cached after comparing three, want 3", n)
	}
	if _, _, err := d.Delta(still, typed, nil); err != nil {
		t.Fatal(err)
	}
	if n := d.Cached(); n != 3 {
		t.Errorf("%d frames cached after Delta of frames Changed parsed, want 3: parsed again", n)
	}
	if got := ChangedFraction(nil, mustParse(t, still.JPEG)); got != 1 {
		t.Errorf("a first frame changed %v, want 1", got)
	}
	if got := ChangedFraction(mustParse(t, still.JPEG), nil); got != 0 {
		t.Errorf("no frame changed %v, want 0", got)
	}
	bad := &isolation.Frame{JPEG: []byte{0xFF, 0xD8, 0xFF}, Width: 1280, Height: 800}
	if _, err := d.Changed(still, bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a frame that does not parse: err %v, want ErrCorrupt", err)
	}
}
