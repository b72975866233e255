package chrome

import (
	"context"
	"encoding/json"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Each method of isolation.Browser hands the call to the part of the
// browser that owns it. Most parts implement their role of
// isolation.Browser by themselves; Transfers is shared by downloads
// (CancelDownload) and uploads (SetFiles, DropFiles).
var (
	_ isolation.Browser   = (*browser)(nil)
	_ isolation.Navigator = (*navigator)(nil)
	_ isolation.Screen    = (*screen)(nil)
	_ isolation.Input     = (*inputs)(nil)
	_ isolation.Tabs      = (*tabSet)(nil)
	_ isolation.Clipboard = (*clipboard)(nil)
	_ isolation.Printer   = (*printer)(nil)
)

// Navigate opens rawURL in the active tab. See navigator.Navigate.
func (b *browser) Navigate(ctx context.Context, rawURL string) error {
	return b.nav.Navigate(ctx, rawURL)
}

// Back goes one step back in the active tab's history. See navigator.Back.
func (b *browser) Back(ctx context.Context) error { return b.nav.Back(ctx) }

// Forward goes one step forward in the active tab's history. See
// navigator.Forward.
func (b *browser) Forward(ctx context.Context) error { return b.nav.Forward(ctx) }

// Reload reloads the active tab. See navigator.Reload.
func (b *browser) Reload(ctx context.Context) error { return b.nav.Reload(ctx) }

// Stop stops loading the active tab. See navigator.Stop.
func (b *browser) Stop(ctx context.Context) error { return b.nav.Stop(ctx) }

// State returns the current visible state. See tabSet.State.
func (b *browser) State() isolation.State { return b.tabs.State() }

// PendingDialogs returns the dialogs still waiting for an answer. See
// tabSet.PendingDialogs.
func (b *browser) PendingDialogs() []isolation.Dialog { return b.tabs.PendingDialogs() }

// Mouse dispatches a pointer event to the active tab. See inputs.Mouse.
func (b *browser) Mouse(ctx context.Context, ev isolation.MouseEvent) error {
	return b.in.Mouse(ctx, ev)
}

// Wheel dispatches a wheel event to the active tab. See inputs.Wheel.
func (b *browser) Wheel(ctx context.Context, ev isolation.WheelEvent) error {
	return b.in.Wheel(ctx, ev)
}

// Key dispatches a key event to the active tab. See inputs.Key.
func (b *browser) Key(ctx context.Context, ev isolation.KeyEvent) error {
	return b.in.Key(ctx, ev)
}

// Compose sets the IME composition. See inputs.Compose.
func (b *browser) Compose(ctx context.Context, text string, selStart, selEnd int) (isolation.Caret, error) {
	return b.in.Compose(ctx, text, selStart, selEnd)
}

// InsertText commits text into the focused element. See
// inputs.InsertText.
func (b *browser) InsertText(ctx context.Context, text string) error {
	return b.in.InsertText(ctx, text)
}

// SwitchTab makes the tab id the active one. See tabSet.SwitchTab.
func (b *browser) SwitchTab(ctx context.Context, id string) error { return b.tabs.SwitchTab(ctx, id) }

// CloseTab closes the tab id. See tabSet.CloseTab.
func (b *browser) CloseTab(ctx context.Context, id string) error { return b.tabs.CloseTab(ctx, id) }

// AnswerDialog answers the pending dialog id. See tabSet.AnswerDialog.
func (b *browser) AnswerDialog(ctx context.Context, id string, accept bool, promptText string) error {
	return b.tabs.AnswerDialog(ctx, id, accept, promptText)
}

// Evaluate runs a JavaScript expression in the active tab, for end-to-end
// tests. See tabSet.Evaluate.
func (b *browser) Evaluate(ctx context.Context, expr string) (json.RawMessage, error) {
	return b.tabs.Evaluate(ctx, expr)
}

// SetFiles answers a file chooser. See uploads.SetFiles.
func (b *browser) SetFiles(ctx context.Context, id string, paths []string) error {
	return b.up.SetFiles(ctx, id, paths)
}

// DropFiles drops files onto the active tab. See uploads.DropFiles.
func (b *browser) DropFiles(ctx context.Context, pageURL string, x, y float64, paths []string) error {
	return b.up.DropFiles(ctx, pageURL, x, y, paths)
}

// Print prints the active tab into the download directory. See
// printer.Print.
func (b *browser) Print(ctx context.Context) error { return b.pr.Print(ctx) }

// SetViewport resizes the tabs' pages. See screen.SetViewport.
func (b *browser) SetViewport(ctx context.Context, v isolation.Viewport) error {
	return b.screen.SetViewport(ctx, v)
}

// KeyFrame makes a fresh frame arrive at once. See screen.KeyFrame.
func (b *browser) KeyFrame(ctx context.Context) error { return b.screen.KeyFrame(ctx) }

// SetQuality sets the screencast's JPEG quality. See screen.SetQuality.
func (b *browser) SetQuality(ctx context.Context, quality int) error {
	return b.screen.SetQuality(ctx, quality)
}

// SetFramePace sets the least time between two frames. See
// screen.SetFramePace.
func (b *browser) SetFramePace(minInterval time.Duration) { b.screen.SetFramePace(minInterval) }

// Copy does the clinician's copy shortcut in the active tab and returns
// what it copied. See clipboard.Copy.
func (b *browser) Copy(ctx context.Context) (string, error) { return b.clip.Copy(ctx) }

// CancelDownload stops download id and removes its file. See
// downloads.Cancel.
func (b *browser) CancelDownload(ctx context.Context, id string) error {
	return b.dl.Cancel(ctx, id)
}
