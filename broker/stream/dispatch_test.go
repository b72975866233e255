package stream

import (
	"context"
	"errors"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/isolation"
)

// TestDispatchRefusals pins the close code and the whole reason of every
// refusal a viewer's message can get from dispatch: unknown and malformed
// messages, and each domain's checks. The viewer shows the reason, and the
// end-to-end tests match on it.
func TestDispatchRefusals(t *testing.T) {
	const data, policy = websocket.CloseInvalidFramePayloadData, websocket.ClosePolicyViolation
	for _, tc := range []struct {
		name, msg string
		code      int
		reason    string
	}{
		// The envelope.
		{"bad json", `{"type":"mouse",`, data, "bad JSON: unexpected end of JSON input"},
		{"not an object", `[1]`, data, `bad JSON: json: cannot unmarshal array into Go value of type struct { Type protocol.Type "json:\"type\"" }`},
		{"type not a string", `{"type":5}`, data, `bad JSON: json: cannot unmarshal number into Go struct field .type of type protocol.Type`},
		{"no type", `{"x":1}`, data, "message has no type"},
		{"empty type", `{"type":""}`, data, "message has no type"},
		{"unknown type", `{"type":"exec","cmd":"rm"}`, policy, `unknown message type "exec"`},
		{"server's type", `{"type":"ready"}`, policy, `unknown message type "ready"`},
		{"long unknown type", `{"type":"abcdefghijklmnopqrstuvwxyz0123456789"}`, policy, `unknown message type "abcdefghijklmnopqrstuvwxyz012…"`},
		{"unknown field", `{"type":"nav","action":"reload","evil":1}`, data, `bad nav message: json: unknown field "evil"`},
		{"wrong field type", `{"type":"mouse","action":"move","x":"1","y":1}`, data, "bad mouse message: json: cannot unmarshal string into Go struct field mouseMsg.x of type float64"},
		{"trailing data", `{"type":"activity"} {}`, data, "bad JSON: invalid character '{' after top-level value"},
		{"fields on an empty message", `{"type":"copy","text":"x"}`, data, `bad copy message: json: unknown field "text"`},
		// Session control.
		{"second hello", `{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`, policy, "hello sent twice"},
		{"bad second hello", `{"type":"hello","version":1,"extra":1}`, data, `bad hello message: json: unknown field "extra"`},
		{"huge resize", `{"type":"resize","width":100000,"height":600,"dpr":1}`, data, "resize: width and height must be 100–4096 and dpr 0.5–4, got 100000x600@1"},
		// Input.
		{"x out of range", `{"type":"mouse","action":"move","x":801,"y":1,"button":"none"}`, data, "mouse coordinates out of range: (801, 1) outside 800x600"},
		{"bad mouse action", `{"type":"mouse","action":"drag","x":1,"y":1}`, data, `mouse.action must be move, down or up, got "drag"`},
		{"bad button", `{"type":"mouse","action":"down","x":1,"y":1,"button":"fourth"}`, data, `mouse.button unknown: "fourth"`},
		{"bad keyCode", `{"type":"key","action":"down","key":"a","keyCode":256}`, data, "key.keyCode out of range: 256"},
		{"bad key action", `{"type":"key","action":"press","key":"a"}`, data, `key.action must be down or up, got "press"`},
		{"bad wheel mode", `{"type":"wheel","x":1,"y":1,"dy":1,"mode":3}`, data, "wheel.mode must be 0, 1 or 2, got 3"},
		{"wheel outside", `{"type":"wheel","x":-1,"y":1,"dy":1}`, data, "wheel coordinates out of range: (-1, 1) outside 800x600"},
		{"bad wheel mods", `{"type":"wheel","x":1,"y":1,"dy":1,"mods":16}`, data, "wheel.mods out of range: 16"},
		{"bad ime action", `{"type":"ime","action":"start","text":"あ"}`, data, `ime.action must be update, commit or cancel, got "start"`},
		{"ime selection", `{"type":"ime","action":"update","text":"あ","selStart":0,"selEnd":5}`, data, "ime selection out of range: 0–5 in 1 UTF-16 units"},
		// Navigation, tabs and dialogs.
		{"bad nav action", `{"type":"nav","action":"jump"}`, data, `nav.action must be go, back, forward, reload or stop, got "jump"`},
		{"empty url", `{"type":"nav","action":"go","url":"  "}`, data, "nav.url is empty"},
		{"bad tab action", `{"type":"tab","action":"open","id":"T1"}`, data, `tab.action must be switch or close, got "open"`},
		{"no tab id", `{"type":"tab","action":"close","id":""}`, data, "tab.id must be 1–128 bytes"},
		{"no dialog id", `{"type":"dialog","accept":true}`, data, "dialog.id must be 1–128 bytes"},
		// Transfers.
		{"drop outside", `{"type":"drop","x":5000,"y":1}`, data, "drop coordinates out of range: (5000, 1) outside 800x600"},
		{"paste not text", `{"type":"paste","text":1}`, data, "bad paste message: json: cannot unmarshal number into Go struct field pasteMsg.text of type string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn_{}
			c.vp.Store(&isolation.Viewport{Width: 800, Height: 600, DPR: 1})
			err := c.dispatch(context.Background(), []byte(tc.msg))
			var pe *protocolError
			if !errors.As(err, &pe) {
				t.Fatalf("dispatch = %v, want a protocol error", err)
			}
			if pe.Code != tc.code || pe.Reason != tc.reason {
				t.Errorf("dispatch refused with %d %q, want %d %q", pe.Code, pe.Reason, tc.code, tc.reason)
			}
		})
	}
}
