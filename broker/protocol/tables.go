package protocol

import (
	"encoding/binary"
	"fmt"
)

// A tile of a partial frame may leave out the JPEG tables that every tile
// of a stream would otherwise repeat (docs/protocol.md, "Compact tiles"):
//
//   - with no DQT segment, it uses the standard quantization tables of the
//     JPEG specification (ITU T.81 Annex K.1, luminance as table 0 and
//     chrominance as table 1) scaled to the partial frame's quality as
//     libjpeg's jpeg_set_quality scales them, which is how the browser's
//     screencast encodes them;
//   - with no DHT segment, it uses the standard Huffman tables of Annex
//     K.3 (DC and AC table 0 for luminance, table 1 for chrominance).
//
// The viewer puts the missing segments back after the tile's SOI before it
// decodes it (CompleteJPEG here, web/static/screen.js there). For a small
// tile the tables are most of its bytes: 134 bytes of DQT and 100–200 of
// optimized DHT around a few hundred bytes of scan.

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

// StandardQuant returns the standard quantization tables (luminance,
// chrominance) scaled to quality 1–100 as libjpeg scales them, in zig-zag
// order. A quality out of range is clamped.
func StandardQuant(quality int) [2][64]byte {
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

// HuffmanSpec is one Huffman table as a DHT segment carries it: Class 0
// for DC and 1 for AC, its ID, the number of codes of each length 1–16,
// and the symbols in code order.
type HuffmanSpec struct {
	Class, ID byte
	Counts    [16]byte
	Symbols   []byte
}

// StandardHuffman holds the Huffman tables of Annex K.3: DC luminance (DC
// table 0), DC chrominance (DC table 1), AC luminance (AC table 0), AC
// chrominance (AC table 1). They code every symbol of an 8-bit baseline
// JPEG.
var StandardHuffman = [4]HuffmanSpec{
	{Class: 0, ID: 0,
		Counts:  [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
		Symbols: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	{Class: 0, ID: 1,
		Counts:  [16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
		Symbols: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	{Class: 1, ID: 0,
		Counts: [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d},
		Symbols: []byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
			0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
			0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
			0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
			0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
			0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
			0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
			0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
			0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
			0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
			0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
	{Class: 1, ID: 1,
		Counts: [16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77},
		Symbols: []byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
			0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
			0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
			0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
			0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
			0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
			0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
			0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
			0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
			0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
			0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
}

// StandardDQT returns the DQT segment (marker included) of the standard
// quantization tables at quality, tables 0 and 1.
func StandardDQT(quality int) []byte {
	t := StandardQuant(quality)
	out := []byte{0xFF, 0xDB, 0, 2 + 2*65}
	for i := range t {
		out = append(out, byte(i))
		out = append(out, t[i][:]...)
	}
	return out
}

// StandardDHT returns the DHT segment (marker included) of the four
// standard Huffman tables.
func StandardDHT() []byte {
	n := 2
	for _, h := range StandardHuffman {
		n += 17 + len(h.Symbols)
	}
	out := binary.BigEndian.AppendUint16([]byte{0xFF, 0xC4}, uint16(n))
	for _, h := range StandardHuffman {
		out = append(out, h.Class<<4|h.ID)
		out = append(out, h.Counts[:]...)
		out = append(out, h.Symbols...)
	}
	return out
}

// JPEGTables reports whether a JPEG's header (the segments before its
// scan) has a DQT and a DHT segment. It fails on a header that is cut
// short or malformed.
func JPEGTables(b []byte) (dqt, dht bool, err error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return false, false, fmt.Errorf("not a JPEG")
	}
	for i := 2; ; {
		if i+4 > len(b) || b[i] != 0xFF {
			return false, false, fmt.Errorf("JPEG header cut short or malformed at byte %d", i)
		}
		code := b[i+1]
		if code == 0xDA {
			return dqt, dht, nil
		}
		switch code {
		case 0xDB:
			dqt = true
		case 0xC4:
			dht = true
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
}

// CompleteJPEG returns a compact tile with the tables it left out put
// back (see above): the standard DQT at quality when it has no DQT, the
// standard DHT when it has no DHT. A tile that has both is returned as it
// is. A tile without DQT needs a quality of 1–100.
func CompleteJPEG(tile []byte, quality int) ([]byte, error) {
	dqt, dht, err := JPEGTables(tile)
	if err != nil {
		return nil, err
	}
	if dqt && dht {
		return tile, nil
	}
	if !dqt && (quality < 1 || quality > 100) {
		return nil, fmt.Errorf("a tile without quantization tables in a partial frame of quality %d", quality)
	}
	out := make([]byte, 0, len(tile)+600)
	out = append(out, 0xFF, 0xD8)
	if !dqt {
		out = append(out, StandardDQT(quality)...)
	}
	if !dht {
		out = append(out, StandardDHT()...)
	}
	return append(out, tile[2:]...), nil
}
