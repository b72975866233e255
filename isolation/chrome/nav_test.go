package chrome

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"example.jp", "https://example.jp", nil},
		{"  example.jp/path?q=1  ", "https://example.jp/path?q=1", nil},
		{"example.jp:8443/x", "https://example.jp:8443/x", nil},
		{"localhost:8080", "https://localhost:8080", nil},
		{"//example.jp/", "https://example.jp/", nil},
		{"http://example.jp/", "http://example.jp/", nil},
		{"HTTPS://Example.jp/", "HTTPS://Example.jp/", nil},
		{"https://日本.jp/", "https://日本.jp/", nil},
		{"file:///etc/passwd", "", ErrScheme},
		{"FILE:///etc/passwd", "", ErrScheme},
		{"chrome://settings", "", ErrScheme},
		{"javascript:alert(1)", "", ErrScheme},
		{"data:text/html,<b>x</b>", "", ErrScheme},
		{"about:blank", "", ErrScheme},
		{"view-source:https://example.jp", "", ErrScheme},
		{"ftp://example.jp", "", ErrScheme},
		{"", "", ErrURL},
		{"https://", "", ErrURL},
		{"https://user:pw@example.jp/", "", ErrURL},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeURL(tc.in)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("NormalizeURL(%q) err = %v, want %v", tc.in, err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("NormalizeURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if errors.Is(err, ErrScheme) {
				scheme, _, _ := strings.Cut(tc.in, ":")
				if !strings.Contains(err.Error(), strings.ToLower(scheme)+":") {
					t.Errorf("error %q does not name the scheme", err)
				}
			}
		})
	}
}
