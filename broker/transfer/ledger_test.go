package transfer

import (
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// trailOf yields events as audit.Scan does.
func trailOf(events ...audit.Event) iter.Seq2[audit.Event, error] {
	return func(yield func(audit.Event, error) bool) {
		for _, e := range events {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// stepOf is the trail's record of step of transfer id.
func stepOf(id, step string) audit.Event {
	return audit.TransferStep(time.Unix(0, 0), audit.Actor{User: "alice"}, audit.Transfer{ID: id, State: step})
}

func sentOf(id, where string) audit.Event {
	e := stepOf(id, "sent")
	e.Transfer.Destination = where
	return e
}

func TestCompareLedger(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	entry := func(state State, mod ...func(*Transfer)) Transfer {
		tr := Transfer{ID: "t1", State: state}
		for _, f := range mod {
			f(&tr)
		}
		return tr
	}
	cases := []struct {
		name   string
		ledger []Transfer
		trail  []audit.Event
		want   []string // a word of each disagreement, in order
	}{
		{name: "empty"},
		{name: "receiving", ledger: []Transfer{entry(Receiving)}, trail: []audit.Event{stepOf("t1", "started")}},
		{name: "receiving unrecorded", ledger: []Transfer{entry(Receiving)}, want: []string{`"started"`}},
		{name: "checking", ledger: []Transfer{entry(Checking)}, trail: []audit.Event{stepOf("t1", "started"), stepOf("t1", "received")}},
		{name: "checking unrecorded", ledger: []Transfer{entry(Checking)}, trail: []audit.Event{stepOf("t1", "started")}, want: []string{`"received"`}},
		{name: "held", ledger: []Transfer{entry(Held)}, trail: []audit.Event{stepOf("t1", "held")}},
		{name: "held unrecorded (the crash of issue 9)", ledger: []Transfer{entry(Held)}, trail: []audit.Event{stepOf("t1", "started")}, want: []string{`"held"`}},
		{name: "released", ledger: []Transfer{entry(Released)}, trail: []audit.Event{stepOf("t1", "released")}},
		{name: "approved", ledger: []Transfer{entry(Released)}, trail: []audit.Event{stepOf("t1", "held"), stepOf("t1", "approved")}},
		{name: "released unrecorded", ledger: []Transfer{entry(Released)}, trail: []audit.Event{stepOf("t1", "held")}, want: []string{`"released" or "approved"`}},
		{name: "rejected", ledger: []Transfer{entry(Rejected)}, trail: []audit.Event{stepOf("t1", "rejected")}},
		{name: "canceled unrecorded", ledger: []Transfer{entry(Canceled)}, want: []string{`"canceled"`}},
		{name: "trail ahead of the ledger", ledger: []Transfer{entry(Held)}, trail: []audit.Event{stepOf("t1", "held"), stepOf("t1", "approved")}},
		{name: "unknown state", ledger: []Transfer{entry("teleported")}, trail: []audit.Event{stepOf("t1", "teleported")}, want: []string{"not one the broker writes"}},
		{name: "expired",
			ledger: []Transfer{entry(Released, func(t *Transfer) { t.Expired = at })},
			trail:  []audit.Event{stepOf("t1", "released"), stepOf("t1", "deleted")}},
		{name: "expired unrecorded",
			ledger: []Transfer{entry(Released, func(t *Transfer) { t.Expired = at })},
			trail:  []audit.Event{stepOf("t1", "released")}, want: []string{`"deleted"`}},
		{name: "justified unrecorded",
			ledger: []Transfer{entry(Held, func(t *Transfer) { t.Justification = "why" })},
			trail:  []audit.Event{stepOf("t1", "held")}, want: []string{`"justified"`}},
		{name: "sent twice",
			ledger: []Transfer{entry(Released, func(t *Transfer) {
				t.Sent = []Sent{{Destination: "ikyoku", File: "a.pdf"}, {Destination: "ikyoku", File: "a (2).pdf"}}
			})},
			trail: []audit.Event{stepOf("t1", "released"), sentOf("t1", "ikyoku:a.pdf"), sentOf("t1", "ikyoku:a (2).pdf")}},
		{name: "sent unrecorded",
			ledger: []Transfer{entry(Released, func(t *Transfer) {
				t.Sent = []Sent{{Destination: "ikyoku", File: "a.pdf"}, {Destination: "ikyoku", File: "a (2).pdf"}}
			})},
			trail: []audit.Event{stepOf("t1", "released"), sentOf("t1", "ikyoku:a.pdf")}, want: []string{"ikyoku:a (2).pdf"}},
		{name: "saved more than recorded",
			ledger: []Transfer{entry(Released, func(t *Transfer) { t.Saved = 2 })},
			trail:  []audit.Event{stepOf("t1", "released"), stepOf("t1", "saved")}, want: []string{"2 saves"}},
		{name: "saved less than recorded",
			ledger: []Transfer{entry(Released, func(t *Transfer) { t.Saved = 1 })},
			trail:  []audit.Event{stepOf("t1", "released"), stepOf("t1", "saved"), stepOf("t1", "saved")}},
		{name: "trail only", trail: []audit.Event{stepOf("t9", "started")}, want: []string{"no entry"}},
		{name: "refusal without an ID", trail: []audit.Event{stepOf("", "refused")}},
		{name: "other events", trail: []audit.Event{audit.Login(at, audit.Actor{User: "alice"})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CompareLedger(c.ledger, trailOf(c.trail...))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("disagreements %v, want %d", got, len(c.want))
			}
			for i, d := range got {
				if !strings.Contains(d.String(), c.want[i]) {
					t.Errorf("disagreement %q does not mention %q", d, c.want[i])
				}
			}
		})
	}
}

func TestCompareLedgerTrailError(t *testing.T) {
	bad := func(yield func(audit.Event, error) bool) { yield(audit.Event{}, errors.New("line 3: not a record")) }
	if _, err := CompareLedger(nil, bad); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("error %v", err)
	}
}

// TestStateStepsCoverStates: every state the ledger knows has its steps.
func TestStateStepsCoverStates(t *testing.T) {
	for _, s := range []State{Receiving, Checking, Held, Released, Rejected, Canceled} {
		if len(StateSteps[s]) == 0 || slices.Contains(StateSteps[s], "") {
			t.Errorf("state %s has no step", s)
		}
	}
}
