package tiles

import (
	"errors"
	"fmt"
	"image"
)

// MaxDimension is the largest width or height that Parse accepts.
const MaxDimension = 16384

// ErrUnsupported is wrapped by Parse's errors for a JPEG that is valid but
// of a kind this package does not handle (progressive, arithmetic-coded,
// 12-bit, multi-scan, unusual sampling).
var ErrUnsupported = errors.New("unsupported JPEG")

// ErrCorrupt is wrapped by Parse's errors for data that is not a well-formed
// JPEG: truncated, a bad marker, a bad table, entropy data that does not
// decode.
var ErrCorrupt = errors.New("corrupt JPEG")

// component is one colour component of the frame.
type component struct {
	id     byte
	h, v   int // sampling factors
	tq     int // quantization table
	td, ta int // DC and AC Huffman tables of the scan
}

// Image is a baseline JPEG parsed to its quantized DCT coefficients (no
// IDCT). Its coefficients are kept MCU by MCU, in the scan's order, and
// sparsely (a screen is mostly flat blocks with few non-zero
// coefficients), so that an MCU of one image can be compared with and
// copied from the same MCU of another. An Image does not change after
// Parse: Diff and Crop may use it from several goroutines at once.
type Image struct {
	// Width and Height are the image's size in pixels.
	Width, Height int

	comps []component
	// mcuW and mcuH are an MCU's size in pixels; mcusX and mcusY the number
	// of MCUs across and down, the right and bottom ones possibly cut by
	// the image's edge.
	mcuW, mcuH   int
	mcusX, mcusY int
	// blocksPerMCU is the number of 8x8 blocks in an MCU, component after
	// component, each component's h×v blocks in raster order.
	blocksPerMCU int
	// qt holds the quantization tables the components use, in zig-zag
	// order, as DQT carries them.
	qt [4][64]byte
	// coef holds the quantized coefficients, MCUs in raster order,
	// blocksPerMCU blocks per MCU. A block is its DC coefficient, then
	// each non-zero AC coefficient as its zig-zag index k<<16 | its value
	// as uint16, then a 0 (no AC entry is 0, since k ≥ 1). The same
	// coefficients have the same entries, so that equal MCUs are equal
	// spans.
	coef []int32
	// mcuAt[i] is where MCU i starts in coef; mcuAt[len] is len(coef).
	mcuAt []int32
	// scanBytes is the length of the frame's entropy-coded data, from
	// which Diff weighs a rectangle's overhead.
	scanBytes int
}

// Bounds returns the image's rectangle, (0,0)-(Width,Height).
func (m *Image) Bounds() image.Rectangle { return image.Rect(0, 0, m.Width, m.Height) }

// MCUSize returns the width and height of the image's MCU in pixels: the
// grid that Diff's rectangles and Crop's arguments are aligned to (16x16
// for Chromium's 4:2:0 frames).
func (m *Image) MCUSize() (w, h int) { return m.mcuW, m.mcuH }

// mcu returns the coefficient entries of the MCU at column x, row y.
func (m *Image) mcu(x, y int) []int32 {
	i := y*m.mcusX + x
	return m.coef[m.mcuAt[i]:m.mcuAt[i+1]]
}

// parser walks a JPEG's markers.
type parser struct {
	m       *Image
	data    []byte
	pos     int
	dc, ac  [4]*huffTable
	qtSet   [4]bool
	sof     bool
	restart int
}

// Parse parses a baseline (SOF0), Huffman-coded, 8-bit JPEG with one
// component, or three components in one interleaved scan with chroma
// sampled 1x1 and luma 1x1, 2x1, 1x2 or 2x2 — what Chromium's screencast
// makes — to its quantized coefficients. Anything else is refused with an
// error that names it and wraps ErrUnsupported; malformed data gets an
// error that wraps ErrCorrupt.
func Parse(jpeg []byte) (*Image, error) {
	p := &parser{m: &Image{}, data: jpeg}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.m, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// sofNames names the frame types that Parse refuses.
var sofNames = map[byte]string{
	0xC1: "extended sequential (SOF1)",
	0xC2: "progressive (SOF2)",
	0xC3: "lossless (SOF3)",
	0xC5: "differential sequential (SOF5)",
	0xC6: "differential progressive (SOF6)",
	0xC7: "differential lossless (SOF7)",
	0xC9: "arithmetic-coded sequential (SOF9)",
	0xCA: "arithmetic-coded progressive (SOF10)",
	0xCB: "arithmetic-coded lossless (SOF11)",
	0xCD: "arithmetic-coded differential sequential (SOF13)",
	0xCE: "arithmetic-coded differential progressive (SOF14)",
	0xCF: "arithmetic-coded differential lossless (SOF15)",
}

func (p *parser) parse() error {
	if len(p.data) < 2 || p.data[0] != 0xFF || p.data[1] != 0xD8 {
		return corrupt("no SOI marker at the start")
	}
	p.pos = 2
	for {
		marker, seg, err := p.segment()
		if err != nil {
			return err
		}
		switch {
		case marker == 0xC0:
			err = p.frame(seg)
		case sofNames[marker] != "":
			return unsupported("%s frame", sofNames[marker])
		case marker == 0xC4:
			err = p.huffman(seg)
		case marker == 0xCC:
			return unsupported("arithmetic coding conditioning (DAC)")
		case marker == 0xDB:
			err = p.quant(seg)
		case marker == 0xDD:
			if len(seg) != 2 {
				return corrupt("DRI segment of %d bytes", len(seg))
			}
			p.restart = int(seg[0])<<8 | int(seg[1])
		case marker == 0xDA:
			if err := p.scan(seg); err != nil {
				return err
			}
			return p.end()
		case marker == 0xD9:
			return corrupt("EOI before any scan")
		case marker == 0xEE:
			err = p.adobe(seg)
		case marker >= 0xE0 && marker <= 0xEF, marker == 0xFE:
			// APPn and COM carry nothing the coefficients need.
		default:
			return unsupported("marker 0xFF%02X", marker)
		}
		if err != nil {
			return err
		}
	}
}

// segment reads the next marker and, for a marker with a length, its
// payload.
func (p *parser) segment() (byte, []byte, error) {
	if p.pos+2 > len(p.data) {
		return 0, nil, corrupt("truncated: no marker at byte %d", p.pos)
	}
	if p.data[p.pos] != 0xFF {
		return 0, nil, corrupt("byte 0x%02X at %d where a marker belongs", p.data[p.pos], p.pos)
	}
	for p.pos < len(p.data) && p.data[p.pos] == 0xFF {
		p.pos++ // fill bytes
	}
	if p.pos >= len(p.data) {
		return 0, nil, corrupt("truncated in a marker")
	}
	marker := p.data[p.pos]
	p.pos++
	if marker == 0xD9 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) {
		if marker != 0xD9 {
			return 0, nil, corrupt("stray marker 0xFF%02X at byte %d", marker, p.pos-2)
		}
		return marker, nil, nil
	}
	if marker == 0x00 || marker == 0xD8 {
		return 0, nil, corrupt("stray marker 0xFF%02X at byte %d", marker, p.pos-2)
	}
	if p.pos+2 > len(p.data) {
		return 0, nil, corrupt("truncated in the length of marker 0xFF%02X", marker)
	}
	n := int(p.data[p.pos])<<8 | int(p.data[p.pos+1])
	if n < 2 || p.pos+n > len(p.data) {
		return 0, nil, corrupt("marker 0xFF%02X of length %d overruns the data", marker, n)
	}
	seg := p.data[p.pos+2 : p.pos+n]
	p.pos += n
	return marker, seg, nil
}

// adobe refuses an Adobe APP14 segment that says the components are not
// YCbCr (RGB or CMYK), since a crop without it would change colour.
func (p *parser) adobe(seg []byte) error {
	if len(seg) >= 12 && string(seg[:5]) == "Adobe" && seg[11] != 1 {
		return unsupported("Adobe colour transform %d (not YCbCr)", seg[11])
	}
	return nil
}

func (p *parser) quant(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		if pq != 0 {
			return unsupported("16-bit quantization table %d", tq)
		}
		if tq > 3 {
			return corrupt("quantization table id %d", tq)
		}
		if len(seg) < 65 {
			return corrupt("truncated quantization table %d", tq)
		}
		copy(p.m.qt[tq][:], seg[1:65])
		for _, q := range p.m.qt[tq] {
			if q == 0 {
				return corrupt("quantization table %d has a zero entry", tq)
			}
		}
		p.qtSet[tq] = true
		seg = seg[65:]
	}
	return nil
}

func (p *parser) huffman(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return corrupt("truncated Huffman table")
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 1 {
			// Baseline allows two tables of each class.
			if tc > 1 || th > 3 {
				return corrupt("Huffman table class %d id %d", tc, th)
			}
			return unsupported("Huffman table id %d (baseline has 0 and 1)", th)
		}
		var counts [16]int
		n := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			n += counts[i]
		}
		if len(seg) < 17+n {
			return corrupt("truncated Huffman table")
		}
		t, err := newHuffTable(counts, seg[17:17+n], tc == 0)
		if err != nil {
			return err
		}
		if tc == 0 {
			p.dc[th] = t
		} else {
			p.ac[th] = t
		}
		seg = seg[17+n:]
	}
	return nil
}

func (p *parser) frame(seg []byte) error {
	if p.sof {
		return corrupt("a second frame header")
	}
	p.sof = true
	if len(seg) < 6 {
		return corrupt("truncated frame header")
	}
	if seg[0] != 8 {
		return unsupported("%d-bit samples (only 8-bit)", seg[0])
	}
	m := p.m
	m.Height = int(seg[1])<<8 | int(seg[2])
	m.Width = int(seg[3])<<8 | int(seg[4])
	if m.Height == 0 {
		return unsupported("height 0 (set by a DNL marker)")
	}
	if m.Width == 0 {
		return corrupt("width 0")
	}
	if m.Width > MaxDimension || m.Height > MaxDimension {
		return unsupported("size %dx%d (at most %d on a side)", m.Width, m.Height, MaxDimension)
	}
	n := int(seg[5])
	if len(seg) != 6+3*n {
		return corrupt("frame header of %d bytes for %d components", len(seg), n)
	}
	if n != 1 && n != 3 {
		return unsupported("%d components (only 1 or 3)", n)
	}
	m.comps = make([]component, n)
	for i := range m.comps {
		c := &m.comps[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		if c.tq > 3 {
			return corrupt("component %d uses quantization table %d", c.id, c.tq)
		}
		for j := range i {
			if m.comps[j].id == c.id {
				return corrupt("component id %d twice", c.id)
			}
		}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return corrupt("component %d sampled %dx%d", c.id, c.h, c.v)
		}
	}
	if n == 1 {
		// A lone component is coded block by block whatever its factors.
		m.comps[0].h, m.comps[0].v = 1, 1
	} else {
		y, cb, cr := m.comps[0], m.comps[1], m.comps[2]
		if cb.h != 1 || cb.v != 1 || cr.h != 1 || cr.v != 1 || y.h > 2 || y.v > 2 {
			return unsupported("sampling %dx%d,%dx%d,%dx%d (luma 1 or 2 by 1 or 2, chroma 1x1)", y.h, y.v, cb.h, cb.v, cr.h, cr.v)
		}
	}
	m.mcuW, m.mcuH = 8*m.comps[0].h, 8*m.comps[0].v
	m.mcusX = (m.Width + m.mcuW - 1) / m.mcuW
	m.mcusY = (m.Height + m.mcuH - 1) / m.mcuH
	for _, c := range m.comps {
		m.blocksPerMCU += c.h * c.v
	}
	return nil
}

// scan checks the scan header and decodes the entropy-coded data that
// follows it.
func (p *parser) scan(seg []byte) error {
	m := p.m
	if !p.sof {
		return corrupt("scan before the frame header")
	}
	if len(seg) < 1 || len(seg) != 4+2*int(seg[0]) {
		return corrupt("scan header of %d bytes", len(seg))
	}
	ns := int(seg[0])
	if ns != len(m.comps) {
		return unsupported("a scan of %d of the %d components (only one interleaved scan)", ns, len(m.comps))
	}
	for i := range ns {
		id, tables := seg[1+2*i], seg[2+2*i]
		c := &m.comps[i]
		if id != c.id {
			return unsupported("scan component order %d where the frame has %d", id, c.id)
		}
		c.td, c.ta = int(tables>>4), int(tables&15)
		if c.td > 1 || c.ta > 1 {
			return corrupt("component %d uses Huffman tables %d/%d", c.id, c.td, c.ta)
		}
		if p.dc[c.td] == nil || p.ac[c.ta] == nil {
			return corrupt("component %d uses an undefined Huffman table", c.id)
		}
		if !p.qtSet[c.tq] {
			return corrupt("component %d uses undefined quantization table %d", c.id, c.tq)
		}
	}
	ss, se, ah, al := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]>>4, seg[3+2*ns]&15
	if ss != 0 || se != 63 || ah != 0 || al != 0 {
		return corrupt("baseline scan with spectral selection %d-%d, approximation %d/%d", ss, se, ah, al)
	}
	return p.decode()
}

// end checks what follows the scan: EOI, or a second scan that this package
// does not handle. Bytes after EOI are ignored.
func (p *parser) end() error {
	marker, _, err := p.segment()
	if err != nil {
		return err
	}
	switch marker {
	case 0xD9:
		return nil
	case 0xDA:
		return unsupported("more than one scan")
	default:
		return unsupported("marker 0xFF%02X after the scan", marker)
	}
}
