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
//	6      2    number of rectangles, 1 to MaxTiles
//	8      1    quality of the frame, 0–100, for compact tiles (tables.go;
//	            0: every tile carries its own quantization tables)
//	9      1    number of copies, 0 (reserved for scroll copies)
//	10          that many rectangles, each:
//	       2    x, 2 y, 2 w, 2 h (device pixels, inside the frame, w and h ≥ 1)
//	       4    length of the JPEG that follows
//	       n    a JPEG of exactly w×h pixels, drawn at (x, y); it may
//	            leave out its DQT or DHT segment (compact tiles, tables.go)
//
// The message ends with the last rectangle's JPEG; the whole message is at
// most MaxPartialBytes.
const (
	// PartialMagic is a partial frame's first byte.
	PartialMagic byte = 0x50
	// PartialFormat is the layout's version, its second byte. Format 1
	// (protocol version 2) had no quality and no compact tiles.
	PartialFormat byte = 2
	// PartialHeaderBytes is the size of the message's header.
	PartialHeaderBytes = 10
	// TileHeaderBytes is the size of a rectangle's header.
	TileHeaderBytes = 12
	// MaxTiles bounds the rectangles of one message.
	MaxTiles = 1024
	// MaxPartialBytes bounds a whole partial frame.
	MaxPartialBytes = 8 << 20
	// MaxFrameSide bounds a frame's width and height: the largest
	// viewport (4096 CSS pixels) at the largest pixel ratio (4).
	MaxFrameSide = 16384
	// PartialFramesVersion is the first protocol version whose viewers
	// take partial frames of PartialFormat; an older viewer gets full
	// frames only.
	PartialFramesVersion = 3
)

// Tile is one rectangle of a partial frame: a JPEG of exactly Rect's size,
// to draw at Rect's position.
type Tile struct {
	Rect image.Rectangle
	JPEG []byte
}

// Partial is a partial frame: tiles to draw, in order, on a frame of
// Width×Height device pixels. Quality is the frame's JPEG quality, which
// a compact tile without quantization tables needs (0 when every tile has
// its own).
type Partial struct {
	Width, Height int
	Quality       int
	Tiles         []Tile
}

// ErrBadPartial is wrapped by every refusal of EncodePartial and
// DecodePartial.
var ErrBadPartial = errors.New("bad partial frame")

func badPartial(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPartial, fmt.Sprintf(format, args...))
}

// PartialSize is the size EncodePartial's message for tiles has.
func PartialSize(tiles []Tile) int {
	n := PartialHeaderBytes
	for _, t := range tiles {
		n += TileHeaderBytes + len(t.JPEG)
	}
	return n
}

// check refuses a partial frame that breaks the bounds: a frame size out
// of range, no tiles or too many, a rectangle empty or outside the frame,
// a tile that is not a JPEG, or a message over MaxPartialBytes.
func (p Partial) check() error {
	if p.Width < 1 || p.Height < 1 || p.Width > MaxFrameSide || p.Height > MaxFrameSide {
		return badPartial("frame size %dx%d out of range 1–%d", p.Width, p.Height, MaxFrameSide)
	}
	if len(p.Tiles) == 0 || len(p.Tiles) > MaxTiles {
		return badPartial("%d rectangles, want 1–%d", len(p.Tiles), MaxTiles)
	}
	if p.Quality < 0 || p.Quality > 100 {
		return badPartial("quality %d out of range 0–100", p.Quality)
	}
	frame := image.Rect(0, 0, p.Width, p.Height)
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
	if n := PartialSize(p.Tiles); n > MaxPartialBytes {
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
	out := make([]byte, PartialHeaderBytes, PartialSize(p.Tiles))
	out[0], out[1] = PartialMagic, PartialFormat
	binary.BigEndian.PutUint16(out[2:], uint16(p.Width))
	binary.BigEndian.PutUint16(out[4:], uint16(p.Height))
	binary.BigEndian.PutUint16(out[6:], uint16(len(p.Tiles)))
	out[8] = byte(p.Quality)
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
// (web/static/screen.js): the magic and format, every rectangle inside the
// declared frame, every length inside the message, and nothing after the
// last rectangle. The tiles' JPEGs share msg's memory and may be compact
// (CompleteJPEG puts their tables back).
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
	if msg[9] != 0 {
		return Partial{}, badPartial("%d copies, want 0", msg[9])
	}
	n := int(binary.BigEndian.Uint16(msg[6:]))
	if n == 0 || n > MaxTiles {
		return Partial{}, badPartial("%d rectangles, want 1–%d", n, MaxTiles)
	}
	rest := msg[PartialHeaderBytes:]
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
