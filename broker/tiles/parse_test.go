package tiles

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// patch returns a copy of data with the byte at offset off of the payload
// of the first marker segment m set to v (off -3 is the marker itself).
func patch(t *testing.T, data []byte, m byte, off int, v byte) []byte {
	t.Helper()
	out := bytes.Clone(data)
	for i := 2; i+4 <= len(out); {
		if out[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		if out[i+1] == m {
			out[i+4+off] = v
			return out
		}
		i += 2 + (int(out[i+2])<<8 | int(out[i+3]))
	}
	t.Fatalf("no marker 0xFF%02X", m)
	return nil
}

func TestParseRefuses(t *testing.T) {
	good := frame(t, "still.jpg")
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	tests := []struct {
		name string
		data []byte
		want error
		says string
	}{
		{"empty", nil, ErrCorrupt, "SOI"},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n"), ErrCorrupt, "SOI"},
		{"only SOI", good[:2], ErrCorrupt, "truncated"},
		{"truncated in the headers", good[:200], ErrCorrupt, "overruns"},
		{"truncated in the entropy data", good[:len(good)/2], ErrCorrupt, "truncated"},
		{"no EOI", good[:len(good)-2], ErrCorrupt, "truncated"},
		{"progressive", patch(t, good, 0xC0, -3, 0xC2), ErrUnsupported, "progressive"},
		{"arithmetic", patch(t, good, 0xC0, -3, 0xC9), ErrUnsupported, "arithmetic"},
		{"extended sequential", patch(t, good, 0xC0, -3, 0xC1), ErrUnsupported, "SOF1"},
		{"12-bit", patch(t, good, 0xC0, 0, 12), ErrUnsupported, "12-bit"},
		{"4:2:2 chroma", patch(t, good, 0xC0, 10, 0x21), ErrUnsupported, "sampling"},
		{"4x1 luma", patch(t, good, 0xC0, 7, 0x41), ErrUnsupported, "sampling"},
		{"height from DNL", patch(t, patch(t, good, 0xC0, 1, 0), 0xC0, 2, 0), ErrUnsupported, "DNL"},
		{"16-bit quantization", patch(t, good, 0xDB, 0, 0x10), ErrUnsupported, "16-bit"},
		{"Huffman table 2", patch(t, good, 0xC4, 0, 0x02), ErrUnsupported, "Huffman table id 2"},
		{"Huffman table beyond baseline in the scan", patch(t, good, 0xDA, 2, 0x22), ErrCorrupt, "Huffman tables 2/2"},
		{"spectral selection", patch(t, good, 0xDA, 8, 5), ErrCorrupt, "spectral"},
		{"garbage in the entropy data", append(append(bytes.Clone(good[:sos+14]), bytes.Repeat([]byte{0xAA}, 64)...), 0xFF, 0xD9), ErrCorrupt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want an error wrapping %v", m, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

// TestParseTruncatedAnywhere cuts a real frame at many points: Parse must
// refuse every prefix and never panic.
func TestParseTruncatedAnywhere(t *testing.T) {
	good := frame(t, "typed.jpg")
	for n := 0; n < len(good)-1; n += 1 + n/16 {
		if _, err := Parse(good[:n]); err == nil {
			t.Fatalf("Parse accepted the first %d of %d bytes", n, len(good))
		}
	}
}

// TestParseRestartIntervals reads a JPEG with restart markers, as other
// encoders make them, and checks its crops against image/jpeg's decoding.
func TestParseRestartIntervals(t *testing.T) {
	m := mustParse(t, frame(t, "still.jpg"))
	data := withRestarts(t, m, 7)
	if !bytes.Contains(data, []byte{0xFF, 0xD7}) {
		t.Fatal("the test frame has no RST7")
	}
	rm := mustParse(t, data)
	if d := Diff(m, rm); len(d) != 0 {
		t.Fatalf("the frame with restart markers differs: %v", d)
	}
	broken := bytes.Replace(data, []byte{0xFF, 0xD3}, []byte{0xFF, 0xD5}, 1)
	if _, err := Parse(broken); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "RST5") {
		t.Errorf("Parse of restart markers out of order = %v", err)
	}
}

// withRestarts re-encodes m whole with a restart marker every n MCUs and
// checks that image/jpeg decodes it to m's pixels.
func withRestarts(t *testing.T, m *Image, n int) []byte {
	t.Helper()
	data, err := m.encode(m.Bounds(), n, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := samePixels(decode(t, mustCrop(t, m, m.Bounds())), decode(t, data), m.Bounds()); !ok {
		t.Fatalf("the frame with restart markers decodes differently at %v", p)
	}
	return data
}
