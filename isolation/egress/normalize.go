package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrInvalidTarget is wrapped by every error Normalize returns: the request
// target is not a host and port shoji can reason about, so it is refused.
var ErrInvalidTarget = errors.New("invalid target")

// maxTargetLen bounds the host:port text Normalize accepts. A DNS name is at
// most 253 bytes; IDN input may be longer before mapping, but not by this much.
const maxTargetLen = 1024

// maxNameLen is the longest DNS name in its dotted text form.
const maxNameLen = 253

// maxLabelLen is the longest DNS label.
const maxLabelLen = 63

// idnaProfile maps a host the way a browser does for lookup (UTS #46,
// non-transitional, Bidi rule) but, like browsers, tolerates underscores and
// labels such as "r3---sn-abc" that the strict hyphen rules would reject.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Normalize parses a request target "host:port" (the CONNECT authority, or the
// host of an absolute-form URL with the scheme's default port added by the
// caller) into a normalised host and a port.
//
// The returned host is lowercase, without a trailing dot, IDN mapped to
// punycode, and without brackets for IPv6. IP literals in every spelling a
// resolver or URL parser accepts — decimal integer (2130706433), octal
// (0177.0.0.1), hex (0x7f.1), short forms (127.1), IPv6, IPv4-mapped IPv6 —
// come back in canonical form (127.0.0.1, ::ffff:127.0.0.1), so they are
// checked as addresses and never matched as names. Following the WHATWG URL
// standard, a name whose last label is a number must be a valid IPv4 address
// or it is refused. Every error wraps ErrInvalidTarget.
func Normalize(hostport string) (host string, port int, err error) {
	if len(hostport) > maxTargetLen {
		return "", 0, fmt.Errorf("target longer than %d bytes: %w", maxTargetLen, ErrInvalidTarget)
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("target %q: %v: %w", hostport, splitReason(err), ErrInvalidTarget)
	}
	port, err = parsePort(p)
	if err != nil {
		return "", 0, fmt.Errorf("target %q: %w", hostport, err)
	}
	host, err = normalizeHost(h, strings.HasPrefix(hostport, "["))
	if err != nil {
		return "", 0, fmt.Errorf("target %q: %w", hostport, err)
	}
	return host, port, nil
}

// splitReason returns the reason net.SplitHostPort gave, without repeating
// the address it quotes.
func splitReason(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return "malformed host:port"
}

// parsePort parses a decimal port 1..65535 without sign or spaces.
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("port %q: %w", s, ErrInvalidTarget)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q: %w", s, ErrInvalidTarget)
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q out of range: %w", s, ErrInvalidTarget)
	}
	return n, nil
}

// normalizeHost normalises a host without port. bracketed says the host was
// written in brackets, which only an IPv6 literal may be.
func normalizeHost(h string, bracketed bool) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host: %w", ErrInvalidTarget)
	}
	if bracketed || strings.Contains(h, ":") {
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return "", fmt.Errorf("host %q is not an IPv6 address: %w", h, ErrInvalidTarget)
		}
		if a.Zone() != "" {
			return "", fmt.Errorf("host %q: IPv6 zone not allowed: %w", h, ErrInvalidTarget)
		}
		return a.String(), nil
	}
	if !utf8.ValidString(h) {
		return "", fmt.Errorf("host %q is not valid UTF-8: %w", h, ErrInvalidTarget)
	}
	// Mapping comes first: it turns fullwidth digits and ideographic full
	// stops into ASCII, so "１２７。０。０。１" is caught as 127.0.0.1 below.
	name, err := idnaProfile.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("host %q is not a valid domain name: %w", h, ErrInvalidTarget)
	}
	// A punycode result must map to itself, or the same host would be
	// named differently the next time round.
	if name != h && strings.Contains(name, "xn--") {
		if again, err := idnaProfile.ToASCII(name); err != nil || again != name {
			return "", fmt.Errorf("host %q is not a valid domain name: %w", h, ErrInvalidTarget)
		}
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return "", fmt.Errorf("host %q: empty name: %w", h, ErrInvalidTarget)
	}
	labels := strings.Split(name, ".")
	if endsInNumber(labels) {
		a, ok := parseIPv4(labels)
		if !ok {
			return "", fmt.Errorf("host %q ends in a number but is not an IPv4 address: %w", h, ErrInvalidTarget)
		}
		return a.String(), nil
	}
	if err := checkName(name, labels); err != nil {
		return "", fmt.Errorf("host %q: %w", h, err)
	}
	return name, nil
}

// endsInNumber reports whether the last label is all digits or parses as an
// IPv4 number (such as 0x7f), in which case the host must be an IPv4 address.
func endsInNumber(labels []string) bool {
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// checkName checks an ASCII name after mapping: labels of 1 to 63 bytes of
// lowercase letters, digits, hyphen and underscore, at most 253 bytes in all.
func checkName(name string, labels []string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("name longer than %d bytes: %w", maxNameLen, ErrInvalidTarget)
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabelLen {
			return fmt.Errorf("label %q: length must be 1 to %d: %w", l, maxLabelLen, ErrInvalidTarget)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q: character %q not allowed: %w", l, c, ErrInvalidTarget)
			}
		}
	}
	return nil
}

// parseIPv4 parses the dotted parts of an IPv4 address the way the WHATWG
// URL standard (and inet_aton) does: one to four parts, each decimal, octal
// with a leading 0, or hex with a leading 0x; the last part fills the
// remaining bytes.
func parseIPv4(parts []string) (netip.Addr, bool) {
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Number parses one part of an IPv4 address. Values above 2^32 are
// reported as 2^32 so that callers reject them without overflow.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	const limit = 1 << 32
	var n uint64
	for i := 0; i < len(s); i++ {
		d, ok := digitValue(s[i])
		if !ok || d >= base {
			return 0, false
		}
		if n < limit {
			n = n*base + d
		}
	}
	return min(n, limit), true
}

// digitValue returns the value of a hex digit.
func digitValue(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// joinHostPort is net.JoinHostPort for a normalised host.
func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
