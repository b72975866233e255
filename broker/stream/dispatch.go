package stream

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/internal/truncate"
)

// route is how the stream takes one type of viewer message: how its fields
// decode, and the handler that acts on them. An error from either closes
// the viewer's connection with the code and reason it carries (a
// *protocolError names what was wrong; anything else is "internal error").
type route struct {
	// decode parses a whole message of this type strictly into its typed
	// value (a pointer to one of the *Msg structs).
	decode func(data []byte) (any, error)
	// handle acts on the value decode returned.
	handle func(c *conn_, ctx context.Context, msg any) error
}

// on is the route of a message whose fields decode into M and that handle
// acts on.
func on[M any](handle func(*conn_, context.Context, *M) error) route {
	return route{
		decode: func(data []byte) (any, error) {
			m := new(M)
			if err := strictUnmarshal(data, m); err != nil {
				return nil, err
			}
			return m, nil
		},
		handle: func(c *conn_, ctx context.Context, msg any) error {
			return handle(c, ctx, msg.(*M))
		},
	}
}

// routes is the dispatch table: every message type a viewer may send
// (protocol.ViewerTypes, which a test keeps in step with docs/protocol.md
// and the viewer's scripts), and no other, with its handler. A test fails
// when a type of protocol.ViewerTypes has no route here. The handlers live
// in one file per domain:
//
//   - control.go: the session and its viewer (hello, resize, restart,
//     activity);
//   - frames.go: a viewer's request for a whole frame (keyframe);
//   - input.go: what the clinician does with the mouse and the keyboard
//     (mouse, wheel, key, ime);
//   - navigation.go: pages, tabs and their dialogs (nav, tab, dialog);
//   - transfer.go: what crosses between the terminal and the page (copy,
//     paste, print, drop).
//
// A handler checks its message, then hands the browser call to the input
// queue (queue.go), which makes the calls in the viewer's order.
var routes = map[protocol.Type]route{
	protocol.TypeHello:    on((*conn_).onHello),
	protocol.TypeResize:   on((*conn_).onResize),
	protocol.TypeRestart:  on((*conn_).onRestart),
	protocol.TypeActivity: on((*conn_).onActivity),
	protocol.TypeKeyFrame: on((*conn_).onKeyFrame),

	protocol.TypeMouse: on((*conn_).onMouse),
	protocol.TypeWheel: on((*conn_).onWheel),
	protocol.TypeKey:   on((*conn_).onKey),
	protocol.TypeIME:   on((*conn_).onIME),

	protocol.TypeNav:    on((*conn_).onNav),
	protocol.TypeTab:    on((*conn_).onTab),
	protocol.TypeDialog: on((*conn_).onDialog),

	protocol.TypeCopy:  on((*conn_).onCopy),
	protocol.TypePaste: on((*conn_).onPaste),
	protocol.TypePrint: on((*conn_).onPrint),
	protocol.TypeDrop:  on((*conn_).onDrop),
}

// dispatch decodes one message, checks it and acts on it through its
// route.
func (c *conn_) dispatch(ctx context.Context, data []byte) error {
	kind, msg, err := decode(data)
	if err != nil {
		return err
	}
	c.paceInput(kind)
	return routes[kind].handle(c, ctx, msg)
}

// decode reads the envelope of one text message (its "type"), then decodes
// the whole message strictly into the typed value of its route. It returns
// the type and that value.
func decode(data []byte) (protocol.Type, any, error) {
	var env struct {
		Type protocol.Type `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return "", nil, badData("bad JSON: %v", err)
	}
	if env.Type == "" {
		return "", nil, badData("message has no type")
	}
	r, ok := routes[env.Type]
	if !ok {
		return "", nil, badPolicy("unknown message type %q", truncate.Ellipsis(string(env.Type), 32))
	}
	v, err := r.decode(data)
	if err != nil {
		return "", nil, badData("bad %s message: %v", env.Type, err)
	}
	return env.Type, v, nil
}

// strictUnmarshal decodes data into v, refusing unknown fields (other than
// "type") and trailing data.
func strictUnmarshal(data []byte, v any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	delete(raw, "type")
	rest, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}
