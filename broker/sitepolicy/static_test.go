package sitepolicy

import (
	"errors"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// newStaticService is a loaded Service on a fresh store with a read-only
// layer of two config file allows.
func newStaticService(t *testing.T) (*Service, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := New(Options{Store: st, Static: []policy.StaticRule{
		{Pattern: "intranet.example.jp", Source: SourceConfig},
		{Pattern: "demo.shoji.test:8081", Source: SourceDemo},
	}})
	if err := svc.Load(); err != nil {
		t.Fatal(err)
	}
	return svc, st
}

// TestStaticLayerServed checks that the layer is in force and shown from
// Load on, marked read-only, that it decides naming its source, that a
// block everywhere beats it, and that it is never stored.
func TestStaticLayerServed(t *testing.T) {
	svc, st := newStaticService(t)
	static := svc.Current().Document().Static
	if len(static) != 2 || !static[0].ReadOnly || !static[1].ReadOnly || static[0].Source != SourceConfig {
		t.Fatalf("Static = %+v; want both rules, read-only", static)
	}
	if d := svc.Current().Decide("", "intranet.example.jp", 443); !d.Allow || d.Rule != "config file egress.allow: intranet.example.jp" {
		t.Errorf("decision = %+v; want the config file's allow", d)
	}
	if d := svc.Current().Decide("", "demo.shoji.test", 8081); !d.Allow || d.Rule != "demo mode: demo.shoji.test:8081" {
		t.Errorf("decision = %+v; want the demo site's allow", d)
	}
	_, err := svc.Change("admin", -1, func(d *policy.Document) error {
		d.Blocked = append(d.Blocked, policy.BlockedHost{Host: "intranet.example.jp", Reason: "compromised"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := svc.Current().Decide("", "intranet.example.jp", 443); d.Allow || d.Rule != "blocked: intranet.example.jp" {
		t.Errorf("decision on a blocked static host = %+v; want the block", d)
	}
	if len(svc.Current().Document().Static) != 2 {
		t.Error("a change lost the read-only layer")
	}
	raw, _, err := st.Policy()
	if err != nil || strings.Contains(string(raw), "static") || strings.Contains(string(raw), SourceConfig) {
		t.Errorf("stored policy %s, %v; want no read-only layer in it", raw, err)
	}
}

// TestStaticLayerRefusesChanges checks that a change that removes, alters
// or adds a read-only rule is refused naming the rule, while one that
// sends the layer back unchanged, or leaves it out, is accepted.
func TestStaticLayerRefusesChanges(t *testing.T) {
	svc, _ := newStaticService(t)
	layer := svc.Static()
	for _, tc := range []struct {
		name   string
		static []policy.StaticRule
		want   string // "" accepts
	}{
		{"unchanged", layer, ""},
		{"left out", nil, ""},
		{"removed", layer[:1], `static rule "demo.shoji.test:8081" is read-only (demo mode) and cannot be removed`},
		{"emptied", []policy.StaticRule{}, `static rule "intranet.example.jp" is read-only (config file egress.allow) and cannot be removed`},
		{"altered", []policy.StaticRule{{Pattern: "other.example.jp", Source: SourceConfig, ReadOnly: true}, layer[1]},
			`static rule "intranet.example.jp" is read-only (config file egress.allow) and cannot be changed`},
		{"not read-only", []policy.StaticRule{{Pattern: "intranet.example.jp", Source: SourceConfig}, layer[1]},
			`static rule "intranet.example.jp" is read-only (config file egress.allow) and cannot be changed`},
		{"added", append(svc.Static(), policy.StaticRule{Pattern: "new.example.jp", Source: SourceConfig, ReadOnly: true}),
			`static rule "new.example.jp" cannot be added`},
	} {
		before := svc.Current().Version()
		_, err := svc.Change("admin", -1, func(d *policy.Document) error {
			*d = policy.Document{Version: d.Version, Static: tc.static}
			return nil
		})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v; want it accepted", tc.name, err)
			}
		} else if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) || svc.Current().Version() != before {
			t.Errorf("%s: %v (version %d→%d); want refused with %q", tc.name, err, before, svc.Current().Version(), tc.want)
		}
		if got := svc.Current().Document().Static; len(got) != 2 || got[0] != layer[0] || got[1] != layer[1] {
			t.Errorf("%s: the layer is now %+v", tc.name, got)
		}
	}
}
