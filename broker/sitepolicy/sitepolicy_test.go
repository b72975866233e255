package sitepolicy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// storeWatchingSink is an audit sink that notes, for each record, which
// policy version the store held when the record was committed or queued.
type storeWatchingSink struct {
	st        *store.Store
	commitErr error

	mu      sync.Mutex
	events  []audit.Event
	atStore []int
	how     []string
}

func (s *storeWatchingSink) note(e audit.Event, how string) {
	_, v, _ := s.st.Policy()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.atStore, s.how = append(s.events, e), append(s.atStore, v), append(s.how, how)
}

func (s *storeWatchingSink) Commit(_ context.Context, e audit.Event) (audit.Event, error) {
	if s.commitErr != nil {
		return e, s.commitErr
	}
	s.note(e, "commit")
	return e, nil
}

func (s *storeWatchingSink) Record(e audit.Event) { s.note(e, "record") }
func (s *storeWatchingSink) Close() error         { return nil }

// newTestService is a loaded Service on a fresh store whose records go to
// a storeWatchingSink; commitErr, if set, is every Commit's error.
func newTestService(t *testing.T, commitErr error) (*Service, *store.Store, *storeWatchingSink) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sink := &storeWatchingSink{st: st, commitErr: commitErr}
	svc := New(Options{Store: st, Audit: sink})
	if err := svc.Load(); err != nil {
		t.Fatal(err)
	}
	return svc, st, sink
}

func addRule(pattern string) func(d *policy.Document) error {
	return func(d *policy.Document) error {
		d.Profiles = []policy.Profile{{Name: "ward", Rules: []policy.Rule{{Pattern: pattern}}}}
		d.Default = "ward"
		return nil
	}
}

// TestPolicyChangeRecordedBeforeSaved: a policy change is durable in the
// audit trail before the store holds it, and a change the trail cannot take
// does not happen (a broker killed between the two never has a version in
// force that the trail does not show).
func TestPolicyChangeRecordedBeforeSaved(t *testing.T) {
	t.Run("committed first", func(t *testing.T) {
		sp, _, sink := newTestService(t, nil)
		next, err := sp.Change("admin1", 0, addRule("www.pmda.go.jp"))
		if err != nil || next.Version != 1 {
			t.Fatalf("change: %v, %v", next, err)
		}
		if len(sink.events) != 1 || sink.how[0] != "commit" || sink.atStore[0] != 0 ||
			sink.events[0].What != "site policy version 1" || !strings.Contains(sink.events[0].After, "www.pmda.go.jp") {
			t.Fatalf("records %v, made by %v with the store at %v; want one commit of version 1 with the store at 0",
				sink.events, sink.how, sink.atStore)
		}
	})
	t.Run("trail unavailable", func(t *testing.T) {
		sp, st, _ := newTestService(t, audit.ErrClosed)
		if _, err := sp.Change("admin1", 0, addRule("www.pmda.go.jp")); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("change with the trail down: %v, want audit.ErrClosed", err)
		}
		if _, v, _ := st.Policy(); v != 0 || sp.Current().Version() != 0 {
			t.Errorf("the policy changed without its record: store at %d, engine at %d", v, sp.Current().Version())
		}
	})
	t.Run("store refuses", func(t *testing.T) {
		sp, st, sink := newTestService(t, nil)
		// Someone saved behind the engine's back: the store is at 1.
		if _, err := st.PutPolicy([]byte(`{"profiles":[]}`), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Change("admin1", -1, addRule("www.pmda.go.jp")); !errors.Is(err, ErrConflict) {
			t.Fatalf("change: %v, want ErrConflict", err)
		}
		if len(sink.events) != 2 || sink.events[1].What != "site policy version 1 not saved" || sink.events[1].Outcome != "failed" {
			t.Errorf("records %v; want the committed change, then that it was not saved", sink.events)
		}
	})
}
