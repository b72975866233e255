package policy

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/isolation/egress"
)

// Engine holds the policy in force and replaces it atomically. Readers
// (Current, and the adapters of PolicyFor) never block; Swap compiles the
// new document completely before it replaces the old one, so an invalid
// document never takes effect. It is safe for concurrent use.
type Engine struct {
	now     func() time.Time
	current atomic.Pointer[Set]

	mu   sync.Mutex // serialises Swap and guards subs
	subs map[chan struct{}]struct{}
}

// NewEngine returns an Engine whose policy is the empty Document: nothing
// is allowed to anyone until the first Swap. now is the clock of every Set
// it compiles, for rule and emergency expiry; nil means time.Now.
func NewEngine(now func() time.Time) *Engine {
	if now == nil {
		now = time.Now
	}
	e := &Engine{now: now, subs: make(map[chan struct{}]struct{})}
	empty, err := build(&Document{})
	if err != nil {
		panic(fmt.Sprintf("policy: the empty document is invalid: %v", err)) // a bug in build
	}
	e.current.Store(empty.WithClock(now))
	return e
}

// Current returns the Set in force. It is never nil.
func (e *Engine) Current() *Set { return e.current.Load() }

// Swap compiles d and, only when it is valid, makes it the policy in force
// and notifies subscribers. On error (a *ValidationError) the old policy
// stays in force. The Engine keeps its own copy of d.
func (e *Engine) Swap(d *Document) error {
	s, err := build(d)
	if err != nil {
		return fmt.Errorf("swap policy: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.current.Store(s.WithClock(e.now))
	for ch := range e.subs {
		// Each channel has capacity 1 and the send never blocks: a
		// notification already pending covers this change too
		// (latest-wins). Receivers read Current, not a value.
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// Subscribe returns a channel that receives a value after each successful
// Swap, and a func that unsubscribes and closes the channel. The channel
// has capacity 1 and is latest-wins: notifications coalesce while the
// receiver is busy, and the receiver reads Current for the policy itself.
func (e *Engine) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.mu.Lock()
			delete(e.subs, ch)
			close(ch)
			e.mu.Unlock()
		})
	}
}

// PolicyFor returns a live egress.Policy for one profile: each call reads
// the Set in force, so a Swap reaches sessions at once. Its dynamic type is
// *ProfilePolicy, which also offers AllowAddr and CheckURL.
func (e *Engine) PolicyFor(profileName string) egress.Policy {
	return &ProfilePolicy{profile: profileName, current: e.Current}
}
