// Package truncate shortens text to a byte budget without breaking UTF-8.
//
// Byte-slicing a string (s[:n]) can cut a multi-byte character in half:
// a Japanese character is 3 bytes in UTF-8 and an emoji or a kanji such as
// 𠮷 (U+20BB7) is 4, so a cut at an arbitrary byte leaves invalid UTF-8 that
// a WebSocket close frame must not carry (RFC 6455 §5.5.1), that JSON turns
// into U+FFFD and that an audit log records as garbage. Every place in shoji
// that bounds text by bytes uses this package instead.
//
// The rules, for both Bytes and Ellipsis:
//
//   - The result is valid UTF-8: each run of invalid bytes in the input
//     becomes one U+FFFD, as strings.ToValidUTF8(s, "\uFFFD") does.
//   - The result is at most limit bytes (nothing when limit <= 0).
//   - A cut falls only between characters, never inside one.
//   - A cut does not leave a base character without the combining marks
//     that follow it (for example the voiced mark U+3099 of decomposed
//     "が", which without it would read "か"): the base goes too.
//
// Grapheme clusters beyond base-plus-marks (emoji joined with U+200D,
// regional-indicator flags) can still be split between their characters;
// the result stays valid UTF-8.
package truncate

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mark is what Ellipsis appends when it cuts: "…" (U+2026, 3 bytes).
const Mark = "…"

// Bytes returns the longest prefix of s's valid form, cut by the package
// rules, that fits in limit bytes. Text that is valid and fits is returned
// as it is.
func Bytes(s string, limit int) string {
	out, _ := cut(s, limit)
	return out
}

// Ellipsis is Bytes that shows where it cut: when the text does not fit in
// limit bytes, it is cut to limit-len(Mark) bytes and Mark is appended, so the
// result, mark included, is still at most limit bytes. When limit is too small
// to hold the mark, Ellipsis is Bytes.
func Ellipsis(s string, limit int) string {
	out, clipped := cut(s, limit)
	if !clipped || limit < len(Mark) {
		return out
	}
	out, _ = cut(s, limit-len(Mark))
	return out + Mark
}

// cut returns the prefix of s's valid form that fits in limit bytes, and
// whether anything of s was left out.
func cut(s string, limit int) (string, bool) {
	if limit < 0 {
		limit = 0
	}
	if len(s) <= limit && utf8.ValidString(s) {
		return s, false
	}
	var b strings.Builder
	b.Grow(min(len(s), limit))
	var next rune // the first character left out
	clipped := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		if r == utf8.RuneError && size == 1 {
			// A run of invalid bytes becomes one U+FFFD.
			for size < len(s)-i {
				if r2, n := utf8.DecodeRuneInString(s[i+size:]); r2 != utf8.RuneError || n != 1 {
					break
				}
				size++
			}
			piece = string(utf8.RuneError)
		}
		if b.Len()+len(piece) > limit {
			next, clipped = r, true
			break
		}
		b.WriteString(piece)
		i += size
	}
	out := b.String()
	// Drop a base character whose combining marks were cut off, and the
	// marks that were kept with it.
	for clipped && out != "" && isMark(next) {
		r, size := utf8.DecodeLastRuneInString(out)
		out, next = out[:len(out)-size], r
	}
	return out, clipped
}

// isMark reports whether r is a combining mark, which belongs to the
// character before it.
func isMark(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}
