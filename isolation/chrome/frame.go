package chrome

import (
	"encoding/binary"
	"math"

	"github.com/shoji-rbi/shoji/internal/jpegstd"
	"github.com/shoji-rbi/shoji/isolation"
)

// jpegHeader walks a JPEG's marker segments up to its scan (SOS), calling
// visit with each segment's code and payload (without the length). It
// stops when visit returns false, and reports false when the header is
// malformed or ends before visit stopped it. It allocates nothing.
func jpegHeader(b []byte, visit func(code byte, seg []byte) bool) bool {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return false
	}
	i := 2
	for {
		// A marker is 0xFF, any number of 0xFF fill bytes, and a code.
		if i >= len(b) || b[i] != 0xFF {
			return false
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return false
		}
		code := b[i]
		i++
		switch {
		case code == 0x01 || code >= 0xD0 && code <= 0xD7:
			continue // TEM and RSTn stand alone
		case code == 0xD9 || code == 0xDA:
			return false // EOI or SOS: the header ended
		}
		if i+2 > len(b) {
			return false
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return false
		}
		if !visit(code, b[i+2:i+n]) {
			return true
		}
		i += n
	}
}

// jpegSize returns the width and height in a JPEG's frame header (SOFn),
// reading only the markers before it. It allocates nothing, unlike
// image/jpeg.DecodeConfig, whose decoder state is some 13 KB per call.
func jpegSize(b []byte) (width, height int, ok bool) {
	jpegHeader(b, func(code byte, seg []byte) bool {
		// SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
		if code < 0xC0 || code > 0xCF || code == 0xC4 || code == 0xC8 || code == 0xCC {
			return true
		}
		// Precision, height, width.
		if len(seg) >= 5 {
			height = int(binary.BigEndian.Uint16(seg[1:]))
			width = int(binary.BigEndian.Uint16(seg[3:]))
			ok = width > 0 && height > 0
		}
		return false
	})
	return width, height, ok
}

// jpegQuality returns the quality (1–100) a JPEG was encoded at, read from
// its luminance quantization table as libjpeg's jpeg_set_quality scales
// it (internal/jpegstd), or 0 when the table is not one of those. The screencast's frames
// say their quality this way whatever restart of the screencast they come
// from, so a frame that arrives late from a screencast just replaced is not
// taken for one of the new quality.
func jpegQuality(b []byte) int {
	var table []byte
	jpegHeader(b, func(code byte, seg []byte) bool {
		if code != 0xDB {
			return true
		}
		// A DQT segment holds one or more tables: Pq/Tq, then 64 entries
		// of 8 (Pq 0) or 16 bits.
		for len(seg) > 0 {
			pq, tq := seg[0]>>4, seg[0]&0x0F
			n := 64
			if pq != 0 {
				n = 128
			}
			if len(seg) < 1+n {
				return false
			}
			if tq == 0 && pq == 0 {
				table = seg[1 : 1+n]
				return false
			}
			seg = seg[1+n:]
		}
		return true
	})
	if table == nil {
		return 0
	}
	for q := 100; q >= 1; q-- {
		if std := jpegstd.Quant(q); string(table) == string(std[0][:]) {
			return q
		}
	}
	return 0
}

// frameScroll sets f's scroll offset from its screencast metadata: the
// offset (scrollX, scrollY, CSS pixels) times the page's scale and the
// frame's device pixels per DIP (its width over deviceWidth, the
// metadata's width in DIP). It leaves f.Scrolled false when a value is
// missing or out of range, or when the offset is not a whole number of
// the frame's pixels (give or take rounding): such a frame cannot be
// compared with another by an exact shift.
func frameScroll(f *isolation.Frame, scrollX, scrollY, deviceWidth, pageScale float64) {
	if f.Width <= 0 || !(deviceWidth > 0) || !(pageScale > 0) {
		return
	}
	k := pageScale * float64(f.Width) / deviceWidth
	x, okX := wholePixels(scrollX * k)
	y, okY := wholePixels(scrollY * k)
	if okX && okY {
		f.ScrollX, f.ScrollY, f.Scrolled = x, y, true
	}
}

// wholePixels rounds v to an int, and reports whether it was within 0.01
// of it and within ±2^30.
func wholePixels(v float64) (int, bool) {
	r := math.Round(v)
	if math.IsNaN(v) || math.Abs(r) > 1<<30 || math.Abs(v-r) > 0.01 {
		return 0, false
	}
	return int(r), true
}
