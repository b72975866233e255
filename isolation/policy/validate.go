package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shoji-rbi/shoji/isolation/egress"
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
// valid and unique; transfer policies with known actions ("approve" only
// for download and print), type rule entries that are classes or MIME
// patterns named once per direction, no upload rule allowing executables
// or scripts, sizes up to MaxTransferSize, clipboard limits up to
// MaxClipboardChars, and no uploads in a denylist profile. It returns a *ValidationError listing every problem, or
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
	b.static(d.Static)
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
		b.transfers(l, cp, p.Transfers)
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

// Why approve is refused in the directions where something waits.
const (
	uploadWaits    = "an upload cannot wait for an approver: the page is waiting for the file"
	copyWaits      = "a copy cannot wait for an approver: the clinician is pasting it now"
	pasteWaits     = "a paste cannot wait for an approver: the page is waiting for it"
	dangerousNever = "executables and scripts are never uploaded (a leak path)"
)

// transfers checks a profile's transfer policy and stores it resolved in
// p: actions known ("approve" only for download and print, where a file
// can wait for an approver); type rules with an action and valid entries,
// each named once per direction; no upload rule allowing executables or
// scripts; sizes from 0 to MaxTransferSize and clipboard limits from 0 to
// MaxClipboardChars; and no uploads in a denylist profile, which has no
// upload destinations.
func (b *builder) transfers(l string, p *profile, t *Transfers) {
	p.transfers = t.Resolve()
	if t == nil {
		return
	}
	l += ": transfers"
	b.filePolicy(l+": "+string(DirDownload), t.Download, "", false)
	b.filePolicy(l+": "+string(DirUpload), t.Upload, uploadWaits, true)
	b.filePolicy(l+": "+string(DirPrint), t.Print, "", false)
	b.textPolicy(l+": "+string(DirClipboardToTerminal), t.ClipboardOut, copyWaits)
	b.textPolicy(l+": "+string(DirClipboardToRemote), t.ClipboardIn, pasteWaits)
	uploads := t.Upload.Action == ActionAllow ||
		slices.ContainsFunc(t.Upload.Types, func(tr TypeRule) bool { return tr.Action == ActionAllow })
	if p.mode == ModeDenylist && uploads {
		b.addf("%s: upload: a denylist profile has no upload destinations (its rules cannot carry uploads: true), so uploads can never be allowed: leave upload off", l)
	}
}

// checkAction returns what is wrong with a transfer action, or "".
// noApprove says why approve is refused; "" accepts it.
func checkAction(a Action, noApprove string) string {
	switch a {
	case ActionOff, ActionAllow:
		return ""
	case ActionApprove:
		if noApprove == "" {
			return ""
		}
		return fmt.Sprintf(`action "approve": %s; use "off" or "allow"`, noApprove)
	}
	if noApprove != "" {
		return fmt.Sprintf(`action %q: want "off" or "allow"`, a)
	}
	return fmt.Sprintf(`action %q: want "off", "allow" or "approve"`, a)
}

func (b *builder) filePolicy(l string, fp FilePolicy, noApprove string, upload bool) {
	if fp.Action != "" {
		if msg := checkAction(fp.Action, noApprove); msg != "" {
			b.addf("%s: %s", l, msg)
		}
	}
	switch {
	case fp.MaxSize < 0:
		b.addf("%s: max_size %d is negative", l, int64(fp.MaxSize))
	case fp.MaxSize > MaxTransferSize:
		b.addf("%s: max_size %s is over the limit of %s", l, fp.MaxSize, MaxTransferSize)
	}
	seen := map[string]int{}
	for i, tr := range fp.Types {
		rl := fmt.Sprintf("%s: type rule %d", l, i+1)
		if tr.Action == "" {
			b.addf("%s: action is required", rl)
		} else if msg := checkAction(tr.Action, noApprove); msg != "" {
			b.addf("%s: %s", rl, msg)
		}
		if len(tr.Types) == 0 {
			b.addf("%s: types is empty", rl)
		}
		for _, e := range tr.Types {
			key, msg := checkTypeEntry(e)
			if msg != "" {
				b.addf("%s: %q: %s", rl, e, msg)
				continue
			}
			if k, dup := seen[key]; dup {
				b.addf("%s: %q is already decided by type rule %d", rl, e, k)
				continue
			}
			seen[key] = i + 1
			if upload && tr.Action == ActionAllow && slices.Contains(dangerous, key) {
				b.addf("%s: %q may not be allowed: %s", rl, e, dangerousNever)
			}
		}
	}
}

func (b *builder) textPolicy(l string, tp TextPolicy, noApprove string) {
	if tp.Action != "" {
		if msg := checkAction(tp.Action, noApprove); msg != "" {
			b.addf("%s: %s", l, msg)
		}
	}
	switch {
	case tp.MaxChars < 0:
		b.addf("%s: max_chars %d is negative", l, tp.MaxChars)
	case tp.MaxChars > MaxClipboardChars:
		b.addf("%s: max_chars %d is over the limit of %d", l, tp.MaxChars, MaxClipboardChars)
	}
}

// wantType says what a type rule entry may be.
var wantType = "want a class (" + strings.Join(Classes(), ", ") + `) or a MIME type such as "application/pdf" or "image/*"`

// checkTypeEntry checks a type rule entry: a class name (Classes) or a MIME
// pattern "type/subtype" or "type/*". It returns the entry as matching
// compares it (MIME patterns lowercase), or what is wrong with it.
func checkTypeEntry(e string) (key, problem string) {
	if e == "" {
		return "", "empty type: " + wantType
	}
	if !strings.Contains(e, "/") {
		if _, ok := classNouns[e]; !ok {
			return "", "unknown class: " + wantType
		}
		return e, ""
	}
	if strings.Contains(e, ";") {
		return "", "parameters are ignored when matching: leave them out"
	}
	key = strings.ToLower(e)
	top, sub, _ := strings.Cut(key, "/")
	switch {
	case top == "*":
		return "", "a pattern for every type: set the direction's action instead"
	case sub == "*" && mimeToken(top):
		return key, ""
	case strings.Contains(sub, "*"):
		return "", `only a whole-subtype wildcard such as "image/*" is supported`
	case !mimeToken(top) || !mimeToken(sub):
		return "", "malformed MIME type: " + wantType
	}
	return key, ""
}

// mimeToken reports whether s is a media type or subtype name (RFC 6838
// §4.2 restricted-name), in lowercase.
func mimeToken(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case i > 0 && strings.ContainsRune("!#$&-^_.+", r):
		default:
			return false
		}
	}
	return true
}

// static compiles the read-only layer: each rule an egress allowlist entry
// with its source.
func (b *builder) static(rules []StaticRule) {
	for i, r := range rules {
		l := fmt.Sprintf("static rule %d %q", i+1, r.Pattern)
		sp, err := egress.NewStaticPolicy([]string{r.Pattern})
		if err != nil {
			b.addf("%s: %v", l, errors.Unwrap(err))
			continue
		}
		if strings.TrimSpace(r.Source) == "" {
			b.addf("%s: source is empty: say where the rule is set", l)
			continue
		}
		b.set.static = append(b.set.static, staticRule{source: r.Source, allow: sp})
	}
}
