package chrome

import (
	"strings"
	"testing"
)

func TestDescribeHost(t *testing.T) {
	tests := []struct {
		host        string
		wantDisplay string
		wantWarning string // a part of the warning; empty for none
	}{
		{"example.jp", "example.jp", ""},
		{"", "", ""},
		{"192.0.2.1", "192.0.2.1", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		// Cyrillic а in apple.
		{"xn--pple-43d.com", "аpple.com", "mixes Cyrillic and Latin"},
		{"www.xn--pple-43d.com", "www.аpple.com", "Cyrillic + Latin"},
		// Greek ο in google.
		{"xn--ggle-0nda.com", "gοοgle.com", "mixes Greek and Latin"},
		// All Cyrillic, all lookalikes: аррӏе.
		{"xn--80ak6aa92e.com", "аррӏе.com", "looks like apple.com"},
		// 日本語.jp: Han only.
		{"xn--wgv71a119e.jp", "日本語.jp", ""},
		// 東京スカイツリー.jp: Han, Katakana and the long-vowel mark.
		{"xn--eckn5b6bzl1du13vmo2b.jp", "東京スカイツリー.jp", ""},
		// ソニーstore.jp: Katakana and Latin, as Japanese names do.
		{"xn--store-8q4drd9r.jp", "ソニーstore.jp", ""},
		// münchen.de: Latin with a letter that is not a lookalike.
		{"xn--mnchen-3ya.de", "münchen.de", ""},
		// пример.рф: Cyrillic under a Cyrillic TLD.
		{"xn--e1afmkfd.xn--p1ai", "пример.рф", ""},
		// сосо.рф: lookalikes, but in the script of their TLD.
		{"xn--n1aahb.xn--p1ai", "сосо.рф", ""},
		// сосо.com: the same letters under .com look like coco.com.
		{"xn--n1aahb.com", "сосо.com", "looks like coco.com"},
		// Hangul with Katakana is no language's mix.
		{"xn--cckt470c.com", "한ア.com", "Hangul + Katakana"},
		// Punycode of a control character, and of an uppercase letter,
		// which no canonical host holds.
		{"xn--a.com", "xn--a.com", "cannot be displayed"},
		{"xn--pple-43d.xn--Com-ida", "xn--pple-43d.xn--Com-ida", "cannot be displayed"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			display, warning := describeHost(tt.host)
			if tt.wantDisplay != "" && display != tt.wantDisplay {
				t.Errorf("display = %q, want %q", display, tt.wantDisplay)
			}
			if tt.wantWarning == "" && warning != "" {
				t.Errorf("warning = %q, want none", warning)
			}
			if tt.wantWarning != "" && !strings.Contains(warning, tt.wantWarning) {
				t.Errorf("warning = %q, want one saying %q", warning, tt.wantWarning)
			}
		})
	}
}
