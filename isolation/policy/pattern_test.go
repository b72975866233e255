package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalPattern(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.jp", "example.jp"},
		{"Example.JP.", "example.jp"},
		{"*.Example.jp", "*.example.jp"},
		{"example.jp:8443", "example.jp:8443"},
		{"*.example.jp:8443", "*.example.jp:8443"},
		{"病院.jp", "xn--0rys90e.jp"},
		{"ex%61mple.jp", "example.jp"},
		{"user:pw@example.jp", "example.jp"},
		{"https://example.jp", "example.jp"},
		{"HTTP://example.jp/guidelines/", "example.jp/guidelines/"},
		{"example.jp/", "example.jp"},
		{"example.jp/guidelines", "example.jp/guidelines"},
		{"example.jp/a/./b/../c/", "example.jp/a/c/"},
		{"example.jp/%67uide", "example.jp/guide"},
		{"example.jp/a%20b/", "example.jp/a%20b/"},
		{"example.jp/%E6%8C%87%E9%87%9D/", "example.jp/%E6%8C%87%E9%87%9D/"},
		{"example.jp:8443/x/", "example.jp:8443/x/"},
		{"10.1.2.0/24", "10.1.2.0/24"},
		{"10.1.2.3/32:8443", "10.1.2.3/32:8443"},
		{"fd00::/64", "fd00::/64"},
		{"FD00:0::/64", "fd00::/64"},
		{"[fd00::/64]:8443", "[fd00::/64]:8443"},
		{"fd00::/64:8443", "[fd00::/64]:8443"},
		{"127.0.0.1/32:8080", "127.0.0.1/32:8080"},
		{"[::1/128]:8080", "[::1/128]:8080"},
	}
	for _, tt := range tests {
		got, err := CanonicalPattern(tt.in)
		if err != nil {
			t.Errorf("CanonicalPattern(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("CanonicalPattern(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// The canonical form is a fixed point.
		if again, err := CanonicalPattern(got); err != nil || again != got {
			t.Errorf("CanonicalPattern(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
}

func TestCanonicalPatternRejects(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"example .jp", "space"},
		{"example.jp\t", "space"},
		{"ftp://example.jp", "scheme"},
		{"example.jp?q=1", "query"},
		{"example.jp/#top", "query or fragment"},
		{"*.jp", "wildcard over a public suffix"},
		{"*.co.jp", "wildcard over a public suffix"},
		{"*.github.io", "wildcard over a public suffix"},
		{"*.local", "wildcard over a public suffix"},
		{"www.*.example.jp", "wildcard only"},
		{"*example.jp", "wildcard only"},
		{"*", "wildcard only"},
		{"example.jp:", "bad port"},
		{"example.jp:0", "bad port"},
		{"example.jp:65536", "bad port"},
		{"example.jp:+80", "bad port"},
		{"exa_mple..jp", "bad host"},
		{"%zz.jp", "percent-encoding"},
		{"user@", "empty host"},
		{"/guidelines/", "empty host"},
		{"example.jp/%25252525252e", "too many times"},
		// IP literals are refused as host patterns in every spelling.
		{"127.0.0.1", "use a CIDR rule such as 127.0.0.1/32"},
		{"10.1.2.3:8443", "IP address 10.1.2.3"},
		{"2130706433", "IP address 127.0.0.1"},
		{"0x7f.1", "IP address 127.0.0.1"},
		{"017700000001", "IP address 127.0.0.1"},
		{"127.1/32", "IP address 127.0.0.1"},
		{"１２７。０。０。１", "IP address 127.0.0.1"},
		{"[::1]", "IPv6 address"},
		{"[::1]:443", "IPv6 address"},
		{"::1", "IPv6 address"},
		{"*.10.0.0.1", "IP address"},
		{"1.2.3.256", "bad host"},
		// CIDR rules.
		{"10.1.2.3/24", "host bits set in 10.1.2.3/24: did you mean 10.1.2.0/24?"},
		{"10.1.2.0/33", "bad CIDR"},
		{"10.0.0.0/7", "too wide"},
		{"0.0.0.0/0", "too wide"},
		{"::/0", "too wide"},
		{"0.0.0.0/8", "this-network"},
		{"169.254.0.0/16", "cloud metadata"},
		{"224.0.0.0/8", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"ff02::/16", "multicast"},
		{"::ffff:10.0.0.0/104", "IPv4-mapped"},
		{"127.0.0.0/8", "loopback"},
		{"127.0.0.1/32", "loopback"},
		{"[::1/128]", "loopback"},
		{"10.1.2.0/24:", "empty port"},
		{"10.1.2.0/24:99999", "bad port"},
		{"10.1.2.0/24/x", "takes no path"},
		{"[fd00::/64]x", "unexpected"},
		{"[fd00::/64]:", "empty port"},
	}
	for _, tt := range tests {
		_, err := CanonicalPattern(tt.in)
		if err == nil {
			t.Errorf("CanonicalPattern(%q) accepted", tt.in)
			continue
		}
		if !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("CanonicalPattern(%q): %v does not match ErrInvalidPattern", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CanonicalPattern(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{"Evil.Example.": "evil.example", "病院.jp": "xn--0rys90e.jp", "ev%69l.example": "evil.example"} {
		if got, err := CanonicalHost(in); err != nil || got != want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"": "empty", "*.evil.example": "drop", "evil.example:443": "host name only",
		"evil.example/x": "host name only", "127.0.0.1": "IP address", "0x7f.1": "IP address", "a b": "space",
	} {
		if _, err := CanonicalHost(in); err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("CanonicalHost(%q) = %v, want an ErrInvalidPattern containing %q", in, err, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/a/..", "/"},
		{"/a/b/..", "/a/"},
		{"/a/.", "/a/"},
		{"/../../a", "/a"},
		{"/a/%2e%2e/b", "/b"},
		{"/a/%2E./b", "/b"},
		{"/a%2f..%2fb", "/b"},
		{"/a/%252e%252e/b", "/b"},
		{`/a\..\b`, "/b"},
		{"/a%5c..%5cb", "/b"},
		{"/a/%5c..%5cb", "/a/b"}, // "/a//../b"
		{"/100%", "/100%"},
		{"/%zz", "/%zz"},
		{"//a", "//a"},
	}
	for _, tt := range tests {
		got, ok := cleanPath(tt.in)
		if !ok || got != tt.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	if got, ok := cleanPath("/%2525252525"); ok {
		t.Errorf("cleanPath of a path encoded five times = %q, want refused", got)
	}
}
