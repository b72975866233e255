package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// storedPolicy reads the policy runAllow left in dir.
func storedPolicy(t *testing.T, dir string) (*policy.Document, int) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, v, err := st.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if raw == nil {
		return &policy.Document{}, v
	}
	d, err := policy.ParseJSON(raw)
	if err != nil {
		t.Fatalf("stored policy: %v", err)
	}
	return d, v
}

func TestRunAllow(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := filepath.Join(t.TempDir(), "data")
	data := "--data=" + dir
	tmp := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeFile("good.yaml", `
profiles:
  - name: default
    rules:
      - pattern: 10.1.2.3/32:8443
        uploads: true
  - name: search
    mode: denylist
    roles: [clinician]
default: default
`)
	unknownKey := writeFile("unknown.yaml", "profiles:\n  - name: a\n    rulez: []\n")
	invalid := writeFile("invalid.yaml", "profiles:\n  - name: ward\n    rules:\n      - pattern: ok.jp\n      - pattern: \"*.co.jp\"\n")

	steps := []struct {
		name        string
		args        []string
		stdin       string
		wantErr     []string // substrings; nil means success
		wantStdout  []string
		wantVersion int // the stored version afterwards
	}{
		{"help", []string{"--help"}, "", nil, []string{"Usage: shoji allow", "add PATTERN", "import FILE"}, 0},
		{"add help", []string{"add", "--help"}, "", nil, []string{"-expires", "-uploads", "-trusted", "-profile NAME"}, 0},
		{"no command", nil, "", []string{"missing command"}, nil, 0},
		{"unknown command", []string{"allow", "x"}, "", []string{`unknown command "allow"`}, nil, 0},
		{"list empty", []string{"list", data}, "", nil, []string{"PROFILE  PATTERN  FLAGS  EXPIRES  NOTE"}, 0},
		{"add without pattern", []string{"add", data}, "", []string{"want 1 argument(s), got 0"}, nil, 0},
		{"add public-suffix wildcard", []string{"add", "*.jp", data}, "", []string{`pattern "*.jp"`, "wildcard over a public suffix"}, nil, 0},
		{"add IP literal", []string{"add", "0x7f.1", data}, "", []string{`pattern "0x7f.1"`, "use a CIDR rule"}, nil, 0},
		{"add first", []string{"add", "WWW.PMDA.GO.JP.", "--trusted", "--note", "PMDA safety\nnotices", data}, "", nil,
			[]string{`created allowlist profile "default" as the default profile`, `allowed www.pmda.go.jp in profile "default" (policy version 1)`}, 1},
		{"add duplicate", []string{"add", "www.pmda.go.jp", data}, "", []string{`pattern "www.pmda.go.jp" is already in profile "default" (rule 1 "www.pmda.go.jp")`}, nil, 1},
		{"add CIDR", []string{"add", data, "--uploads", "--expires=2030-01-01T00:00:00Z", "10.1.2.0/24"}, "", nil, []string{"allowed 10.1.2.0/24", "version 2"}, 2},
		{"add with duration", []string{"add", "forms.example.jp/claims/", "--expires", "720h", data}, "", nil, []string{"allowed forms.example.jp/claims/", "version 3"}, 3},
		{"add bad expiry", []string{"add", "a.example.jp", "--expires", "tomorrow", data}, "", []string{`--expires "tomorrow": want an RFC 3339 time`}, nil, 3},
		{"add past expiry", []string{"add", "a.example.jp", "--expires", "2020-01-01T00:00:00Z", data}, "", []string{"not in the future"}, nil, 3},
		{"add unknown profile", []string{"add", "a.example.jp", "--profile", "ward", data}, "", []string{`no profile "ward" (profiles: "default")`}, nil, 3},
		{"list", []string{"list", data}, "", nil, []string{
			"PROFILE  PATTERN                   FLAGS    EXPIRES               NOTE",
			"default  www.pmda.go.jp            trusted  never                 PMDA safety notices",
			"default  10.1.2.0/24               uploads  2030-01-01T00:00:00Z",
		}, 3},
		{"rm", []string{"rm", "Www.Pmda.Go.Jp", data}, "", nil, []string{`removed www.pmda.go.jp from profile "default" (policy version 4)`}, 4},
		{"rm missing", []string{"rm", "www.pmda.go.jp", data}, "", []string{`pattern "www.pmda.go.jp" is not in profile "default"`}, nil, 4},
		{"export", []string{"export", data}, "", nil, []string{"version: 4", "pattern: 10.1.2.0/24", "added_by: cli:tester", "default: default"}, 4},
		{"import unknown key", []string{"import", unknownKey, data}, "", []string{`line 3: unknown key "rulez"`}, nil, 4},
		{"import invalid", []string{"import", invalid, data}, "", []string{`profile "ward": rule 2 "*.co.jp": wildcard over a public suffix`}, nil, 4},
		{"import missing file", []string{"import", filepath.Join(tmp, "nope.yaml"), data}, "", []string{"no such file"}, nil, 4},
		{"import", []string{"import", good, data}, "", nil, []string{"imported 2 profiles with 1 rules (policy version 5)"}, 5},
		{"add to denylist", []string{"add", "--profile", "search", "evil.example", data}, "", nil, []string{`denied evil.example in profile "search" (policy version 6)`}, 6},
		{"add flag to denylist", []string{"add", "--profile", "search", "--uploads", "x.example", data}, "", []string{`profile "search": rule 2 "x.example": the uploads and trusted flags have no meaning in a denylist profile`}, nil, 6},
		{"list one profile", []string{"list", "--profile", "search", data}, "", nil, []string{"search   evil.example  deny   never"}, 6},
		{"import stdin", []string{"import", "-", data}, "profiles:\n  - name: only\ndefault: only\n", nil, []string{"imported 1 profiles with 0 rules (policy version 7)"}, 7},
		{"list no rules", []string{"list", data}, "", nil, []string{"only     (no rules)  -"}, 7},
	}
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		err := runAllow(context.Background(), s.args, strings.NewReader(s.stdin), &stdout, &stderr)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: runAllow(%q) = %v", s.name, s.args, err)
		case s.wantErr != nil && err == nil:
			t.Fatalf("%s: runAllow(%q) succeeded, want an error", s.name, s.args)
		}
		for _, want := range s.wantErr {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", s.name, err, want)
			}
		}
		for _, want := range s.wantStdout {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout\n%s\nlacks %q", s.name, stdout.String(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
			continue // no store yet
		}
		if _, v := storedPolicy(t, dir); v != s.wantVersion {
			t.Errorf("%s: stored version %d, want %d", s.name, v, s.wantVersion)
		}
	}
}

// TestRunAllowStoresRules checks what add writes: canonical pattern, flags,
// author, and an expiry a duration from now; and that the broker can compile
// it.
func TestRunAllowStoresRules(t *testing.T) {
	t.Setenv("USER", "")
	dir := t.TempDir()
	before := time.Now()
	for _, args := range [][]string{
		{"add", "--profile", "ward", "https://Guidelines.Example.JP/a/../guidelines/", "--trusted", "--uploads", "--note", "JCS guidelines"},
		{"add", "--expires", "720h", "*.pmda.go.jp"},
	} {
		var out bytes.Buffer
		if err := runAllow(context.Background(), append(args, "--data", dir), nil, &out, &out); err != nil {
			t.Fatalf("runAllow(%q): %v", args, err)
		}
	}
	after := time.Now()
	d, v := storedPolicy(t, dir)
	if v != 2 || d.Version != 2 || d.Default != "ward" || len(d.Profiles) != 1 {
		t.Fatalf("stored policy: version %d/%d, default %q, %d profiles", v, d.Version, d.Default, len(d.Profiles))
	}
	rules := d.Profiles[0].Rules
	if len(rules) != 2 {
		t.Fatalf("rules = %+v, want 2", rules)
	}
	r := rules[0]
	if r.Pattern != "guidelines.example.jp/guidelines/" || !r.Trusted || !r.Uploads || r.Note != "JCS guidelines" || r.AddedBy != "cli" || r.Added.IsZero() {
		t.Errorf("rule 1 = %+v", r)
	}
	if e := rules[1].Expires; e.Before(before.Add(720*time.Hour).Truncate(time.Second)) || e.After(after.Add(720*time.Hour)) {
		t.Errorf("rule 2 expires %v, want 720h after the command ran", e)
	}
	set, err := policy.Compile(d)
	if err != nil {
		t.Fatalf("Compile of the stored policy: %v", err)
	}
	if res := set.CheckURL("ward", "https://guidelines.example.jp/guidelines/acs.pdf"); !res.Allow || !res.Trusted {
		t.Errorf("CheckURL = %+v, want allowed and trusted", res)
	}
}

// TestRunAllowRecordsBeforeSaving: a change through `shoji allow` is in the
// data directory's audit trail, and when the trail cannot take its record
// the policy is not changed (the same order as the broker's: record, then
// store).
func TestRunAllowRecordsBeforeSaving(t *testing.T) {
	t.Run("recorded", func(t *testing.T) {
		dir := t.TempDir()
		var out bytes.Buffer
		if err := runAllow(context.Background(), []string{"add", "example.jp", "--data", dir}, nil, &out, &out); err != nil {
			t.Fatal(err)
		}
		var whats []string
		for e, err := range audit.Scan(filepath.Join(dir, "audit"), audit.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type == audit.TypePolicyChange {
				whats = append(whats, e.What)
				if !strings.Contains(e.After, "example.jp") {
					t.Errorf("record after = %q, want the new rule", e.After)
				}
			}
		}
		if len(whats) != 1 || whats[0] != "site policy version 1" {
			t.Errorf("policy records %q, want one of site policy version 1", whats)
		}
	})
	t.Run("trail unavailable", func(t *testing.T) {
		dir := t.TempDir()
		// A file where the trail's directory should be: it cannot be opened.
		if err := os.WriteFile(filepath.Join(dir, "audit"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err := runAllow(context.Background(), []string{"add", "example.jp", "--data", dir}, nil, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "not changed") {
			t.Fatalf("runAllow with the trail unavailable: %v, want an error saying the policy was not changed", err)
		}
		if _, v := storedPolicy(t, dir); v != 0 {
			t.Errorf("stored version %d, want 0: the policy changed without its record", v)
		}
	})
}
