package protocol

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// segments returns a JPEG's header segments before its scan, by marker
// code, payloads without their length.
func segments(t *testing.T, b []byte) map[byte][][]byte {
	t.Helper()
	out := map[byte][][]byte{}
	for i := 2; ; {
		if i+4 > len(b) || b[i] != 0xFF {
			t.Fatalf("malformed JPEG header at %d", i)
		}
		code := b[i+1]
		if code == 0xDA {
			return out
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		out[code] = append(out[code], b[i+4:i+2+n])
		i += 2 + n
	}
}

// testPicture is a small colourful picture, so that both chroma planes
// are used.
func testPicture() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 48, 32))
	for y := range 32 {
		for x := range 48 {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 5), uint8(y * 8), uint8((x * y) % 256), 255})
		}
	}
	return img
}

// TestStandardTablesAreImageJPEGs proves the standard tables against
// image/jpeg's encoder, which writes the same Annex K tables, scaled the
// same way: its DQT at every quality and its DHT.
func TestStandardTablesAreImageJPEGs(t *testing.T) {
	img := testPicture()
	for q := 1; q <= 100; q++ {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		seg := segments(t, b.Bytes())
		var dqt []byte
		for _, s := range seg[0xDB] {
			dqt = append(dqt, s...)
		}
		if want := StandardDQT(q)[4:]; !bytes.Equal(dqt, want) {
			t.Fatalf("quality %d: image/jpeg's DQT differs from StandardDQT", q)
		}
		if q != 70 {
			continue
		}
		// image/jpeg lists the tables in another order: compare each.
		got := map[byte][]byte{}
		for _, s := range seg[0xC4] {
			for len(s) > 0 {
				n := 17
				for _, c := range s[1:17] {
					n += int(c)
				}
				got[s[0]] = s[:n]
				s = s[n:]
			}
		}
		for _, h := range StandardHuffman {
			want := append(append([]byte{h.Class<<4 | h.ID}, h.Counts[:]...), h.Symbols...)
			if !bytes.Equal(got[h.Class<<4|h.ID], want) {
				t.Errorf("Huffman table class %d id %d differs from image/jpeg's", h.Class, h.ID)
			}
		}
	}
}

// compact removes a JPEG's DQT and/or DHT segments.
func compact(t *testing.T, b []byte, dropDQT, dropDHT bool) []byte {
	t.Helper()
	out := []byte{0xFF, 0xD8}
	for i := 2; ; {
		code := b[i+1]
		if code == 0xDA {
			return append(out, b[i:]...)
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if !(code == 0xDB && dropDQT) && !(code == 0xC4 && dropDHT) {
			out = append(out, b[i:i+2+n]...)
		}
		i += 2 + n
	}
}

// TestCompleteJPEG proves that a tile that left out its tables decodes,
// once completed, to exactly the pixels of the tile that had them.
func TestCompleteJPEG(t *testing.T) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testPicture(), &jpeg.Options{Quality: 70}); err != nil {
		t.Fatal(err)
	}
	want, err := jpeg.Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		dropDQT, dropDHT bool
	}{{"whole", false, false}, {"no DQT", true, false}, {"no DHT", false, true}, {"neither", true, true}} {
		tile := compact(t, b.Bytes(), tc.dropDQT, tc.dropDHT)
		dqt, dht, err := JPEGTables(tile)
		if err != nil || dqt == tc.dropDQT || dht == tc.dropDHT {
			t.Fatalf("%s: JPEGTables = %v, %v, %v", tc.name, dqt, dht, err)
		}
		full, err := CompleteJPEG(tile, 70)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := jpeg.Decode(bytes.NewReader(full))
		if err != nil {
			t.Fatalf("%s: completed tile does not decode: %v", tc.name, err)
		}
		if !bytes.Equal(got.(*image.YCbCr).Y, want.(*image.YCbCr).Y) || !bytes.Equal(got.(*image.YCbCr).Cb, want.(*image.YCbCr).Cb) {
			t.Errorf("%s: the completed tile decodes to other pixels", tc.name)
		}
	}
	noDQT := compact(t, b.Bytes(), true, false)
	for _, q := range []int{0, 101, -1} {
		if _, err := CompleteJPEG(noDQT, q); err == nil {
			t.Errorf("a tile without DQT completed at quality %d", q)
		}
	}
	for _, bad := range [][]byte{nil, []byte("GIF89a"), {0xFF, 0xD8}, {0xFF, 0xD8, 0xFF, 0xDB, 0x00}, {0xFF, 0xD8, 0x00, 0x00, 0x00, 0x00}} {
		if _, err := CompleteJPEG(bad, 70); err == nil {
			t.Errorf("CompleteJPEG(%x) did not fail", bad)
		}
	}
}
