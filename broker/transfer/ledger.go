package transfer

import (
	"fmt"
	"iter"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// StateSteps maps each ledger state to the audit steps (audit.Transfer
// State values) any one of which records it. Every change of the ledger is
// written after its step is durable, so the trail has the step of every
// entry's current state; it may have later steps too (a crash between the
// two writes), which the next start or Run carries out.
var StateSteps = map[State][]Step{
	Receiving: {StepStarted},
	Checking:  {StepReceived},
	Held:      {StepHeld},
	Released:  {StepReleased, StepApproved},
	Rejected:  {StepRejected},
	Canceled:  {StepCanceled},
}

// Disagreement is one way the transfer ledger and the audit trail differ.
type Disagreement struct {
	// Transfer is the transfer's ID.
	Transfer string
	// State is the ledger's state of the transfer; empty when the ledger
	// has no entry for it.
	State State
	// Problem says what the trail lacks, or that the ledger lacks the
	// transfer.
	Problem string
}

func (d Disagreement) String() string {
	if d.State == "" {
		return fmt.Sprintf("transfer %s: %s", d.Transfer, d.Problem)
	}
	return fmt.Sprintf("transfer %s (%s): %s", d.Transfer, d.State, d.Problem)
}

// CheckLedger compares the transfer ledger in st with the audit trail in
// auditDir (DATA/audit) and returns every disagreement; none means they
// agree. See CompareLedger for what is compared. The error is for a ledger
// or a trail that cannot be read. It reads only; st must be open (for the
// bbolt store, that means the broker is not running on the data
// directory).
func CheckLedger(st Ledger, auditDir string) ([]Disagreement, error) {
	ledger, err := st.ListTransfers(nil)
	if err != nil {
		return nil, fmt.Errorf("check ledger: %w", err)
	}
	return CompareLedger(ledger, audit.Scan(auditDir, audit.Filter{Type: audit.TypeTransfer}))
}

// trailSteps is what the trail says about one transfer.
type trailSteps struct {
	steps map[Step]int   // step → how many records
	sent  map[string]int // "destination:file" of "sent" steps → how many
	first string         // the first step, for a transfer the ledger lacks
}

// CompareLedger compares ledger entries with the transfer records of a
// trail (audit.Scan) and returns, in ledger order and then trail order:
//
//   - each entry whose state has no step of StateSteps in the trail, or
//     whose state is unknown;
//   - each expired entry without a "deleted" step;
//   - each entry with a justification and no "justified" step;
//   - each delivery in Sent without its "sent" step (same destination and
//     file);
//   - each entry saved more often than the trail has "saved" steps;
//   - each transfer ID the trail records that the ledger has no entry for.
//
// A record of the trail that cannot be read is an error.
func CompareLedger(ledger []Transfer, trail iter.Seq2[audit.Event, error]) ([]Disagreement, error) {
	byID := map[string]*trailSteps{}
	var order []string
	for e, err := range trail {
		if err != nil {
			return nil, fmt.Errorf("check ledger: %w", err)
		}
		t := e.Transfer
		if e.Type != audit.TypeTransfer || t == nil || t.ID == "" {
			continue
		}
		ts := byID[t.ID]
		if ts == nil {
			ts = &trailSteps{steps: map[Step]int{}, sent: map[string]int{}, first: t.State}
			byID[t.ID] = ts
			order = append(order, t.ID)
		}
		ts.steps[Step(t.State)]++
		if Step(t.State) == StepSent {
			ts.sent[t.Destination]++
		}
	}
	var out []Disagreement
	inLedger := make(map[string]bool, len(ledger))
	for _, t := range ledger {
		inLedger[t.ID] = true
		ts := byID[t.ID]
		if ts == nil {
			ts = &trailSteps{steps: map[Step]int{}, sent: map[string]int{}}
		}
		out = append(out, compareEntry(t, ts)...)
	}
	for _, id := range order {
		if !inLedger[id] {
			out = append(out, Disagreement{Transfer: id, Problem: fmt.Sprintf("the trail records it (first step %q) but the ledger has no entry", byID[id].first)})
		}
	}
	return out, nil
}

// compareEntry lists how one ledger entry disagrees with its steps.
func compareEntry(t Transfer, ts *trailSteps) []Disagreement {
	var out []Disagreement
	miss := func(format string, args ...any) {
		out = append(out, Disagreement{Transfer: t.ID, State: t.State, Problem: fmt.Sprintf(format, args...)})
	}
	want := StateSteps[t.State]
	switch {
	case !t.State.Valid():
		miss("the ledger state %q is not one the broker writes", t.State)
	case !hasAny(ts.steps, want):
		miss("the trail has no %s step", quoteOr(want))
	}
	if !t.Expired.IsZero() && ts.steps[StepDeleted] == 0 {
		miss(`the ledger says the file was deleted, the trail has no "deleted" step`)
	}
	if t.Justification != "" && ts.steps[StepJustified] == 0 {
		miss(`the ledger holds a justification, the trail has no "justified" step`)
	}
	sent := map[string]int{}
	for _, s := range t.Sent {
		where := s.Destination + ":" + s.File
		sent[where]++
		if sent[where] > ts.sent[where] {
			miss(`the ledger says it was sent to %s, the trail has no "sent" step for it`, where)
		}
	}
	if t.Saved > ts.steps[StepSaved] {
		miss(`the ledger counts %d saves, the trail has %d "saved" steps`, t.Saved, ts.steps[StepSaved])
	}
	return out
}

func hasAny(steps map[Step]int, want []Step) bool {
	for _, w := range want {
		if steps[w] > 0 {
			return true
		}
	}
	return false
}

func quoteOr(steps []Step) string {
	s := ""
	for i, w := range steps {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("%q", w)
	}
	return s
}
