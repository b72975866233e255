// Package jpegstd holds the standard quantization tables of the JPEG
// specification (ITU T.81 Annex K.1) and libjpeg's scaling of them by
// quality, which Chromium's screencast encodes with. The broker's partial
// frames leave them out of tiles (broker/protocol, tables.go), and the
// browser reads a frame's quality back from them (isolation/chrome).
package jpegstd

// stdLuminance and stdChrominance are the quantization tables of Annex
// K.1, in zig-zag order.
var (
	stdLuminance = [64]byte{
		16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
		26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
		56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
		95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
	}
	stdChrominance = [64]byte{
		17, 18, 18, 24, 21, 24, 47, 26, 26, 47, 99, 66, 56, 66, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
	}
)

// Quant returns the standard quantization tables (luminance,
// chrominance) scaled to quality 1–100 as libjpeg scales them, in zig-zag
// order. A quality out of range is clamped.
func Quant(quality int) [2][64]byte {
	quality = min(max(quality, 1), 100)
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	var t [2][64]byte
	for i, base := range [2]*[64]byte{&stdLuminance, &stdChrominance} {
		for k, u := range base {
			t[i][k] = byte(min(max((int(u)*scale+50)/100, 1), 255))
		}
	}
	return t
}
