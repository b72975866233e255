package tiles

import (
	"errors"
	"fmt"
	"image"

	"github.com/shoji-rbi/shoji/broker/protocol"
)

// ErrRectangle is wrapped by Crop's error for a rectangle that is empty,
// not inside the image or not aligned to its MCUs.
var ErrRectangle = errors.New("bad crop rectangle")

// CheckRect returns an error naming r if r is empty, reaches outside the
// image, or does not start on an MCU boundary, or does not end on one or
// on the image's right and bottom edges.
func (m *Image) CheckRect(r image.Rectangle) error {
	switch {
	case r.Empty():
		return fmt.Errorf("%w: %v is empty", ErrRectangle, r)
	case !r.In(m.Bounds()):
		return fmt.Errorf("%w: %v is not inside the image %v", ErrRectangle, r, m.Bounds())
	case r.Min.X%m.mcuW != 0 || r.Min.Y%m.mcuH != 0 ||
		(r.Max.X%m.mcuW != 0 && r.Max.X != m.Width) || (r.Max.Y%m.mcuH != 0 && r.Max.Y != m.Height):
		return fmt.Errorf("%w: %v is not aligned to the image's %dx%d MCUs", ErrRectangle, r, m.mcuW, m.mcuH)
	}
	return nil
}

// Crop returns a baseline JPEG of exactly r, re-entropy-coded from m's
// coefficients: no pixel is decoded or quantized again, so that it decodes
// to the same pixels as r of the whole frame. r must be aligned to the
// image's MCUs (MCUSize) and inside it (CheckRect). The crop's DC
// coefficients are predicted from its own start, it has no restart
// markers, and its Huffman tables are optimal for it.
func (m *Image) Crop(r image.Rectangle) ([]byte, error) {
	if err := m.CheckRect(r); err != nil {
		return nil, err
	}
	return m.encode(r, 0, 0)
}

// CropCompact is Crop for a compact tile of a partial frame of quality
// (broker/protocol, tables.go): the crop leaves out its DQT segment when
// m's quantization tables are the standard ones at quality, and codes with
// the standard Huffman tables, leaving out its DHT segment, when that
// takes fewer bytes than optimal tables and their DHT. Once
// protocol.CompleteJPEG puts the tables back, it decodes to the same
// pixels as Crop's.
func (m *Image) CropCompact(r image.Rectangle, quality int) ([]byte, error) {
	if err := m.CheckRect(r); err != nil {
		return nil, err
	}
	return m.encode(r, 0, quality)
}

// StandardQuality reports whether m's quantization tables are the standard
// ones at quality (protocol.StandardQuant: luminance as table 0,
// chrominance as table 1), so that a compact crop may leave them out.
func (m *Image) StandardQuality(quality int) bool {
	if quality < 1 || quality > 100 {
		return false
	}
	std := protocol.StandardQuant(quality)
	for _, c := range m.comps {
		if c.tq > 1 {
			return false
		}
		for k, v := range m.qt[c.tq] {
			if int(v) != int(std[c.tq][k]) {
				return false
			}
		}
	}
	return true
}

// standardCodes are the encoder's tables for protocol.StandardHuffman,
// indexed as a crop's tables are (0-1 DC, 2-3 AC).
var standardCodes = func() (codes [4]*huffCode) {
	for _, spec := range protocol.StandardHuffman {
		h := &huffCode{counts: spec.Counts, vals: spec.Symbols}
		h.assign()
		codes[int(spec.Class)*2+int(spec.ID)] = h
	}
	return codes
}()

// codedBits is how many bits of Huffman codes the symbols counted in freq
// take with h (their extra bits are the same with any table), or -1 when h
// has no code for one of them.
func codedBits(h *huffCode, freq *[256]int) int {
	n := 0
	for sym, f := range freq {
		if f == 0 {
			continue
		}
		if h.size[sym] == 0 {
			return -1
		}
		n += f * int(h.size[sym])
	}
	return n
}

// encode writes r as a JPEG with a restart marker every restart MCUs (none
// when 0); r is valid. A quality above 0 makes it a compact tile
// (CropCompact).
func (m *Image) encode(r image.Rectangle, restart, quality int) ([]byte, error) {
	x0, y0 := r.Min.X/m.mcuW, r.Min.Y/m.mcuH
	x1, y1 := (r.Max.X+m.mcuW-1)/m.mcuW, (r.Max.Y+m.mcuH-1)/m.mcuH
	tokens := make([]token, 0, (x1-x0)*(y1-y0)*m.blocksPerMCU*4)
	var freq [4][256]int
	var pred [3]int32
	var marks []int // the tokens at which restart intervals start
	n := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if restart > 0 && n > 0 && n%restart == 0 {
				marks = append(marks, len(tokens))
				pred = [3]int32{}
			}
			n++
			blk := m.mcu(x, y)
			for ci, c := range m.comps {
				for range c.h * c.v {
					var err error
					tokens, blk, err = tokenize(tokens, &freq, blk, c, &pred[ci])
					if err != nil {
						return nil, fmt.Errorf("crop %v: %w", r, err)
					}
				}
			}
		}
	}
	var codes [4]*huffCode
	optBits, stdBits, dhtBytes := 0, 0, 4
	for i := range codes {
		if m.usesTable(i) {
			codes[i] = optimalCode(&freq[i])
			optBits += codedBits(codes[i], &freq[i])
			dhtBytes += 17 + len(codes[i].vals)
			if b := codedBits(standardCodes[i], &freq[i]); b < 0 || stdBits < 0 {
				stdBits = -1
			} else {
				stdBits += b
			}
		}
	}
	withDHT := true
	if quality > 0 && stdBits >= 0 && stdBits <= optBits+8*dhtBytes {
		codes, withDHT = standardCodes, false
	}
	withDQT := quality <= 0 || !m.StandardQuality(quality)
	out := make([]byte, 0, 1024+len(tokens)*2)
	out = m.header(out, r.Dx(), r.Dy(), restart, &codes, withDQT, withDHT)
	w := bitWriter{out: out}
	rst := 0
	for i, t := range tokens {
		if len(marks) > 0 && marks[0] == i {
			w.flush()
			w.out = append(w.out, 0xFF, 0xD0+byte(rst%8))
			rst++
			marks = marks[1:]
		}
		h := codes[t>>8&3]
		sym := byte(t)
		w.put(uint32(h.code[sym]), uint(h.size[sym]))
		if s := uint(sym & 15); s > 0 {
			w.put(uint32(t>>12), s)
		}
	}
	w.flush()
	return append(w.out, 0xFF, 0xD9), nil
}

// usesTable reports whether a component codes with table i of a crop (0-1
// DC, 2-3 AC).
func (m *Image) usesTable(i int) bool {
	for _, c := range m.comps {
		if (i < 2 && c.td == i) || (i >= 2 && c.ta == i-2) {
			return true
		}
	}
	return false
}

// tokenize appends the symbols of the block at the start of blk to tokens,
// counts them, and returns the entries after the block.
func tokenize(tokens []token, freq *[4][256]int, blk []int32, c component, pred *int32) ([]token, []int32, error) {
	diff := blk[0] - *pred
	*pred = blk[0]
	s, extra := category(diff)
	if s > 11 {
		return nil, nil, fmt.Errorf("DC difference %d does not fit an 8-bit JPEG", diff)
	}
	tokens = append(tokens, newToken(c.td, byte(s), extra))
	freq[c.td][s]++
	ac := 2 + c.ta
	last := 0 // the zig-zag index of the last coefficient coded
	i := 1
	for ; blk[i] != 0; i++ {
		k := int(blk[i] >> 16)
		run := k - last - 1
		for run > 15 {
			tokens = append(tokens, newToken(ac, 0xF0, 0))
			freq[ac][0xF0]++
			run -= 16
		}
		s, extra := category(int32(int16(blk[i])))
		sym := byte(run<<4) | byte(s)
		tokens = append(tokens, newToken(ac, sym, extra))
		freq[ac][sym]++
		last = k
	}
	if last < 63 {
		tokens = append(tokens, newToken(ac, 0x00, 0))
		freq[ac][0x00]++
	}
	return tokens, blk[i+1:], nil
}

// header appends SOI, DQT, SOF0, DHT and SOS of a crop of w×h pixels,
// without DQT or DHT when told (a compact tile).
func (m *Image) header(out []byte, w, h, restart int, codes *[4]*huffCode, withDQT, withDHT bool) []byte {
	out = append(out, 0xFF, 0xD8)
	if restart > 0 {
		out = appendMarker(out, 0xDD, 2)
		out = append(out, byte(restart>>8), byte(restart))
	}
	if withDQT {
		out = m.appendDQT(out)
	}
	// SOF0.
	out = appendMarker(out, 0xC0, 6+3*len(m.comps))
	out = append(out, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), byte(len(m.comps)))
	for _, c := range m.comps {
		out = append(out, c.id, byte(c.h<<4|c.v), byte(c.tq))
	}
	if withDHT {
		size := 0
		for _, h := range codes {
			if h != nil {
				size += 17 + len(h.vals)
			}
		}
		out = appendMarker(out, 0xC4, size)
		for i, h := range codes {
			if h == nil {
				continue
			}
			out = append(out, byte(i/2)<<4|byte(i%2))
			out = append(out, h.counts[:]...)
			out = append(out, h.vals...)
		}
	}
	// SOS.
	out = appendMarker(out, 0xDA, 4+2*len(m.comps))
	out = append(out, byte(len(m.comps)))
	for _, c := range m.comps {
		out = append(out, c.id, byte(c.td<<4|c.ta))
	}
	return append(out, 0, 63, 0)
}

// appendDQT appends a DQT segment of the tables the components use, once
// each.
func (m *Image) appendDQT(out []byte) []byte {
	var used [4]bool
	n := 0
	for _, c := range m.comps {
		if !used[c.tq] {
			used[c.tq] = true
			n++
		}
	}
	out = appendMarker(out, 0xDB, 65*n)
	for i, u := range used {
		if u {
			out = append(out, byte(i))
			out = append(out, m.qt[i][:]...)
		}
	}
	return out
}

// appendMarker appends a marker and the length of its n-byte payload.
func appendMarker(out []byte, marker byte, n int) []byte {
	return append(out, 0xFF, marker, byte((n+2)>>8), byte(n+2))
}
