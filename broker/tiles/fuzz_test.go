package tiles

import (
	"errors"
	"image"
	"testing"
)

// FuzzParse feeds Parse mutations of real frames and of small crops of
// them: it must never panic, and what it accepts must crop and re-parse to
// the same coefficients.
//
//	go test -run ^$ -fuzz FuzzParse -fuzztime 30s ./broker/tiles/
func FuzzParse(f *testing.F) {
	for _, name := range []string{"still.jpg", "typed.jpg", "moved.jpg", "dense-typed.jpg"} {
		data := frame(f, name)
		f.Add(data)
		m := mustParse(f, data)
		f.Add(mustCrop(f, m, image.Rect(16, 128, 64, 160)))
		rst, err := m.encode(image.Rect(0, 0, 64, 48), 2, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rst)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Parse error %v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			return
		}
		if d := Diff(m, m); len(d) != 0 {
			t.Fatalf("Diff of an image with itself = %v", d)
		}
		c, err := m.Crop(m.Bounds())
		if err != nil {
			return // a DC difference that does not fit 8 bits
		}
		again, err := Parse(c)
		if err != nil {
			t.Fatalf("Parse of a crop: %v", err)
		}
		if d := Diff(m, again); len(d) != 0 {
			t.Fatalf("crop of the whole image differs in %v", d)
		}
	})
}
