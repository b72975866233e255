package chrome

import (
	"errors"
	"math"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/isolation"
)

func TestKeyParams(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		ev   isolation.KeyEvent
		want input.DispatchKeyEventParams
		err  bool
	}{
		{
			name: "letter types text",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "a", Code: "KeyA", KeyCode: 65},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "a", Code: "KeyA", Text: "a", UnmodifiedText: "a", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65},
		},
		{
			name: "shifted punctuation types text",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "!", Code: "Digit1", KeyCode: 49, Modifiers: isolation.ModShift},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "!", Code: "Digit1", Text: "!", UnmodifiedText: "!", WindowsVirtualKeyCode: 49, NativeVirtualKeyCode: 49, Modifiers: 8},
		},
		{
			name: "enter types a carriage return",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "Enter", Code: "Enter", KeyCode: 13},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", Text: "\r", UnmodifiedText: "\r", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13},
		},
		{
			name: "shortcut types nothing",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "a", Code: "KeyA", KeyCode: 65, Modifiers: isolation.ModCtrl},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeRawKeyDown, Key: "a", Code: "KeyA", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65, Modifiers: 2},
		},
		{
			name: "arrow is a raw key down",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "ArrowLeft", Code: "ArrowLeft", KeyCode: 37, Repeat: true},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeRawKeyDown, Key: "ArrowLeft", Code: "ArrowLeft", WindowsVirtualKeyCode: 37, NativeVirtualKeyCode: 37, AutoRepeat: &yes},
		},
		{
			name: "keypad digit",
			ev:   isolation.KeyEvent{Action: isolation.KeyDown, Key: "1", Code: "Numpad1", KeyCode: 97, Location: 3},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "1", Code: "Numpad1", Text: "1", UnmodifiedText: "1", WindowsVirtualKeyCode: 97, NativeVirtualKeyCode: 97, Location: 3, IsKeypad: &yes},
		},
		{
			name: "key up",
			ev:   isolation.KeyEvent{Action: isolation.KeyUp, Key: "a", Code: "KeyA", KeyCode: 65},
			want: input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "a", Code: "KeyA", WindowsVirtualKeyCode: 65, NativeVirtualKeyCode: 65},
		},
		{name: "no key", ev: isolation.KeyEvent{Action: isolation.KeyDown}, err: true},
		{name: "bad action", ev: isolation.KeyEvent{Action: "press", Key: "a"}, err: true},
		{name: "bad modifiers", ev: isolation.KeyEvent{Action: isolation.KeyDown, Key: "a", Modifiers: 16}, err: true},
		{name: "bad location", ev: isolation.KeyEvent{Action: isolation.KeyDown, Key: "a", Location: 4}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyParams(tc.ev)
			if tc.err {
				if !errors.Is(err, ErrInput) {
					t.Fatalf("err = %v, want ErrInput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("params (-want +got):\n%s", d)
			}
		})
	}
}

func TestMouseParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   isolation.MouseEvent
		want input.DispatchMouseEventParams
		err  bool
	}{
		{
			name: "press",
			ev:   isolation.MouseEvent{Action: isolation.MouseDown, X: 1.5, Y: 2, Button: isolation.ButtonLeft, Buttons: 1, ClickCount: 2, Modifiers: isolation.ModShift},
			want: input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMousePressed, X: 1.5, Y: 2, Button: input.MouseButtonLeft, Buttons: 1, ClickCount: 2, Modifiers: 8, PointerType: input.DispatchMouseEventPointerTypeMouse},
		},
		{
			name: "move without button",
			ev:   isolation.MouseEvent{Action: isolation.MouseMove, X: 3, Y: 4},
			want: input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: 3, Y: 4, Button: input.MouseButtonNone, PointerType: input.DispatchMouseEventPointerTypeMouse},
		},
		{
			name: "release back",
			ev:   isolation.MouseEvent{Action: isolation.MouseUp, Button: isolation.ButtonBack, ClickCount: 1},
			want: input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseReleased, Button: input.MouseButtonBack, ClickCount: 1, PointerType: input.DispatchMouseEventPointerTypeMouse},
		},
		{name: "bad action", ev: isolation.MouseEvent{Action: "click"}, err: true},
		{name: "bad button", ev: isolation.MouseEvent{Action: isolation.MouseDown, Button: "fourth"}, err: true},
		{name: "nan", ev: isolation.MouseEvent{Action: isolation.MouseMove, X: math.NaN()}, err: true},
		{name: "clicks", ev: isolation.MouseEvent{Action: isolation.MouseDown, ClickCount: 4}, err: true},
		{name: "buttons", ev: isolation.MouseEvent{Action: isolation.MouseDown, Buttons: 32}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mouseParams(tc.ev)
			if tc.err {
				if !errors.Is(err, ErrInput) {
					t.Fatalf("err = %v, want ErrInput", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("params (-want +got):\n%s", d)
			}
		})
	}
}
