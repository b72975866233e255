package chrome

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/isolation"
)

// TestWheelSteps proves that wheel deltas go out in whole steps of 16
// device pixels, that the rest is carried so that the distance scrolled
// is the distance asked less under one step, that the carry is dropped
// when the direction flips or the tab changes, and that a zero delta keeps
// it.
func TestWheelSteps(t *testing.T) {
	a, b := &tab{}, &tab{}
	type ev struct {
		t      *tab
		dx, dy float64
	}
	for _, tc := range []struct {
		name  string
		scale float64
		evs   []ev
		want  [][2]float64
	}{
		{"DPR 1", 1, []ev{{a, 0, 10}, {a, 0, 10}, {a, 0, 100}, {a, 0, 40}}, [][2]float64{{0, 0}, {0, 16}, {0, 96}, {0, 48}}},
		{"DPR 2", 2, []ev{{a, 0, 10}, {a, 0, 3}, {a, 0, 100}}, [][2]float64{{0, 8}, {0, 0}, {0, 104}}},
		{"DPR 1.5", 1.5, []ev{{a, 0, 32}, {a, 0, 32}}, [][2]float64{{0, 32}, {0, 32}}},
		{"direction flips", 1, []ev{{a, 0, 30}, {a, 0, -30}, {a, 0, -2}}, [][2]float64{{0, 16}, {0, -16}, {0, -16}}},
		{"both axes", 1, []ev{{a, 20, -20}, {a, 20, 0}, {a, 0, -20}}, [][2]float64{{16, -16}, {16, 0}, {0, -16}}},
		{"another tab", 1, []ev{{a, 0, 30}, {b, 0, 10}, {b, 0, 10}}, [][2]float64{{0, 16}, {0, 0}, {0, 16}}},
		{"no scale", 0, []ev{{a, 0, 10}}, [][2]float64{{0, 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w wheelSteps
			for i, e := range tc.evs {
				x, y := w.step(e.t, e.dx, e.dy, tc.scale)
				if math.Abs(x-tc.want[i][0]) > 1e-9 || math.Abs(y-tc.want[i][1]) > 1e-9 {
					t.Errorf("event %d (%v, %v): dispatched (%v, %v), want %v", i, e.dx, e.dy, x, y, tc.want[i])
				}
				if tc.scale > 0 {
					if sx, sy := x*tc.scale/scrollStep, y*tc.scale/scrollStep; math.Abs(sx-math.Round(sx)) > 1e-9 || math.Abs(sy-math.Round(sy)) > 1e-9 {
						t.Errorf("event %d: (%v, %v) CSS px is not a whole number of steps", i, x, y)
					}
				}
			}
		})
	}
}

// TestWheelScrollSteps proves with real Chromium that wheel scrolling by
// deltas that are not multiples of 16 moves the page by whole 16-pixel
// blocks of the frames: every frame's scroll offset is known and a
// multiple of 16 device pixels, no frame shows an offset in between (no
// smooth-scrolling animation), and the last frame's offset is the page's
// window.scrollY times the DPR, the distance asked less under one step.
// A keyboard scroll (PageDown) jumps to its end without frames in between.
func TestWheelScrollSteps(t *testing.T) {
	for _, dpr := range []float64{1, 2} {
		t.Run(fmt.Sprintf("DPR %v", dpr), func(t *testing.T) {
			var mu sync.Mutex
			var frames []isolation.Frame
			f := launchFixtureWith(t, isolation.Viewport{Width: 400, Height: 300, DPR: dpr}, "", fixtureSetup{options: func(o *isolation.LaunchOptions) {
				next := o.Observer.Frame
				o.Observer.Frame = func(fr isolation.Frame) {
					mu.Lock()
					frames = append(frames, fr)
					mu.Unlock()
					next(fr)
				}
			}})
			f.open(t, "/scroll")
			mu.Lock()
			start := len(frames)
			mu.Unlock()
			asked := 0.0
			for _, d := range []float64{37, 37, 37, 100, -25, 53, 10, 10} {
				if err := f.b.Wheel(testCtx(t), isolation.WheelEvent{X: 100, Y: 100, DeltaY: d}); err != nil {
					t.Fatal(err)
				}
				asked += d
			}
			// What the steps give: 16/DPR CSS pixels each, the rest carried
			// (the flip at -25 drops the carry).
			var w wheelSteps
			want := 0.0
			for _, d := range []float64{37, 37, 37, 100, -25, 53, 10, 10} {
				_, y := w.step(nil, 0, d, dpr)
				want += y
			}
			eventually(t, "the page scrolled", func() bool { return eval[float64](t, f.b, "window.scrollY") == want })
			wantDevice := int(math.Round(want * dpr))
			eventually(t, "a frame at the scrolled offset", func() bool {
				mu.Lock()
				defer mu.Unlock()
				last := frames[len(frames)-1]
				return last.Scrolled && last.ScrollY == wantDevice
			})
			mu.Lock()
			defer mu.Unlock()
			var ys []int
			for _, fr := range frames[start:] {
				if !fr.Scrolled {
					t.Errorf("a frame without a known scroll offset")
					continue
				}
				ys = append(ys, fr.ScrollY)
				if fr.ScrollY%scrollStep != 0 || fr.ScrollX != 0 {
					t.Errorf("a frame at offset (%d, %d), not on the %d-pixel grid", fr.ScrollX, fr.ScrollY, scrollStep)
				}
			}
			t.Logf("asked %v CSS px, scrolled %v; frames' offsets %v", asked, want, ys)
			if want <= 0 || want > asked {
				t.Errorf("scrolled %v for %v asked", want, asked)
			}
			mark := len(frames)
			mu.Unlock()

			// A keyboard scroll jumps (--disable-smooth-scrolling): no frame
			// at an offset between the start and the end (with smooth
			// scrolling, frames at fractional offsets pass by).
			f.click(t, 100, 100)
			f.key(t, "PageDown", "PageDown", 34, 0)
			end := -1.0
			eventually(t, "the page scrolled by PageDown and stopped", func() bool {
				y := eval[float64](t, f.b, "window.scrollY")
				stopped := y == end && y > want
				end = y
				return stopped
			})
			endDevice := int(math.Round(end * dpr))
			eventually(t, "a frame of the scrolled page", func() bool {
				mu.Lock()
				defer mu.Unlock()
				last := frames[len(frames)-1]
				return len(frames) > mark && (!last.Scrolled || last.ScrollY != wantDevice)
			})
			mu.Lock()
			ys = ys[:0]
			for _, fr := range frames[mark:] {
				if !fr.Scrolled {
					ys = append(ys, -1)
				} else {
					ys = append(ys, fr.ScrollY)
				}
				if !fr.Scrolled || (fr.ScrollY != wantDevice && fr.ScrollY != endDevice) {
					t.Errorf("PageDown from %d to %d device px passed a frame at %d (known %v): the scroll animated", wantDevice, endDevice, fr.ScrollY, fr.Scrolled)
				}
			}
			t.Logf("PageDown: frames' offsets %v (-1: not a whole pixel)", ys)
		})
	}
}
