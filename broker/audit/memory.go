package audit

import (
	"context"
	"slices"
	"sync"
)

// Memory is a Sink that keeps the chain in memory, for tests of the code
// that records events. It numbers and links events as File does.
type Memory struct {
	mu     sync.Mutex
	events []Event
	hash   string
	closed bool
	// lost counts Record events that were refused (invalid, or after
	// Close).
	lost int
}

// NewMemory returns an empty Memory sink.
func NewMemory() *Memory { return &Memory{hash: ZeroHash} }

// Commit implements Sink.
func (m *Memory) Commit(ctx context.Context, e Event) (Event, error) {
	if err := e.check(); err != nil {
		return Event{}, err
	}
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Event{}, ErrClosed
	}
	return m.append(e)
}

// Record implements Sink.
func (m *Memory) Record(e Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || e.check() != nil {
		m.lost++
		return
	}
	if _, err := m.append(e); err != nil {
		m.lost++
	}
}

func (m *Memory) append(e Event) (Event, error) {
	e.Seq, e.Prev = uint64(len(m.events))+1, m.hash
	line, err := encodeLine(e)
	if err != nil {
		return Event{}, err
	}
	m.events = append(m.events, e)
	m.hash = lineHash(line)
	return e, nil
}

// Close implements Sink.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Events returns a copy of the events recorded so far.
func (m *Memory) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

// Lost is how many Record events were refused.
func (m *Memory) Lost() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lost
}
