package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/shoji-rbi/shoji/isolation/egress"
	"golang.org/x/net/publicsuffix"
)

// ErrInvalidPattern is matched (errors.Is) by the errors of
// CanonicalPattern and CanonicalHost.
var ErrInvalidPattern = errors.New("invalid pattern")

// patternError is a pattern's problem. Its text is only the problem, so
// Validate can name the rule before it; errors.Is matches ErrInvalidPattern.
type patternError struct{ msg string }

func (e *patternError) Error() string        { return e.msg }
func (e *patternError) Is(target error) bool { return target == ErrInvalidPattern }

// pattern is a parsed rule pattern.
type pattern struct {
	text string // canonical text, named in decisions

	// A CIDR pattern sets cidr and prefix; a host pattern the rest.
	cidr   bool
	prefix netip.Prefix

	host     string // normalised name, or the suffix of a wildcard
	wildcard bool   // matches names under host, not host itself
	path     string // decoded path prefix without dot segments; "" for none

	port int // 0: ports 80 and 443
}

// Limits on CIDR rules. Wider ranges are refused as almost certainly a
// mistake; an admin allows an intranet site, not a whole address family.
const (
	minBits4 = 8
	minBits6 = 16
)

// neverAllowed are ranges no CIDR rule may touch: not unicast, or the cloud
// metadata service.
var neverAllowed = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// loopback ranges may be allowed only one address and one port at a time:
// the broker itself listens on loopback.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// CanonicalPattern parses a rule pattern (see Rule) and returns its
// canonical text: scheme ("http://", "https://") and userinfo dropped, host
// lowercase, without trailing dot, IDN as punycode, percent-encoding of the
// host decoded, the path percent-decoded, without dot segments and
// re-escaped, and a CIDR range in netip's form. The error names what is
// wrong and wraps ErrInvalidPattern.
func CanonicalPattern(s string) (string, error) {
	p, err := parsePattern(s)
	if err != nil {
		return "", err
	}
	return p.text, nil
}

// parsePattern parses one rule pattern.
func parsePattern(s string) (pattern, error) {
	switch {
	case s == "":
		return pattern{}, invalid("empty")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return pattern{}, invalid("contains a space")
	}
	lower := strings.ToLower(s)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, scheme) {
			s = s[len(scheme):]
			break
		}
	}
	switch {
	case strings.Contains(s, "://"):
		return pattern{}, invalid("scheme not allowed: give a host, host/path or CIDR range")
	case strings.ContainsAny(s, "?#"):
		return pattern{}, invalid("query or fragment not allowed")
	}
	if p, ok, err := parseCIDRPattern(s); ok {
		return p, err
	}
	return parseHostPattern(s)
}

// invalid returns a patternError.
func invalid(format string, args ...any) error {
	return &patternError{msg: fmt.Sprintf(format, args...)}
}

// parseCIDRPattern parses "10.1.2.0/24", "10.1.2.3/32:8443", "fd00::/64"
// and "[fd00::/64]:8443". ok is false when s is not a CIDR pattern at all.
func parseCIDRPattern(s string) (p pattern, ok bool, err error) {
	var prefixText, portText string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || !strings.Contains(s[:end], "/") {
			return pattern{}, false, nil
		}
		prefixText, portText = s[1:end], s[end+1:]
		if portText != "" && !strings.HasPrefix(portText, ":") {
			return pattern{}, true, invalid("unexpected %q after \"]\"", portText)
		}
		portText = strings.TrimPrefix(portText, ":")
		if portText == "" && end+1 < len(s) {
			return pattern{}, true, invalid("empty port")
		}
	} else {
		head, tail, found := strings.Cut(s, "/")
		if !found {
			return pattern{}, false, nil
		}
		if _, err := netip.ParseAddr(head); err != nil {
			return pattern{}, false, nil
		}
		if strings.Contains(tail, "/") {
			return pattern{}, true, invalid("a CIDR range takes no path")
		}
		bits, port, hasPort := strings.Cut(tail, ":")
		if hasPort && port == "" {
			return pattern{}, true, invalid("empty port")
		}
		prefixText, portText = head+"/"+bits, port
	}
	p.cidr = true
	prefix, err := netip.ParsePrefix(prefixText)
	if err != nil {
		return pattern{}, true, invalid("bad CIDR range %q", prefixText)
	}
	if portText != "" {
		if p.port, err = parsePort(portText); err != nil {
			return pattern{}, true, err
		}
	}
	if err := checkPrefix(prefix, p.port); err != nil {
		return pattern{}, true, err
	}
	p.prefix = prefix
	p.text = prefix.String()
	if p.port != 0 {
		if prefix.Addr().Is6() {
			p.text = "[" + p.text + "]"
		}
		p.text += ":" + strconv.Itoa(p.port)
	}
	return p, true, nil
}

// checkPrefix refuses CIDR ranges that are malformed, too wide, or cover
// addresses no rule may allow.
func checkPrefix(prefix netip.Prefix, port int) error {
	a := prefix.Addr()
	switch {
	case prefix != prefix.Masked():
		return invalid("host bits set in %s: did you mean %s?", prefix, prefix.Masked())
	case a.Is4In6():
		return invalid("IPv4-mapped range %s: write it as IPv4", prefix)
	case a.Is4() && prefix.Bits() < minBits4, a.Is6() && prefix.Bits() < minBits6:
		return invalid("range %s too wide (at most /%d for IPv4, /%d for IPv6)", prefix, minBits4, minBits6)
	}
	for _, n := range neverAllowed {
		if prefix.Overlaps(n.prefix) {
			return invalid("range %s covers %s addresses, which are never allowed", prefix, n.class)
		}
	}
	for _, lo := range loopback {
		if prefix.Overlaps(lo) && (!prefix.IsSingleIP() || port == 0) {
			return invalid("loopback: allow a single address with an explicit port, such as %s/%d:8080", a, a.BitLen())
		}
	}
	return nil
}

// parsePort parses a decimal port 1..65535.
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, invalid("bad port %q", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, invalid("bad port %q", s)
	}
	return n, nil
}

// parseHostPattern parses "[*.]host[:port][/path]", userinfo dropped.
func parseHostPattern(s string) (pattern, error) {
	hostport, rawPath, hasPath := strings.Cut(s, "/")
	if i := strings.LastIndexByte(hostport, '@'); i >= 0 {
		hostport = hostport[i+1:]
	}
	var p pattern
	if strings.HasPrefix(hostport, "*.") {
		p.wildcard, hostport = true, hostport[2:]
	}
	if strings.Contains(hostport, "*") {
		return pattern{}, invalid("wildcard only as a leading \"*.\" label")
	}
	if strings.HasPrefix(hostport, "[") || strings.Count(hostport, ":") > 1 {
		return pattern{}, invalid("IPv6 address: use a CIDR rule such as [2001:db8::1/128]:443")
	}
	host, portText, hasPort := strings.Cut(hostport, ":")
	if hasPort {
		var err error
		if p.port, err = parsePort(portText); err != nil {
			return pattern{}, err
		}
	}
	name, err := normalizeName(host)
	if err != nil {
		return pattern{}, err
	}
	p.host = name
	if a, err := netip.ParseAddr(name); err == nil {
		return pattern{}, invalid("IP address %s: use a CIDR rule such as %s/%d", a, a, a.BitLen())
	}
	if p.wildcard {
		if ps, _ := publicsuffix.PublicSuffix(name); ps == name {
			return pattern{}, invalid("wildcard over a public suffix")
		}
	}
	if hasPath {
		clean, ok := cleanPath("/" + rawPath)
		if !ok {
			return pattern{}, invalid("path percent-encoded too many times")
		}
		if clean != "/" {
			p.path = clean
		}
	}
	p.text = p.canonical()
	return p, nil
}

// normalizeName percent-decodes a host and normalises it with
// egress.Normalize, so rules and requests are spelled alike.
func normalizeName(h string) (string, error) {
	if h == "" {
		return "", invalid("empty host")
	}
	decoded, err := url.PathUnescape(h)
	if err != nil {
		return "", invalid("bad percent-encoding in host %q", h)
	}
	name, _, err := egress.Normalize(net.JoinHostPort(decoded, "443"))
	if err != nil {
		return "", invalid("bad host %q: %v", h, errors.Unwrap(err))
	}
	return name, nil
}

// canonical is a host pattern's canonical text.
func (p pattern) canonical() string {
	var b strings.Builder
	if p.wildcard {
		b.WriteString("*.")
	}
	b.WriteString(p.host)
	if p.port != 0 {
		b.WriteString(":" + strconv.Itoa(p.port))
	}
	if p.path != "" {
		b.WriteString((&url.URL{Path: p.path}).EscapedPath())
	}
	return b.String()
}

// matchHost reports whether a host pattern covers the normalised name.
func (p pattern) matchHost(name string) bool {
	if p.wildcard {
		return underDomain(name, p.host)
	}
	return name == p.host
}

// underDomain reports whether name is a proper subdomain of domain.
func underDomain(name, domain string) bool {
	return len(name) > len(domain)+1 && strings.HasSuffix(name, domain) &&
		name[len(name)-len(domain)-1] == '.'
}

// matchPort reports whether the pattern allows port: its own port, or 80
// and 443 when it names none.
func (p pattern) matchPort(port int) bool {
	if p.port == 0 {
		return port == 80 || port == 443
	}
	return port == p.port
}

// matchPath reports whether the pattern's path prefix covers a cleaned
// request path: the same path, or a path below it by whole segments
// ("/guidelines/" and "/guidelines" both cover "/guidelines/x" and
// "/guidelines", but not "/guidelinesx").
func (p pattern) matchPath(path string) bool {
	prefix := strings.TrimSuffix(p.path, "/")
	return p.path == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// CanonicalHost normalises a blocked host: a name, not a pattern, without
// port, path or wildcard. The error wraps ErrInvalidPattern.
func CanonicalHost(s string) (string, error) {
	switch {
	case s == "":
		return "", invalid("empty")
	case strings.ContainsFunc(s, unicode.IsSpace):
		return "", invalid("contains a space")
	case strings.HasPrefix(s, "*."):
		return "", invalid("a blocked host covers every name under it already: drop \"*.\"")
	case strings.ContainsAny(s, "*/:@?#[]"):
		return "", invalid("give a host name only, without scheme, port, path or wildcard")
	}
	name, err := normalizeName(s)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", invalid("IP address %s: block host names (an address is reachable only through a CIDR rule: remove that rule)", name)
	}
	return name, nil
}
