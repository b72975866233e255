package tiles

import (
	"image"
	"slices"
)

// headerBytes is what a crop's headers (SOI, DQT, SOF0, DHT with four
// small optimal tables, SOS, EOI) weigh in bytes, Diff's per-rectangle
// overhead: a crop of one white MCU of a Chromium frame is 251 bytes.
const headerBytes = 250

// maxMergeRects bounds the rectangles Diff weighs pair by pair; a change
// scattered over more is sent as its bounding box.
const maxMergeRects = 128

// Diff returns the MCU-aligned pixel rectangles of cur whose coefficients
// differ from prev's, in few rectangles that do not overlap: neighbouring changes are merged
// when one larger rectangle costs less than the parts, a rectangle costing
// its MCUs plus an overhead (Overhead). Identical frames give none. With no
// prev, or one of a different size, sampling or quantization, the whole of
// cur is the change; with no cur, nothing.
func Diff(prev, cur *Image) []image.Rectangle {
	if cur == nil {
		return nil
	}
	return DiffWithOverhead(prev, cur, cur.Overhead())
}

// Overhead is the cost of a crop's headers counted in m's average MCUs:
// what one more rectangle costs against sending a few more MCUs.
func (m *Image) Overhead() int {
	mcus := m.mcusX * m.mcusY
	if m.scanBytes == 0 {
		return 1
	}
	return max(1, headerBytes*mcus/m.scanBytes)
}

// DiffWithOverhead is Diff with a per-rectangle overhead of overhead MCUs.
func DiffWithOverhead(prev, cur *Image, overhead int) []image.Rectangle {
	return diff(prev, cur, image.Point{}, nil, overhead)
}

// DiffCovering is Diff, and the rectangles also cover every MCU of cur
// that touches one of also (pixel rectangles, clipped to cur): what must
// be sent of cur where the viewer's canvas is not prev's pixels, whether
// or not prev and cur differ there.
func DiffCovering(prev, cur *Image, also []image.Rectangle) []image.Rectangle {
	if cur == nil {
		return nil
	}
	return diff(prev, cur, image.Point{}, also, cur.Overhead())
}

// DiffShifted is DiffCovering against prev shifted by shift (device
// pixels, a multiple of the MCU size in each axis): what must be sent of
// cur once the viewer has copied its canvas (prev's picture) by shift,
// as a scroll moves a page's content. An MCU of cur at p is unchanged
// when prev's MCU at p − shift holds the same coefficients; an MCU whose
// source lies outside prev (the strip the scroll exposed) is changed. The
// rectangles of also are in the canvas's coordinates after the copy. A
// shift that is not a multiple of the MCU, or not smaller than the frame,
// makes the whole of cur the change.
func DiffShifted(prev, cur *Image, shift image.Point, also []image.Rectangle) []image.Rectangle {
	if cur == nil {
		return nil
	}
	if shift.X%cur.mcuW != 0 || shift.Y%cur.mcuH != 0 || abs(shift.X) >= cur.Width || abs(shift.Y) >= cur.Height {
		return []image.Rectangle{cur.Bounds()}
	}
	return diff(prev, cur, image.Pt(shift.X/cur.mcuW, shift.Y/cur.mcuH), also, cur.Overhead())
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// diff marks the MCUs of cur that differ from prev's MCUs shift (in MCUs)
// up and left of them, or whose source is outside prev, or touch one of
// also, and returns them as few merged rectangles in pixels.
func diff(prev, cur *Image, shift image.Point, also []image.Rectangle, overhead int) []image.Rectangle {
	if cur == nil {
		return nil
	}
	if !sameLayout(prev, cur) {
		return []image.Rectangle{cur.Bounds()}
	}
	changed := make([]bool, cur.mcusX*cur.mcusY)
	n := 0
	for y := range cur.mcusY {
		sy := y - shift.Y
		for x := range cur.mcusX {
			sx := x - shift.X
			if !edgeSafe(cur, sx, sy, x, y) || !slices.Equal(prev.mcu(sx, sy), cur.mcu(x, y)) {
				changed[y*cur.mcusX+x] = true
				n++
			}
		}
	}
	for _, r := range also {
		r = r.Intersect(cur.Bounds())
		if r.Empty() {
			continue
		}
		for y := r.Min.Y / cur.mcuH; y < (r.Max.Y+cur.mcuH-1)/cur.mcuH; y++ {
			for x := r.Min.X / cur.mcuW; x < (r.Max.X+cur.mcuW-1)/cur.mcuW; x++ {
				if !changed[y*cur.mcusX+x] {
					changed[y*cur.mcusX+x] = true
					n++
				}
			}
		}
	}
	if n == 0 {
		return nil
	}
	rects := merge(runs(changed, cur.mcusX, cur.mcusY), max(overhead, 0))
	whole := image.Rect(0, 0, cur.mcusX, cur.mcusY)
	if cost(rects, overhead) >= area(whole)+overhead {
		rects = []image.Rectangle{whole}
	}
	out := make([]image.Rectangle, len(rects))
	for i, r := range rects {
		out[i] = image.Rect(r.Min.X*cur.mcuW, r.Min.Y*cur.mcuH, r.Max.X*cur.mcuW, r.Max.Y*cur.mcuH).Intersect(cur.Bounds())
	}
	return out
}

// edgeSafe reports whether cur's MCU (x, y) may be taken from the same
// image's MCU (sx, sy): the source is inside the image, and it is not cut
// by the right or bottom edge unless it stays in its column or row (a cut
// MCU's pixels past the edge are padding, which the copy does not carry to
// a destination that shows them).
func edgeSafe(m *Image, sx, sy, x, y int) bool {
	if sx < 0 || sy < 0 || sx >= m.mcusX || sy >= m.mcusY {
		return false
	}
	if m.Width%m.mcuW != 0 && sx == m.mcusX-1 && sx != x {
		return false
	}
	if m.Height%m.mcuH != 0 && sy == m.mcusY-1 && sy != y {
		return false
	}
	return true
}

// sameLayout reports whether a and b have the same size, components and
// quantization, so that equal coefficients mean equal pixels.
func sameLayout(a, b *Image) bool {
	if a == nil || a.Width != b.Width || a.Height != b.Height || !slices.Equal(a.comps, b.comps) {
		return false
	}
	for _, c := range a.comps {
		if a.qt[c.tq] != b.qt[c.tq] {
			return false
		}
	}
	return true
}

// runs returns the changed MCUs as rectangles in MCU units: horizontal runs
// of each row, a run joined to the rectangle above when it spans the same
// columns.
func runs(changed []bool, w, h int) []image.Rectangle {
	var rects []image.Rectangle
	open := map[[2]int]int{} // a rectangle ending on the row above, by its columns
	for y := range h {
		next := map[[2]int]int{}
		for x := 0; x < w; {
			if !changed[y*w+x] {
				x++
				continue
			}
			x0 := x
			for x < w && changed[y*w+x] {
				x++
			}
			if i, ok := open[[2]int{x0, x}]; ok {
				rects[i].Max.Y = y + 1
				next[[2]int{x0, x}] = i
			} else {
				next[[2]int{x0, x}] = len(rects)
				rects = append(rects, image.Rect(x0, y, x, y+1))
			}
		}
		open = next
	}
	return rects
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }

// cost is what sending rects costs: their MCUs and overhead each.
func cost(rects []image.Rectangle, overhead int) int {
	c := 0
	for _, r := range rects {
		c += area(r) + overhead
	}
	return c
}

// merge joins rectangles while one rectangle covering two of them, and
// every other it touches, costs no more than those it replaces.
func merge(rects []image.Rectangle, overhead int) []image.Rectangle {
	if len(rects) > maxMergeRects {
		b := rects[0]
		for _, r := range rects[1:] {
			b = b.Union(r)
		}
		return []image.Rectangle{b}
	}
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rects); i++ {
			for j := i + 1; j < len(rects); j++ {
				b := rects[i].Union(rects[j])
				if area(b)-area(rects[i])-area(rects[j]) > overhead {
					continue
				}
				if next, ok := absorb(rects, b, overhead); ok {
					rects = next
					merged = true
					j = i
				}
			}
		}
	}
	return rects
}

// absorb grows b over every rectangle it overlaps and, if the grown
// rectangle costs no more than those it covers, returns rects with them
// replaced by it.
func absorb(rects []image.Rectangle, b image.Rectangle, overhead int) ([]image.Rectangle, bool) {
	for grown := true; grown; {
		grown = false
		for _, r := range rects {
			if r.Overlaps(b) && !r.In(b) {
				b = b.Union(r)
				grown = true
			}
		}
	}
	var rest []image.Rectangle
	covered := 0
	for _, r := range rects {
		if r.In(b) {
			covered += area(r) + overhead
		} else {
			rest = append(rest, r)
		}
	}
	if area(b)+overhead > covered {
		return nil, false
	}
	return append(rest, b), true
}
