package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestUnknownSchemeNamedWhole checks that an unknown scheme quoted in the
// error is cut between characters: a Japanese scheme longer than 32 bytes
// shows as whole characters, never as escaped halves.
func TestUnknownSchemeNamedWhole(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"gopher://x.jp/", `"gopher"`},
		{strings.Repeat("あ", 11) + ":x", `"` + strings.Repeat("あ", 10) + `"`},
		{strings.Repeat("𠮷", 9) + ":x", `"` + strings.Repeat("𠮷", 8) + `"`},
	} {
		_, err := parseTarget(tc.raw)
		if !errors.Is(err, errScheme) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), `\x`) {
			t.Errorf("parseTarget(%q) = %v, want %v naming %s", tc.raw, err, errScheme, tc.want)
		}
	}
}
