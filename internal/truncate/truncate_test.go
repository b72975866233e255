package truncate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBytes(t *testing.T) {
	const (
		kana  = "日本語のテキスト" // 8 characters of 3 bytes
		yoshi = "𠮷野家"      // U+20BB7 is 4 bytes, outside the BMP
		emoji = "👍🏽ok"     // thumbs up (4) + skin tone (4) + "ok"
		// Decomposed "がぎ": か U+304B + voiced mark U+3099, き U+304D + U+3099.
		nfd = "\u304b\u3099\u304d\u3099"
	)
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"empty", "", 5, ""},
		{"fits", "hello", 5, "hello"},
		{"ascii cut", "hello", 3, "hel"},
		{"zero", "hello", 0, ""},
		{"negative", "hello", -1, ""},
		{"japanese fits", kana, 24, kana},
		{"japanese on a boundary", kana, 6, "日本"},
		{"japanese 1 byte past", kana, 7, "日本"},
		{"japanese 2 bytes past", kana, 8, "日本"},
		{"japanese less than one", kana, 2, ""},
		{"japanese one", kana, 3, "日"},
		{"4-byte kanji less than one", yoshi, 3, ""},
		{"4-byte kanji one", yoshi, 4, "𠮷"},
		{"4-byte kanji and part", yoshi, 6, "𠮷"},
		{"4-byte kanji and next", yoshi, 7, "𠮷野"},
		{"emoji", emoji, 5, "👍"},
		{"emoji and modifier", emoji, 8, "👍🏽"},
		{"emoji all", emoji, 10, emoji},
		{"combining mark kept with base", nfd, 6, "\u304b\u3099"},
		{"combining mark cut drops its base", nfd, 5, ""},
		{"combining mark cut drops only its base", nfd, 11, "\u304b\u3099"},
		{"combining acute", "cafe\u0301!", 5, "caf"},
		{"combining acute whole", "cafe\u0301!", 6, "cafe\u0301"},
		{"only marks", "\u0301\u0301\u0301", 3, ""},
		{"invalid byte replaced", "a\xffb", 5, "a\uFFFDb"},
		{"invalid run is one replacement", "a\xff\xfe\xfdb", 5, "a\uFFFDb"},
		{"invalid replacement does not fit", "a\xffb", 3, "a"},
		{"half a character at the end", "日\xe6\x9c", 9, "日\uFFFD"},
		{"half a character cut", "日\xe6\x9c", 3, "日"},
		{"literal replacement kept", "\uFFFDx", 4, "\uFFFDx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Bytes(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Bytes(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			checkCut(t, tc.in, tc.max, got)
		})
	}
}

func TestEllipsis(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "short", 5, "short"},
		{"fits exactly with room", "日本", 6, "日本"},
		{"ascii cut", "hello world", 8, "hello…"},
		{"japanese cut", "日本語のテキスト", 10, "日本…"},
		{"japanese cut on odd byte", "日本語のテキスト", 11, "日本…"},
		{"mark alone", "日本語", 3, "…"},
		{"too small for the mark", "日本語", 2, ""},
		{"too small ascii", "hello", 2, "he"},
		{"zero", "hello", 0, ""},
		{"emoji", "👍👍👍", 9, "👍…"},
		{"invalid fits after repair", "a\xff", 4, "a\uFFFD"},
		{"invalid does not fit after repair", "ab\xff", 4, "a…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Ellipsis(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Ellipsis(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) || len(got) > max(tc.max, 0) {
				t.Errorf("Ellipsis(%q, %d) = %q: invalid UTF-8 or over the limit", tc.in, tc.max, got)
			}
		})
	}
}

// TestEveryLimit cuts mixed text at every limit from 0 to past its length.
func TestEveryLimit(t *testing.T) {
	const in = "受付: 𠮷田さん 👍🏽 cafe\u0301 \xff end"
	for n := 0; n <= len(in)+4; n++ {
		checkCut(t, in, n, Bytes(in, n))
		e := Ellipsis(in, n)
		if !utf8.ValidString(e) || len(e) > n {
			t.Errorf("Ellipsis(%q, %d) = %q: invalid UTF-8 or over the limit", in, n, e)
		}
	}
}

// checkCut checks the package rules on out = Bytes(in, limit).
func checkCut(t *testing.T, in string, limit int, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("Bytes(%q, %d) = %q is not valid UTF-8", in, limit, out)
	}
	if len(out) > max(limit, 0) {
		t.Errorf("Bytes(%q, %d) = %q is %d bytes", in, limit, out, len(out))
	}
	if valid := strings.ToValidUTF8(in, "\uFFFD"); !strings.HasPrefix(valid, out) {
		t.Errorf("Bytes(%q, %d) = %q is not a prefix of %q", in, limit, out, valid)
	}
}

func FuzzBytes(f *testing.F) {
	for _, s := range []string{"", "hello", "日本語のテキスト", "𠮷野家", "👍🏽", "\u304b\u3099", "a\xff\xfeb", "日\xe6\x9c"} {
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, in string, limit int) {
		limit %= 64
		checkCut(t, in, limit, Bytes(in, limit))
		e := Ellipsis(in, limit)
		if !utf8.ValidString(e) || len(e) > max(limit, 0) {
			t.Errorf("Ellipsis(%q, %d) = %q: invalid UTF-8 or over the limit", in, limit, e)
		}
		if body, cut := strings.CutSuffix(e, Mark); cut && !strings.HasPrefix(strings.ToValidUTF8(in, "\uFFFD"), body) {
			t.Errorf("Ellipsis(%q, %d) = %q: the text before the mark is not a prefix of the input", in, limit, e)
		}
	})
}
