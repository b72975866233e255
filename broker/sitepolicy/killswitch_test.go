package sitepolicy

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

var admin = audit.Actor{User: "admin1", Role: "admin", Terminal: "10.0.0.1"}

// killSwitchRecords returns the kill switch records of the sink.
func killSwitchRecords(s *storeWatchingSink) []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, e := range s.events {
		if e.Type == audit.TypeKillSwitch {
			out = append(out, e)
		}
	}
	return out
}

// TestBlock: a blocked host is in the policy at once, under the name the
// policy uses, its open connections are cut, and the act is recorded; a
// second block of it, and bad input, are refused and change nothing.
func TestBlock(t *testing.T) {
	sp, _, sink := newTestService(t, nil)
	var cut []string
	k := &KillSwitch{Policy: sp, CutHost: func(h string) int { cut = append(cut, h); return 2 }}
	host, err := k.Block(admin, " Evil.Example. ", "phishing")
	if err != nil || host != "evil.example" {
		t.Fatalf("Block = %q, %v, want evil.example", host, err)
	}
	b := sp.Current().Document().Blocked
	if len(b) != 1 || b[0].Host != "evil.example" || b[0].By != "admin1" || b[0].Reason != "phishing" {
		t.Errorf("blocked = %+v", b)
	}
	if !slices.Equal(cut, []string{"evil.example"}) {
		t.Errorf("cut %v, want evil.example", cut)
	}
	if r := killSwitchRecords(sink); len(r) != 1 || r[0].What != "block_host" || r[0].Target != "evil.example" || r[0].Actor != admin {
		t.Errorf("records %+v, want one block_host of evil.example by admin1", r)
	}
	version := sp.Current().Version()
	tests := []struct {
		name, host, reason string
		class              error
		msg                string
	}{
		{"again", "EVIL.example", "again", ErrAlreadyBlocked, "evil.example is already blocked"},
		{"no host", "", "x", policy.ErrInvalid, `host "": not a host name`},
		{"bad host", "a b", "x", policy.ErrInvalid, `host "a b": not a host name`},
		{"no reason", "b.example", " ", policy.ErrInvalid, "reason: say why the host is blocked"},
	}
	for _, tt := range tests {
		if _, err := k.Block(admin, tt.host, tt.reason); !errors.Is(err, tt.class) || err.Error() != tt.msg {
			t.Errorf("%s: Block = %v, want %v saying %q", tt.name, err, tt.class, tt.msg)
		}
	}
	if v := sp.Current().Version(); v != version || len(cut) != 1 || len(killSwitchRecords(sink)) != 1 {
		t.Errorf("refused blocks changed the policy (version %d, was %d), cut %v or were recorded", v, version, cut)
	}

	if err := k.Unblock(admin, "other.example"); !errors.Is(err, ErrNotInPolicy) || err.Error() != "other.example is not blocked" {
		t.Errorf("Unblock of a host not blocked: %v, want ErrNotInPolicy", err)
	}
	if err := k.Unblock(admin, "evil.example"); err != nil {
		t.Fatal(err)
	}
	if b := sp.Current().Document().Blocked; len(b) != 0 {
		t.Errorf("blocked after Unblock = %+v", b)
	}
	if r := killSwitchRecords(sink); len(r) != 2 || r[1].What != "unblock_host" {
		t.Errorf("records %+v, want block_host then unblock_host", r)
	}
}

// TestEmergency: an emergency profile replaces the group's earlier one and
// names who switched it on; ending one that is not on is refused.
func TestEmergency(t *testing.T) {
	sp, _, sink := newTestService(t, nil)
	if _, err := sp.Change("admin1", 0, func(d *policy.Document) error {
		d.Profiles = []policy.Profile{{Name: "ward"}, {Name: "lockdown"}}
		d.Default = "ward"
		d.Groups = []policy.Group{{Name: "er", Terminals: []string{"10.9.0.0/16"}}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	k := &KillSwitch{Policy: sp}
	until := time.Now().Add(time.Hour).UTC()
	for _, prof := range []string{"ward", "lockdown"} {
		if err := k.StartEmergency(admin, policy.Emergency{Group: "er", Profile: prof, Reason: "ransomware", By: "someone", Expires: until}); err != nil {
			t.Fatal(err)
		}
	}
	e := sp.Current().Document().Emergencies
	if len(e) != 1 || e[0].Profile != "lockdown" || e[0].By != "admin1" {
		t.Errorf("emergencies = %+v, want lockdown for er by admin1", e)
	}
	if err := k.StartEmergency(admin, policy.Emergency{Group: "nowhere", Profile: "ward", Reason: "x", Expires: until}); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("emergency for an unknown group: %v, want policy.ErrInvalid", err)
	}
	if err := k.EndEmergency(admin, "icu"); !errors.Is(err, ErrNotInPolicy) || err.Error() != "no emergency profile for group icu" {
		t.Errorf("EndEmergency(icu): %v, want ErrNotInPolicy", err)
	}
	if err := k.EndEmergency(admin, "er"); err != nil || len(sp.Current().Document().Emergencies) != 0 {
		t.Errorf("EndEmergency(er): %v, left %+v", err, sp.Current().Document().Emergencies)
	}
	var what []string
	for _, r := range killSwitchRecords(sink) {
		what = append(what, r.What+" "+r.Target)
	}
	if want := []string{"emergency_on er → ward", "emergency_on er → lockdown", "emergency_off er"}; !slices.Equal(what, want) {
		t.Errorf("records %q, want %q", what, want)
	}
}

func TestEndAllSessions(t *testing.T) {
	sp, _, sink := newTestService(t, nil)
	k := &KillSwitch{Policy: sp, EndSessions: func() int { return 3 }}
	if n := k.EndAllSessions(admin); n != 3 {
		t.Errorf("EndAllSessions = %d, want 3", n)
	}
	if r := killSwitchRecords(sink); len(r) != 1 || r[0].What != "end_all_sessions" || r[0].Target != "3 sessions" {
		t.Errorf("records %+v, want one end_all_sessions of 3 sessions", r)
	}
}

// TestReplaceStampsRules: a replaced policy's rules say who added them and
// when, unless they already do.
func TestReplaceStampsRules(t *testing.T) {
	sp, _, _ := newTestService(t, nil)
	earlier := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	doc := &policy.Document{Default: "ward", Profiles: []policy.Profile{{Name: "ward", Rules: []policy.Rule{
		{Pattern: "a.example"}, {Pattern: "b.example", AddedBy: "import", Added: earlier},
	}}}}
	if _, err := sp.Replace("admin1", 0, doc); err != nil {
		t.Fatal(err)
	}
	rules := sp.Current().Document().Profile("ward").Rules
	if rules[0].AddedBy != "admin1" || rules[0].Added.IsZero() || rules[1].AddedBy != "import" || !rules[1].Added.Equal(earlier) {
		t.Errorf("rules = %+v, want a.example stamped admin1 now, b.example kept", rules)
	}
	if _, err := sp.Replace("admin1", 0, &policy.Document{}); !errors.Is(err, ErrConflict) {
		t.Errorf("Replace at a stale version: %v, want ErrConflict", err)
	}
}
