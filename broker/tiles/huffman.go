package tiles

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// lutBits is how many bits of a Huffman code the decoder's lookup table
// resolves in one step; longer codes take the canonical slow path.
const lutBits = 9

// huffTable is a Huffman table as DHT defines it, ready for decoding.
type huffTable struct {
	// lut maps the next lutBits bits to length<<8 | symbol, or 0 when the
	// code is longer.
	lut [1 << lutBits]uint16
	// fast maps the next lutBits bits, for an AC table, to a whole
	// coefficient when its code and extra bits fit in them: value<<16 |
	// run<<8 | bits used; 0 otherwise.
	fast    [1 << lutBits]int32
	maxcode [17]int32 // the largest code of each length, -1 if none
	valptr  [17]int32 // index in vals of the first code of each length
	mincode [17]int32 // the smallest code of each length
	vals    []byte
}

// newHuffTable builds a table from DHT's counts of codes per length and
// its symbols, refusing a table whose codes do not fit their lengths or
// whose DC symbols are not 8-bit categories.
func newHuffTable(counts [16]int, vals []byte, dc bool) (*huffTable, error) {
	t := &huffTable{vals: append([]byte(nil), vals...)}
	if dc {
		for _, v := range vals {
			if v > 11 {
				return nil, corrupt("DC Huffman table has category %d (8-bit images use 0-11)", v)
			}
		}
	}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.valptr[l] = k
		t.mincode[l] = code
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			t.maxcode[l] = code + n - 1
		}
		for range n {
			if code >= 1<<l {
				return nil, corrupt("Huffman table has more codes of length %d than fit", l)
			}
			if l <= lutBits {
				shift := lutBits - l
				for j := code << shift; j < (code+1)<<shift; j++ {
					t.lut[j] = uint16(l)<<8 | uint16(vals[k])
				}
			}
			code++
			k++
		}
		code <<= 1
	}
	if !dc {
		t.fillFast()
	}
	return t, nil
}

// fillFast fills fast from lut.
func (t *huffTable) fillFast() {
	for j, e := range t.lut {
		l, rs := uint(e>>8), byte(e)
		r, s := int32(rs>>4), uint(rs&15)
		if e == 0 || s == 0 || s > 10 || l+s > lutBits {
			continue
		}
		v := int32(j>>(lutBits-l-s)) & (1<<s - 1)
		if v < 1<<(s-1) {
			v += -1<<s + 1
		}
		t.fast[j] = v<<16 | r<<8 | int32(l+s)
	}
}

// bitReader reads the bits of one restart interval's unstuffed entropy
// data, most significant first. Past the end it reads zeros, and pos keeps
// counting, so that the caller can tell a truncated interval.
type bitReader struct {
	data []byte
	pos  int
	acc  uint64 // the next n bits, most significant first
	n    uint
}

func (b *bitReader) fill() {
	if b.pos+8 <= len(b.data) {
		// The whole bytes that fit, at once.
		nb := (64 - b.n) / 8
		v := binary.BigEndian.Uint64(b.data[b.pos:])
		v &^= 1<<(64-8*nb) - 1
		b.acc |= v >> b.n
		b.n += 8 * nb
		b.pos += int(nb)
		return
	}
	for b.n <= 56 {
		var c byte
		if b.pos < len(b.data) {
			c = b.data[b.pos]
		}
		b.pos++
		b.acc |= uint64(c) << (56 - b.n)
		b.n += 8
	}
}

// overrun reports whether more bits were consumed than the data has.
func (b *bitReader) overrun() bool { return b.pos*8-int(b.n) > len(b.data)*8 }

// decode reads one Huffman-coded symbol; the caller has filled at least 16
// bits.
func (b *bitReader) decode(t *huffTable) (byte, error) {
	if e := t.lut[b.acc>>(64-lutBits)]; e != 0 {
		l := uint(e >> 8)
		b.acc <<= l
		b.n -= l
		return byte(e), nil
	}
	code := int32(b.acc >> 48)
	for l := lutBits + 1; l <= 16; l++ {
		c := code >> (16 - l)
		if c <= t.maxcode[l] {
			b.acc <<= uint(l)
			b.n -= uint(l)
			return t.vals[t.valptr[l]+c-t.mincode[l]], nil
		}
	}
	return 0, corrupt("invalid Huffman code")
}

// receive reads s bits (s ≤ 16) as a signed value, JPEG's EXTEND.
func (b *bitReader) receive(s uint) int32 {
	if s == 0 {
		return 0
	}
	v := int32(b.acc >> (64 - s))
	b.acc <<= s
	b.n -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// decode reads the entropy-coded data that follows the scan header into
// the image's coefficients.
func (p *parser) decode() error {
	m := p.m
	intervals, end, err := unstuff(p.data[p.pos:])
	if err != nil {
		return err
	}
	p.pos += end
	total := m.mcusX * m.mcusY
	perInterval := total
	if p.restart > 0 {
		perInterval = p.restart
	}
	if want := (total + perInterval - 1) / perInterval; len(intervals) != want {
		return corrupt("%d restart intervals where %d MCUs in intervals of %d need %d", len(intervals), total, perInterval, want)
	}
	// Every block takes at least two bits (a DC and an AC code), so that
	// data too short for the frame is refused before its coefficients are
	// allocated.
	size := 0
	for _, iv := range intervals {
		size += len(iv)
	}
	m.scanBytes = end
	if 2*total*m.blocksPerMCU > 8*size+8*len(intervals) {
		return corrupt("truncated: %d bytes of entropy data for %dx%d", size, m.Width, m.Height)
	}
	// Two entries per block, and one per non-zero coefficient, at least
	// two bits each.
	if total > 1<<26 || size > 1<<28 {
		return corrupt("%dx%d with %d bytes of entropy data is too large", m.Width, m.Height, size)
	}
	coef := make([]int32, 0, 2*total*m.blocksPerMCU+2*size)
	m.mcuAt = make([]int32, total+1)
	dc := make([]*huffTable, len(m.comps))
	ac := make([]*huffTable, len(m.comps))
	for i, c := range m.comps {
		dc[i], ac[i] = p.dc[c.td], p.ac[c.ta]
	}
	mcu := 0
	for _, iv := range intervals {
		b := bitReader{data: iv}
		var pred [3]int32
		for n := 0; n < perInterval && mcu < total; n++ {
			m.mcuAt[mcu] = int32(len(coef))
			for ci, c := range m.comps {
				for range c.h * c.v {
					if coef, err = b.block(coef, dc[ci], ac[ci], &pred[ci]); err != nil {
						return fmt.Errorf("MCU %d: %w", mcu, err)
					}
				}
			}
			mcu++
		}
		if b.overrun() {
			return corrupt("truncated entropy data before MCU %d", mcu)
		}
	}
	m.coef = coef
	m.mcuAt[total] = int32(len(coef))
	return nil
}

// block decodes one block's coefficients and appends its entries (see
// Image.coef) to coef.
func (b *bitReader) block(coef []int32, dc, ac *huffTable, pred *int32) ([]int32, error) {
	b.fill()
	s, err := b.decode(dc)
	if err != nil {
		return coef, err
	}
	*pred += b.receive(uint(s))
	if *pred < -2047 || *pred > 2047 {
		return coef, corrupt("DC coefficient %d out of range", *pred)
	}
	coef = append(coef, *pred)
	for k := 1; k < 64; k++ {
		if b.n < 32 {
			b.fill()
		}
		if f := ac.fast[b.acc>>(64-lutBits)]; f != 0 {
			b.acc <<= uint(f & 0xFF)
			b.n -= uint(f & 0xFF)
			k += int(f >> 8 & 0xFF)
			if k > 63 {
				return coef, corrupt("AC run past the end of a block")
			}
			coef = append(coef, int32(k)<<16|int32(uint16(int16(f>>16))))
			continue
		}
		rs, err := b.decode(ac)
		if err != nil {
			return coef, err
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				break // end of block
			}
			k += 15
			continue
		}
		if s > 10 {
			return coef, corrupt("AC coefficient category %d (8-bit images use 1-10)", s)
		}
		k += r
		if k > 63 {
			return coef, corrupt("AC run past the end of a block")
		}
		coef = append(coef, int32(k)<<16|int32(uint16(b.receive(s))))
	}
	return append(coef, 0), nil
}

// unstuff copies the entropy-coded data at the start of data without its
// stuffed zero bytes, split at its restart markers, and returns the
// intervals and where the data ends (the marker after it).
func unstuff(data []byte) ([][]byte, int, error) {
	buf := make([]byte, 0, len(data))
	var intervals [][]byte
	start, next := 0, 0
	for i := 0; ; i++ {
		// Copy up to the next 0xFF at once.
		j := bytes.IndexByte(data[i:], 0xFF)
		if j < 0 {
			return nil, 0, corrupt("truncated: the entropy data has no end marker")
		}
		buf = append(buf, data[i:i+j]...)
		i += j
		if i+1 >= len(data) {
			return nil, 0, corrupt("truncated: the entropy data has no end marker")
		}
		switch m := data[i+1]; {
		case m == 0x00:
			buf = append(buf, 0xFF)
			i++
		case m == 0xFF:
			// A fill byte before a marker.
		case m >= 0xD0 && m <= 0xD7:
			if int(m-0xD0) != next {
				return nil, 0, corrupt("restart marker RST%d where RST%d belongs", m-0xD0, next)
			}
			next = (next + 1) % 8
			intervals = append(intervals, buf[start:len(buf):len(buf)])
			start = len(buf)
			i++
		default:
			intervals = append(intervals, buf[start:len(buf):len(buf)])
			return intervals, i, nil
		}
	}
}
