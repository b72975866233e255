package policy

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"testing"

	"github.com/shoji-rbi/shoji/isolation/egress"
)

// fuzzDoc has no CIDR rules, so nothing it allows may be a non-public
// address: one allowlist and one denylist profile, both with every
// host-pattern form.
const fuzzDoc = `
profiles:
  - name: allow
    rules:
      - pattern: allowed.jp
      - pattern: "*.allowed.jp"
      - pattern: allowed.jp:8443
      - pattern: paths.jp/guidelines/
      - pattern: localhost
      - pattern: 病院.jp
  - name: deny
    mode: denylist
    rules:
      - pattern: evil.test
      - pattern: paths.jp/admin/
blocked:
  - host: blocked.jp
`

// FuzzCheckURL checks that CheckURL never panics and never allows a URL
// whose host is a non-public IP address, in either mode, whether the host
// is read by CheckURL's own parser or by net/url.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://allowed.jp/", "https://allowed.jp@evil.test/", "https://allowed.jp.evil.test/",
		"https://ALLOWED.JP./", "http://127.0.0.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
		"http://0.0.0.0/", "http://2130706433/", "http://0x7f.1/", "http://017700000001/", "http://127.1/",
		"http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.0.1/", "http://169.254.169.254/",
		"http://[fc00::1]/", "http://[64:ff9b::a00:1]/", "http://[2002:a00:1::]/", "http://%31%32%37.0.0.1/",
		"http://１２７。０。０。１/", `https:\\127.0.0.1\`, "https:127.0.0.1", "http://evil.test\\@127.0.0.1/",
		"http://127.0.0.1#@allowed.jp/", "https://paths.jp/guidelines/../admin", "https://paths.jp/guidelines/%2e%2e/x",
		"wss://x.allowed.jp:8443/", "ftp://allowed.jp/", "http://[::ffff:7f00:1]:80/", "http://localhost/",
		"http://0x7f000001/", "http://0177.0.0.1/", "http://127.0.0.1.nip.io/", "https://blocked.jp/",
	} {
		f.Add(s)
	}
	d, err := ParseYAML([]byte(fuzzDoc))
	if err != nil {
		f.Fatal(err)
	}
	s, err := Compile(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, profile := range []string{"allow", "deny"} {
			r := s.CheckURL(profile, raw)
			if !r.Allow {
				if r.Rule == "" || r.Reason == "" {
					t.Fatalf("CheckURL(%q, %q): deny without rule or reason: %+v", profile, raw, r)
				}
				continue
			}
			if r.Host == "" || r.Port == 0 || r.Rule == "" {
				t.Fatalf("CheckURL(%q, %q): allow without host, port or rule: %+v", profile, raw, r)
			}
			if a, err := netip.ParseAddr(r.Host); err == nil && !egress.IsPublicUnicast(a) {
				t.Fatalf("CheckURL(%q, %q) allows non-public %s by %s", profile, raw, a, r.Rule)
			}
			if a, ok := netURLAddr(raw); ok && !egress.IsPublicUnicast(a) {
				t.Fatalf("CheckURL(%q, %q) allows %+v; net/url reads the host as non-public %s", profile, raw, r, a)
			}
			if d := s.Decide(profile, r.Host, r.Port); !d.Allow {
				t.Fatalf("CheckURL(%q, %q) allows %+v but Decide denies its host: %+v", profile, raw, r, d)
			}
		}
	})
}

// FuzzParseSize checks that ParseSize never panics, never returns a
// negative size, and reads back what String writes.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "25MiB", "500 KB", "1gib", "1.5GiB", "-1", "9223372036854775807", "9223372036854775807KiB", "8TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseSize(in)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", in, n)
		}
		if back, err := ParseSize(n.String()); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d; ParseSize(%q) = %d, %v", in, n, n.String(), back, err)
		}
	})
}

// netURLAddr returns the address net/url reads as the URL's host, when it
// reads one that egress.Normalize takes for an IP literal.
func netURLAddr(raw string) (netip.Addr, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return netip.Addr{}, false
	}
	h, _, err := egress.Normalize(net.JoinHostPort(u.Hostname(), strconv.Itoa(443)))
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(h)
	return a, err == nil
}
