package chrome

import (
	"context"
	"fmt"
	"math"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// inputs is the part of a browser that gives the clinician's mouse, wheel,
// keys and text to the active tab (isolation.Input); DropFiles and Copy's
// Ctrl+C go through it too (input).
//
// Order: each event reaches the page before its call returns, so calls made
// one after another arrive in that order. inputs does not order concurrent
// calls: the caller owns the order (for a viewer, broker/stream's input
// queue, which makes one call at a time).
//
// Locks: none of its own; input takes tabs.mu only to read the active
// tab's dialog state.
//
// Goroutines: its methods run on the caller's goroutine; it starts none.
type inputs struct {
	tabs *tabSet
	// scale is the browser's real device scale factor, which bounds the
	// frames' device pixels per CSS pixel (Config.DeviceScaleFactor).
	scale float64
	// wheel quantizes wheel scrolling to whole JPEG blocks of the frames.
	wheel wheelSteps
}

// Mouse dispatches a pointer event to the active tab.
func (in *inputs) Mouse(ctx context.Context, ev isolation.MouseEvent) error {
	p, err := mouseParams(ev)
	if err != nil {
		return err
	}
	return in.input(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, input.DispatchMouseEvent, p)
		return err
	})
}

// mouseParams translates ev into Input.dispatchMouseEvent.
func mouseParams(ev isolation.MouseEvent) (input.DispatchMouseEventParams, error) {
	var p input.DispatchMouseEventParams
	if err := ev.Validate(); err != nil {
		return p, err
	}
	switch ev.Action {
	case isolation.MouseMove:
		p.Type = input.DispatchMouseEventTypeMouseMoved
	case isolation.MouseDown:
		p.Type = input.DispatchMouseEventTypeMousePressed
	case isolation.MouseUp:
		p.Type = input.DispatchMouseEventTypeMouseReleased
	}
	p.Button = mouseButtons[ev.Button]
	p.X, p.Y = ev.X, ev.Y
	p.Buttons = int64(ev.Buttons)
	p.ClickCount = int64(ev.ClickCount)
	p.Modifiers = int64(ev.Modifiers)
	p.PointerType = input.DispatchMouseEventPointerTypeMouse
	return p, nil
}

// mouseButtons maps a button to its DevTools name. The empty button (and
// any other the event's Validate refuses) is none.
var mouseButtons = map[isolation.MouseButton]input.MouseButton{
	"":                      input.MouseButtonNone,
	isolation.ButtonNone:    input.MouseButtonNone,
	isolation.ButtonLeft:    input.MouseButtonLeft,
	isolation.ButtonMiddle:  input.MouseButtonMiddle,
	isolation.ButtonRight:   input.MouseButtonRight,
	isolation.ButtonBack:    input.MouseButtonBack,
	isolation.ButtonForward: input.MouseButtonForward,
}

// Wheel dispatches a wheel event to the active tab. Without modifiers its
// deltas are quantized to whole 16-pixel blocks of the frames (wheelSteps,
// wheel.go), the rest carried to the next wheel event; an event left with
// no whole step is not dispatched.
func (in *inputs) Wheel(ctx context.Context, ev isolation.WheelEvent) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	p := wheelParams{
		Type:        input.DispatchMouseEventTypeMouseWheel,
		X:           ev.X,
		Y:           ev.Y,
		DeltaX:      ev.DeltaX,
		DeltaY:      ev.DeltaY,
		Modifiers:   int64(ev.Modifiers),
		PointerType: input.DispatchMouseEventPointerTypeMouse,
	}
	return in.input(ctx, func(ctx context.Context, t *tab) error {
		if ev.Modifiers == 0 {
			p.DeltaX, p.DeltaY = in.wheel.step(t, ev.DeltaX, ev.DeltaY, in.frameScale())
			if p.DeltaX == 0 && p.DeltaY == 0 {
				return nil
			}
		}
		return t.sess.Call(ctx, input.DispatchMouseEvent.Method, p, nil)
	})
}

// frameScale is the frames' device pixels per CSS pixel: the viewport's
// DPR, bounded by the real device scale factor (Chromium scales frames
// down to the viewport's DPR, never up).
func (in *inputs) frameScale() float64 {
	in.tabs.mu.Lock()
	dpr := in.tabs.viewport.DPR
	in.tabs.mu.Unlock()
	if in.scale > 0 && in.scale < dpr {
		return in.scale
	}
	return dpr
}

// wheelParams are the parameters of a mouseWheel Input.dispatchMouseEvent.
// Chromium wants both deltas, and cdproto leaves out a zero delta.
type wheelParams struct {
	Type        input.DispatchMouseEventType        `json:"type"`
	X           float64                             `json:"x"`
	Y           float64                             `json:"y"`
	DeltaX      float64                             `json:"deltaX"`
	DeltaY      float64                             `json:"deltaY"`
	Modifiers   int64                               `json:"modifiers"`
	PointerType input.DispatchMouseEventPointerType `json:"pointerType"`
}

// Key dispatches a key event to the active tab.
func (in *inputs) Key(ctx context.Context, ev isolation.KeyEvent) error {
	p, err := keyParams(ev)
	if err != nil {
		return err
	}
	return in.input(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, input.DispatchKeyEvent, p)
		return err
	})
}

// keyParams translates ev into Input.dispatchKeyEvent. A key that types a
// character is a keyDown with its text, so that the page gets keypress and
// input; any other key is a rawKeyDown, whose default action (editing,
// focus, scrolling) Chromium performs. Headless Chromium on Linux maps
// Ctrl+A, Ctrl+Z, Ctrl+Y and Ctrl+Shift+Z to their editing commands by
// itself, so no "commands" are sent: they would run twice.
func keyParams(ev isolation.KeyEvent) (input.DispatchKeyEventParams, error) {
	var p input.DispatchKeyEventParams
	if err := ev.Validate(); err != nil {
		return p, err
	}
	p.Key = ev.Key
	p.Code = ev.Code
	p.WindowsVirtualKeyCode = int64(ev.KeyCode)
	p.NativeVirtualKeyCode = int64(ev.KeyCode)
	p.Modifiers = int64(ev.Modifiers)
	p.Location = int64(ev.Location)
	if ev.Repeat {
		p.AutoRepeat = new(true)
	}
	if ev.Location == 3 {
		p.IsKeypad = new(true)
	}
	switch ev.Action {
	case isolation.KeyUp:
		p.Type = input.DispatchKeyEventTypeKeyUp
	case isolation.KeyDown:
		if text := keyText(ev); text != "" {
			p.Type = input.DispatchKeyEventTypeKeyDown
			p.Text = text
			p.UnmodifiedText = text
		} else {
			p.Type = input.DispatchKeyEventTypeRawKeyDown
		}
	}
	return p, nil
}

// keyText is the text a key down types, or "" for a key that types nothing
// or a shortcut.
func keyText(ev isolation.KeyEvent) string {
	if ev.Modifiers&(isolation.ModCtrl|isolation.ModMeta|isolation.ModAlt) != 0 {
		return ""
	}
	if ev.Key == "Enter" {
		return "\r"
	}
	if r, size := utf8.DecodeRuneInString(ev.Key); size == len(ev.Key) && !unicode.IsControl(r) {
		return ev.Key
	}
	return ""
}

// Compose sets the IME composition in the focused element and returns where
// its caret is. Empty text cancels the composition.
func (in *inputs) Compose(ctx context.Context, text string, selStart, selEnd int) (isolation.Caret, error) {
	if err := isolation.ValidateComposition(text, selStart, selEnd); err != nil {
		return isolation.Caret{}, err
	}
	var caret isolation.Caret
	err := in.input(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, input.ImeSetComposition, input.ImeSetCompositionParams{
			Text:           text,
			SelectionStart: int64(selStart),
			SelectionEnd:   int64(selEnd),
		})
		if err != nil {
			return err
		}
		caret = caretOf(ctx, t)
		return nil
	})
	return caret, err
}

// InsertText commits text into the focused element, as an IME or a paste
// would.
func (in *inputs) InsertText(ctx context.Context, text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: text is not UTF-8", ErrInput)
	}
	return in.input(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// input runs fn on the active tab. Input to a tab that shows a dialog is
// dropped, as a desktop browser ignores the page while a modal dialog is
// up.
//
// The order of input is the caller's, and no lock here makes one: each
// event goes to the page when its call is made and has reached it when the
// call returns, so calls made one after another arrive in that order.
// broker/stream's input queue is the one owner of a viewer's order (it
// makes one call at a time, in the order the viewer sent them);
// concurrent calls are safe, but not ordered against each other.
func (in *inputs) input(ctx context.Context, fn func(context.Context, *tab) error) error {
	return in.tabs.onActive(ctx, func(ctx context.Context, t *tab) error {
		in.tabs.mu.Lock()
		blocked := t.dialog != nil
		in.tabs.mu.Unlock()
		if blocked {
			return nil
		}
		return fn(ctx, t)
	})
}

// caretJS finds the caret of the focused editable element, in CSS pixels of
// the top-level viewport. It follows focus into same-origin iframes. In an
// input it measures the text before the caret; in a textarea it gives the
// element's top left; in contenteditable the selection's rectangle.
const caretJS = `(() => {
  let doc = document, el = doc.activeElement, ox = 0, oy = 0;
  while (el && (el.tagName === 'IFRAME' || el.tagName === 'FRAME')) {
    let inner;
    try { inner = el.contentDocument; } catch (e) { inner = null; }
    if (!inner) break;
    const r = el.getBoundingClientRect();
    ox += r.left + el.clientLeft; oy += r.top + el.clientTop;
    doc = inner; el = inner.activeElement;
  }
  if (!el) return null;
  if (el.isContentEditable) {
    const sel = doc.getSelection();
    if (sel && sel.rangeCount) {
      const range = sel.getRangeAt(0).cloneRange();
      range.collapse(false);
      let r = range.getBoundingClientRect();
      if (!r.height) { const rs = sel.getRangeAt(0).getClientRects(); if (rs.length) r = rs[rs.length - 1]; }
      if (r.height) return {x: ox + r.left, y: oy + r.top, h: r.height};
    }
  }
  const r = el.getBoundingClientRect();
  const cs = getComputedStyle(el);
  const padL = parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth);
  const padT = parseFloat(cs.paddingTop) + parseFloat(cs.borderTopWidth);
  const lh = parseFloat(cs.lineHeight) || parseFloat(cs.fontSize) * 1.2;
  if (el.tagName === 'INPUT' && typeof el.selectionEnd === 'number') {
    const c = doc.createElement('canvas').getContext('2d');
    c.font = cs.font;
    const w = c.measureText(el.value.slice(0, el.selectionEnd)).width;
    const h = Math.min(lh, r.height);
    return {x: ox + r.left + padL + w - el.scrollLeft, y: oy + r.top + (r.height - h) / 2, h: h};
  }
  return {x: ox + r.left + padL, y: oy + r.top + padT, h: lh};
})()`

// caretPos is the result of caretJS.
type caretPos struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	H float64 `json:"h"`
}

// caretTimeout bounds the caret's lookup: a busy page gets no caret rather
// than a slow composition.
const caretTimeout = time.Second

// caretOf returns the caret of t's focused element, or the zero Caret.
func caretOf(ctx context.Context, t *tab) isolation.Caret {
	ctx, cancel := context.WithTimeout(ctx, caretTimeout)
	defer cancel()
	p, err := chromedp.Evaluate[*caretPos](caretJS)(ctx, t.sess)
	if err != nil || p == nil || !finite(p.X) || !finite(p.Y) || !finite(p.H) {
		return isolation.Caret{}
	}
	return isolation.Caret{X: p.X, Y: p.Y, Height: p.H}
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
