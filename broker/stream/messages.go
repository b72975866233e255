package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation"
)

// Limits on inbound messages.
const (
	maxMessageBytes = 64 << 10
	maxURLBytes     = 8 << 10
	maxIMERunes     = 2000
	maxDialogText   = 10000
	maxIDBytes      = 128
	lineHeightPx    = 40
)

// protocolError is a message the viewer sent that breaks the protocol. It
// closes the connection with Code and a reason naming what was wrong.
type protocolError struct {
	Code   int
	Reason string
}

func (e *protocolError) Error() string { return e.Reason }

func badData(format string, args ...any) error {
	return &protocolError{Code: websocket.CloseInvalidFramePayloadData, Reason: fmt.Sprintf(format, args...)}
}

// badInput is a viewer's input event that isolation's Validate refused:
// bad data, with the reason naming the field.
func badInput(err error) error {
	return badData("%v", err)
}

func badPolicy(format string, args ...any) error {
	return &protocolError{Code: websocket.ClosePolicyViolation, Reason: fmt.Sprintf(format, args...)}
}

// closeCode returns the WebSocket close code and reason for err.
func closeCode(err error) (int, string) {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.Code, pe.Reason
	}
	return websocket.CloseInternalServerErr, "internal error"
}

// Inbound messages. Each is decoded strictly: unknown fields are an error.
type (
	helloMsg struct {
		Version int     `json:"version"`
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		DPR     float64 `json:"dpr"`
	}
	mouseMsg struct {
		Action  string  `json:"action"`
		X       float64 `json:"x"`
		Y       float64 `json:"y"`
		Button  string  `json:"button"`
		Buttons int     `json:"buttons"`
		Clicks  int     `json:"clicks"`
		Mods    int     `json:"mods"`
	}
	wheelMsg struct {
		X    float64 `json:"x"`
		Y    float64 `json:"y"`
		DX   float64 `json:"dx"`
		DY   float64 `json:"dy"`
		Mode int     `json:"mode"`
		Mods int     `json:"mods"`
	}
	keyMsg struct {
		Action   string `json:"action"`
		Key      string `json:"key"`
		Code     string `json:"code"`
		KeyCode  int    `json:"keyCode"`
		Mods     int    `json:"mods"`
		Repeat   bool   `json:"repeat"`
		Location int    `json:"location"`
	}
	imeMsg struct {
		Action   string `json:"action"`
		Text     string `json:"text"`
		SelStart int    `json:"selStart"`
		SelEnd   int    `json:"selEnd"`
	}
	navMsg struct {
		Action string `json:"action"`
		URL    string `json:"url"`
	}
	tabMsg struct {
		Action string `json:"action"`
		ID     string `json:"id"`
	}
	dialogMsg struct {
		ID     string `json:"id"`
		Accept bool   `json:"accept"`
		Text   string `json:"text"`
	}
	pasteMsg struct {
		Text string `json:"text"`
	}
	dropMsg struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	}
	emptyMsg struct{}
)

// decode parses one text message into its type name and typed value.
func decode(data []byte) (protocol.Type, any, error) {
	var env struct {
		Type protocol.Type `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return "", nil, badData("bad JSON: %v", err)
	}
	var v any
	switch env.Type {
	case protocol.TypeHello, protocol.TypeResize:
		v = &helloMsg{}
	case protocol.TypeMouse:
		v = &mouseMsg{}
	case protocol.TypeWheel:
		v = &wheelMsg{}
	case protocol.TypeKey:
		v = &keyMsg{}
	case protocol.TypeIME:
		v = &imeMsg{}
	case protocol.TypeNav:
		v = &navMsg{}
	case protocol.TypeTab:
		v = &tabMsg{}
	case protocol.TypeDialog:
		v = &dialogMsg{}
	case protocol.TypePaste:
		v = &pasteMsg{}
	case protocol.TypeDrop:
		v = &dropMsg{}
	case protocol.TypeRestart, protocol.TypeActivity, protocol.TypeCopy, protocol.TypePrint:
		v = &emptyMsg{}
	case "":
		return "", nil, badData("message has no type")
	default:
		return "", nil, badPolicy("unknown message type %q", truncate.Ellipsis(string(env.Type), 32))
	}
	if err := strictUnmarshal(data, v); err != nil {
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

func (m *helloMsg) viewport(kind string) (isolation.Viewport, error) {
	vp := isolation.Viewport{Width: m.Width, Height: m.Height, DPR: m.DPR}
	if !vp.Valid() {
		return vp, badData("%s: width and height must be %d–%d and dpr %g–%g, got %dx%d@%g",
			kind, isolation.MinViewportSide, isolation.MaxViewportSide, isolation.MinDPR, isolation.MaxDPR,
			m.Width, m.Height, m.DPR)
	}
	return vp, nil
}

func checkPoint(kind string, x, y float64, vp isolation.Viewport) error {
	if x < 0 || y < 0 || x > float64(vp.Width) || y > float64(vp.Height) || x != x || y != y {
		return badData("%s coordinates out of range: (%g, %g) outside %dx%d", kind, x, y, vp.Width, vp.Height)
	}
	return nil
}

// event returns the mouse event, checked as isolation.MouseEvent.Validate
// does and with its point within vp.
func (m *mouseMsg) event(vp isolation.Viewport) (isolation.MouseEvent, error) {
	btn := isolation.MouseButton(m.Button)
	if btn == "" {
		btn = isolation.ButtonNone
	}
	ev := isolation.MouseEvent{
		Action: isolation.MouseAction(m.Action), X: m.X, Y: m.Y, Button: btn,
		Buttons: m.Buttons, ClickCount: m.Clicks, Modifiers: m.Mods,
	}
	if err := ev.Validate(); err != nil {
		return isolation.MouseEvent{}, badInput(err)
	}
	if err := checkPoint("mouse", m.X, m.Y, vp); err != nil {
		return isolation.MouseEvent{}, err
	}
	return ev, nil
}

// event normalises the wheel deltas to CSS pixels: a line is 40 px and a
// page is the viewport's height (or width, horizontally).
func (m *wheelMsg) event(vp isolation.Viewport) (isolation.WheelEvent, error) {
	var ev isolation.WheelEvent
	if err := checkPoint("wheel", m.X, m.Y, vp); err != nil {
		return ev, err
	}
	dx, dy := m.DX, m.DY
	switch m.Mode {
	case 0:
	case 1:
		dx, dy = dx*lineHeightPx, dy*lineHeightPx
	case 2:
		dx, dy = dx*float64(vp.Width), dy*float64(vp.Height)
	default:
		return ev, badData("wheel.mode must be 0, 1 or 2, got %d", m.Mode)
	}
	ev = isolation.WheelEvent{X: m.X, Y: m.Y, DeltaX: dx, DeltaY: dy, Modifiers: m.Mods}
	if err := ev.Validate(); err != nil {
		return isolation.WheelEvent{}, badInput(err)
	}
	return ev, nil
}

// event returns the key event, checked as isolation.KeyEvent.Validate does.
func (m *keyMsg) event() (isolation.KeyEvent, error) {
	ev := isolation.KeyEvent{
		Action: isolation.KeyAction(m.Action), Key: m.Key, Code: m.Code, KeyCode: m.KeyCode,
		Modifiers: m.Mods, Repeat: m.Repeat, Location: m.Location,
	}
	if err := ev.Validate(); err != nil {
		return isolation.KeyEvent{}, badInput(err)
	}
	return ev, nil
}

func (m *imeMsg) check() error {
	switch m.Action {
	case "update", "commit", "cancel":
	default:
		return badData("ime.action must be update, commit or cancel, got %q", truncate.Ellipsis(m.Action, 16))
	}
	if n := len([]rune(m.Text)); n > maxIMERunes {
		return badData("ime.text too long: %d characters, at most %d", n, maxIMERunes)
	}
	if err := isolation.ValidateComposition(m.Text, m.SelStart, m.SelEnd); err != nil {
		return badInput(err)
	}
	return nil
}

func (m *navMsg) check() error {
	switch m.Action {
	case "back", "forward", "reload", "stop":
		return nil
	case "go":
		u := strings.TrimSpace(m.URL)
		if u == "" {
			return badData("nav.url is empty")
		}
		if len(u) > maxURLBytes {
			return badData("nav.url too long: %d bytes, at most %d", len(u), maxURLBytes)
		}
		return nil
	default:
		return badData("nav.action must be go, back, forward, reload or stop, got %q", truncate.Ellipsis(m.Action, 16))
	}
}

func (m *tabMsg) check() error {
	if m.Action != "switch" && m.Action != "close" {
		return badData("tab.action must be switch or close, got %q", truncate.Ellipsis(m.Action, 16))
	}
	if m.ID == "" || len(m.ID) > maxIDBytes {
		return badData("tab.id must be 1–%d bytes", maxIDBytes)
	}
	return nil
}

func (m *dialogMsg) check() error {
	if m.ID == "" || len(m.ID) > maxIDBytes {
		return badData("dialog.id must be 1–%d bytes", maxIDBytes)
	}
	if len(m.Text) > maxDialogText {
		return badData("dialog.text too long: %d bytes, at most %d", len(m.Text), maxDialogText)
	}
	return nil
}

// point checks that a drop is inside the viewport.
func (m *dropMsg) point(vp isolation.Viewport) (x, y float64, err error) {
	return m.X, m.Y, checkPoint("drop", m.X, m.Y, vp)
}
