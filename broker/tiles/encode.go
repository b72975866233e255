package tiles

import "math/bits"

// token is one Huffman-coded symbol of a crop's scan with its extra bits:
// symbol in bits 0-7, table (0-1 DC, 2-3 AC) in bits 8-9, extra bits from
// bit 12; the number of extra bits is the symbol's low nibble.
type token uint32

func newToken(table int, sym byte, extra uint32) token {
	return token(uint32(sym) | uint32(table)<<8 | extra<<12)
}

// category returns JPEG's magnitude category of v and its extra bits.
func category(v int32) (uint32, uint32) {
	a := v
	if a < 0 {
		a = -a
		v--
	}
	s := uint32(bits.Len32(uint32(a)))
	return s, uint32(v) & (1<<s - 1)
}

// huffCode is an encoder's table: a code and its length per symbol.
type huffCode struct {
	code [256]uint16
	size [256]uint8
	// counts and vals are the table as DHT carries it.
	counts [16]byte
	vals   []byte
}

// optimalCode builds the length-limited optimal Huffman code for the
// symbol frequencies freq, as libjpeg's jpeg_gen_optimal_table does
// (ITU T.81 annex K.2), reserving the all-ones code.
func optimalCode(freq *[256]int) *huffCode {
	var f [257]int
	copy(f[:], freq[:])
	f[256] = 1 // the reserved code point keeps every code from being all ones
	var codesize [257]int
	var others [257]int
	for i := range others {
		others[i] = -1
	}
	for {
		c1, c2 := -1, -1
		v := int(^uint(0) >> 1)
		for i, x := range f {
			if x != 0 && x <= v {
				v, c1 = x, i
			}
		}
		v = int(^uint(0) >> 1)
		for i, x := range f {
			if x != 0 && x <= v && i != c1 {
				v, c2 = x, i
			}
		}
		if c2 < 0 {
			break
		}
		f[c1] += f[c2]
		f[c2] = 0
		codesize[c1]++
		for others[c1] >= 0 {
			c1 = others[c1]
			codesize[c1]++
		}
		others[c1] = c2
		codesize[c2]++
		for others[c2] >= 0 {
			c2 = others[c2]
			codesize[c2]++
		}
	}
	var nbits [33]int
	for _, s := range codesize {
		if s > 0 {
			nbits[s]++
		}
	}
	for i := 32; i > 16; i-- {
		for nbits[i] > 0 {
			j := i - 2
			for nbits[j] == 0 {
				j--
			}
			nbits[i] -= 2
			nbits[i-1]++
			nbits[j+1] += 2
			nbits[j]--
		}
	}
	i := 16
	for nbits[i] == 0 {
		i--
	}
	nbits[i]-- // drop the reserved code
	h := &huffCode{}
	for l := 1; l <= 16; l++ {
		h.counts[l-1] = byte(nbits[l])
	}
	for l := 1; l <= 32; l++ {
		for s := range 256 {
			if codesize[s] == l {
				h.vals = append(h.vals, byte(s))
			}
		}
	}
	h.assign()
	return h
}

// assign gives every symbol of h its canonical code, in the order DHT
// lists the symbols (counts and vals set).
func (h *huffCode) assign() {
	code, k := uint16(0), 0
	for l := 1; l <= 16; l++ {
		for range h.counts[l-1] {
			h.code[h.vals[k]] = code
			h.size[h.vals[k]] = uint8(l)
			code++
			k++
		}
		code <<= 1
	}
}

// bitWriter writes Huffman-coded bits with JPEG's byte stuffing.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(code uint32, size uint) {
	w.acc = w.acc<<size | uint64(code)
	w.n += size
	for w.n >= 8 {
		c := byte(w.acc >> (w.n - 8))
		w.out = append(w.out, c)
		if c == 0xFF {
			w.out = append(w.out, 0)
		}
		w.n -= 8
	}
}

// flush pads the last byte with one bits.
func (w *bitWriter) flush() {
	if w.n > 0 {
		w.put(1<<(8-w.n)-1, 8-w.n)
	}
}
