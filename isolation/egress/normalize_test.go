package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort int
		wantErr  bool
	}{
		{in: "example.jp:443", wantHost: "example.jp", wantPort: 443},
		{in: "Example.JP.:80", wantHost: "example.jp", wantPort: 80},
		{in: "www.example.jp:8443", wantHost: "www.example.jp", wantPort: 8443},
		{in: "病院.jp:443", wantHost: "xn--0rys90e.jp", wantPort: 443},
		{in: "XN--0RYS90E.JP:443", wantHost: "xn--0rys90e.jp", wantPort: 443},
		{in: "ＥＸＡＭＰＬＥ。ｊｐ:443", wantHost: "example.jp", wantPort: 443},
		{in: "r3---sn-abc.googlevideo.com:443", wantHost: "r3---sn-abc.googlevideo.com", wantPort: 443},
		{in: "my_bucket.example.com:443", wantHost: "my_bucket.example.com", wantPort: 443},
		{in: "localhost:80", wantHost: "localhost", wantPort: 80},
		// IP literals in every spelling come back canonical.
		{in: "127.0.0.1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "127.0.0.1.:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "2130706433:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "0177.0.0.1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "0x7f.1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "0X7F.0X0.0X0.0X1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "0x7f000001:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "017700000001:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "127.1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "127.0.1:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "10.1.2:80", wantHost: "10.1.0.2", wantPort: 80},
		{in: "0:80", wantHost: "0.0.0.0", wantPort: 80},
		{in: "169.254.43518:80", wantHost: "169.254.169.254", wantPort: 80},
		{in: "１２７．０．０．１:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "１２７。０。０。１:80", wantHost: "127.0.0.1", wantPort: 80},
		{in: "[::1]:443", wantHost: "::1", wantPort: 443},
		{in: "[0:0:0:0:0:0:0:1]:443", wantHost: "::1", wantPort: 443},
		{in: "[::ffff:127.0.0.1]:443", wantHost: "::ffff:127.0.0.1", wantPort: 443},
		{in: "[::FFFF:7F00:1]:443", wantHost: "::ffff:127.0.0.1", wantPort: 443},
		{in: "[2001:DB8::1]:443", wantHost: "2001:db8::1", wantPort: 443},
		{in: "8.8.8.8:53", wantHost: "8.8.8.8", wantPort: 53},
		{in: "a.b.c.0x:80", wantErr: true}, // ends in a number, not IPv4
		{in: "1.2.3.4.5:80", wantErr: true},
		{in: "1.2.3.256:80", wantErr: true},
		{in: "256.1:80", wantErr: true},
		{in: "4294967296:80", wantErr: true},
		{in: "08.0.0.1:80", wantErr: true},
		{in: "example.09:80", wantErr: true},
		{in: "example.123:80", wantErr: true},
		{in: "[fe80::1%25eth0]:80", wantErr: true},
		{in: "[fe80::1%eth0]:80", wantErr: true},
		{in: "[127.0.0.1]:80", wantErr: true},
		{in: "[example.jp]:80", wantErr: true},
		{in: "::1:80", wantErr: true},
		{in: "example.jp", wantErr: true},
		{in: "example.jp:", wantErr: true},
		{in: "example.jp:0", wantErr: true},
		{in: "example.jp:65536", wantErr: true},
		{in: "example.jp:+80", wantErr: true},
		{in: "example.jp:0x50", wantErr: true},
		{in: ":80", wantErr: true},
		{in: ".:80", wantErr: true},
		{in: "example..jp:80", wantErr: true},
		{in: ".example.jp:80", wantErr: true},
		{in: "example.jp..:80", wantErr: true},
		{in: "exa mple.jp:80", wantErr: true},
		{in: "exa%2fmple.jp:80", wantErr: true},
		{in: "*.example.jp:80", wantErr: true},
		{in: "user@example.jp:80", wantErr: true},
		{in: "example.jp/path:80", wantErr: true},
		{in: strings.Repeat("a", 64) + ".jp:80", wantErr: true},
		{in: strings.Repeat("a.", 127) + "jp:80", wantErr: true},
		{in: strings.Repeat("a", 2000) + ":80", wantErr: true},
		{in: "example\x00.jp:80", wantErr: true},
		{in: "ex\u200bample.jp:80", wantHost: "example.jp", wantPort: 80}, // UTS #46 drops ZWSP
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := Normalize(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, %d; want error", tt.in, host, port)
				}
				if !errors.Is(err, ErrInvalidTarget) {
					t.Errorf("Normalize(%q) error %v does not wrap ErrInvalidTarget", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tt.in, err)
			}
			if host != tt.wantHost || port != tt.wantPort {
				t.Errorf("Normalize(%q) = %q, %d; want %q, %d", tt.in, host, port, tt.wantHost, tt.wantPort)
			}
		})
	}
}

// fuzzNamesPolicy is a StaticPolicy of names only, for FuzzNormalize.
var fuzzNamesPolicy = func() *StaticPolicy {
	p, err := NewStaticPolicy([]string{
		"example.jp", "*.example.jp", "localhost", "localhost:8080", "*.shoji.localhost",
		"*.0.in-addr.arpa", "*.1.example", "0x7f.example:80", "demo.shoji.test",
	})
	if err != nil {
		panic(err)
	}
	return p
}()

// allowAll is a Policy that allows everything, so the address checks alone
// stand between a request and the network.
type allowAll struct{}

func (allowAll) Decide(string, int) Decision { return Decision{Allow: true, Rule: "allow-all"} }

// failResolver fails every lookup, counting them.
type failResolver struct{}

func (failResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("no DNS in this test")
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.jp:443", "127.0.0.1:80", "2130706433:80", "0177.0.0.1:80", "0x7f.1:80",
		"127.1:80", "[::1]:443", "[::ffff:127.0.0.1]:443", "[::ffff:7f00:1]:80",
		"[64:ff9b::a00:1]:80", "[2002:a00:1::]:80", "[fe80::1%25eth0]:80",
		"169.254.169.254:80", "0:80", "１２７．０．０．１:80", "病院.jp:443",
		"xn--0rys90e.jp:443", "a.b.c.0x:80", "localhost.:8080", "10.0.0.1.:443",
		"0x0a.0.0.1:80", "[::]:80", "0.0.0.0:80", "example.jp:65535",
	} {
		f.Add(s)
	}
	p, err := New(Config{Policy: allowAll{}, Resolver: failResolver{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := Normalize(s)
		if err != nil {
			return
		}
		if port < 1 || port > 65535 {
			t.Fatalf("Normalize(%q): port %d out of range", s, port)
		}
		h2, p2, err := Normalize(joinHostPort(host, port))
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("Normalize(%q) = %q, %d, but again gives %q, %d, %v", s, host, port, h2, p2, err)
		}
		a, ipErr := netip.ParseAddr(host)
		if ipErr != nil {
			// A name: never something a resolver or dialer reads as an IP.
			if net.ParseIP(host) != nil || endsInNumber(strings.Split(host, ".")) {
				t.Fatalf("Normalize(%q) = name %q that reads as an IP", s, host)
			}
			if err := checkName(host, strings.Split(host, ".")); err != nil {
				t.Fatalf("Normalize(%q) = bad name %q: %v", s, host, err)
			}
			return
		}
		if a.String() != host {
			t.Fatalf("Normalize(%q) = %q, not canonical %q", s, host, a)
		}
		if IsPublicUnicast(a) {
			return
		}
		if d := fuzzNamesPolicy.Decide(host, port); d.Allow {
			t.Fatalf("names policy allowed non-public %q (from %q) by rule %q", host, s, d.Rule)
		}
		if got, _, _, err := p.pick(context.Background(), host, port, nil); err == nil {
			t.Fatalf("address check allowed non-public %q (from %q) as %s", host, s, got)
		}
	})
}
