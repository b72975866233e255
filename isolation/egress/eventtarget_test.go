package egress

import (
	"strings"
	"testing"
)

// TestEventTarget checks that raw target text put in an Event is bounded
// without cutting a character in half, and that invalid bytes are shown
// as U+FFFD.
func TestEventTarget(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"short", "example.jp:443", "example.jp:443"},
		{"japanese cut between characters", strings.Repeat("あ", 100), strings.Repeat("あ", 85)},
		{"4-byte kanji cut between characters", strings.Repeat("𠮷", 70), strings.Repeat("𠮷", 64)},
		{"invalid bytes", "bad\xff\xfehost:1", "bad\uFFFDhost:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventTarget(tc.in); got != tc.want {
				t.Errorf("eventTarget(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
