package chrome

import (
	"math"
	"sync"

	"github.com/shoji-rbi/shoji/isolation"
)

// scrollStep is isolation.ScrollStep: wheel scrolling moves a page by
// whole blocks of its frames.
const scrollStep = isolation.ScrollStep

// wheelSteps quantizes the wheel deltas dispatched to a tab to multiples
// of scrollStep device pixels. What a delta has beyond a whole step is
// carried to the next wheel event of the same tab, so no scroll distance is
// lost: ten wheel events of 10 CSS pixels at DPR 1 scroll 96 pixels and
// carry 4. The carry of an axis is dropped when the direction on that axis
// flips (the clinician turned back: the remainder belonged to the other
// way) and when the events go to another tab; it is kept across pauses,
// so a remainder of less than a step waits for the next scroll the same
// way. Wheel events with modifiers (Ctrl+wheel zooms) are not quantized
// and do not touch the carry. It is safe for concurrent use.
type wheelSteps struct {
	mu     sync.Mutex
	tab    *tab
	carryX float64
	carryY float64
}

// step returns the deltas to dispatch to t for deltas (dx, dy) in CSS
// pixels, at scale device pixels of the frames per CSS pixel: multiples
// of scrollStep/scale, possibly 0, with the rest carried.
func (w *wheelSteps) step(t *tab, dx, dy, scale float64) (float64, float64) {
	if !(scale > 0) || math.IsInf(scale, 0) {
		return dx, dy
	}
	unit := scrollStep / scale
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tab != t {
		w.tab, w.carryX, w.carryY = t, 0, 0
	}
	var outX, outY float64
	outX, w.carryX = quantize(dx, w.carryX, unit)
	outY, w.carryY = quantize(dy, w.carryY, unit)
	return outX, outY
}

// quantize adds d to carry and returns the whole units of unit in it
// (towards zero) and what is left. A d of the opposite sign to carry
// drops carry first; a d of 0 keeps it.
func quantize(d, carry, unit float64) (out, rest float64) {
	if d == 0 {
		return 0, carry
	}
	if (d > 0) != (carry > 0) && carry != 0 {
		carry = 0
	}
	total := carry + d
	// A sum within a hair of a whole number of units is that number (the
	// steps of 16/scale are not exact in binary).
	n := math.Trunc(total/unit + math.Copysign(1e-9, total))
	out = n * unit
	return out, total - out
}
