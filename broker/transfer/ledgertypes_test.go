package transfer

import (
	"regexp"
	"slices"
	"testing"
)

// TestStates: the states the broker writes are valid, with the values the
// ledger has always stored; InProgress and Stopped say which have no
// verdict yet and which never move on.
func TestStates(t *testing.T) {
	cases := []struct {
		s                 State
		value             string
		inProgress, stops bool
	}{
		{Receiving, "receiving", true, false},
		{Checking, "checking", true, false},
		{Released, "released", false, false},
		{Held, "held", false, false},
		{Rejected, "rejected", false, true},
		{Canceled, "canceled", false, true},
	}
	for _, c := range cases {
		if string(c.s) != c.value || !c.s.Valid() || c.s.InProgress() != c.inProgress || c.s.Stopped() != c.stops {
			t.Errorf("%q: valid %v, in progress %v, stopped %v", c.s, c.s.Valid(), c.s.InProgress(), c.s.Stopped())
		}
	}
	// finish records a verdict under the step named as its state.
	for _, s := range []State{Released, Held, Rejected, Canceled} {
		if !slices.Contains(StateSteps[s], Step(s)) {
			t.Errorf("state %q is not recorded by the step of its name", s)
		}
	}
	for _, bad := range []State{"", "teleported", "Held"} {
		if bad.Valid() || bad.InProgress() || bad.Stopped() {
			t.Errorf("%q is taken for a state", bad)
		}
	}
}

// TestNewID: IDs are 128 random bits in hexadecimal, safe as file names,
// and differ.
func TestNewID(t *testing.T) {
	hex := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !hex.MatchString(id) || !safeID(id) || seen[id] {
			t.Fatalf("ID %q", id)
		}
		seen[id] = true
	}
}
