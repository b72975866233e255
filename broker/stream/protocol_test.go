package stream

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
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

// TestRoutesCoverViewerTypes proves the dispatch table has a handler for
// every message type a viewer may send, and none for a type the protocol
// does not list: a type added to protocol.ViewerTypes without a handler
// fails here.
func TestRoutesCoverViewerTypes(t *testing.T) {
	listed := map[protocol.Type]bool{}
	for _, typ := range protocol.ViewerTypes {
		listed[typ] = true
		r, ok := routes[typ]
		if !ok || r.decode == nil || r.handle == nil {
			t.Errorf("viewer message type %q has no handler in routes", typ)
		}
	}
	for typ := range routes {
		if !listed[typ] {
			t.Errorf("routes handles %q, which protocol.ViewerTypes does not list", typ)
		}
	}
}

// TestEveryViewerTypeHandled sends a valid message of every type a viewer
// may send on one connection: each reaches its handler (seen in the
// browser call, the answer or the transfer it makes) and none closes the
// connection.
func TestEveryViewerTypeHandled(t *testing.T) {
	tr := fakeTransfers{drops: make(chan [2]float64, 1)}
	anyway := func([]isolationtest.Call, []string) bool { return true }
	samples := map[protocol.Type]struct {
		msg string
		// handled reports whether the message was handled, from the
		// browser's calls and the messages the viewer got.
		handled func(calls []isolationtest.Call, got []string) bool
	}{
		protocol.TypeResize:   {`{"type":"resize","width":640,"height":480,"dpr":2}`, called("SetViewport", isolation.Viewport{Width: 640, Height: 480, DPR: 2})},
		protocol.TypeMouse:    {`{"type":"mouse","action":"down","x":1,"y":1,"button":"left","buttons":1,"clicks":1}`, called("Mouse", isolation.MouseEvent{Action: "down", X: 1, Y: 1, Button: "left", Buttons: 1, ClickCount: 1})},
		protocol.TypeWheel:    {`{"type":"wheel","x":1,"y":1,"dy":3}`, called("Wheel", isolation.WheelEvent{X: 1, Y: 1, DeltaY: 3})},
		protocol.TypeKey:      {`{"type":"key","action":"down","key":"a","code":"KeyA","keyCode":65}`, called("Key", isolation.KeyEvent{Action: "down", Key: "a", Code: "KeyA", KeyCode: 65})},
		protocol.TypeIME:      {`{"type":"ime","action":"update","text":"か","selStart":1,"selEnd":1}`, called("Compose", []any{"か", 1, 1})},
		protocol.TypeNav:      {`{"type":"nav","action":"back"}`, called("Back", nil)},
		protocol.TypeTab:      {`{"type":"tab","action":"close","id":"T1"}`, called("CloseTab", "T1")},
		protocol.TypeDialog:   {`{"type":"dialog","id":"d1","accept":true}`, received("dialogClosed")},
		protocol.TypeActivity: {`{"type":"activity"}`, anyway}, // touches the idle timer only
		protocol.TypeCopy:     {`{"type":"copy"}`, received("clipboard")},
		protocol.TypePaste:    {`{"type":"paste","text":"x"}`, received("error: paste refused: the clipboard is closed in this direction")},
		protocol.TypePrint:    {`{"type":"print"}`, called("Print", nil)},
		protocol.TypeDrop:     {`{"type":"drop","x":1,"y":1}`, func([]isolationtest.Call, []string) bool { return len(tr.drops) == 1 }},
		protocol.TypeRestart:  {`{"type":"restart"}`, anyway},  // a live browser is not restarted
		protocol.TypeKeyFrame: {`{"type":"keyframe"}`, anyway}, // TestPartialKeyFrameAndReconnect proves its effect
	}
	f := newFixtureWith(t, tr)
	c := f.connect(t, "alice")
	b := f.l.Last()
	b.EmitDialog(isolation.Dialog{ID: "d1", Kind: isolation.DialogAlert, Message: "hello"})
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "dialog" })
	for _, typ := range protocol.ViewerTypes {
		if typ == protocol.TypeHello {
			continue // the first message; TestDispatchRefusals refuses a second
		}
		s, ok := samples[typ]
		if !ok {
			t.Errorf("no sample %q message in this test: add one", typ)
			continue
		}
		write(t, c, s.msg)
	}
	// The input queue handles the sentinel after all the others.
	write(t, c, `{"type":"nav","action":"stop"}`)
	var got []string
	for _, want := range []string{"dialogClosed", "clipboard", "error: paste refused"} {
		for !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
			m := readUntil(t, c, func(map[string]any) bool { return true })
			typ := fmt.Sprint(m["type"])
			if typ == "error" {
				typ += ": " + fmt.Sprint(m["message"])
			}
			got = append(got, typ)
		}
	}
	waitCall(t, b, "Stop")
	for typ, s := range samples {
		if !s.handled(b.Calls(), got) {
			t.Errorf("the %s message was not handled: browser calls %+v, viewer got %q", typ, b.Calls(), got)
		}
	}
}

// called reports whether the browser got a call of method with arg.
func called(method string, arg any) func([]isolationtest.Call, []string) bool {
	return func(calls []isolationtest.Call, _ []string) bool {
		return slices.ContainsFunc(calls, func(c isolationtest.Call) bool {
			return c.Method == method && cmp.Equal(c.Arg, arg)
		})
	}
}

// received reports whether the viewer got a message of typ (for an error,
// "error: " and its message).
func received(typ string) func([]isolationtest.Call, []string) bool {
	return func(_ []isolationtest.Call, got []string) bool { return slices.Contains(got, typ) }
}
