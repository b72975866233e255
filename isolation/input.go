package isolation

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadInput is what every error of an input event's Validate is (use
// errors.Is): the event has a field out of its range.
var ErrBadInput = errors.New("bad input event")

// InputError names the field of an input event that is wrong, and how.
type InputError struct {
	// Field is the event's field as docs/protocol.md names it, e.g.
	// "mouse.button".
	Field string
	// Problem says what is wrong with it, e.g. `unknown: "fourth"`.
	Problem string
}

// Error returns the field and the problem, e.g. `mouse.button unknown: "fourth"`.
func (e *InputError) Error() string { return e.Field + " " + e.Problem }

// Is reports whether target is ErrBadInput.
func (e *InputError) Is(target error) bool { return target == ErrBadInput }

func badInput(field, format string, args ...any) error {
	return &InputError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Limits of input events.
const (
	// MaxButtons is the highest Buttons bitmask (left, right, middle, back
	// and forward pressed).
	MaxButtons = 31
	// MaxClickCount is the highest ClickCount: a triple click.
	MaxClickCount = 3
	// MaxWheelDelta is the largest wheel delta in CSS pixels, either way.
	MaxWheelDelta = 100000
	// MaxKeyBytes is the longest Key and Code, in bytes.
	MaxKeyBytes = 64
	// MaxKeyCode is the highest KeyCode (a Windows virtual key code).
	MaxKeyCode = 255
	// MaxLocation is the highest KeyboardEvent.location (numpad).
	MaxLocation = 3
)

// validModifiers is the Modifiers bitmask of Alt, Ctrl, Meta and Shift.
const validModifiers = ModAlt | ModCtrl | ModMeta | ModShift

func checkModifiers(kind string, m int) error {
	if m < 0 || m&^validModifiers != 0 {
		return badInput(kind+".mods", "out of range: %d", m)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Validate checks every field of the mouse event on its own (where the
// point lies in the viewport is the caller's to check). Its error is an
// *InputError naming the field. The viewer stream and the browser both
// call it: the one decides what the viewer may send, the other what reaches
// Chromium.
func (e MouseEvent) Validate() error {
	switch e.Action {
	case MouseMove, MouseDown, MouseUp:
	default:
		return badInput("mouse.action", "must be move, down or up, got %.16q", e.Action)
	}
	switch e.Button {
	case "", ButtonNone, ButtonLeft, ButtonMiddle, ButtonRight, ButtonBack, ButtonForward:
	default:
		return badInput("mouse.button", "unknown: %.16q", e.Button)
	}
	if e.Buttons < 0 || e.Buttons > MaxButtons {
		return badInput("mouse.buttons", "out of range: %d", e.Buttons)
	}
	if e.ClickCount < 0 || e.ClickCount > MaxClickCount {
		return badInput("mouse.clicks", "out of range: %d", e.ClickCount)
	}
	if err := checkModifiers("mouse", e.Modifiers); err != nil {
		return err
	}
	if !finite(e.X) || !finite(e.Y) {
		return badInput("mouse.x/y", "not finite: (%g, %g)", e.X, e.Y)
	}
	return nil
}

// Validate checks every field of the wheel event on its own, as
// MouseEvent.Validate does.
func (e WheelEvent) Validate() error {
	if !finite(e.X) || !finite(e.Y) {
		return badInput("wheel.x/y", "not finite: (%g, %g)", e.X, e.Y)
	}
	if err := checkModifiers("wheel", e.Modifiers); err != nil {
		return err
	}
	if !finite(e.DeltaX) || !finite(e.DeltaY) || math.Abs(e.DeltaX) > MaxWheelDelta || math.Abs(e.DeltaY) > MaxWheelDelta {
		return badInput("wheel.dx/dy", "out of range: (%g, %g)", e.DeltaX, e.DeltaY)
	}
	return nil
}

// Validate checks every field of the key event, as MouseEvent.Validate
// does.
func (e KeyEvent) Validate() error {
	switch e.Action {
	case KeyDown, KeyUp:
	default:
		return badInput("key.action", "must be down or up, got %.16q", e.Action)
	}
	if e.Key == "" || len(e.Key) > MaxKeyBytes || !utf8.ValidString(e.Key) {
		return badInput("key.key", "must be 1–%d bytes of UTF-8, got %d bytes", MaxKeyBytes, len(e.Key))
	}
	if len(e.Code) > MaxKeyBytes {
		return badInput("key.code", "must be at most %d bytes, got %d", MaxKeyBytes, len(e.Code))
	}
	if e.KeyCode < 0 || e.KeyCode > MaxKeyCode {
		return badInput("key.keyCode", "out of range: %d", e.KeyCode)
	}
	if e.Location < 0 || e.Location > MaxLocation {
		return badInput("key.location", "out of range: %d", e.Location)
	}
	return checkModifiers("key", e.Modifiers)
}

// ValidateComposition checks an IME composition (Browser.Compose): text is
// UTF-8 and the selection lies within it, counted in UTF-16 units as the
// DOM counts. Its error is an *InputError naming the field.
func ValidateComposition(text string, selStart, selEnd int) error {
	if !utf8.ValidString(text) {
		return badInput("ime.text", "is not UTF-8")
	}
	n := 0
	for _, r := range text {
		n += utf16.RuneLen(r)
	}
	if selStart < 0 || selEnd < selStart || selEnd > n {
		return badInput("ime selection", "out of range: %d–%d in %d UTF-16 units", selStart, selEnd, n)
	}
	return nil
}
