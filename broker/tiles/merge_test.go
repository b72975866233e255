package tiles

import (
	"image"
	"slices"
	"testing"
)

// TestMerge checks how changed MCUs become rectangles: a rectangle costs
// its MCUs plus the overhead, and two are joined when one costs less.
func TestMerge(t *testing.T) {
	tests := []struct {
		name     string
		changed  []image.Point // changed MCUs of a 20x10 grid
		overhead int
		want     []image.Rectangle
	}{
		{"one MCU", []image.Point{{3, 4}}, 10, []image.Rectangle{image.Rect(3, 4, 4, 5)}},
		{"a block of MCUs", []image.Point{{3, 4}, {4, 4}, {3, 5}, {4, 5}}, 10, []image.Rectangle{image.Rect(3, 4, 5, 6)}},
		{"near neighbours merge", []image.Point{{3, 4}, {5, 4}}, 10, []image.Rectangle{image.Rect(3, 4, 6, 5)}},
		{"far apart stay apart", []image.Point{{0, 0}, {19, 9}}, 10, []image.Rectangle{image.Rect(0, 0, 1, 1), image.Rect(19, 9, 20, 10)}},
		{"far apart merge when rectangles are dear", []image.Point{{0, 0}, {5, 0}}, 10, []image.Rectangle{image.Rect(0, 0, 6, 1)}},
		{"an L stays two rectangles when cheap", []image.Point{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {0, 1}, {0, 2}, {0, 3}}, 1,
			[]image.Rectangle{image.Rect(0, 0, 4, 1), image.Rect(0, 1, 1, 4)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := make([]bool, 20*10)
			for _, p := range tt.changed {
				changed[p.Y*20+p.X] = true
			}
			got := merge(runs(changed, 20, 10), tt.overhead)
			slices.SortFunc(got, func(a, b image.Rectangle) int { return (a.Min.Y*20 + a.Min.X) - (b.Min.Y*20 + b.Min.X) })
			if !slices.Equal(got, tt.want) {
				t.Errorf("merge = %v, want %v", got, tt.want)
			}
			for i, a := range got {
				for _, b := range got[i+1:] {
					if a.Overlaps(b) {
						t.Errorf("rectangles %v and %v overlap", a, b)
					}
				}
			}
			for _, p := range tt.changed {
				covered := false
				for _, r := range got {
					covered = covered || p.In(r)
				}
				if !covered {
					t.Errorf("changed MCU %v is in no rectangle", p)
				}
			}
		})
	}
}

// TestMergeScattered checks that a change scattered over more rectangles
// than merge weighs becomes their bounding box.
func TestMergeScattered(t *testing.T) {
	changed := make([]bool, 80*50)
	for y := 1; y < 49; y += 3 {
		for x := 2; x < 78; x += 3 {
			changed[y*80+x] = true
		}
	}
	rects := runs(changed, 80, 50)
	if len(rects) <= maxMergeRects {
		t.Fatalf("only %d rectangles", len(rects))
	}
	if got, want := merge(rects, 0), []image.Rectangle{image.Rect(2, 1, 78, 47)}; !slices.Equal(got, want) {
		t.Errorf("merge = %v, want %v", got, want)
	}
}
