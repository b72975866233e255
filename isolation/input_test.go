package isolation

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// validator is an input event.
type validator interface{ Validate() error }

// TestInputValidate proves each input event's Validate accepts good events
// and refuses each bad field with an *InputError that names it and is
// ErrBadInput.
func TestInputValidate(t *testing.T) {
	mouse := MouseEvent{Action: MouseDown, X: 1, Y: 2, Button: ButtonLeft, Buttons: 1, ClickCount: 1, Modifiers: ModShift}
	wheel := WheelEvent{X: 1, Y: 2, DeltaX: 0, DeltaY: -120, Modifiers: ModCtrl}
	key := KeyEvent{Action: KeyDown, Key: "あ", Code: "KeyA", KeyCode: 65, Modifiers: ModAlt | ModMeta, Location: 3}
	for _, tc := range []struct {
		name  string
		ev    validator
		field string // "" for a good event
	}{
		{"mouse", mouse, ""},
		{"mouse without button", MouseEvent{Action: MouseMove}, ""},
		{"mouse action", with(mouse, func(e *MouseEvent) { e.Action = "click" }), "mouse.action"},
		{"mouse button", with(mouse, func(e *MouseEvent) { e.Button = "fourth" }), "mouse.button"},
		{"mouse buttons", with(mouse, func(e *MouseEvent) { e.Buttons = MaxButtons + 1 }), "mouse.buttons"},
		{"mouse negative buttons", with(mouse, func(e *MouseEvent) { e.Buttons = -1 }), "mouse.buttons"},
		{"mouse clicks", with(mouse, func(e *MouseEvent) { e.ClickCount = 4 }), "mouse.clicks"},
		{"mouse mods", with(mouse, func(e *MouseEvent) { e.Modifiers = 16 }), "mouse.mods"},
		{"mouse nan", with(mouse, func(e *MouseEvent) { e.X = math.NaN() }), "mouse.x/y"},
		{"wheel", wheel, ""},
		{"wheel inf", with(wheel, func(e *WheelEvent) { e.Y = math.Inf(1) }), "wheel.x/y"},
		{"wheel mods", with(wheel, func(e *WheelEvent) { e.Modifiers = -1 }), "wheel.mods"},
		{"wheel delta", with(wheel, func(e *WheelEvent) { e.DeltaX = MaxWheelDelta + 1 }), "wheel.dx/dy"},
		{"wheel nan delta", with(wheel, func(e *WheelEvent) { e.DeltaY = math.NaN() }), "wheel.dx/dy"},
		{"key", key, ""},
		{"key up", KeyEvent{Action: KeyUp, Key: "Enter"}, ""},
		{"key action", with(key, func(e *KeyEvent) { e.Action = "press" }), "key.action"},
		{"key empty", with(key, func(e *KeyEvent) { e.Key = "" }), "key.key"},
		{"key long", with(key, func(e *KeyEvent) { e.Key = strings.Repeat("a", MaxKeyBytes+1) }), "key.key"},
		{"key not UTF-8", with(key, func(e *KeyEvent) { e.Key = "\xff" }), "key.key"},
		{"key code", with(key, func(e *KeyEvent) { e.Code = strings.Repeat("a", MaxKeyBytes+1) }), "key.code"},
		{"key keyCode", with(key, func(e *KeyEvent) { e.KeyCode = MaxKeyCode + 1 }), "key.keyCode"},
		{"key location", with(key, func(e *KeyEvent) { e.Location = 4 }), "key.location"},
		{"key mods", with(key, func(e *KeyEvent) { e.Modifiers = 32 }), "key.mods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", tc.ev, err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, ErrBadInput) {
				t.Fatalf("Validate(%+v) = %v, want an InputError on %s that is ErrBadInput", tc.ev, err, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field+" ") {
				t.Errorf("error %q does not start with the field %s", err, tc.field)
			}
		})
	}
}

// TestInputErrorQuotesAtMost16Runes proves a long bad value is cut at a
// character boundary, so the message stays valid UTF-8.
func TestInputErrorQuotesAtMost16Runes(t *testing.T) {
	err := MouseEvent{Action: MouseAction(strings.Repeat("ク", 40))}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"`+strings.Repeat("ク", 16)+`"`) {
		t.Errorf("error %v, want the action quoted to 16 characters", err)
	}
}

func with[E any](e E, change func(*E)) E {
	change(&e)
	return e
}

// TestValidateComposition proves the selection is counted in UTF-16 units
// (an emoji outside the BMP is two) and a bad one names the field.
func TestValidateComposition(t *testing.T) {
	for _, tc := range []struct {
		text       string
		start, end int
		field      string
	}{
		{"にほんご", 0, 4, ""},
		{"a😀", 3, 3, ""},
		{"a😀", 2, 4, "ime selection"},
		{"", 0, 0, ""},
		{"ab", 2, 1, "ime selection"},
		{"ab", -1, 1, "ime selection"},
		{"\xff", 0, 0, "ime.text"},
	} {
		err := ValidateComposition(tc.text, tc.start, tc.end)
		var ie *InputError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("ValidateComposition(%q, %d, %d) = %v, want nil", tc.text, tc.start, tc.end, err)
		case tc.field != "" && (!errors.As(err, &ie) || ie.Field != tc.field):
			t.Errorf("ValidateComposition(%q, %d, %d) = %v, want an InputError on %s", tc.text, tc.start, tc.end, err, tc.field)
		}
	}
}
