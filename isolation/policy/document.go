// Package policy is shoji's site policy: which hosts each terminal group or
// role may reach through the egress proxy (docs/security.md, NET-*, ALLOW-*), and
// what may cross between the isolated browser and the terminal: downloads,
// uploads, print and the clipboard (docs/transfer.md, XFER-*).
//
// A Document is the policy as admins edit it (YAML for import and export,
// JSON for the admin API). Compile validates a whole Document and builds an
// immutable Set that answers the questions of the enforcement points: which
// profile a session uses (ProfileFor), whether the proxy may open a host and
// port (Decide), whether a non-public address was explicitly allowed
// (AllowAddr), whether a full URL is allowed, path included (CheckURL),
// what a profile lets through in each transfer direction (Transfers, then
// Transfers.DecideFile and DecideText), and whether a page may receive an
// upload (UploadDestination, DecideUpload).
// An Engine holds the current Set and swaps in a new one atomically, only
// when it is valid, so a bad edit never replaces a working policy.
//
// The package is pure: it does no network or file I/O. It reuses the egress
// proxy's host normalisation (egress.Normalize) and address classification
// (egress.IsPublicUnicast); egress never imports it.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mode says how a profile's rules are read.
type Mode string

// Profile modes. The zero Mode is ModeAllowlist.
const (
	// ModeAllowlist denies everything no rule allows (ALLOW-2's limited
	// allowlist).
	ModeAllowlist Mode = "allowlist"
	// ModeDenylist allows every public host on ports 80 and 443 except what
	// its rules deny (ALLOW-2/3's broad profile for general search). It
	// never allows a non-public address.
	ModeDenylist Mode = "denylist"
)

// Document is the whole site policy as admins edit it. The zero Document is
// valid and allows nothing to anyone.
type Document struct {
	// Version is the store's version of the document, bumped on every save
	// and used for If-Match. Validate ignores it.
	Version int `yaml:"version" json:"version"`
	// Groups are terminal groups, decided by the clinician terminal's
	// address (ALLOW-2).
	Groups []Group `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Profiles are the named rule sets sessions use.
	Profiles []Profile `yaml:"profiles,omitempty" json:"profiles,omitempty"`
	// Default is the profile of a session no group or role assignment
	// matches. Empty means the built-in "no Internet" profile that denies
	// everything.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Emergencies switch a group to a wider profile until they expire
	// (ALLOW-5). At most one per group.
	Emergencies []Emergency `yaml:"emergencies,omitempty" json:"emergencies,omitempty"`
	// Blocked hosts are denied everywhere, in every profile and mode,
	// whatever allows them (IR-1 kill switch). A blocked host blocks every
	// name under it too.
	Blocked []BlockedHost `yaml:"blocked,omitempty" json:"blocked,omitempty"`
	// Static is the read-only layer: sites the broker's own configuration
	// allows in every profile (the config file's egress.allow, and the
	// demo site in demo mode), unless the host is blocked everywhere. It
	// is not stored with the document: the site-policy service supplies it
	// and refuses any change to it, so a document sent back with it
	// unchanged, or without it, keeps it as it is.
	Static []StaticRule `yaml:"static,omitempty" json:"static,omitempty"`
}

// StaticRule is one rule of the read-only layer. A decision it makes names
// the rule as Source + ": " + the entry ("config file egress.allow:
// example.jp").
type StaticRule struct {
	// Pattern is an egress allowlist entry (egress.NewStaticPolicy):
	// "example.jp", "*.example.jp", "example.jp:8443" or an IP address.
	Pattern string `yaml:"pattern" json:"pattern"`
	// Source says where the rule is set, e.g. "config file egress.allow".
	Source string `yaml:"source" json:"source"`
	// ReadOnly is always true: the policy API and `shoji allow` cannot
	// change the rule; it changes where Source says.
	ReadOnly bool `yaml:"read_only" json:"read_only"`
}

// Group is a terminal group: the terminals whose address lies in one of its
// ranges. The ranges of different groups must not overlap.
type Group struct {
	// Name names the group in profile assignments and emergencies.
	Name string `yaml:"name" json:"name"`
	// Terminals are CIDR ranges ("10.10.0.0/16") or single addresses of
	// the group's clinical terminals.
	Terminals []string `yaml:"terminals,omitempty" json:"terminals,omitempty"`
}

// Profile is a named set of rules, assigned to terminal groups and roles.
type Profile struct {
	// Name is unique among profiles; sessions and the viewer show it.
	Name string `yaml:"name" json:"name"`
	// Description is free text for admins.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Mode is allowlist (the default when empty) or denylist.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Rules allow (allowlist) or deny (denylist) sites.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
	// Groups assigns this profile to terminal groups. A group is assigned
	// to at most one profile.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Roles assigns this profile to user roles ("clinician", …) for
	// sessions whose terminal's group has no profile. A role is assigned to
	// at most one profile.
	Roles []string `yaml:"roles,omitempty" json:"roles,omitempty"`
	// Transfers is the profile's policy for downloads, uploads, print and
	// the clipboard (docs/transfer.md). nil means DefaultTransfers.
	Transfers *Transfers `yaml:"transfers,omitempty" json:"transfers,omitempty"`
}

// Rule is one site pattern with its flags. Pattern forms (CanonicalPattern
// gives the normalised text):
//
//	example.jp                 the host, ports 80 and 443
//	*.example.jp               every name under example.jp, not example.jp itself
//	example.jp:8443            the host on port 8443 only
//	example.jp/guidelines/     URLs under that path (see CheckURL); the proxy,
//	                           which sees only host:port, allows the host
//	10.1.2.0/24, 10.1.2.3/32:8443
//	                           addresses in the range (the only way a non-public
//	                           address is ever allowed; allowlist profiles only)
//
// In a denylist profile a rule names what is denied, on every port unless it
// gives one; CIDR rules and the Uploads and Trusted flags are not allowed.
type Rule struct {
	Pattern string `yaml:"pattern" json:"pattern"`
	// Uploads allows file uploads to the site (XFER-7).
	Uploads bool `yaml:"uploads,omitempty" json:"uploads,omitempty"`
	// Trusted marks a trusted medical site, shown with a badge (ALLOW-4).
	Trusted bool `yaml:"trusted,omitempty" json:"trusted,omitempty"`
	// Expires is when the rule stops matching; zero means never.
	Expires time.Time `yaml:"expires,omitempty" json:"expires,omitzero"`
	// Note says why the rule exists.
	Note string `yaml:"note,omitempty" json:"note,omitempty"`
	// AddedBy and Added record who added the rule and when.
	AddedBy string    `yaml:"added_by,omitempty" json:"added_by,omitempty"`
	Added   time.Time `yaml:"added,omitempty" json:"added,omitzero"`
}

// Emergency switches a terminal group to another profile until Expires
// (ALLOW-5). Reason, By and Expires are required.
type Emergency struct {
	Group   string    `yaml:"group" json:"group"`
	Profile string    `yaml:"profile" json:"profile"`
	Reason  string    `yaml:"reason" json:"reason"`
	By      string    `yaml:"by" json:"by"`
	Expires time.Time `yaml:"expires" json:"expires"`
}

// BlockedHost is a host denied everywhere, with every name under it
// (IR-1). Host is a name such as "evil.example", not a pattern.
type BlockedHost struct {
	Host   string    `yaml:"host" json:"host"`
	Reason string    `yaml:"reason,omitempty" json:"reason,omitempty"`
	By     string    `yaml:"by,omitempty" json:"by,omitempty"`
	At     time.Time `yaml:"at,omitempty" json:"at,omitzero"`
}

// ErrParse is wrapped by ParseYAML and ParseJSON errors.
var ErrParse = errors.New("cannot parse policy")

// ParseYAML parses a policy document strictly: an unknown key is an error
// naming the key and its line. An empty input is the zero Document. The
// document is not validated; call Validate or Compile.
func ParseYAML(data []byte) (*Document, error) {
	d := &Document{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(d); err != nil {
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		return nil, fmt.Errorf("%s: %w", yamlMessage(err), ErrParse)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document: %w", ErrParse)
	}
	return d, nil
}

// unknownField matches yaml's message for an unknown key.
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlMessage rewrites yaml's errors to speak of keys, not Go types.
func yamlMessage(err error) string {
	return unknownField.ReplaceAllString(err.Error(), `unknown key "$1"`)
}

// YAML returns the document as YAML, the form ParseYAML reads.
func (d *Document) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseJSON parses a policy document from JSON strictly: unknown fields and
// trailing data are errors. The document is not validated.
func ParseJSON(data []byte) (*Document, error) {
	d := &Document{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(d); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrParse)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the document: %w", ErrParse)
	}
	return d, nil
}

// JSON returns the document as JSON, the form ParseJSON reads and the store
// keeps.
func (d *Document) JSON() ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return b, nil
}

// Clone returns a deep copy of d.
func (d *Document) Clone() *Document {
	c := *d
	c.Groups = append([]Group(nil), d.Groups...)
	for i := range c.Groups {
		c.Groups[i].Terminals = append([]string(nil), c.Groups[i].Terminals...)
	}
	c.Profiles = append([]Profile(nil), d.Profiles...)
	for i := range c.Profiles {
		p := &c.Profiles[i]
		p.Rules = append([]Rule(nil), p.Rules...)
		p.Groups = append([]string(nil), p.Groups...)
		p.Roles = append([]string(nil), p.Roles...)
		if p.Transfers != nil {
			p.Transfers = p.Transfers.clone()
		}
	}
	c.Emergencies = append([]Emergency(nil), d.Emergencies...)
	c.Blocked = append([]BlockedHost(nil), d.Blocked...)
	if d.Static != nil {
		c.Static = append([]StaticRule{}, d.Static...)
	}
	return &c
}

// Profile returns a pointer to the named profile in d, or nil.
func (d *Document) Profile(name string) *Profile {
	for i := range d.Profiles {
		if d.Profiles[i].Name == name {
			return &d.Profiles[i]
		}
	}
	return nil
}
