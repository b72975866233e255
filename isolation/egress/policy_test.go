package egress

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewStaticPolicyRejects(t *testing.T) {
	tests := []struct {
		entry string
		want  string // in the error
	}{
		{entry: "", want: "empty"},
		{entry: "example .jp", want: "space"},
		{entry: " example.jp", want: "space"},
		{entry: "example.jp\t", want: "space"},
		{entry: "https://example.jp", want: "scheme"},
		{entry: "example.jp/path", want: "path"},
		{entry: "user@example.jp", want: "user"},
		{entry: "example.jp:", want: "bad port"},
		{entry: "example.jp:0", want: "bad port"},
		{entry: "example.jp:65536", want: "bad port"},
		{entry: "example.jp:http", want: "bad port"},
		{entry: "example.jp:-1", want: "bad port"},
		{entry: "www.*.example.jp", want: "wildcard"},
		{entry: "*example.jp", want: "wildcard"},
		{entry: "example.*", want: "wildcard"},
		{entry: "*", want: "wildcard"},
		{entry: "*.*.example.jp", want: "wildcard"},
		{entry: "*.jp", want: "public suffix"},
		{entry: "*.co.jp", want: "public suffix"},
		{entry: "*.com", want: "public suffix"},
		{entry: "*.127.0.0.1", want: "IP address"},
		{entry: "*.[::1]", want: "IP address"},
		{entry: "exa_mple..jp", want: "bad host"},
		{entry: "1.2.3.256", want: "bad host"},
		{entry: "[::1", want: "missing"},
		{entry: "[::1]x", want: "after"},
		{entry: "[example.jp]:443", want: "bad host"},
		{entry: "[fe80::1%eth0]", want: "bad host"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, err := NewStaticPolicy([]string{"ok.example.jp", tt.entry})
			if err == nil {
				t.Fatalf("NewStaticPolicy accepted %q", tt.entry)
			}
			if !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("error %v does not wrap ErrInvalidEntry", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "entry 1 ") {
				t.Errorf("error %q does not name entry 1 and %q", err, tt.want)
			}
		})
	}
}

func TestStaticPolicyEntries(t *testing.T) {
	p, err := NewStaticPolicy([]string{
		"Example.JP", "api.example.jp:8443", "*.Cdn.Example.jp", "病院.jp", "*.shoji.test:8080",
		"192.0.2.7", "127.1:8080", "[2001:DB8::1]:8443", "2001:db8::2", "example.jp.",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"example.jp", "api.example.jp:8443", "*.cdn.example.jp", "xn--0rys90e.jp", "*.shoji.test:8080",
		"192.0.2.7", "127.0.0.1:8080", "[2001:db8::1]:8443", "[2001:db8::2]", "example.jp",
	}
	if diff := cmp.Diff(want, p.Entries()); diff != "" {
		t.Errorf("Entries() mismatch (-want +got):\n%s", diff)
	}
}

func TestStaticPolicyDecide(t *testing.T) {
	p, err := NewStaticPolicy([]string{
		"example.jp", "api.example.jp:8443", "*.cdn.example.jp", "病院.jp",
		"*.shoji.test:8080", "192.0.2.7", "127.0.0.1:8080", "[2001:db8::1]:8443",
	})
	if err != nil {
		t.Fatal(err)
	}
	notListed := Decision{Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist}
	tests := []struct {
		host string
		port int
		want Decision
	}{
		{"example.jp", 443, Decision{Allow: true, Rule: "example.jp"}},
		{"example.jp", 80, Decision{Allow: true, Rule: "example.jp"}},
		{"example.jp", 8080, Decision{Rule: RuleDefaultDeny, Reason: "port 8080 not in allowlist for this host"}},
		{"www.example.jp", 443, notListed},
		{"example.jp.evil.com", 443, notListed},
		{"evilexample.jp", 443, notListed},
		{"api.example.jp", 8443, Decision{Allow: true, Rule: "api.example.jp:8443"}},
		{"api.example.jp", 443, Decision{Rule: RuleDefaultDeny, Reason: "port 443 not in allowlist for this host"}},
		{"img.cdn.example.jp", 443, Decision{Allow: true, Rule: "*.cdn.example.jp"}},
		{"a.b.cdn.example.jp", 80, Decision{Allow: true, Rule: "*.cdn.example.jp"}},
		{"cdn.example.jp", 443, notListed}, // a wildcard does not cover its apex
		{"xcdn.example.jp", 443, notListed},
		{"xn--0rys90e.jp", 443, Decision{Allow: true, Rule: "xn--0rys90e.jp"}},
		{"demo.shoji.test", 8080, Decision{Allow: true, Rule: "*.shoji.test:8080"}},
		{"demo.shoji.test", 443, Decision{Rule: RuleDefaultDeny, Reason: "port 443 not in allowlist for this host"}},
		{"192.0.2.7", 443, Decision{Allow: true, Rule: "192.0.2.7"}},
		{"192.0.2.8", 443, notListed},
		{"127.0.0.1", 8080, Decision{Allow: true, Rule: "127.0.0.1:8080"}},
		{"::ffff:127.0.0.1", 8080, notListed}, // only the exact literal
		{"2001:db8::1", 8443, Decision{Allow: true, Rule: "[2001:db8::1]:8443"}},
		{"", 443, notListed},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.Decide(tt.host, tt.port)); diff != "" {
				t.Errorf("Decide(%q, %d) mismatch (-want +got):\n%s", tt.host, tt.port, diff)
			}
		})
	}
}

func TestStaticPolicyEmptyDeniesAll(t *testing.T) {
	p, err := NewStaticPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Decide("example.jp", 443); d.Allow || d.Reason != ReasonNotInAllowlist {
		t.Errorf("empty policy: %+v", d)
	}
}
