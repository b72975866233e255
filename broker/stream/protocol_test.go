package stream

import (
	"errors"
	"testing"

	"github.com/shoji-rbi/shoji/broker/protocol"
)

// TestDecodeAcceptsEveryViewerType proves the stream accepts every message
// type protocol.ViewerTypes lists (which a test keeps in step with the
// viewer's scripts and docs/protocol.md), and refuses one it does not list.
func TestDecodeAcceptsEveryViewerType(t *testing.T) {
	for _, typ := range protocol.ViewerTypes {
		kind, v, err := decode([]byte(`{"type":"` + string(typ) + `"}`))
		if err != nil || kind != typ || v == nil {
			t.Errorf("decode of a %q message = %q, %T, %v; want it accepted", typ, kind, v, err)
		}
	}
	_, _, err := decode([]byte(`{"type":"ready"}`))
	var pe *protocolError
	if !errors.As(err, &pe) || pe.Reason != `unknown message type "ready"` {
		t.Errorf("decode of a server message type = %v, want unknown message type", err)
	}
}
