package inspect

import (
	"testing"
	"unicode/utf16"
)

// utf16Bytes encodes s as UTF-16 with a byte order mark.
func utf16Bytes(s string, bigEndian bool) []byte {
	return unitBytes(append([]uint16{0xFEFF}, utf16.Encode([]rune(s))...), bigEndian)
}

func unitBytes(units []uint16, bigEndian bool) []byte {
	var b []byte
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

// TestUTF16ToUTF8 checks that surrogate pairs decode to the character
// outside the Basic Multilingual Plane they stand for (𠮷 U+20BB7 in a
// Japanese name, emoji), and that a lone surrogate becomes U+FFFD.
func TestUTF16ToUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []uint16 // after the byte order mark
		odd  bool     // a stray last byte
		want string
	}{
		{"ascii", utf16.Encode([]rune("hi")), false, "hi"},
		{"japanese", utf16.Encode([]rune("日本語")), false, "日本語"},
		{"kanji outside the BMP", utf16.Encode([]rune("𠮷野家")), false, "𠮷野家"},
		{"emoji", utf16.Encode([]rune("ok👍🏽")), false, "ok👍🏽"},
		{"high surrogate cut off at the end", []uint16{'a', 0xD842}, false, "a\uFFFD"},
		{"lone low surrogate", []uint16{0xDFB7, 'a'}, false, "\uFFFDa"},
		{"two high surrogates", []uint16{0xD842, 0xD842, 0xDFB7}, false, "\uFFFD𠮷"},
		{"odd last byte dropped", utf16.Encode([]rune("𠮷")), true, "𠮷"},
	} {
		for _, bigEndian := range []bool{false, true} {
			b := unitBytes(append([]uint16{0xFEFF}, tc.in...), bigEndian)
			if tc.odd {
				b = append(b, 'x')
			}
			if got := string(utf16ToUTF8(b, bigEndian)); got != tc.want {
				t.Errorf("%s (big endian %v): got %q, want %q", tc.name, bigEndian, got, tc.want)
			}
		}
	}
}

// TestUTF16TextWithSurrogatesSniffed checks the whole path: UTF-16 text
// with characters outside the BMP is text, and a script marker after them
// is still found.
func TestUTF16TextWithSurrogatesSniffed(t *testing.T) {
	for _, bigEndian := range []bool{false, true} {
		var rep report
		sniffText(utf16Bytes("𠮷田さん👍 の紹介状", bigEndian), &rep)
		if rep.Class != ClassText {
			t.Errorf("big endian %v: class %v, want %v", bigEndian, rep.Class, ClassText)
		}
		rep = report{}
		sniffText(utf16Bytes("𠮷田さん👍 <script>alert(1)</script>", bigEndian), &rep)
		if rep.Class != ClassHTML {
			t.Errorf("big endian %v: class %v with a script, want %v", bigEndian, rep.Class, ClassHTML)
		}
	}
}
