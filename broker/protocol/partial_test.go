package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeJPEG is enough of a JPEG for the format: its first two bytes.
func fakeJPEG(n int) []byte {
	b := bytes.Repeat([]byte{0xAB}, n)
	b[0], b[1] = 0xFF, 0xD8
	return b
}

// TestPartialRoundTrip proves that DecodePartial gives back what
// EncodePartial was given, that the message is PartialSize bytes, and that
// IsPartial tells it from a bare JPEG.
func TestPartialRoundTrip(t *testing.T) {
	p := Partial{Width: 1920, Height: 1080, Quality: 70, Tiles: []Tile{
		{Rect: image.Rect(0, 0, 16, 16), JPEG: fakeJPEG(300)},
		{Rect: image.Rect(1904, 1064, 1920, 1080), JPEG: fakeJPEG(2)},
		{Rect: image.Rect(64, 8, 64+512, 8+96), JPEG: fakeJPEG(70000)},
	}}
	msg, err := EncodePartial(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) != PartialSize(p.Tiles) {
		t.Errorf("message is %d bytes, PartialSize says %d", len(msg), PartialSize(p.Tiles))
	}
	if !IsPartial(msg) || IsPartial(fakeJPEG(10)) || IsPartial(nil) {
		t.Error("IsPartial does not tell a partial frame from a JPEG")
	}
	got, err := DecodePartial(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != p.Width || got.Height != p.Height || got.Quality != p.Quality || len(got.Tiles) != len(p.Tiles) {
		t.Fatalf("decoded %dx%d q%d with %d tiles, want %dx%d q%d with %d", got.Width, got.Height, got.Quality, len(got.Tiles), p.Width, p.Height, p.Quality, len(p.Tiles))
	}
	for i := range p.Tiles {
		if got.Tiles[i].Rect != p.Tiles[i].Rect || !bytes.Equal(got.Tiles[i].JPEG, p.Tiles[i].JPEG) {
			t.Errorf("tile %d: got %v (%d bytes), want %v (%d bytes)", i, got.Tiles[i].Rect, len(got.Tiles[i].JPEG), p.Tiles[i].Rect, len(p.Tiles[i].JPEG))
		}
	}
}

// TestEncodePartialRefuses proves that the broker cannot build a partial
// frame that breaks the bounds, and that the refusal names what was wrong.
func TestEncodePartialRefuses(t *testing.T) {
	ok := Tile{Rect: image.Rect(0, 0, 8, 8), JPEG: fakeJPEG(10)}
	many := make([]Tile, MaxTiles+1)
	for i := range many {
		many[i] = ok
	}
	for _, tc := range []struct {
		name string
		p    Partial
		want string
	}{
		{"no tiles", Partial{Width: 100, Height: 100}, "0 rectangles"},
		{"too many tiles", Partial{Width: 100, Height: 100, Tiles: many}, "1025 rectangles"},
		{"zero frame", Partial{Width: 0, Height: 100, Tiles: []Tile{ok}}, "frame size 0x100"},
		{"frame too large", Partial{Width: MaxFrameSide + 1, Height: 100, Tiles: []Tile{ok}}, "frame size 16385x100"},
		{"right of the frame", Partial{Width: 100, Height: 100, Tiles: []Tile{{Rect: image.Rect(96, 0, 104, 8), JPEG: fakeJPEG(10)}}}, "outside the 100x100 frame"},
		{"below the frame", Partial{Width: 100, Height: 100, Tiles: []Tile{ok, {Rect: image.Rect(0, 96, 8, 101), JPEG: fakeJPEG(10)}}}, "rectangle 1"},
		{"negative", Partial{Width: 100, Height: 100, Tiles: []Tile{{Rect: image.Rect(-8, 0, 8, 8), JPEG: fakeJPEG(10)}}}, "outside"},
		{"empty rectangle", Partial{Width: 100, Height: 100, Tiles: []Tile{{Rect: image.Rect(8, 8, 8, 16), JPEG: fakeJPEG(10)}}}, "empty"},
		{"not a JPEG", Partial{Width: 100, Height: 100, Tiles: []Tile{{Rect: image.Rect(0, 0, 8, 8), JPEG: []byte("GIF89a")}}}, "holds no JPEG"},
		{"quality over 100", Partial{Width: 100, Height: 100, Quality: 101, Tiles: []Tile{ok}}, "quality 101"},
		{"negative quality", Partial{Width: 100, Height: 100, Quality: -1, Tiles: []Tile{ok}}, "quality -1"},
		{"over the size limit", Partial{Width: 100, Height: 100, Tiles: []Tile{{Rect: image.Rect(0, 0, 8, 8), JPEG: fakeJPEG(MaxPartialBytes)}}}, "over the 8388608-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := EncodePartial(tc.p)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EncodePartial = %d bytes, %v; want an ErrBadPartial naming %q", len(msg), err, tc.want)
			}
		})
	}
}

// TestDecodePartialRefuses proves that a message a viewer must drop is
// refused: the decoder makes the viewer's checks.
func TestDecodePartialRefuses(t *testing.T) {
	good, err := EncodePartial(Partial{Width: 64, Height: 32, Tiles: []Tile{{Rect: image.Rect(16, 8, 32, 24), JPEG: fakeJPEG(20)}}})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"a JPEG", fakeJPEG(40), "no partial-frame header"},
		{"short header", good[:5], "no partial-frame header"},
		{"unknown format", edit(func(b []byte) []byte { b[1] = 9; return b }), "format 9"},
		{"no rectangles", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 0); return b[:PartialHeaderBytes] }), "0 rectangles"},
		{"more rectangles than sent", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 2); return b }), "rectangle 1: header cut short"},
		{"outside the frame", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[PartialHeaderBytes:], 50); return b }), "outside the 64x32 frame"},
		{"zero width", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[PartialHeaderBytes+4:], 0); return b }), "empty"},
		{"length past the end", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[PartialHeaderBytes+8:], 21); return b }), "21 JPEG bytes declared, 20 left"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 bytes after the last rectangle"},
		{"quality over 100", edit(func(b []byte) []byte { b[8] = 101; return b }), "quality 101"},
		{"more copies than allowed", edit(func(b []byte) []byte { b[9] = MaxCopies + 1; return b }), "17 copies"},
		{"frame of zero", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 0); return b }), "frame size 0x32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePartial(tc.msg)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodePartial = %+v, %v; want an ErrBadPartial naming %q", p, err, tc.want)
			}
		})
	}
}

// TestPartialConstantsAgree fails when the viewer's constants for the
// protocol's version and the partial-frame layout (web/static) differ from
// this package's.
func TestPartialConstantsAgree(t *testing.T) {
	for _, tc := range []struct {
		file, name string
		want       int
	}{
		{viewerJS, "PROTOCOL_VERSION", Version},
		{staticDir + "/screen.js", "PARTIAL_MAGIC", int(PartialMagic)},
		{staticDir + "/screen.js", "PARTIAL_FORMAT", int(PartialFormat)},
		{staticDir + "/screen.js", "PARTIAL_HEADER_BYTES", PartialHeaderBytes},
		{staticDir + "/screen.js", "TILE_HEADER_BYTES", TileHeaderBytes},
		{staticDir + "/screen.js", "MAX_TILES", MaxTiles},
		{staticDir + "/screen.js", "COPY_BYTES", CopyBytes},
		{staticDir + "/screen.js", "MAX_COPIES", MaxCopies},
	} {
		src, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^const ` + tc.name + ` = (0x[0-9a-fA-F]+|\d+);`).FindSubmatch(src)
		if m == nil {
			t.Errorf("%s defines no const %s", tc.file, tc.name)
			continue
		}
		got, err := strconv.ParseInt(string(m[1]), 0, 64)
		if err != nil || int(got) != tc.want {
			t.Errorf("%s: %s = %s, Go says %d", tc.file, tc.name, m[1], tc.want)
		}
	}
}

// TestPartialCopiesRoundTrip proves that copies survive EncodePartial and
// DecodePartial in order, that their count is in the header, and that a
// partial frame with copies may carry no tile.
func TestPartialCopiesRoundTrip(t *testing.T) {
	for _, p := range []Partial{
		{Width: 1280, Height: 800, Copies: []Copy{{Src: image.Rect(0, 96, 1280, 800), Dst: image.Pt(0, 0)}}, Tiles: []Tile{
			{Rect: image.Rect(0, 704, 1280, 800), JPEG: fakeJPEG(3000)},
		}},
		{Width: 64, Height: 64, Copies: []Copy{
			{Src: image.Rect(0, 0, 64, 48), Dst: image.Pt(0, 16)},
			{Src: image.Rect(16, 0, 64, 64), Dst: image.Pt(0, 0)},
		}},
	} {
		msg, err := EncodePartial(p)
		if err != nil {
			t.Fatal(err)
		}
		if msg[1] != PartialFormat || int(msg[9]) != len(p.Copies) {
			t.Errorf("format %d with %d copies, want %d with %d", msg[1], msg[9], PartialFormat, len(p.Copies))
		}
		if len(msg) != PartialSizeCopies(len(p.Copies), p.Tiles) {
			t.Errorf("message is %d bytes, PartialSizeCopies says %d", len(msg), PartialSizeCopies(len(p.Copies), p.Tiles))
		}
		got, err := DecodePartial(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Copies, p.Copies) || len(got.Tiles) != len(p.Tiles) {
			t.Errorf("decoded copies %v and %d tiles, want %v and %d", got.Copies, len(got.Tiles), p.Copies, len(p.Tiles))
		}
		for i := range p.Tiles {
			if got.Tiles[i].Rect != p.Tiles[i].Rect || !bytes.Equal(got.Tiles[i].JPEG, p.Tiles[i].JPEG) {
				t.Errorf("tile %d: got %v, want %v", i, got.Tiles[i].Rect, p.Tiles[i].Rect)
			}
		}
	}
	msg, err := EncodePartial(Partial{Width: 32, Height: 32, Tiles: []Tile{{Rect: image.Rect(0, 0, 16, 16), JPEG: fakeJPEG(4)}}})
	if err != nil {
		t.Fatal(err)
	}
	if msg[1] != PartialFormat || msg[9] != 0 {
		t.Errorf("a partial frame without copies is format %d with %d copies, want %d with 0", msg[1], msg[9], PartialFormat)
	}
}

// TestPartialCopiesRefused proves that a copy out of bounds is refused on
// both sides, with an error naming the copy.
func TestPartialCopiesRefused(t *testing.T) {
	many := make([]Copy, MaxCopies+1)
	for i := range many {
		many[i] = Copy{Src: image.Rect(0, 0, 8, 8)}
	}
	for _, tc := range []struct {
		name string
		c    []Copy
		want string
	}{
		{"source below the frame", []Copy{{Src: image.Rect(0, 16, 64, 80), Dst: image.Pt(0, 0)}}, "copy 0: source"},
		{"empty source", []Copy{{Src: image.Rect(0, 16, 64, 16), Dst: image.Pt(0, 0)}}, "copy 0: source"},
		{"destination below the frame", []Copy{{Src: image.Rect(0, 0, 64, 48), Dst: image.Pt(0, 0)}, {Src: image.Rect(0, 0, 64, 48), Dst: image.Pt(0, 32)}}, "copy 1: destination (0,32)-(64,80)"},
		{"destination right of the frame", []Copy{{Src: image.Rect(0, 0, 64, 48), Dst: image.Pt(1, 0)}}, "copy 0: destination"},
		{"too many", many, "17 copies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Partial{Width: 64, Height: 64, Copies: tc.c}
			msg, err := EncodePartial(p)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EncodePartial = %d bytes, %v; want an ErrBadPartial naming %q", len(msg), err, tc.want)
			}
			// The same message built by hand is refused by the decoder.
			raw := []byte{PartialMagic, PartialFormat, 0, 64, 0, 64, 0, 0, 0, byte(len(tc.c))}
			for _, c := range tc.c {
				for _, v := range []int{c.Src.Min.X, c.Src.Min.Y, c.Src.Dx(), c.Src.Dy(), c.Dst.X, c.Dst.Y} {
					raw = binary.BigEndian.AppendUint16(raw, uint16(v))
				}
			}
			got, err := DecodePartial(raw)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodePartial = %+v, %v; want an ErrBadPartial naming %q", got, err, tc.want)
			}
		})
	}
	good, err := EncodePartial(Partial{Width: 64, Height: 64, Copies: []Copy{{Src: image.Rect(0, 16, 64, 64)}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"copies declared, none sent", good[:PartialHeaderBytes], "copies cut short"},
		{"copy cut short", good[:len(good)-1], "copies cut short"},
		{"no tile and no copy", func() []byte { b := bytes.Clone(good[:PartialHeaderBytes]); b[9] = 0; return b }(), "0 rectangles, want 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePartial(tc.msg)
			if !errors.Is(err, ErrBadPartial) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodePartial = %+v, %v; want an ErrBadPartial naming %q", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodePartial proves that DecodePartial never panics and that what
// it accepts is within the bounds and encodes back to the same message.
func FuzzDecodePartial(f *testing.F) {
	for _, p := range []Partial{
		{Width: 64, Height: 32, Tiles: []Tile{{Rect: image.Rect(16, 8, 32, 24), JPEG: fakeJPEG(20)}}},
		{Width: 64, Height: 64, Copies: []Copy{{Src: image.Rect(0, 16, 64, 64)}}, Tiles: []Tile{{Rect: image.Rect(0, 48, 64, 64), JPEG: fakeJPEG(9)}}},
	} {
		msg, err := EncodePartial(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := DecodePartial(msg)
		if err != nil {
			return
		}
		frame := image.Rect(0, 0, p.Width, p.Height)
		for i, c := range p.Copies {
			if c.Src.Empty() || !c.Src.In(frame) || !c.DstRect().In(frame) {
				t.Fatalf("copy %d %+v accepted outside the %v frame", i, c, frame)
			}
		}
		for i, tl := range p.Tiles {
			if tl.Rect.Empty() || !tl.Rect.In(frame) {
				t.Fatalf("tile %d %v accepted outside the %v frame", i, tl.Rect, frame)
			}
		}
		again, err := EncodePartial(p)
		if err != nil {
			t.Fatalf("accepted message does not encode again: %v", err)
		}
		if !bytes.Equal(again, msg) {
			t.Fatalf("accepted message encodes to other bytes")
		}
	})
}
