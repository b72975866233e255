package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	if err := loadDoc(t).Validate(); err != nil {
		t.Fatalf("testdata/policy.yaml: %v", err)
	}
	if err := (&Document{}).Validate(); err != nil {
		t.Fatalf("empty document: %v", err)
	}
	exp := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		edit func(d *Document)
		want []string // each must appear among the problems
	}{
		{"public-suffix wildcard", func(d *Document) {
			d.Profiles = append(d.Profiles, Profile{Name: "x", Rules: []Rule{{Pattern: "a.jp"}, {Pattern: "b.jp"}, {Pattern: "*.jp"}}})
		}, []string{`profile "x": rule 3 "*.jp": wildcard over a public suffix`}},
		{"IP literal rule", func(d *Document) {
			d.Profile("ward").Rules = append(d.Profile("ward").Rules, Rule{Pattern: "0x7f.1"})
		}, []string{`profile "ward": rule 13 "0x7f.1": IP address 127.0.0.1: use a CIDR rule such as 127.0.0.1/32`}},
		{"bad CIDR", func(d *Document) {
			d.Profile("ward").Rules[0].Pattern = "10.1.2.3/24"
		}, []string{`profile "ward": rule 1 "10.1.2.3/24": host bits set`}},
		{"duplicate rule", func(d *Document) {
			d.Profile("ward").Rules = append(d.Profile("ward").Rules, Rule{Pattern: "WWW.PMDA.GO.JP."})
		}, []string{`profile "ward": rule 13 "WWW.PMDA.GO.JP.": same as rule 1`}},
		{"CIDR in denylist", func(d *Document) {
			d.Profile("search").Rules = append(d.Profile("search").Rules, Rule{Pattern: "10.0.0.0/8"})
		}, []string{`profile "search": rule 4 "10.0.0.0/8": CIDR rules are allowed only in allowlist profiles`}},
		{"flags in denylist", func(d *Document) {
			d.Profile("search").Rules[0].Uploads = true
		}, []string{`profile "search": rule 1 "evil-search.example": the uploads and trusted flags have no meaning`}},
		{"unknown mode", func(d *Document) { d.Profile("wide").Mode = "open" }, []string{`profile "wide": mode "open": want "allowlist" or "denylist"`}},
		{"duplicate profile", func(d *Document) { d.Profiles = append(d.Profiles, Profile{Name: "ward"}) }, []string{`profile "ward": duplicate name`}},
		{"empty profile name", func(d *Document) { d.Profiles = append(d.Profiles, Profile{}) }, []string{`profile 5: name is empty`}},
		{"long name", func(d *Document) { d.Profiles = append(d.Profiles, Profile{Name: strings.Repeat("病", 65)}) }, []string{"name longer than 64 characters"}},
		{"control in name", func(d *Document) { d.Groups[0].Name = "ward\n" }, []string{"control characters"}},
		{"duplicate group", func(d *Document) { d.Groups = append(d.Groups, Group{Name: "icu"}) }, []string{`group "icu": duplicate name`}},
		{"unknown group", func(d *Document) { d.Profile("none").Groups = []string{"er"} }, []string{`profile "none": group "er" does not exist`}},
		{"group assigned twice", func(d *Document) { d.Profile("none").Groups = []string{"ward"} }, []string{`profile "none": group "ward" is already assigned to profile "ward"`}},
		{"role assigned twice", func(d *Document) { d.Profile("none").Roles = []string{"clinician"} }, []string{`profile "none": role "clinician" is already assigned to profile "search"`}},
		{"empty role", func(d *Document) { d.Profile("none").Roles = []string{""} }, []string{`profile "none": role "": name is empty`}},
		{"unknown default", func(d *Document) { d.Default = "everything" }, []string{`default: profile "everything" does not exist`}},
		{"bad terminal range", func(d *Document) { d.Groups[0].Terminals = append(d.Groups[0].Terminals, "10.10.0.0/99") }, []string{`group "ward": terminal range 2 "10.10.0.0/99": not a CIDR range`}},
		{"terminal host bits", func(d *Document) { d.Groups[0].Terminals[0] = "10.10.1.0/16" }, []string{`group "ward": terminal range 1 "10.10.1.0/16": host bits set: did you mean 10.10.0.0/16?`}},
		{"overlapping groups", func(d *Document) { d.Groups[1].Terminals = append(d.Groups[1].Terminals, "10.10.5.0/24") }, []string{`group "icu": terminal range 3 "10.10.5.0/24" overlaps 10.10.0.0/16 of group "ward"`}},
		{"overlapping single address", func(d *Document) { d.Groups[2].Terminals = []string{"10.20.9.9"} }, []string{`group "library": terminal range 1 "10.20.9.9" overlaps 10.20.0.0/16 of group "icu"`}},
		{"emergency without reason and expiry", func(d *Document) {
			d.Emergencies[0].Reason, d.Emergencies[0].Expires = " ", time.Time{}
		}, []string{`emergency 1 (group "icu"): reason is required`, `emergency 1 (group "icu"): expires is required`}},
		{"emergency without author", func(d *Document) { d.Emergencies[0].By = "" }, []string{`emergency 1 (group "icu"): by (who switched it on) is required`}},
		{"emergency unknown group and profile", func(d *Document) {
			d.Emergencies = append(d.Emergencies, Emergency{Group: "er", Profile: "all", Reason: "r", By: "b", Expires: exp})
		}, []string{`emergency 2 (group "er"): group "er" does not exist`, `emergency 2 (group "er"): profile "all" does not exist`}},
		{"emergency without group", func(d *Document) {
			d.Emergencies = append(d.Emergencies, Emergency{Profile: "wide", Reason: "r", By: "b", Expires: exp})
		}, []string{`emergency 2: group is required`}},
		{"two emergencies for a group", func(d *Document) {
			d.Emergencies = append(d.Emergencies, Emergency{Group: "icu", Profile: "wide", Reason: "r", By: "b", Expires: exp})
		}, []string{`emergency 2 (group "icu"): group already has an emergency`}},
		{"bad blocked host", func(d *Document) { d.Blocked = append(d.Blocked, BlockedHost{Host: "*.evil.example"}) }, []string{`blocked host 2 "*.evil.example": a blocked host covers every name under it already`}},
		{"duplicate blocked host", func(d *Document) { d.Blocked = append(d.Blocked, BlockedHost{Host: "BAD.blockme.jp."}) }, []string{`blocked host 2 "BAD.blockme.jp.": same as blocked host 1`}},
		{"several problems", func(d *Document) {
			d.Default = "x"
			d.Profile("ward").Rules[1].Pattern = "*.go.jp"
		}, []string{"2 problems: ", `profile "ward": rule 2 "*.go.jp": wildcard over a public suffix`, `default: profile "x" does not exist`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := loadDoc(t)
			tt.edit(d)
			err := d.Validate()
			if err == nil {
				t.Fatal("Validate accepted the document")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%T is not a *ValidationError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if _, cerr := Compile(d); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile error %v differs from Validate's", cerr)
			}
		})
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	d := loadDoc(t)
	out, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseYAML(out)
	if err != nil {
		t.Fatalf("ParseYAML of YAML():\n%s\n%v", out, err)
	}
	if diff := cmp.Diff(d, back); diff != "" {
		t.Errorf("YAML round trip mismatch (-want +got):\n%s", diff)
	}
	if d.Version != 7 || len(d.Profiles) != 4 || d.Profiles[0].Rules[0].Added.IsZero() {
		t.Errorf("testdata not read completely: %+v", d)
	}
	if strings.Contains(string(out), "0001-01-01") {
		t.Errorf("YAML shows zero times:\n%s", out)
	}
	if tr := d.Profiles[0].Transfers; tr == nil || tr.Download.MaxSize != 200*MiB || tr.Upload.MaxSize != 500_000 || len(tr.Download.Types) != 2 {
		t.Errorf("testdata transfers not read completely: %+v", tr)
	}
	for _, want := range []string{"max_size: 200MiB", "max_size: 500KB", "clipboard_to_remote:", "max_chars: 2000"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("YAML lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "print:") || strings.Contains(string(out), "clipboard_to_terminal:") {
		t.Errorf("YAML shows directions left empty:\n%s", out)
	}

	j, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err = ParseJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(string(j), "0001-01-01") {
		t.Errorf("JSON shows zero times: %s", j)
	}
	for _, want := range []string{`"max_size":"200MiB"`, `"clipboard_to_remote":{"action":"allow","max_chars":2000}`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON lacks %s: %s", want, j)
		}
	}
	if strings.Contains(string(j), `"print"`) {
		t.Errorf("JSON shows a direction left empty: %s", j)
	}

	if diff := cmp.Diff(d, d.Clone()); diff != "" {
		t.Errorf("Clone mismatch (-want +got):\n%s", diff)
	}
	c := d.Clone()
	c.Profiles[0].Rules[0].Pattern = "changed"
	c.Groups[0].Terminals[0] = "changed"
	c.Profiles[0].Transfers.Download.Types[0].Types[0] = "changed"
	c.Profiles[0].Transfers.Upload.Action = "changed"
	if d.Profiles[0].Rules[0].Pattern == "changed" || d.Groups[0].Terminals[0] == "changed" ||
		d.Profiles[0].Transfers.Download.Types[0].Types[0] == "changed" || d.Profiles[0].Transfers.Upload.Action == "changed" {
		t.Error("Clone shares data with the original")
	}
}

func TestParseStrict(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown top key", "version: 1\nprofile: []\n", `line 2: unknown key "profile"`},
		{"unknown rule key", "profiles:\n  - name: a\n    rules:\n      - pattern: a.jp\n        upload: true\n", `line 5: unknown key "upload"`},
		{"wrong type", "groups: 3\n", "line 1"},
		{"unknown transfers key", "profiles:\n  - name: a\n    transfers:\n      clipboard_in:\n        action: allow\n", `line 4: unknown key "clipboard_in"`},
		{"unknown direction key", "profiles:\n  - name: a\n    transfers:\n      download:\n        max: 3\n", `line 5: unknown key "max"`},
		{"unknown type rule key", "profiles:\n  - name: a\n    transfers:\n      download:\n        types:\n          - type: [pdf]\n", `line 6: unknown key "type"`},
		{"bad size", "profiles:\n  - name: a\n    transfers:\n      print:\n        max_size: 1.5GiB\n", `line 5: size "1.5GiB": want a whole number`},
		{"two documents", "version: 1\n---\nversion: 2\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		_, err := ParseYAML([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrParse) {
			t.Errorf("%s: ParseYAML = %v, want an ErrParse containing %q", tt.name, err, tt.want)
		}
	}
	if d, err := ParseYAML(nil); err != nil || d.Version != 0 || d.Profiles != nil {
		t.Errorf("ParseYAML(empty) = %+v, %v; want the zero Document", d, err)
	}
	for in, want := range map[string]string{
		`{"version":1,"profile":[]}`: `unknown field "profile"`,
		`{"version":1} {}`:           "trailing data",
		`{"version":"1"}`:            "cannot unmarshal",
		`{"profiles":[{"name":"a","transfers":{"upload":{"maxsize":1}}}]}`:        `unknown field "maxsize"`,
		`{"profiles":[{"name":"a","transfers":{"print":{"max_size":"1.5GiB"}}}]}`: "want a whole number",
	} {
		if _, err := ParseJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrParse) {
			t.Errorf("ParseJSON(%s) = %v, want an ErrParse containing %q", in, err, want)
		}
	}
}
