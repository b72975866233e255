package stream

import (
	"context"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation"
)

// Input: what the clinician does with the mouse, the wheel and the
// keyboard, and Japanese (any) IME composition. Each event is checked here
// by the isolation event's Validate, which the browser runs again, and
// then queued: the input queue (queue.go) alone keeps the viewer's order.

type (
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
)

// onMouse dispatches a pointer event. A move alone does not reset the
// session's idle timer; a press or a release does.
func (c *conn_) onMouse(_ context.Context, m *mouseMsg) error {
	ev, err := m.event(*c.vp.Load())
	if err != nil {
		return err
	}
	if ev.Action != isolation.MouseMove {
		c.sess.Touch()
	}
	return c.queue(func(ctx context.Context, b isolation.Browser) error { return b.Mouse(ctx, ev) })
}

// onWheel dispatches a scroll.
func (c *conn_) onWheel(_ context.Context, m *wheelMsg) error {
	ev, err := m.event(*c.vp.Load())
	if err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error { return b.Wheel(ctx, ev) })
}

// onKey dispatches a key.
func (c *conn_) onKey(_ context.Context, m *keyMsg) error {
	ev, err := m.event()
	if err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error { return b.Key(ctx, ev) })
}

// onIME updates, commits or cancels the IME composition.
func (c *conn_) onIME(_ context.Context, m *imeMsg) error {
	if err := m.check(); err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(c.imeOp(*m))
}

// imeOp is the browser call of an IME message. An update tells the viewer
// where the remote caret went, to place its candidate window.
func (c *conn_) imeOp(m imeMsg) func(context.Context, isolation.Browser) error {
	return func(ctx context.Context, b isolation.Browser) error {
		switch m.Action {
		case "commit":
			return b.InsertText(ctx, m.Text)
		case "cancel":
			_, err := b.Compose(ctx, "", 0, 0)
			return err
		}
		caret, err := b.Compose(ctx, m.Text, m.SelStart, m.SelEnd)
		if err == nil && (caret != isolation.Caret{}) {
			c.viewer.Send(protocol.Caret{Caret: caret})
		}
		return err
	}
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
