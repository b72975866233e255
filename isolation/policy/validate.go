package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is matched (errors.Is) by the errors of Validate, Compile and
// Engine.Swap.
var ErrInvalid = errors.New("invalid policy")

// maxNameLen bounds the names of groups, profiles and roles, in characters.
const maxNameLen = 64

// ValidationError lists every problem found in a Document, each naming the
// item exactly, e.g. `profile "ward": rule 3 "*.jp": wildcard over a public
// suffix`. Rules, terminal ranges, emergencies and blocked hosts are counted
// from 1.
type ValidationError struct {
	Problems []string
}

// Error returns the problems, separated by "; ".
func (e *ValidationError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems: %s", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate checks the whole document: names present, unique and printable;
// every rule pattern valid (see CanonicalPattern) and unique in its profile;
// CIDR rules and the uploads and trusted flags only in allowlist profiles;
// modes known; terminal ranges valid CIDRs that do not overlap another
// group's; every group, default and emergency naming a profile that exists;
// each group and role assigned to at most one profile; emergencies with a
// group, reason, author and expiry, at most one per group; blocked hosts
// valid and unique. It returns a *ValidationError listing every problem, or
// nil. Expired rules and emergencies are valid: they simply stop matching.
func (d *Document) Validate() error {
	_, err := build(d)
	return err
}

// builder compiles a Document into a Set and collects its problems.
type builder struct {
	set      *Set
	problems []string
}

// addf records a problem.
func (b *builder) addf(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// build compiles d, or returns a *ValidationError. The Set has no clock.
func build(d *Document) (*Set, error) {
	b := &builder{set: &Set{
		doc:         d.Clone(),
		profiles:    make(map[string]*profile, len(d.Profiles)),
		byGroup:     make(map[string]string),
		byRole:      make(map[string]string),
		emergencies: make(map[string]emergency),
		def:         d.Default,
	}}
	b.groups(d.Groups)
	b.profiles(d.Profiles)
	if d.Default != "" && b.set.profiles[d.Default] == nil {
		b.addf("default: profile %q does not exist", d.Default)
	}
	b.emergencies(d.Emergencies)
	b.blocked(d.Blocked)
	if len(b.problems) > 0 {
		return nil, &ValidationError{Problems: b.problems}
	}
	return b.set, nil
}

// checkName returns what is wrong with a group, profile or role name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "name is empty"
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "name has control characters or invalid UTF-8"
	case strings.TrimSpace(name) != name:
		return "name has leading or trailing spaces"
	case utf8.RuneCountInString(name) > maxNameLen:
		return fmt.Sprintf("name longer than %d characters", maxNameLen)
	}
	return ""
}

// label names the i-th (from 0) item of a kind for messages: `group "icu"`,
// or `group 2` when the name is empty.
func label(kind, name string, i int) string {
	if name == "" {
		return fmt.Sprintf("%s %d", kind, i+1)
	}
	return fmt.Sprintf("%s %q", kind, name)
}

func (b *builder) groups(groups []Group) {
	seen := map[string]bool{}
	for i, g := range groups {
		l := label("group", g.Name, i)
		if msg := checkName(g.Name); msg != "" {
			b.addf("%s: %s", l, msg)
		} else if seen[g.Name] {
			b.addf("%s: duplicate name", l)
		}
		seen[g.Name] = true
		tg := termGroup{name: g.Name}
		for j, t := range g.Terminals {
			prefix, err := parseTerminal(t)
			if err != nil {
				b.addf("%s: terminal range %d %q: %v", l, j+1, t, err)
				continue
			}
			for _, other := range b.set.groups {
				for _, op := range other.prefixes {
					if prefix.Overlaps(op) {
						b.addf("%s: terminal range %d %q overlaps %s of group %q", l, j+1, t, op, other.name)
					}
				}
			}
			tg.prefixes = append(tg.prefixes, prefix)
		}
		b.set.groups = append(b.set.groups, tg)
	}
}

// parseTerminal parses a terminal range "10.10.0.0/16" or a single address.
func parseTerminal(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errors.New("not a CIDR range or address")
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return netip.Prefix{}, errors.New("not a CIDR range or address")
	case p != p.Masked():
		return netip.Prefix{}, fmt.Errorf("host bits set: did you mean %s?", p.Masked())
	case p.Addr().Is4In6():
		return netip.Prefix{}, errors.New("IPv4-mapped range: write it as IPv4")
	}
	return p, nil
}

// hasGroup reports whether a group of that name was declared.
func (b *builder) hasGroup(name string) bool {
	return slices.ContainsFunc(b.set.groups, func(g termGroup) bool { return g.name == name })
}

func (b *builder) profiles(profiles []Profile) {
	// Assignments are checked after all profiles are known, so the
	// messages can name both profiles of a double assignment.
	for i, p := range profiles {
		l := label("profile", p.Name, i)
		if msg := checkName(p.Name); msg != "" {
			b.addf("%s: %s", l, msg)
		} else if b.set.profiles[p.Name] != nil {
			b.addf("%s: duplicate name", l)
		}
		cp := &profile{name: p.Name, mode: p.Mode}
		switch p.Mode {
		case "", ModeAllowlist:
			cp.mode = ModeAllowlist
		case ModeDenylist:
		default:
			b.addf("%s: mode %q: want %q or %q", l, p.Mode, ModeAllowlist, ModeDenylist)
		}
		b.rules(l, cp, p.Rules)
		if b.set.profiles[p.Name] == nil {
			b.set.profiles[p.Name] = cp
		}
		b.assign(l, "group", p.Name, p.Groups, b.set.byGroup)
		b.assign(l, "role", p.Name, p.Roles, b.set.byRole)
	}
}

// assign records a profile's group or role assignments, refusing unknown
// groups and names assigned twice.
func (b *builder) assign(l, kind, profileName string, names []string, to map[string]string) {
	for _, n := range names {
		if msg := checkName(n); msg != "" {
			b.addf("%s: %s %q: %s", l, kind, n, msg)
			continue
		}
		if kind == "group" && !b.hasGroup(n) {
			b.addf("%s: group %q does not exist", l, n)
			continue
		}
		if prev, ok := to[n]; ok {
			b.addf("%s: %s %q is already assigned to profile %q", l, kind, n, prev)
			continue
		}
		to[n] = profileName
	}
}

func (b *builder) rules(l string, p *profile, rules []Rule) {
	seen := map[string]int{}
	for j, r := range rules {
		rl := fmt.Sprintf("%s: rule %d %q", l, j+1, r.Pattern)
		pat, err := parsePattern(r.Pattern)
		if err != nil {
			b.addf("%s: %v", rl, err)
			continue
		}
		if k, dup := seen[pat.text]; dup {
			b.addf("%s: same as rule %d", rl, k)
			continue
		}
		seen[pat.text] = j + 1
		if p.mode == ModeDenylist {
			if pat.cidr {
				b.addf("%s: CIDR rules are allowed only in allowlist profiles (a denylist profile never allows non-public addresses)", rl)
				continue
			}
			if r.Uploads || r.Trusted {
				b.addf("%s: the uploads and trusted flags have no meaning in a denylist profile", rl)
				continue
			}
		}
		p.rules = append(p.rules, rule{pattern: pat, uploads: r.Uploads, trusted: r.Trusted, expires: r.Expires})
	}
	slices.SortStableFunc(p.rules, compareSpecificity)
}

// compareSpecificity orders rules most specific first: longer path, exact
// host before wildcard, longer host, explicit port before default ports.
func compareSpecificity(a, b rule) int {
	switch {
	case len(a.path) != len(b.path):
		return len(b.path) - len(a.path)
	case a.wildcard != b.wildcard:
		if a.wildcard {
			return 1
		}
		return -1
	case len(a.host) != len(b.host):
		return len(b.host) - len(a.host)
	case (a.port == 0) != (b.port == 0):
		if a.port == 0 {
			return 1
		}
		return -1
	}
	return 0
}

func (b *builder) emergencies(list []Emergency) {
	for i, e := range list {
		l := fmt.Sprintf("emergency %d", i+1)
		if e.Group != "" {
			l += fmt.Sprintf(" (group %q)", e.Group)
		}
		ok := true
		problem := func(format string, args ...any) {
			b.addf("%s: %s", l, fmt.Sprintf(format, args...))
			ok = false
		}
		switch {
		case e.Group == "":
			problem("group is required")
		case !b.hasGroup(e.Group):
			problem("group %q does not exist", e.Group)
		}
		switch {
		case e.Profile == "":
			problem("profile is required")
		case b.set.profiles[e.Profile] == nil:
			problem("profile %q does not exist", e.Profile)
		}
		if strings.TrimSpace(e.Reason) == "" {
			problem("reason is required")
		}
		if strings.TrimSpace(e.By) == "" {
			problem("by (who switched it on) is required")
		}
		if e.Expires.IsZero() {
			problem("expires is required")
		}
		if _, dup := b.set.emergencies[e.Group]; dup && e.Group != "" {
			problem("group already has an emergency: replace it instead")
		}
		if ok {
			b.set.emergencies[e.Group] = emergency{profile: e.Profile, expires: e.Expires}
		}
	}
}

func (b *builder) blocked(list []BlockedHost) {
	seen := map[string]int{}
	for i, bh := range list {
		l := fmt.Sprintf("blocked host %d %q", i+1, bh.Host)
		host, err := CanonicalHost(bh.Host)
		if err != nil {
			b.addf("%s: %v", l, err)
			continue
		}
		if k, dup := seen[host]; dup {
			b.addf("%s: same as blocked host %d", l, k)
			continue
		}
		seen[host] = i + 1
		b.set.blocked = append(b.set.blocked, blocked{host: host, reason: bh.Reason})
	}
}
