package policy

import (
	"errors"
	"strings"
	"testing"
)

// TestStaticLayer checks the read-only layer's decisions: it allows what
// no profile allows, in every profile (the built-in no-Internet one and a
// denylist profile's denies included), naming its source and entry as the
// rule; a host blocked everywhere still wins; the profile's own allow
// keeps its own rule.
func TestStaticLayer(t *testing.T) {
	set, err := Compile(&Document{
		Profiles: []Profile{
			{Name: "ward", Rules: []Rule{{Pattern: "guide.example.jp/public/"}, {Pattern: "www.pmda.go.jp"}}},
			{Name: "search", Mode: ModeDenylist, Rules: []Rule{{Pattern: "intranet.example.jp"}}},
		},
		Blocked: []BlockedHost{{Host: "bad.example.jp", Reason: "compromised"}},
		Static: []StaticRule{
			{Pattern: "intranet.example.jp", Source: "config file egress.allow", ReadOnly: true},
			{Pattern: "*.example.jp:8443", Source: "config file egress.allow", ReadOnly: true},
			{Pattern: "guide.example.jp", Source: "demo mode", ReadOnly: true},
			{Pattern: "bad.example.jp", Source: "config file egress.allow", ReadOnly: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		profile, url string
		allow        bool
		rule         string
	}{
		{"", "https://intranet.example.jp/", true, "config file egress.allow: intranet.example.jp"},
		{"gone", "https://intranet.example.jp/", true, "config file egress.allow: intranet.example.jp"},
		{"ward", "https://intranet.example.jp/x", true, "config file egress.allow: intranet.example.jp"},
		{"search", "https://intranet.example.jp/", true, "config file egress.allow: intranet.example.jp"},
		{"ward", "https://files.example.jp:8443/", true, "config file egress.allow: *.example.jp:8443"},
		{"ward", "https://files.example.jp/", false, "default-deny"},
		{"ward", "https://guide.example.jp/private/", true, "demo mode: guide.example.jp"},
		{"ward", "https://guide.example.jp/public/a", true, "guide.example.jp/public/"},
		{"ward", "https://www.pmda.go.jp/", true, "www.pmda.go.jp"},
		{"ward", "https://bad.example.jp/", false, "blocked: bad.example.jp"},
		{"", "https://sub.bad.example.jp:8443/", false, "blocked: bad.example.jp"},
		{"", "ftp://intranet.example.jp/", false, RuleScheme},
	} {
		r := set.CheckURL(tc.profile, tc.url)
		if r.Allow != tc.allow || r.Rule != tc.rule {
			t.Errorf("CheckURL(%q, %s) = %v by %q; want %v by %q", tc.profile, tc.url, r.Allow, r.Rule, tc.allow, tc.rule)
		}
	}
	if d := set.Decide("ward", "intranet.example.jp", 443); !d.Allow || d.Rule != "config file egress.allow: intranet.example.jp" {
		t.Errorf("Decide static host = %+v", d)
	}
	if d := set.Decide("ward", "bad.example.jp", 443); d.Allow || !strings.HasPrefix(d.Rule, RuleBlockedPrefix) {
		t.Errorf("Decide blocked host in the static layer = %+v; want the block", d)
	}
	if got := set.Document().Static; len(got) != 4 || got[0].Source != "config file egress.allow" || !got[0].ReadOnly {
		t.Errorf("Document().Static = %+v; want the layer", got)
	}
}

// TestStaticLayerInvalid checks that a bad entry of the read-only layer is
// a validation error naming it.
func TestStaticLayerInvalid(t *testing.T) {
	for _, tc := range []struct {
		rule StaticRule
		want string
	}{
		{StaticRule{Pattern: "https://example.jp/", Source: "config file egress.allow"}, `static rule 1 "https://example.jp/": scheme not allowed`},
		{StaticRule{Pattern: "*.jp", Source: "config file egress.allow"}, `static rule 1 "*.jp": wildcard over public suffix`},
		{StaticRule{Pattern: "example.jp"}, `static rule 1 "example.jp": source is empty`},
	} {
		err := (&Document{Static: []StaticRule{tc.rule}}).Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.rule, err, tc.want)
		}
	}
}
