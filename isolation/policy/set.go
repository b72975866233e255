package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/isolation/egress"
)

// Rules this package names in decisions, beside rule patterns and the
// egress package's RuleDefaultDeny, RuleAddress and RuleBadRequest.
const (
	// RuleNoInternet decides for the built-in profile "" that denies
	// everything: a session no group, role or default gives a profile.
	RuleNoInternet = "no-internet"
	// RuleUnknownProfile decides for a profile name the policy lacks (it
	// was removed while a session used it). Everything is denied.
	RuleUnknownProfile = "unknown-profile"
	// RuleDefaultAllow decides a public host a denylist profile does not
	// deny.
	RuleDefaultAllow = "default-allow"
	// RuleScheme decides a URL whose scheme is not http, https, ws or wss.
	RuleScheme = "scheme"
	// RuleBlockedPrefix starts the rule of a blocked host's deny:
	// "blocked: evil.example".
	RuleBlockedPrefix = "blocked: "
)

// Result is the verdict on one URL (CheckURL) or host (Decide). Every
// result names the rule that decided; a deny says why.
type Result struct {
	Allow bool `json:"allow"`
	// Rule is a rule's canonical pattern or one of the Rule* constants.
	Rule string `json:"rule"`
	// Reason says why a request was denied; empty for an allow.
	Reason string `json:"reason,omitempty"`
	// Host and Port are the normalised destination, empty and 0 when the
	// URL could not be parsed.
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"`
	// Trusted says the allowing rule marks a trusted medical site (ALLOW-4).
	Trusted bool `json:"trusted,omitempty"`
	// Uploads says the allowing rule allows file uploads (XFER-7).
	Uploads bool `json:"uploads,omitempty"`
}

// Decision converts r to the egress proxy's form.
func (r Result) Decision() egress.Decision {
	return egress.Decision{Allow: r.Allow, Rule: r.Rule, Reason: r.Reason}
}

// Set is a compiled, immutable policy, safe for concurrent use. Rules and
// emergencies stop matching at their expiry by the Set's clock (time.Now,
// or the one given to WithClock or NewEngine), read at each call: no
// goroutine is needed to expire them.
type Set struct {
	doc         *Document
	now         func() time.Time
	profiles    map[string]*profile
	groups      []termGroup
	byGroup     map[string]string // group → profile
	byRole      map[string]string // role → profile
	def         string
	emergencies map[string]emergency // by group
	blocked     []blocked
	static      []staticRule
}

// staticRule is a compiled StaticRule.
type staticRule struct {
	source string
	allow  *egress.StaticPolicy
}

// profile is a compiled Profile.
type profile struct {
	name      string
	mode      Mode
	rules     []rule    // most specific first (compareSpecificity)
	transfers Transfers // resolved (Transfers.Resolve)
}

// rule is a compiled Rule.
type rule struct {
	pattern
	uploads, trusted bool
	expires          time.Time
}

// live reports whether the rule has not expired at now.
func (r *rule) live(now time.Time) bool {
	return r.expires.IsZero() || now.Before(r.expires)
}

// termGroup is a compiled Group.
type termGroup struct {
	name     string
	prefixes []netip.Prefix
}

// emergency is a compiled Emergency.
type emergency struct {
	profile string
	expires time.Time
}

// blocked is a compiled BlockedHost.
type blocked struct {
	host, reason string
}

// Compile validates d (see Validate) and builds a Set from a copy of it,
// with time.Now as its clock. On error it returns the *ValidationError.
func Compile(d *Document) (*Set, error) {
	s, err := build(d)
	if err != nil {
		return nil, err
	}
	s.now = time.Now
	return s, nil
}

// WithClock returns a Set with the same policy that reads the time from
// now. It is for tests and for the Engine.
func (s *Set) WithClock(now func() time.Time) *Set {
	c := *s
	c.now = now
	return &c
}

// Document returns a copy of the document the Set was compiled from.
func (s *Set) Document() *Document { return s.doc.Clone() }

// Version returns the document's version.
func (s *Set) Version() int { return s.doc.Version }

// GroupOf returns the terminal group whose ranges contain the terminal's
// address (IPv4-mapped addresses are read as IPv4), or "".
func (s *Set) GroupOf(terminal netip.Addr) string {
	if !terminal.IsValid() {
		return ""
	}
	a := terminal.WithZone("").Unmap()
	for _, g := range s.groups {
		for _, p := range g.prefixes {
			if p.Contains(a) {
				return g.name
			}
		}
	}
	return ""
}

// ProfileFor returns the profile of a session: the unexpired emergency
// profile of the terminal's group, else the profile assigned to that group,
// else the profile assigned to the role, else the default, else "" (the
// built-in profile that denies everything). user is not consulted yet; it
// is there for per-user assignments.
func (s *Set) ProfileFor(user, role string, terminal netip.Addr) string {
	if g := s.GroupOf(terminal); g != "" {
		if e, ok := s.emergencies[g]; ok && s.now().Before(e.expires) {
			return e.profile
		}
		if p, ok := s.byGroup[g]; ok {
			return p
		}
	}
	if p, ok := s.byRole[role]; ok {
		return p
	}
	return s.def
}

// Decide is the proxy's host-level decision for host:port in a profile. A
// host with path rules is allowed when any path rule of it allows the port;
// the browser's Fetch layer enforces the path (CheckURL). The host is
// normalised again with egress.Normalize, so any spelling works.
func (s *Set) Decide(profileName, host string, port int) egress.Decision {
	h, p, err := egress.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return egress.Decision{Rule: egress.RuleBadRequest, Reason: "invalid host or port"}
	}
	t := target{host: h, port: p}
	if a, err := netip.ParseAddr(h); err == nil {
		t.addr = a
	}
	return s.evaluate(profileName, t, false).Decision()
}

// CheckURL decides a full URL for the browser's Fetch layer and the admin
// "test a URL" box. The URL is read as a browser reads it (userinfo dropped:
// "https://allowed.jp@evil.test/" is evil.test; host percent-decoded and
// normalised; port defaulted by scheme; path percent-decoded with dot
// segments removed, so "/guidelines/../admin" is "/admin"). Schemes other
// than http, https, ws and wss are denied with RuleScheme, malformed URLs
// with egress.RuleBadRequest.
func (s *Set) CheckURL(profileName, rawURL string) Result {
	t, err := parseTarget(rawURL)
	switch {
	case errors.Is(err, errScheme):
		return Result{Rule: RuleScheme, Reason: err.Error()}
	case err != nil:
		return Result{Rule: egress.RuleBadRequest, Reason: err.Error()}
	}
	return s.evaluate(profileName, t, true)
}

// AllowAddr reports whether a profile allows the proxy to dial addr:port
// for host although the address is not public: true only when an unexpired
// CIDR rule of that allowlist profile covers the address (IPv4-mapped read
// as IPv4) and the port, and host is not blocked. rule names the CIDR rule,
// or the reason for refusing (egress.RuleAddress, or the blocked host).
func (s *Set) AllowAddr(profileName, host string, addr netip.Addr, port int) (ok bool, rule string) {
	if host != "" {
		if h, _, err := egress.Normalize(net.JoinHostPort(host, "443")); err == nil {
			if b, ok := s.blockedHost(h); ok {
				return false, RuleBlockedPrefix + b.host
			}
		}
	}
	p := s.profiles[profileName]
	if p == nil || p.mode != ModeAllowlist || !addr.IsValid() || addr.Zone() != "" {
		return false, egress.RuleAddress
	}
	if r := p.matchAddr(addr.Unmap(), port, s.now()); r != nil {
		return true, r.text
	}
	return false, egress.RuleAddress
}

// blockedHost returns the block covering a normalised host, if any.
func (s *Set) blockedHost(host string) (blocked, bool) {
	for _, b := range s.blocked {
		if host == b.host || underDomain(host, b.host) {
			return b, true
		}
	}
	return blocked{}, false
}

// evaluate decides a target. withPath says the path is known (CheckURL);
// without it path rules decide at host level. What the profile does not
// allow, the read-only layer (Document.Static) may, unless the host is
// blocked everywhere.
func (s *Set) evaluate(profileName string, t target, withPath bool) Result {
	r := s.evaluateProfile(profileName, t, withPath)
	if r.Allow || strings.HasPrefix(r.Rule, RuleBlockedPrefix) {
		return r
	}
	for _, st := range s.static {
		if d := st.allow.Decide(t.host, t.port); d.Allow {
			return Result{Allow: true, Rule: st.source + ": " + d.Rule, Host: t.host, Port: t.port}
		}
	}
	return r
}

// evaluateProfile decides a target by the blocked hosts and the profile.
func (s *Set) evaluateProfile(profileName string, t target, withPath bool) Result {
	res := func(r Result) Result {
		r.Host, r.Port = t.host, t.port
		return r
	}
	if b, ok := s.blockedHost(t.host); ok {
		reason := "host blocked everywhere"
		if b.reason != "" {
			reason += ": " + b.reason
		}
		return res(Result{Rule: RuleBlockedPrefix + b.host, Reason: reason})
	}
	if profileName == "" {
		return res(Result{Rule: RuleNoInternet, Reason: "no Internet access for this session"})
	}
	p := s.profiles[profileName]
	if p == nil {
		return res(Result{Rule: RuleUnknownProfile, Reason: fmt.Sprintf("profile %q does not exist", profileName)})
	}
	now := s.now()
	switch {
	case t.isIP():
		return res(p.decideAddr(t, now))
	case p.mode == ModeDenylist:
		return res(p.decideDeny(t, withPath, now))
	}
	return res(p.decideAllow(t, withPath, now))
}

// allowed is the Result of a rule that allows.
func allowed(r *rule) Result {
	return Result{Allow: true, Rule: r.text, Trusted: r.trusted, Uploads: r.uploads}
}

// matchAddr returns the first live CIDR rule covering addr and port.
func (p *profile) matchAddr(addr netip.Addr, port int, now time.Time) *rule {
	for i := range p.rules {
		r := &p.rules[i]
		if r.cidr && r.live(now) && r.prefix.Contains(addr) && r.matchPort(port) {
			return r
		}
	}
	return nil
}

// decideAddr decides an IP-literal target. Only a CIDR rule of an
// allowlist profile allows one; a denylist profile allows public addresses
// on ports 80 and 443 and never a non-public one.
func (p *profile) decideAddr(t target, now time.Time) Result {
	public := egress.IsPublicUnicast(t.addr)
	if p.mode == ModeAllowlist {
		if r := p.matchAddr(t.addr.Unmap(), t.port, now); r != nil {
			return allowed(r)
		}
		if public {
			return Result{Rule: egress.RuleDefaultDeny, Reason: "IP address not covered by a CIDR rule"}
		}
	}
	switch {
	case !public:
		return Result{Rule: egress.RuleAddress, Reason: fmt.Sprintf("address %s is not public", t.addr)}
	case t.port != 80 && t.port != 443:
		return Result{Rule: egress.RuleDefaultDeny, Reason: fmt.Sprintf("port %d not allowed", t.port)}
	}
	return Result{Allow: true, Rule: RuleDefaultAllow}
}

// decideAllow decides a name in an allowlist profile: the most specific
// live rule matching host, port and (withPath) path allows. Without the
// path, a rule without path is preferred, and a path rule allows the host.
func (p *profile) decideAllow(t target, withPath bool, now time.Time) Result {
	var hostMatched, portMatched bool
	var pathRule *rule
	for i := range p.rules {
		r := &p.rules[i]
		if r.cidr || !r.live(now) || !r.matchHost(t.host) {
			continue
		}
		hostMatched = true
		if !r.matchPort(t.port) {
			continue
		}
		portMatched = true
		switch {
		case withPath && r.matchPath(t.path), !withPath && r.path == "":
			return allowed(r)
		case !withPath && pathRule == nil:
			pathRule = r
		}
	}
	switch {
	case pathRule != nil:
		return allowed(pathRule)
	case portMatched:
		return Result{Rule: egress.RuleDefaultDeny, Reason: "path not in allowlist for this host"}
	case hostMatched:
		return Result{Rule: egress.RuleDefaultDeny, Reason: fmt.Sprintf("port %d not in allowlist for this host", t.port)}
	}
	return Result{Rule: egress.RuleDefaultDeny, Reason: egress.ReasonNotInAllowlist}
}

// decideDeny decides a name in a denylist profile: a live rule matching
// the host, its port if it names one (else every port), and its path if it
// has one (only when withPath) denies; other hosts are allowed on ports 80
// and 443.
func (p *profile) decideDeny(t target, withPath bool, now time.Time) Result {
	for i := range p.rules {
		r := &p.rules[i]
		if !r.live(now) || !r.matchHost(t.host) || r.port != 0 && r.port != t.port {
			continue
		}
		if r.path != "" && (!withPath || !r.matchPath(t.path)) {
			continue
		}
		return Result{Rule: r.text, Reason: fmt.Sprintf("denied by profile %q", p.name)}
	}
	if t.port != 80 && t.port != 443 {
		return Result{Rule: egress.RuleDefaultDeny, Reason: fmt.Sprintf("port %d not allowed", t.port)}
	}
	return Result{Allow: true, Rule: RuleDefaultAllow}
}

// ForProfile returns an egress.Policy for one profile of this Set. Its
// dynamic type is *ProfilePolicy, which also offers AllowAddr and CheckURL.
// It keeps deciding by this Set; Engine.PolicyFor follows policy changes.
func (s *Set) ForProfile(profileName string) egress.Policy {
	return &ProfilePolicy{profile: profileName, current: func() *Set { return s }}
}

// ProfilePolicy is the policy of one profile, as the egress proxy and the
// browser's Fetch layer of one session use it: an egress.Policy and an
// egress.AddressPolicy. It is safe for concurrent use.
type ProfilePolicy struct {
	profile string
	current func() *Set
}

var (
	_ egress.Policy        = (*ProfilePolicy)(nil)
	_ egress.AddressPolicy = (*ProfilePolicy)(nil)
)

// Profile returns the profile's name.
func (pp *ProfilePolicy) Profile() string { return pp.profile }

// Decide implements egress.Policy with Set.Decide.
func (pp *ProfilePolicy) Decide(host string, port int) egress.Decision {
	return pp.current().Decide(pp.profile, host, port)
}

// AllowAddr is Set.AllowAddr for this profile.
func (pp *ProfilePolicy) AllowAddr(host string, addr netip.Addr, port int) (ok bool, rule string) {
	return pp.current().AllowAddr(pp.profile, host, addr, port)
}

// CheckURL is Set.CheckURL for this profile.
func (pp *ProfilePolicy) CheckURL(rawURL string) Result {
	return pp.current().CheckURL(pp.profile, rawURL)
}

// String names the profile for logs.
func (pp *ProfilePolicy) String() string {
	if pp.profile == "" {
		return "profile (no Internet)"
	}
	return "profile " + strconv.Quote(pp.profile)
}
