package audit

import (
	"context"
	"errors"
)

// Sink makes audit events durable, in order, each linked to the one
// before it.
type Sink interface {
	// Commit appends e and returns once it is durable, with Seq and Prev
	// filled in. An action that must not happen unrecorded (releasing a
	// file, changing the policy) waits for Commit and does not happen when
	// it fails. When ctx ends first, Commit returns its error and the
	// event may still be written.
	Commit(ctx context.Context, e Event) (Event, error)
	// Record appends e without waiting, for events whose action need not
	// wait (a navigation, a logout). It never blocks on I/O; a sink that
	// cannot keep an event says so in its log and, where it can, in the
	// trail itself.
	Record(e Event)
	// Close writes what is pending and releases the sink.
	Close() error
}

// ErrClosed is returned by Commit after Close.
var ErrClosed = errors.New("audit sink closed")
