package tiles

import (
	"fmt"
	"slices"

	"github.com/shoji-rbi/shoji/isolation"
)

// ChangedFraction is how much of cur differs from prev: the share of cur's
// MCUs whose coefficients differ, from 0 (the same picture) to 1. With no
// prev, or one of a different size, sampling or quantization, it is 1: the
// whole picture is new. With no cur it is 0.
func ChangedFraction(prev, cur *Image) float64 {
	if cur == nil {
		return 0
	}
	if !sameLayout(prev, cur) {
		return 1
	}
	total := cur.mcusX * cur.mcusY
	if total == 0 {
		return 0
	}
	n := 0
	for y := range cur.mcusY {
		for x := range cur.mcusX {
			if !slices.Equal(prev.mcu(x, y), cur.mcu(x, y)) {
				n++
			}
		}
	}
	return float64(n) / float64(total)
}

// Changed is ChangedFraction of two frames of a screencast, parsed through
// d's cache: a frame the stream then cuts tiles from, or compared before,
// is parsed once. An error names a frame that does not parse.
func (d *Delta) Changed(prev, cur *isolation.Frame) (float64, error) {
	pi, err := d.parse(prev)
	if err != nil {
		return 0, fmt.Errorf("previous frame: %w", err)
	}
	ci, err := d.parse(cur)
	if err != nil {
		return 0, fmt.Errorf("new frame: %w", err)
	}
	return ChangedFraction(pi, ci), nil
}
