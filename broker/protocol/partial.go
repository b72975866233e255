package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
)

// A partial frame is a binary message that updates rectangles of the frame
// a viewer shows (docs/protocol.md, "Partial frames"). A full frame is a
// bare JPEG, which starts with 0xFF 0xD8; a partial frame starts with
// PartialMagic, which no JPEG starts with, so the first byte tells them
// apart. All integers are big-endian:
//
//	offset size
//	0      1    PartialMagic (0x50, "P")
//	1      1    PartialFormat (2)
//	2      2    width of the frame the rectangles apply to, device pixels
//	4      2    height of that frame
//	6      2    number of rectangles, 0 to MaxTiles (at least 1 without
//	            copies)
//	8      1    quality of the frame, 0–100, for compact tiles (tables.go;
//	            0: every tile carries its own tables)
//	9      1    number of copies, 0 to MaxCopies
//	10          that many copies, each:
//	       2    source x, 2 y, 2 w, 2 h, 2 destination x, 2 y (device
//	            pixels; source and destination inside the frame, w and
//	            h ≥ 1): the viewer copies that rectangle of its canvas
//	            to the destination, copies in order, before the tiles
//	then        that many rectangles, each:
//	       2    x, 2 y, 2 w, 2 h (device pixels, inside the frame, w and h ≥ 1)
//	       4    length of the JPEG that follows
//	       n    a JPEG of exactly w×h pixels, drawn at (x, y); it may
//	            leave out its DQT or DHT segment (compact tiles, tables.go)
//
// The message ends with the last rectangle's JPEG; the whole message is at
// most MaxPartialBytes. Format 1 (protocol version 2, never sent by a
// released broker) had neither quality nor copies.
const (
	// PartialMagic is a partial frame's first byte.
	PartialMagic byte = 0x50
	// PartialFormat is the layout's version, its second byte.
	PartialFormat byte = 2
	// PartialHeaderBytes is the size of the message's header.
	PartialHeaderBytes = 10
	// TileHeaderBytes is the size of a rectangle's header.
	TileHeaderBytes = 12
	// MaxTiles bounds the rectangles of one message.
	MaxTiles = 1024
	// CopyBytes is the size of one copy.
	CopyBytes = 12
	// MaxCopies bounds the copies of one message.
	MaxCopies = 16
	// MaxPartialBytes bounds a whole partial frame.
	MaxPartialBytes = 8 << 20
	// MaxFrameSide bounds a frame's width and height: the largest
	// viewport (4096 CSS pixels) at the largest pixel ratio (4).
	MaxFrameSide = 16384
	// PartialFramesVersion is the first protocol version whose viewers
	// take partial frames of PartialFormat; an older viewer gets full
	// frames only.
	PartialFramesVersion = 3
	// CopiesVersion is the first protocol version whose viewers take
	// copies: every viewer that takes partial frames.
	CopiesVersion = PartialFramesVersion
)

// Tile is one rectangle of a partial frame: a JPEG of exactly Rect's size,
// to draw at Rect's position.
type Tile struct {
	Rect image.Rectangle
	JPEG []byte
}

// Copy moves pixels the viewer already shows: the rectangle Src of its
// canvas is drawn with its top left at Dst (a scroll: the page's content
// moved by Dst - Src.Min).
type Copy struct {
	Src image.Rectangle
	Dst image.Point
}

// DstRect is the rectangle the copy draws.
func (c Copy) DstRect() image.Rectangle { return c.Src.Sub(c.Src.Min).Add(c.Dst) }

// Partial is a partial frame: copies to make, in order, then tiles to
// draw, in order, on a frame of Width×Height device pixels. Quality is the
// frame's JPEG quality, which a compact tile without quantization tables
// needs (0 when every tile has its own).
type Partial struct {
	Width, Height int
	Quality       int
	Copies        []Copy
	Tiles         []Tile
}

// ErrBadPartial is wrapped by every refusal of EncodePartial and
// DecodePartial.
var ErrBadPartial = errors.New("bad partial frame")

func badPartial(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPartial, fmt.Sprintf(format, args...))
}

// PartialSize is the size EncodePartial's message for tiles (and no
// copies) has.
func PartialSize(tiles []Tile) int {
	return PartialSizeCopies(0, tiles)
}

// PartialSizeCopies is the size EncodePartial's message for copies copies
// and tiles has.
func PartialSizeCopies(copies int, tiles []Tile) int {
	n := PartialHeaderBytes + copies*CopyBytes
	for _, t := range tiles {
		n += TileHeaderBytes + len(t.JPEG)
	}
	return n
}

// check refuses a partial frame that breaks the bounds: a frame size out
// of range, too many copies, no tiles (without copies) or too many, a
// copy whose source or destination is empty or outside the frame, a
// rectangle empty or outside the frame, a tile that is not a JPEG, or a
// message over MaxPartialBytes.
func (p Partial) check() error {
	if p.Width < 1 || p.Height < 1 || p.Width > MaxFrameSide || p.Height > MaxFrameSide {
		return badPartial("frame size %dx%d out of range 1–%d", p.Width, p.Height, MaxFrameSide)
	}
	if len(p.Copies) > MaxCopies {
		return badPartial("%d copies, want at most %d", len(p.Copies), MaxCopies)
	}
	minTiles := 1
	if len(p.Copies) > 0 {
		minTiles = 0
	}
	if len(p.Tiles) < minTiles || len(p.Tiles) > MaxTiles {
		return badPartial("%d rectangles, want %d–%d", len(p.Tiles), minTiles, MaxTiles)
	}
	if p.Quality < 0 || p.Quality > 100 {
		return badPartial("quality %d out of range 0–100", p.Quality)
	}
	frame := image.Rect(0, 0, p.Width, p.Height)
	for i, c := range p.Copies {
		if c.Src.Empty() || !c.Src.In(frame) {
			return badPartial("copy %d: source %v is empty or outside the %dx%d frame", i, c.Src, p.Width, p.Height)
		}
		if d := c.DstRect(); !d.In(frame) {
			return badPartial("copy %d: destination %v is outside the %dx%d frame", i, d, p.Width, p.Height)
		}
	}
	for i, t := range p.Tiles {
		if t.Rect.Empty() || !t.Rect.In(frame) {
			return badPartial("rectangle %d %v is empty or outside the %dx%d frame", i, t.Rect, p.Width, p.Height)
		}
		// Only the start is checked: the viewer's decoder judges the
		// rest, and CompleteJPEG a compact tile's header.
		if len(t.JPEG) < 2 || t.JPEG[0] != 0xFF || t.JPEG[1] != 0xD8 {
			return badPartial("rectangle %d holds no JPEG", i)
		}
	}
	if n := PartialSizeCopies(len(p.Copies), p.Tiles); n > MaxPartialBytes {
		return badPartial("%d bytes, over the %d-byte limit", n, MaxPartialBytes)
	}
	return nil
}

// EncodePartial returns p as the binary message a viewer receives. It
// refuses, with an error wrapping ErrBadPartial, a partial frame that breaks
// the bounds: the broker never sends a rectangle outside the frame or a
// message over MaxPartialBytes.
func EncodePartial(p Partial) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	out := make([]byte, PartialHeaderBytes, PartialSizeCopies(len(p.Copies), p.Tiles))
	out[0], out[1] = PartialMagic, PartialFormat
	binary.BigEndian.PutUint16(out[2:], uint16(p.Width))
	binary.BigEndian.PutUint16(out[4:], uint16(p.Height))
	binary.BigEndian.PutUint16(out[6:], uint16(len(p.Tiles)))
	out[8], out[9] = byte(p.Quality), byte(len(p.Copies))
	for _, c := range p.Copies {
		for _, v := range [...]int{c.Src.Min.X, c.Src.Min.Y, c.Src.Dx(), c.Src.Dy(), c.Dst.X, c.Dst.Y} {
			out = binary.BigEndian.AppendUint16(out, uint16(v))
		}
	}
	for _, t := range p.Tiles {
		r := t.Rect
		out = binary.BigEndian.AppendUint16(out, uint16(r.Min.X))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Min.Y))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Dx()))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Dy()))
		out = binary.BigEndian.AppendUint32(out, uint32(len(t.JPEG)))
		out = append(out, t.JPEG...)
	}
	return out, nil
}

// IsPartial reports whether a binary message is a partial frame (else it
// is a full frame, a bare JPEG).
func IsPartial(msg []byte) bool {
	return len(msg) > 0 && msg[0] == PartialMagic
}

// DecodePartial parses a partial frame with the checks the viewer makes
// (web/static/screen.js): the magic and format, every copy's source and
// destination inside the declared frame, every rectangle inside it, every
// length inside the message, and nothing after the last rectangle. The
// tiles' JPEGs share msg's memory and may be compact (CompleteJPEG puts
// their tables back).
func DecodePartial(msg []byte) (Partial, error) {
	if len(msg) > MaxPartialBytes {
		return Partial{}, badPartial("%d bytes, over the %d-byte limit", len(msg), MaxPartialBytes)
	}
	if len(msg) < PartialHeaderBytes || msg[0] != PartialMagic {
		return Partial{}, badPartial("no partial-frame header")
	}
	if msg[1] != PartialFormat {
		return Partial{}, badPartial("format %d, want %d", msg[1], PartialFormat)
	}
	p := Partial{
		Width:   int(binary.BigEndian.Uint16(msg[2:])),
		Height:  int(binary.BigEndian.Uint16(msg[4:])),
		Quality: int(msg[8]),
	}
	n := int(binary.BigEndian.Uint16(msg[6:]))
	rest := msg[PartialHeaderBytes:]
	minTiles := 1
	if nc := int(msg[9]); nc > 0 {
		minTiles = 0
		if nc > MaxCopies {
			return Partial{}, badPartial("%d copies, want at most %d", nc, MaxCopies)
		}
		if len(rest) < nc*CopyBytes {
			return Partial{}, badPartial("copies cut short: %d declared, %d bytes left", nc, len(rest))
		}
		p.Copies = make([]Copy, nc)
		for i := range p.Copies {
			var v [6]int
			for j := range v {
				v[j] = int(binary.BigEndian.Uint16(rest[2*j:]))
			}
			p.Copies[i] = Copy{Src: image.Rect(v[0], v[1], v[0]+v[2], v[1]+v[3]), Dst: image.Pt(v[4], v[5])}
			rest = rest[CopyBytes:]
		}
	}
	if n < minTiles || n > MaxTiles {
		return Partial{}, badPartial("%d rectangles, want %d–%d", n, minTiles, MaxTiles)
	}
	p.Tiles = make([]Tile, 0, n)
	for i := range n {
		if len(rest) < TileHeaderBytes {
			return Partial{}, badPartial("rectangle %d: header cut short", i)
		}
		x, y := int(binary.BigEndian.Uint16(rest)), int(binary.BigEndian.Uint16(rest[2:]))
		w, h := int(binary.BigEndian.Uint16(rest[4:])), int(binary.BigEndian.Uint16(rest[6:]))
		size := uint64(binary.BigEndian.Uint32(rest[8:]))
		rest = rest[TileHeaderBytes:]
		if size > uint64(len(rest)) {
			return Partial{}, badPartial("rectangle %d: %d JPEG bytes declared, %d left", i, size, len(rest))
		}
		p.Tiles = append(p.Tiles, Tile{Rect: image.Rect(x, y, x+w, y+h), JPEG: rest[:size:size]})
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return Partial{}, badPartial("%d bytes after the last rectangle", len(rest))
	}
	if err := p.check(); err != nil {
		return Partial{}, err
	}
	return p, nil
}
