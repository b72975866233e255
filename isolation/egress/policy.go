package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/net/publicsuffix"
)

// Rules the proxy itself names in a Decision or Event, beside the rules of a
// Policy.
const (
	// RuleDefaultDeny is the rule of a request no allowlist entry matched.
	RuleDefaultDeny = "default-deny"
	// RuleAddress is the rule of a request the policy allowed but whose
	// address is not public unicast and not among Config.AllowAddrs.
	RuleAddress = "address-check"
	// RuleResolve is the rule of a request whose host did not resolve.
	RuleResolve = "resolve"
	// RuleBadRequest is the rule of a request that is not a well-formed
	// proxy request: origin-form, unknown scheme, or a malformed target.
	RuleBadRequest = "bad-request"
	// RuleNoPolicy is the rule of every request while no policy is set.
	RuleNoPolicy = "no-policy"
	// RuleNotOwner is the rule of a connection refused because it did not
	// come from the session's own browser (NET-3).
	RuleNotOwner = "not-owner"
	// RuleBackground is the rule of a request of the browser's own
	// background services, addressed to isolation.BackgroundDomain: refused
	// before any policy is asked (Event.Background).
	RuleBackground = "browser-background"
)

// ReasonBackground is the Reason of a RuleBackground deny.
const ReasonBackground = "the browser's own background request, not a page's"

// ReasonNotOwner is the Reason of a RuleNotOwner deny.
const ReasonNotOwner = "connection from a process that is not this session's browser"

// ReasonNotInAllowlist is the Reason of a default deny.
const ReasonNotInAllowlist = "host not in allowlist"

// Decision is a policy's verdict on one host and port. Every decision names
// the rule that made it, and a deny says why.
type Decision struct {
	Allow  bool
	Rule   string
	Reason string
}

// Policy decides which hosts and ports a session may reach. The host is
// already normalised by Normalize: lowercase, no trailing dot, punycode,
// IPv6 without brackets, IP literals in canonical form. Decide is called
// concurrently and must not block.
type Policy interface {
	Decide(host string, port int) Decision
}

// AddressPolicy allows a session to reach addresses that are not public
// unicast, such as an intranet guideline server an admin allowed by CIDR.
// AllowAddr is asked only about such an address, after the Policy allowed the
// host and port, with the normalised host the address was resolved from (or
// the IP literal itself). It returns the rule that allowed it, which goes
// into the Event's AddrRule. AllowAddr is called concurrently and must not
// block; an implementation may read a policy that changes at any time.
type AddressPolicy interface {
	AllowAddr(host string, addr netip.Addr, port int) (ok bool, rule string)
}

// ErrInvalidEntry is wrapped by NewStaticPolicy errors.
var ErrInvalidEntry = errors.New("invalid allowlist entry")

// StaticPolicy is a fixed allowlist of hosts, each optionally with a port or
// as a wildcard over its subdomains. It is safe for concurrent use.
type StaticPolicy struct {
	entries []staticEntry
}

// staticEntry is one parsed allowlist entry.
type staticEntry struct {
	rule     string // canonical text, named in decisions
	host     string // normalised host, or the suffix of a wildcard
	wildcard bool   // host matches subdomains of this suffix, not itself
	port     int    // 0: ports 80 and 443
}

// NewStaticPolicy parses allowlist entries of the forms "host", "host:port"
// and "*.host" (subdomains of host, not host itself; also "*.host:port").
// Hosts are normalised as by Normalize; an IP-literal entry ("192.0.2.7",
// "[2001:db8::1]:8443") matches only that literal in a request. An entry
// without a port allows ports 80 and 443. Empty entries, spaces, schemes,
// paths, bad ports, a wildcard anywhere but a leading "*." label, and
// wildcards over a public suffix ("*.jp", "*.co.jp") are rejected with an
// error naming the entry. Anything no entry matches is denied with Reason
// ReasonNotInAllowlist.
func NewStaticPolicy(entries []string) (*StaticPolicy, error) {
	p := &StaticPolicy{entries: make([]staticEntry, 0, len(entries))}
	for i, e := range entries {
		se, err := parseEntry(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i, e, err)
		}
		p.entries = append(p.entries, se)
	}
	return p, nil
}

// parseEntry parses one allowlist entry.
func parseEntry(e string) (staticEntry, error) {
	switch {
	case e == "":
		return staticEntry{}, fmt.Errorf("empty: %w", ErrInvalidEntry)
	case strings.ContainsFunc(e, unicode.IsSpace):
		return staticEntry{}, fmt.Errorf("contains a space: %w", ErrInvalidEntry)
	case strings.Contains(e, "://"):
		return staticEntry{}, fmt.Errorf("scheme not allowed, give the host only: %w", ErrInvalidEntry)
	case strings.ContainsAny(e, "/?#@"):
		return staticEntry{}, fmt.Errorf("path, query or user not allowed, give the host only: %w", ErrInvalidEntry)
	}
	var se staticEntry
	rest := e
	if strings.HasPrefix(rest, "*.") {
		se.wildcard, rest = true, rest[2:]
	}
	if strings.Contains(rest, "*") {
		return staticEntry{}, fmt.Errorf("wildcard only as a leading \"*.\" label: %w", ErrInvalidEntry)
	}
	host, portText, hasPort, err := splitEntry(rest)
	if err != nil {
		return staticEntry{}, err
	}
	if hasPort {
		if se.port, err = parsePort(portText); err != nil {
			return staticEntry{}, fmt.Errorf("bad port %q: %w", portText, ErrInvalidEntry)
		}
	}
	se.host, err = normalizeHost(host, strings.HasPrefix(rest, "["))
	if err != nil {
		return staticEntry{}, fmt.Errorf("bad host %q: %w: %w", host, err, ErrInvalidEntry)
	}
	if se.wildcard {
		if _, err := netip.ParseAddr(se.host); err == nil {
			return staticEntry{}, fmt.Errorf("wildcard over an IP address: %w", ErrInvalidEntry)
		}
		if ps, _ := publicsuffix.PublicSuffix(se.host); ps == se.host {
			return staticEntry{}, fmt.Errorf("wildcard over public suffix %q: %w", se.host, ErrInvalidEntry)
		}
	}
	se.rule = se.canonical()
	return se, nil
}

// splitEntry splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6
// address into host and port text; hasPort says a port separator was there.
func splitEntry(s string) (host, port string, hasPort bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", false, fmt.Errorf("missing \"]\": %w", ErrInvalidEntry)
		}
		host, after := s[1:end], s[end+1:]
		switch {
		case after == "":
			return host, "", false, nil
		case strings.HasPrefix(after, ":"):
			return host, after[1:], true, nil
		}
		return "", "", false, fmt.Errorf("unexpected %q after \"]\": %w", after, ErrInvalidEntry)
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, nil
	case 1:
		host, port, _ := strings.Cut(s, ":")
		return host, port, true, nil
	}
	return s, "", false, nil // a bare IPv6 address; normalizeHost checks it
}

// canonical is the entry's normalised text, used as its rule name.
func (se staticEntry) canonical() string {
	h := se.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if se.wildcard {
		h = "*." + h
	}
	if se.port != 0 {
		h += ":" + strconv.Itoa(se.port)
	}
	return h
}

// matchHost reports whether the entry covers host, ignoring the port.
func (se staticEntry) matchHost(host string) bool {
	if se.wildcard {
		return len(host) > len(se.host)+1 && strings.HasSuffix(host, se.host) &&
			host[len(host)-len(se.host)-1] == '.'
	}
	return host == se.host
}

// matchPort reports whether the entry allows port.
func (se staticEntry) matchPort(port int) bool {
	if se.port == 0 {
		return port == 80 || port == 443
	}
	return port == se.port
}

// Decide allows host:port if an entry matches, naming the first such entry
// as the rule. An IP-literal host matches only an entry with that literal
// (a wildcard never matches an IP address).
func (p *StaticPolicy) Decide(host string, port int) Decision {
	_, ipErr := netip.ParseAddr(host)
	isIP := ipErr == nil
	hostMatched := false
	for _, se := range p.entries {
		if isIP && se.wildcard || !se.matchHost(host) {
			continue
		}
		if se.matchPort(port) {
			return Decision{Allow: true, Rule: se.rule}
		}
		hostMatched = true
	}
	if hostMatched {
		return Decision{Rule: RuleDefaultDeny, Reason: fmt.Sprintf("port %d not in allowlist for this host", port)}
	}
	return Decision{Rule: RuleDefaultDeny, Reason: ReasonNotInAllowlist}
}

// Entries returns the canonical text of the policy's entries, in order.
func (p *StaticPolicy) Entries() []string {
	out := make([]string, len(p.entries))
	for i, se := range p.entries {
		out[i] = se.rule
	}
	return out
}

// denyAll is the policy in force when none is set.
type denyAll struct{}

// Decide denies everything.
func (denyAll) Decide(string, int) Decision {
	return Decision{Rule: RuleNoPolicy, Reason: "no egress policy set"}
}
