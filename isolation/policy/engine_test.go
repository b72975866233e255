package policy

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation/egress"
)

// pending reports whether a notification is waiting on ch, consuming it.
func pending(ch <-chan struct{}) bool {
	select {
	case _, ok := <-ch:
		return ok
	default:
		return false
	}
}

func TestEngineSwap(t *testing.T) {
	var clock atomic.Pointer[time.Time]
	now := t0
	clock.Store(&now)
	e := NewEngine(func() time.Time { return *clock.Load() })

	// Before the first Swap nothing is allowed.
	ward := e.PolicyFor("ward")
	if d := ward.Decide("www.pmda.go.jp", 443); d.Allow || d.Rule != RuleUnknownProfile {
		t.Fatalf("before Swap: %+v, want deny by %s", d, RuleUnknownProfile)
	}
	ch, cancel := e.Subscribe()
	defer cancel()

	d := loadDoc(t)
	if err := e.Swap(d); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	if !pending(ch) {
		t.Error("no notification after Swap")
	}
	// The adapter made before the swap follows it.
	if got := ward.Decide("www.pmda.go.jp", 443); !got.Allow || got.Rule != "www.pmda.go.jp" {
		t.Errorf("after Swap: %+v, want allow", got)
	}
	if v := e.Current().Version(); v != 7 {
		t.Errorf("Version = %d, want 7", v)
	}
	// The engine keeps its own copy.
	d.Profiles[0].Rules[0].Pattern = "changed.example"
	if e.Current().Document().Profiles[0].Rules[0].Pattern != "www.pmda.go.jp" {
		t.Error("changing the swapped document changed the policy")
	}

	// An invalid document is refused and the old policy stays.
	before := e.Current()
	bad := loadDoc(t)
	bad.Profile("ward").Rules = append(bad.Profile("ward").Rules, Rule{Pattern: "*.co.jp"})
	err := e.Swap(bad)
	var ve *ValidationError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
		t.Fatalf("Swap(bad) = %v, want a *ValidationError", err)
	}
	if e.Current() != before || pending(ch) {
		t.Error("a refused Swap replaced the policy or notified")
	}

	// Notifications coalesce: two swaps, one pending value.
	next := loadDoc(t)
	next.Profile("ward").Rules = next.Profile("ward").Rules[1:] // drop www.pmda.go.jp
	for range 2 {
		if err := e.Swap(next); err != nil {
			t.Fatal(err)
		}
	}
	if !pending(ch) || pending(ch) {
		t.Error("want exactly one pending notification after two swaps")
	}
	if got := ward.Decide("www.pmda.go.jp", 443); got.Allow && got.Rule == "www.pmda.go.jp" {
		t.Errorf("removed rule still decides: %+v", got)
	}

	// Expiry follows the engine's clock without a swap.
	pp := ward.(*ProfilePolicy)
	if !pp.CheckURL("https://later.example.jp/").Allow {
		t.Error("later.example.jp denied before its expiry")
	}
	later := t0.Add(2 * time.Hour)
	clock.Store(&later)
	if r := pp.CheckURL("https://later.example.jp/"); r.Allow {
		t.Errorf("later.example.jp allowed after its expiry: %+v", r)
	}
	if ok, _ := pp.AllowAddr("intranet", netip.MustParseAddr("10.1.2.3"), 443); !ok {
		t.Error("AllowAddr through the engine adapter refused a CIDR rule's address")
	}

	// Unsubscribing closes the channel once; later swaps do not panic.
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel not closed after cancel")
	}
	if err := e.Swap(next); err != nil {
		t.Fatal(err)
	}
}

// TestEngineConcurrent swaps while sessions decide; run with -race.
func TestEngineConcurrent(t *testing.T) {
	e := NewEngine(nil)
	a, b := loadDoc(t), loadDoc(t)
	b.Profile("ward").Rules = nil
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.PolicyFor("ward")
			for {
				select {
				case <-done:
					return
				default:
				}
				d := p.Decide("www.pmda.go.jp", 443)
				if d.Allow && d.Rule != "www.pmda.go.jp" {
					t.Errorf("allowed by %q", d.Rule)
					return
				}
				if d := p.Decide("127.0.0.1", 80); d.Allow {
					t.Errorf("allowed loopback by %q", d.Rule)
					return
				}
			}
		}()
	}
	ch, cancel := e.Subscribe()
	for i := range 200 {
		doc := a
		if i%2 == 1 {
			doc = b
		}
		if err := e.Swap(doc); err != nil {
			t.Error(err)
			break
		}
		pending(ch)
	}
	close(done)
	wg.Wait()
	cancel()
	if d := e.PolicyFor("ward").Decide("www.pmda.go.jp", 443); d.Allow {
		t.Errorf("last swap (no rules) not in force: %+v", d)
	}
	var _ egress.Policy = e.PolicyFor("x")
}
