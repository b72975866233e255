package stream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// headerAuth is a fake Authenticator: the X-Test-User header names the
// user; the user "unpledged" is refused with a Refusal.
type headerAuth struct{}

func (headerAuth) Authenticate(r *http.Request) (Principal, error) {
	u := r.Header.Get("X-Test-User")
	if u == "" {
		return Principal{}, errors.New("no session")
	}
	if u == "unpledged" {
		return Principal{}, testRefusal{}
	}
	return Principal{User: u, Role: "clinician"}, nil
}

// testRefusal is a Refusal answering 403 with a JSON body.
type testRefusal struct{}

func (testRefusal) Error() string { return "pledge not accepted" }

func (testRefusal) Refuse(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`{"error":"accept the usage pledge first","pledgeRequired":true}`))
}

type nopEgress struct{}

func (nopEgress) Open(session.Info) (session.Egress, error) { return nopListener{}, nil }

type nopListener struct{}

func (nopListener) Addr() string { return "127.0.0.1:1" }
func (nopListener) Close() error { return nil }

type fixture struct {
	srv *httptest.Server
	l   *isolationtest.Launcher
	m   *session.Manager
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with the handler's transfer policy.
func newFixtureWith(t *testing.T, tr Transfers) *fixture {
	t.Helper()
	l := &isolationtest.Launcher{}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Second, Logger: log, Transfers: tr}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	return &fixture{srv: srv, l: l, m: m}
}

func (f *fixture) dial(t *testing.T, user, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	hdr := http.Header{}
	if user != "" {
		hdr.Set("X-Test-User", user)
	}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http"), hdr)
}

// connect dials, says hello and reads until the session is live.
func (f *fixture) connect(t *testing.T, user string) *websocket.Conn {
	t.Helper()
	c, _, err := f.dial(t, user, "http://viewer.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	write(t, c, `{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "ready" })
	return c
}

func (f *fixture) browserOf(t *testing.T, user string) *isolationtest.Browser {
	t.Helper()
	s, ok := f.m.Get(user)
	if !ok {
		t.Fatalf("%s has no session", user)
	}
	for _, b := range f.l.Browsers() {
		if b.Opts.SessionID == s.ID {
			return b
		}
	}
	t.Fatalf("%s's browser not found", user)
	return nil
}

func write(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads text messages until match returns true.
func readUntil(t *testing.T, c *websocket.Conn, match func(map[string]any) bool) map[string]any {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if match(m) {
			return m
		}
	}
}

// readClose reads until the server closes, and returns the close error.
func readClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func TestUpgradeRefused(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, user, origin string
		status             int
	}{
		{"no session", "", "http://viewer.test", http.StatusUnauthorized},
		{"foreign origin", "alice", "http://evil.test", http.StatusForbidden},
		{"no origin", "alice", "", http.StatusForbidden},
		{"origin with other port", "alice", "http://viewer.test:8080", http.StatusForbidden},
		{"authenticator's refusal", "unpledged", "http://viewer.test", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := f.dial(t, tc.user, tc.origin)
			if err == nil {
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response %v, want status %d", resp, tc.status)
			}
		})
	}
	// A Refusal writes its own answer.
	req, _ := http.NewRequest("GET", f.srv.URL, nil)
	req.Header.Set("Origin", "http://viewer.test")
	req.Header.Set("X-Test-User", "unpledged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"pledgeRequired":true`) {
		t.Errorf("refusal answered %d %s, want the Refusal's 403 body", resp.StatusCode, body)
	}
	if n := len(f.l.Browsers()); n != 0 {
		t.Errorf("refused upgrades started %d browsers", n)
	}
}

func TestFramesAndKeyFrame(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	b := f.l.Last()
	waitCall(t, b, "KeyFrame")
	b.EmitFrame(isolation.Frame{JPEG: []byte("jpeg-1")})
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ == websocket.BinaryMessage {
			if string(data) != "jpeg-1" {
				t.Fatalf("frame = %q", data)
			}
			break
		}
	}
	// A reconnecting viewer resumes the same browser and asks for a key frame again.
	c.Close()
	c2 := f.connect(t, "alice")
	_ = c2
	if n := len(f.l.Browsers()); n != 1 {
		t.Fatalf("reconnect started another browser (%d)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countCalls(b, "KeyFrame") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no key frame requested on reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countCalls(b *isolationtest.Browser, method string) int {
	n := 0
	for _, c := range b.Calls() {
		if c.Method == method {
			n++
		}
	}
	return n
}

func waitCall(t *testing.T, b *isolationtest.Browser, method string) isolationtest.Call {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, c := range b.Calls() {
			if c.Method == method {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s call; calls: %+v", method, b.Calls())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInputTranslated(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	b := f.l.Last()
	msgs := []string{
		`{"type":"mouse","action":"down","x":10,"y":20,"button":"left","buttons":1,"clicks":2,"mods":8}`,
		`{"type":"wheel","x":5,"y":5,"dx":0,"dy":3,"mode":1,"mods":0}`,
		`{"type":"wheel","x":5,"y":5,"dx":0,"dy":-1,"mode":2,"mods":0}`,
		`{"type":"key","action":"down","key":"a","code":"KeyA","keyCode":65,"mods":2,"repeat":false,"location":0}`,
		`{"type":"ime","action":"update","text":"にほんご","selStart":4,"selEnd":4}`,
		`{"type":"ime","action":"commit","text":"日本語","selStart":0,"selEnd":0}`,
		`{"type":"nav","action":"go","url":"demo.test"}`,
		`{"type":"tab","action":"switch","id":"T2"}`,
	}
	for _, m := range msgs {
		write(t, c, m)
	}
	caret := readUntil(t, c, func(m map[string]any) bool { return m["type"] == "caret" })
	if caret["x"] != 10.0 || caret["y"] != 20.0 {
		t.Errorf("caret = %v", caret)
	}
	waitCall(t, b, "SwitchTab")
	var got []isolationtest.Call
	for _, call := range b.Calls() {
		if call.Method != "SetViewport" && call.Method != "KeyFrame" && call.Method != "SetQuality" {
			got = append(got, call)
		}
	}
	want := []isolationtest.Call{
		{Method: "Mouse", Arg: isolation.MouseEvent{Action: "down", X: 10, Y: 20, Button: "left", Buttons: 1, ClickCount: 2, Modifiers: 8}},
		{Method: "Wheel", Arg: isolation.WheelEvent{X: 5, Y: 5, DeltaY: 120}},
		{Method: "Wheel", Arg: isolation.WheelEvent{X: 5, Y: 5, DeltaY: -600}},
		{Method: "Key", Arg: isolation.KeyEvent{Action: "down", Key: "a", Code: "KeyA", KeyCode: 65, Modifiers: 2}},
		{Method: "Compose", Arg: []any{"にほんご", 4, 4}},
		{Method: "InsertText", Arg: "日本語"},
		{Method: "Navigate", Arg: "demo.test"},
		{Method: "SwitchTab", Arg: "T2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("browser calls (-want +got):\n%s", d)
	}
}

func TestBadMessagesCloseOnlyThatViewer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    string
		binary bool
		code   int
		reason string
	}{
		{"bad json", `{"type":"mouse",`, false, websocket.CloseInvalidFramePayloadData, "bad JSON"},
		{"no type", `{"x":1}`, false, websocket.CloseInvalidFramePayloadData, "no type"},
		{"unknown type", `{"type":"exec","cmd":"rm"}`, false, websocket.ClosePolicyViolation, `unknown message type "exec"`},
		// A long Japanese type is cut between characters for the reason.
		{"unknown japanese type", `{"type":"` + strings.Repeat("実行", 10) + `"}`, false, websocket.ClosePolicyViolation, `unknown message type "実行実行実行実行実…"`},
		{"unknown field", `{"type":"nav","action":"reload","evil":1}`, false, websocket.CloseInvalidFramePayloadData, "unknown field"},
		{"x out of range", `{"type":"mouse","action":"move","x":801,"y":1,"button":"none"}`, false, websocket.CloseInvalidFramePayloadData, "out of range"},
		{"negative y", `{"type":"mouse","action":"move","x":1,"y":-1}`, false, websocket.CloseInvalidFramePayloadData, "out of range"},
		{"bad button", `{"type":"mouse","action":"down","x":1,"y":1,"button":"fourth"}`, false, websocket.CloseInvalidFramePayloadData, "mouse.button"},
		{"bad mods", `{"type":"key","action":"down","key":"a","mods":99}`, false, websocket.CloseInvalidFramePayloadData, "mods"},
		{"bad keyCode", `{"type":"key","action":"down","key":"a","keyCode":256}`, false, websocket.CloseInvalidFramePayloadData, "key.keyCode out of range: 256"},
		{"bad wheel mods", `{"type":"wheel","x":1,"y":1,"dy":1,"mods":16}`, false, websocket.CloseInvalidFramePayloadData, "wheel.mods out of range: 16"},
		{"huge wheel", `{"type":"wheel","x":1,"y":1,"dy":1e9}`, false, websocket.CloseInvalidFramePayloadData, "wheel.dx/dy out of range"},
		{"huge resize", `{"type":"resize","width":100000,"height":600,"dpr":1}`, false, websocket.CloseInvalidFramePayloadData, "width and height"},
		{"ime selection", `{"type":"ime","action":"update","text":"あ","selStart":0,"selEnd":5}`, false, websocket.CloseInvalidFramePayloadData, "selection"},
		{"second hello", `{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`, false, websocket.ClosePolicyViolation, "hello sent twice"},
		{"drop outside", `{"type":"drop","x":5000,"y":1}`, false, websocket.CloseInvalidFramePayloadData, "out of range"},
		{"copy with fields", `{"type":"copy","text":"x"}`, false, websocket.CloseInvalidFramePayloadData, "unknown field"},
		{"binary", "\x00\x01", true, websocket.CloseUnsupportedData, "binary"},
		{"too big", `{"type":"nav","action":"go","url":"` + strings.Repeat("a", 70<<10) + `"}`, false, websocket.CloseMessageTooBig, "too big"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			other := f.connect(t, "bob")
			c := f.connect(t, "alice")
			typ := websocket.TextMessage
			if tc.binary {
				typ = websocket.BinaryMessage
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			ce := readClose(t, c)
			if ce.Code != tc.code || !strings.Contains(ce.Text, tc.reason) {
				t.Errorf("close = %d %q, want %d containing %q", ce.Code, ce.Text, tc.code, tc.reason)
			}
			// The clinician's browser and the other viewer carry on.
			if s, ok := f.m.Get("alice"); !ok {
				t.Error("a bad message ended the session")
			} else if st, _ := s.State(); st != session.StateLive {
				t.Errorf("session state %s", st)
			}
			write(t, other, `{"type":"nav","action":"reload"}`)
			waitCall(t, f.browserOf(t, "bob"), "Reload")
		})
	}
}

// TestCloseReasonCutBetweenCharacters closes a connection with a reason
// longer than a close frame holds, in Japanese: the viewer receives it
// (a client refuses a close frame that is not valid UTF-8) cut between
// characters to at most 123 bytes, with the mark that says it was cut.
func TestCloseReasonCutBetweenCharacters(t *testing.T) {
	for _, tc := range []struct {
		name, reason, want string
	}{
		{"fits", "満室です", "満室です"},
		{"exactly 123 bytes", strings.Repeat("満", 41), strings.Repeat("満", 41)},
		{"japanese cut", "受付終了: " + strings.Repeat("満", 60), "受付終了: " + strings.Repeat("満", 35) + "…"},
		{"4-byte kanji cut", strings.Repeat("𠮷", 40), strings.Repeat("𠮷", 30) + "…"},
		{"emoji cut", "x" + strings.Repeat("👍", 40), "x" + strings.Repeat("👍", 29) + "…"},
		{"invalid text repaired", "bad \xff\xfe reason", "bad \uFFFD reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := upgrader.Upgrade(w, r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				(&conn_{ws: ws}).closeWith(&protocolError{Code: websocket.ClosePolicyViolation, Reason: tc.reason})
			}))
			defer srv.Close()
			c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ce := readClose(t, c)
			if ce.Code != websocket.ClosePolicyViolation || ce.Text != tc.want {
				t.Errorf("close = %d %q, want %d %q", ce.Code, ce.Text, websocket.ClosePolicyViolation, tc.want)
			}
			if len(ce.Text) > 123 {
				t.Errorf("close reason is %d bytes, more than a close frame may carry", len(ce.Text))
			}
		})
	}
}

func TestBadHello(t *testing.T) {
	for _, tc := range []struct{ name, msg, reason string }{
		{"not hello", `{"type":"nav","action":"reload"}`, "first message must be hello"},
		{"old version", `{"type":"hello","version":99,"width":800,"height":600,"dpr":1}`, "unsupported protocol version"},
		{"tiny canvas", `{"type":"hello","version":1,"width":1,"height":1,"dpr":1}`, "width and height"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c, _, err := f.dial(t, "alice", "http://viewer.test")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			write(t, c, tc.msg)
			ce := readClose(t, c)
			if !strings.Contains(ce.Text, tc.reason) {
				t.Errorf("close reason %q, want %q", ce.Text, tc.reason)
			}
			if n := len(f.l.Browsers()); n != 0 {
				t.Errorf("bad hello started %d browsers", n)
			}
		})
	}
}

func TestDialogAnsweredWhilePageStalls(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	b := f.l.Last()
	block := make(chan struct{})
	defer close(block)
	b.SetBlock(block) // the page is stalled: input calls wait
	b.EmitDialog(isolation.Dialog{ID: "d1", Kind: isolation.DialogConfirm, Message: "sure?"})
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "dialog" && m["id"] == "d1" })
	write(t, c, `{"type":"mouse","action":"down","x":1,"y":1,"button":"left","buttons":1,"clicks":1}`)
	write(t, c, `{"type":"dialog","id":"d1","accept":true,"text":""}`)
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "dialogClosed" && m["id"] == "d1" })
}

func TestSessionEndTellsViewer(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	f.m.End("alice", session.ReasonLogout)
	m := readUntil(t, c, func(m map[string]any) bool { return m["type"] == "status" && m["state"] == "ended" })
	if m["reason"] != "logout" {
		t.Errorf("ended status = %v", m)
	}
	if ce := readClose(t, c); ce.Code != websocket.CloseNormalClosure {
		t.Errorf("close code %d", ce.Code)
	}
}

// TestPledgeChangeDisconnectsViewer: a viewer closed with ReasonPledge is
// told to reconnect (1013), and the session and its browser go on.
func TestPledgeChangeDisconnectsViewer(t *testing.T) {
	f := newFixture(t)
	c := f.connect(t, "alice")
	s, ok := f.m.Get("alice")
	if !ok {
		t.Fatal("alice has no session")
	}
	s.DisconnectViewers(session.ReasonPledge)
	ce := readClose(t, c)
	if ce.Code != websocket.CloseTryAgainLater || !strings.Contains(ce.Text, "pledge") {
		t.Errorf("close %d %q, want 1013 naming the pledge", ce.Code, ce.Text)
	}
	if st, _ := s.State(); st != session.StateLive {
		t.Errorf("session state after the viewer was disconnected: %s, want live", st)
	}
	if f.l.Last().Closed() {
		t.Error("disconnecting the viewer closed the browser")
	}
}

// fakeTransfers is a Transfers we own: copy allowed, paste refused.
type fakeTransfers struct{ drops chan [2]float64 }

func (fakeTransfers) Copy(ctx context.Context, _ *session.Session, b isolation.Browser) (string, error) {
	return b.Copy(ctx)
}
func (fakeTransfers) Paste(context.Context, *session.Session, isolation.Browser, string) error {
	return &isolation.UserError{Message: "paste refused: the clipboard is closed in this direction"}
}
func (fakeTransfers) Print(ctx context.Context, _ *session.Session, b isolation.Browser) error {
	return b.Print(ctx)
}
func (f fakeTransfers) Drop(_ context.Context, _ *session.Session, _ isolation.Browser, x, y float64) error {
	f.drops <- [2]float64{x, y}
	return nil
}

// TestClipboardPrintDrop: copy, paste, print and drop reach the transfer
// policy; its answers and refusals reach the viewer.
func TestClipboardPrintDrop(t *testing.T) {
	tr := fakeTransfers{drops: make(chan [2]float64, 1)}
	f := newFixtureWith(t, tr)
	c := f.connect(t, "alice")
	b := f.browserOf(t, "alice")
	b.SetCopyText("5 mg")
	write(t, c, `{"type":"copy"}`)
	if m := readUntil(t, c, func(m map[string]any) bool { return m["type"] == "clipboard" }); m["text"] != "5 mg" {
		t.Errorf("clipboard %v", m)
	}
	write(t, c, `{"type":"paste","text":"patient 123"}`)
	if m := readUntil(t, c, func(m map[string]any) bool { return m["type"] == "error" }); !strings.Contains(m["message"].(string), "paste refused") {
		t.Errorf("paste answer %v", m)
	}
	write(t, c, `{"type":"print"}`)
	waitCall(t, b, "Print")
	write(t, c, `{"type":"drop","x":10,"y":20}`)
	select {
	case p := <-tr.drops:
		if p != [2]float64{10, 20} {
			t.Errorf("drop at %v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drop did not reach the transfer policy")
	}
	for _, call := range b.Calls() {
		if call.Method == "InsertText" {
			t.Error("a refused paste was typed")
		}
	}
}
