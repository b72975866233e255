package chrome

import "encoding/binary"

// jpegSize returns the width and height in a JPEG's frame header (SOFn),
// reading only the markers before it. It allocates nothing, unlike
// image/jpeg.DecodeConfig, whose decoder state is some 13 KB per call.
func jpegSize(b []byte) (width, height int, ok bool) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0, false
	}
	i := 2
	for {
		// A marker is 0xFF, any number of 0xFF fill bytes, and a code.
		if i >= len(b) || b[i] != 0xFF {
			return 0, 0, false
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return 0, 0, false
		}
		code := b[i]
		i++
		switch {
		case code == 0x01 || code >= 0xD0 && code <= 0xD7:
			continue // TEM and RSTn stand alone
		case code == 0xD9 || code == 0xDA:
			return 0, 0, false // EOI or SOS before any frame header
		}
		if i+2 > len(b) {
			return 0, 0, false
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return 0, 0, false
		}
		// SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
		if code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC {
			// Length, precision, height, width.
			if n < 7 {
				return 0, 0, false
			}
			height = int(binary.BigEndian.Uint16(b[i+3:]))
			width = int(binary.BigEndian.Uint16(b[i+5:]))
			return width, height, width > 0 && height > 0
		}
		i += n
	}
}
