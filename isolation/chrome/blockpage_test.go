package chrome

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRequestAccessURLCutsBetweenCharacters checks that a refused URL too
// long for the "request access" link is cut between characters, so the
// link carries valid UTF-8 that the guard then accepts.
func TestRequestAccessURLCutsBetweenCharacters(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"short", "https://例え.jp/a", "https://例え.jp/a"},
		// 19 bytes of prefix and 3-byte characters: byte 2048 falls inside one.
		{"japanese path", "https://example.jp/" + strings.Repeat("あ", 700), "https://example.jp/" + strings.Repeat("あ", 676)},
		{"4-byte kanji path", "https://example.jp/" + strings.Repeat("𠮷", 600), "https://example.jp/" + strings.Repeat("𠮷", 507)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(requestAccessURL("example.jp", tc.raw, "tok"))
			if err != nil {
				t.Fatal(err)
			}
			got := u.Query().Get("url")
			if got != tc.want || !utf8.ValidString(got) || len(got) > maxRequestURL {
				t.Errorf("url = %q (%d bytes), want %q", got, len(got), tc.want)
			}
		})
	}
}
