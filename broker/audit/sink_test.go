package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSinkContract runs the same checks against every Sink.
func TestSinkContract(t *testing.T) {
	sinks := map[string]func(t *testing.T) (Sink, func() []Event){
		"File": func(t *testing.T) (Sink, func() []Event) {
			dir := t.TempDir()
			f := openTest(t, dir, 0)
			return f, func() []Event {
				var out []Event
				for e, err := range Scan(dir, Filter{}) {
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, e)
				}
				return out
			}
		},
		"Memory": func(t *testing.T) (Sink, func() []Event) {
			m := NewMemory()
			return m, m.Events
		},
	}
	for name, open := range sinks {
		t.Run(name, func(t *testing.T) {
			s, events := open(t)
			c := newClock()
			ctx := context.Background()
			first, err := s.Commit(ctx, Login(c.Now(), Actor{User: "bob"}))
			if err != nil {
				t.Fatal(err)
			}
			if first.Seq != 1 || first.Prev != ZeroHash {
				t.Errorf("first record: seq %d prev %s", first.Seq, first.Prev)
			}
			// A Record before a Commit from the same goroutine is written
			// before it.
			nav := Navigation(c.Now(), Actor{User: "bob"}, "https://a.example/")
			s.Record(nav)
			last, err := s.Commit(ctx, Logout(c.Now(), Actor{User: "bob"}, "user"))
			if err != nil {
				t.Fatal(err)
			}
			if last.Seq != 3 {
				t.Errorf("third record has seq %d", last.Seq)
			}
			if _, err := s.Commit(ctx, Event{Type: TypeLogin}); !errors.Is(err, errInvalid) {
				t.Errorf("invalid event: %v", err)
			}
			s.Record(Event{Type: TypeLogin}) // refused without harm
			got := events()
			nav.Seq, nav.Prev = 2, mustHash(t, first)
			want := []Event{first, nav, last}
			if name == "File" {
				// The refused Record is accounted for by an
				// audit_dropped record at the next write.
				got = got[:3]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if last.Prev != mustHash(t, got[1]) {
				t.Error("third record does not link to the second")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Commit(ctx, Login(c.Now(), Actor{})); !errors.Is(err, ErrClosed) {
				t.Errorf("Commit after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func mustHash(t *testing.T, e Event) string {
	t.Helper()
	line, err := encodeLine(e)
	if err != nil {
		t.Fatal(err)
	}
	return lineHash(line)
}
