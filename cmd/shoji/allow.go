package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

const allowUsage = `Usage: shoji allow COMMAND [ARG] [flags]

Edit the site policy offline, in the data directory's store: the same
policy the admin pages edit. The broker (shoji serve) must not be running
on the same data directory. Every change is checked against the whole
policy before it is saved; nothing is saved when a check fails.

Commands:
  add PATTERN     add a rule: in an allowlist profile it allows the site,
                  in a denylist profile it denies it
                  [--note TEXT] [--expires 2026-12-31T00:00:00Z|720h] [--uploads] [--trusted]
  list            list rules: PROFILE PATTERN FLAGS EXPIRES NOTE
  rm PATTERN      remove a rule
  export          write the whole policy as YAML to standard output
  import FILE     replace the whole policy with a YAML file ("-" reads standard input)

Patterns: example.jp, *.example.jp (names under example.jp), example.jp:8443
(that port only; without a port, 80 and 443), example.jp/guidelines/ (that
path and below), 10.1.2.0/24 or 10.1.2.3/32:8443 (an intranet range: the only
way a private address is ever reached).

Every command takes --data DIR (default: $SHOJI_DATA, else ./data) and
--profile NAME (default: the policy's default profile; when the policy has
no profiles yet, add creates an allowlist profile "default" and makes it the
default). list without --profile lists every profile.

--config FILE (default: $SHOJI_CONFIG) reads the broker's config file for
its egress.allow: the static rules every profile gets. list shows them as
PROFILE "*" with the flag read-only, export writes them under "static", and
import keeps them; they change only in the config file (rm refuses them).
`

// allowCall is one parsed `shoji allow` invocation.
type allowCall struct {
	data, profile string
	config        string   // the broker's config file, for its static rules
	args          []string // positional arguments after the command
	// Flags of add.
	note, expires    string
	uploads, trusted bool

	stdin  io.Reader
	stdout io.Writer
}

// allowCommand is one `shoji allow` subcommand.
type allowCommand struct {
	usage string
	args  int  // how many positional arguments it takes
	add   bool // whether it takes add's flags
	run   func(c *allowCall) error
}

var allowCommands = map[string]allowCommand{
	"add":    {usage: "add PATTERN [--note TEXT] [--expires TIME|DURATION] [--uploads] [--trusted]", args: 1, add: true, run: allowAdd},
	"list":   {usage: "list", run: allowList},
	"rm":     {usage: "rm PATTERN", args: 1, run: allowRemove},
	"export": {usage: "export", run: allowExport},
	"import": {usage: "import FILE", args: 1, run: allowImport},
}

// runAllow runs `shoji allow ARGS...`. Usage asked for with --help goes to
// stdout and is not an error.
func runAllow(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, ok, err := pickCommand("allow", allowUsage, []string{"add", "list", "rm", "export", "import"},
		allowCommands, args, stdout, stderr)
	if !ok {
		return err
	}
	prefix := "allow " + args[0]

	c := &allowCall{stdin: stdin, stdout: stdout}
	fs := flag.NewFlagSet("shoji "+prefix, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed below
	fs.StringVar(&c.data, "data", defaultDataDir(), "`DIR` holding the store (defaults to $SHOJI_DATA if set)")
	fs.StringVar(&c.profile, "profile", "", "the `NAME` of the profile (default: the policy's default profile)")
	fs.StringVar(&c.config, "config", os.Getenv("SHOJI_CONFIG"), "the broker's YAML config `file`, for its egress.allow (read-only static rules)")
	if cmd.add {
		fs.StringVar(&c.note, "note", "", "a note on why the rule exists")
		fs.StringVar(&c.expires, "expires", "", "when the rule stops matching: an RFC 3339 `TIME` or a duration from now such as 720h")
		fs.BoolVar(&c.uploads, "uploads", false, "allow file uploads to the site")
		fs.BoolVar(&c.trusted, "trusted", false, "mark a trusted medical site (shown with a badge)")
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: shoji allow %s [--data DIR] [--profile NAME] [--config FILE]\n\nFlags:\n", cmd.usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see shoji %s --help)", prefix, err, prefix)
	}
	if len(pos) != cmd.args {
		return fmt.Errorf("%s: want %d argument(s), got %d: usage: shoji allow %s", prefix, cmd.args, len(pos), cmd.usage)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.args = pos
	if err := cmd.run(c); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

// policyStore is the store opened for one command, with the policy the
// site-policy service read from it and its read-only layer.
type policyStore struct {
	dir     string
	st      *store.Store
	static  []policy.StaticRule
	doc     *policy.Document
	version int
}

// staticRules reads the static rules of the broker's config file: none
// without one.
func staticRules(configFile string) ([]policy.StaticRule, error) {
	if configFile == "" {
		return nil, nil
	}
	cfg := broker.DefaultConfig()
	if err := cfg.LoadConfigFile(configFile); err != nil {
		return nil, err
	}
	var static []policy.StaticRule
	for _, a := range cfg.Egress.Allow {
		static = append(static, policy.StaticRule{Pattern: a, Source: sitepolicy.SourceConfig})
	}
	return static, nil
}

// openPolicy opens the store in the call's data directory and reads its
// policy, with the config file's static rules: the zero Document at
// version 0 when it has none. Close the store when done.
func (c *allowCall) openPolicy() (*policyStore, error) {
	dir := c.data
	static, err := staticRules(c.config)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	svc := sitepolicy.New(sitepolicy.Options{Store: st, Static: static})
	if err := svc.Load(); err != nil {
		_ = st.Close()
		return nil, err
	}
	doc := svc.Current().Document()
	return &policyStore{dir: dir, st: st, static: static, doc: doc, version: doc.Version}, nil
}

// close closes the store.
func (ps *policyStore) close() { _ = ps.st.Close() }

// save replaces the policy with doc through the site-policy service: it is
// validated as a whole, recorded in the data directory's audit trail, and
// only then stored as the next version, which save returns. Nothing is
// stored when validation fails or the trail cannot take the record.
func (ps *policyStore) save(doc *policy.Document) (int, error) {
	sink, err := audit.OpenFile(filepath.Join(ps.dir, "audit"), audit.FileOptions{})
	if err != nil {
		return 0, fmt.Errorf("the audit trail could not be opened, the policy was not changed: %w", err)
	}
	defer sink.Close()
	svc := sitepolicy.New(sitepolicy.Options{Store: ps.st, Audit: sink, Static: ps.static})
	if err := svc.Load(); err != nil {
		return 0, err
	}
	next, err := svc.Change(cliOperator(), ps.version, func(d *policy.Document) error {
		*d = *doc
		return nil
	})
	if errors.Is(err, sitepolicy.ErrConflict) {
		return 0, fmt.Errorf("the policy changed while this command ran; run it again: %w", err)
	}
	if err != nil {
		return 0, err
	}
	return next.Version, nil
}

// profileFor returns the profile a command edits: --profile, else the
// default. When the policy has no profiles and create is set, it creates
// an allowlist profile (named by --profile, else "default") and makes it
// the default; created says so.
func profileFor(doc *policy.Document, name string, create bool) (p *policy.Profile, created bool, err error) {
	if len(doc.Profiles) == 0 && create {
		if name == "" {
			name = "default"
		}
		doc.Profiles = append(doc.Profiles, policy.Profile{Name: name, Mode: policy.ModeAllowlist})
		doc.Default = name
		return &doc.Profiles[0], true, nil
	}
	if name == "" {
		if doc.Default == "" {
			return nil, false, fmt.Errorf("the policy has no default profile: give --profile (%s)", profileNames(doc))
		}
		name = doc.Default
	}
	if p = doc.Profile(name); p == nil {
		return nil, false, fmt.Errorf("no profile %q (%s)", name, profileNames(doc))
	}
	return p, false, nil
}

// profileNames lists the document's profiles for an error message.
func profileNames(doc *policy.Document) string {
	if len(doc.Profiles) == 0 {
		return "the policy has no profiles"
	}
	names := make([]string, len(doc.Profiles))
	for i, p := range doc.Profiles {
		names[i] = fmt.Sprintf("%q", p.Name)
	}
	return "profiles: " + strings.Join(names, ", ")
}

// findRule returns the index of the rule whose pattern is pattern, compared
// in canonical form, or -1.
func findRule(p *policy.Profile, pattern string) int {
	want, err := policy.CanonicalPattern(pattern)
	if err != nil {
		want = pattern
	}
	return slices.IndexFunc(p.Rules, func(r policy.Rule) bool {
		got, err := policy.CanonicalPattern(r.Pattern)
		return r.Pattern == pattern || err == nil && got == want
	})
}

// parseExpires reads --expires: an RFC 3339 time or a positive duration
// from now, in UTC to the second. The result must lie in the future.
func parseExpires(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d, derr := time.ParseDuration(s)
		if derr != nil {
			return time.Time{}, fmt.Errorf("--expires %q: want an RFC 3339 time (2026-12-31T00:00:00Z) or a duration (720h)", s)
		}
		t = now.Add(d)
	}
	t = t.UTC().Truncate(time.Second)
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("--expires %q is not in the future", s)
	}
	return t, nil
}

// cliUser names who made a change: "cli:" and $USER, or "cli".
func cliUser() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

func allowAdd(c *allowCall) error {
	now := time.Now()
	pattern := c.args[0]
	canon, err := policy.CanonicalPattern(pattern)
	if err != nil {
		return fmt.Errorf("pattern %q: %w", pattern, err)
	}
	expires, err := parseExpires(c.expires, now)
	if err != nil {
		return err
	}
	ps, err := c.openPolicy()
	if err != nil {
		return err
	}
	defer ps.close()
	doc := ps.doc.Clone()
	p, created, err := profileFor(doc, c.profile, true)
	if err != nil {
		return err
	}
	if i := findRule(p, canon); i >= 0 {
		return fmt.Errorf("pattern %q is already in profile %q (rule %d %q)", pattern, p.Name, i+1, p.Rules[i].Pattern)
	}
	p.Rules = append(p.Rules, policy.Rule{
		Pattern: canon, Uploads: c.uploads, Trusted: c.trusted, Expires: expires,
		Note: c.note, AddedBy: cliUser(), Added: now.UTC().Truncate(time.Second),
	})
	name, mode := p.Name, p.Mode
	v, err := ps.save(doc)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(c.stdout, "created allowlist profile %q as the default profile\n", name)
	}
	verb := "allowed"
	if mode == policy.ModeDenylist {
		verb = "denied"
	}
	fmt.Fprintf(c.stdout, "%s %s in profile %q (policy version %d)\n", verb, canon, name, v)
	return nil
}

func allowRemove(c *allowCall) error {
	pattern := c.args[0]
	ps, err := c.openPolicy()
	if err != nil {
		return err
	}
	defer ps.close()
	doc := ps.doc.Clone()
	p, _, err := profileFor(doc, c.profile, false)
	if err != nil {
		return err
	}
	i := findRule(p, pattern)
	if i < 0 {
		if r, ok := findStatic(ps.static, pattern); ok {
			return fmt.Errorf("pattern %q is a static rule, read-only here (%s): remove it from the config file", pattern, r.Source)
		}
		return fmt.Errorf("pattern %q is not in profile %q", pattern, p.Name)
	}
	removed, name := p.Rules[i].Pattern, p.Name
	p.Rules = slices.Delete(p.Rules, i, i+1)
	v, err := ps.save(doc)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed %s from profile %q (policy version %d)\n", removed, name, v)
	return nil
}

func allowList(c *allowCall) error {
	ps, err := c.openPolicy()
	if err != nil {
		return err
	}
	defer ps.close()
	profiles := ps.doc.Profiles
	if c.profile != "" {
		p, _, err := profileFor(ps.doc, c.profile, false)
		if err != nil {
			return err
		}
		profiles = []policy.Profile{*p}
	}
	return printRules(c.stdout, profiles, ps.static, time.Now())
}

// findStatic returns the static rule whose pattern is pattern.
func findStatic(static []policy.StaticRule, pattern string) (policy.StaticRule, bool) {
	for _, r := range static {
		if strings.EqualFold(r.Pattern, pattern) {
			return r, true
		}
	}
	return policy.StaticRule{}, false
}

// printRules writes the rules of profiles as a table, then the static
// rules, which every profile has: profile "*", flag read-only, their
// source as the note. A profile without rules gets one row saying so.
func printRules(w io.Writer, profiles []policy.Profile, static []policy.StaticRule, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tPATTERN\tFLAGS\tEXPIRES\tNOTE")
	for _, p := range profiles {
		if len(p.Rules) == 0 {
			fmt.Fprintf(tw, "%s\t(no rules)\t%s\t\t\n", p.Name, ruleFlags(p, policy.Rule{}, now))
		}
		for _, r := range p.Rules {
			expires := "never"
			if !r.Expires.IsZero() {
				expires = r.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, r.Pattern, ruleFlags(p, r, now), expires, oneLine(r.Note))
		}
	}
	for _, r := range static {
		fmt.Fprintf(tw, "*\t%s\tread-only\tnever\t%s\n", r.Pattern, r.Source)
	}
	return tw.Flush()
}

// ruleFlags describes a rule: deny (in a denylist profile), uploads,
// trusted, expired; "-" for none.
func ruleFlags(p policy.Profile, r policy.Rule, now time.Time) string {
	var flags []string
	if p.Mode == policy.ModeDenylist {
		flags = append(flags, "deny")
	}
	if r.Uploads {
		flags = append(flags, "uploads")
	}
	if r.Trusted {
		flags = append(flags, "trusted")
	}
	if !r.Expires.IsZero() && !now.Before(r.Expires) {
		flags = append(flags, "expired")
	}
	if len(flags) == 0 {
		return "-"
	}
	return strings.Join(flags, ",")
}

// oneLine keeps a note on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func allowExport(c *allowCall) error {
	ps, err := c.openPolicy()
	if err != nil {
		return err
	}
	defer ps.close()
	out, err := ps.doc.YAML()
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(out)
	return err
}

func allowImport(c *allowCall) error {
	file := c.args[0]
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(c.stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	doc, err := policy.ParseYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := doc.Validate(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	ps, err := c.openPolicy()
	if err != nil {
		return err
	}
	defer ps.close()
	v, err := ps.save(doc)
	if err != nil {
		return err
	}
	rules := 0
	for _, p := range doc.Profiles {
		rules += len(p.Rules)
	}
	fmt.Fprintf(c.stdout, "imported %d profiles with %d rules (policy version %d)\n", len(doc.Profiles), rules, v)
	return nil
}
