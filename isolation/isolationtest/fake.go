// Package isolationtest has a fake isolation.Launcher and isolation.Browser
// for unit tests of the broker. Integration tests use isolation/chrome.
package isolationtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Call is one recorded call into a fake browser.
type Call struct {
	Method string
	Arg    any
}

// Launcher launches fake browsers and remembers them.
type Launcher struct {
	mu       sync.Mutex
	browsers []*Browser
	// Fail, when set, makes Launch return it.
	Fail error
}

// Launch returns a new live fake browser.
func (l *Launcher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Fail != nil {
		return nil, l.Fail
	}
	if opts.ProxyAddr == "" {
		return nil, errors.New("fake launcher: ProxyAddr is required")
	}
	b := &Browser{Opts: opts, done: make(chan struct{}), state: isolation.State{URL: "about:blank"}}
	l.browsers = append(l.browsers, b)
	return b, nil
}

// Browsers returns every browser launched so far.
func (l *Launcher) Browsers() []*Browser {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Browser(nil), l.browsers...)
}

// Last returns the newest browser, or nil.
func (l *Launcher) Last() *Browser {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.browsers) == 0 {
		return nil
	}
	return l.browsers[len(l.browsers)-1]
}

// Browser is a fake isolation.Browser that records calls and lets a test
// emit frames, state and dialogs through the launch Observer.
type Browser struct {
	Opts isolation.LaunchOptions

	mu       sync.Mutex
	calls    []Call
	state    isolation.State
	dialogs  []isolation.Dialog
	closed   bool
	err      error
	done     chan struct{}
	block    chan struct{}
	copyText string
}

// SetBlock makes input calls wait until block is closed or the call's
// context ends, as for a page stalled by a dialog. Nil stops blocking.
func (b *Browser) SetBlock(block chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.block = block
}

func (b *Browser) record(method string, arg any) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return isolation.ErrClosed
	}
	b.calls = append(b.calls, Call{Method: method, Arg: arg})
	b.mu.Unlock()
	return nil
}

func (b *Browser) input(ctx context.Context, method string, arg any) error {
	if err := b.record(method, arg); err != nil {
		return err
	}
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Calls returns the calls so far.
func (b *Browser) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Call(nil), b.calls...)
}

// EmitFrame delivers a frame to the observer.
func (b *Browser) EmitFrame(f isolation.Frame) {
	if fn := b.Opts.Observer.Frame; fn != nil {
		fn(f)
	}
}

// EmitState sets and delivers the state.
func (b *Browser) EmitState(st isolation.State) {
	b.mu.Lock()
	b.state = st
	b.mu.Unlock()
	if fn := b.Opts.Observer.State; fn != nil {
		fn(st)
	}
}

// EmitDialog opens a dialog.
func (b *Browser) EmitDialog(d isolation.Dialog) {
	b.mu.Lock()
	b.dialogs = append(b.dialogs, d)
	b.mu.Unlock()
	if fn := b.Opts.Observer.Dialog; fn != nil {
		fn(d)
	}
}

// EmitBlocked reports a refused navigation of tab to the observer.
func (b *Browser) EmitBlocked(tab, url string, d isolation.NavDecision) {
	if fn := b.Opts.Observer.Blocked; fn != nil {
		fn(tab, url, d)
	}
}

// Crash ends the browser as if its process died.
func (b *Browser) Crash() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.err = fmt.Errorf("fake: %w", isolation.ErrCrashed)
	close(b.done)
}

// Closed reports whether Close was called or the browser crashed.
func (b *Browser) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *Browser) Navigate(ctx context.Context, url string) error {
	return b.input(ctx, "Navigate", url)
}
func (b *Browser) Back(ctx context.Context) error    { return b.input(ctx, "Back", nil) }
func (b *Browser) Forward(ctx context.Context) error { return b.input(ctx, "Forward", nil) }
func (b *Browser) Reload(ctx context.Context) error  { return b.input(ctx, "Reload", nil) }
func (b *Browser) Stop(ctx context.Context) error    { return b.input(ctx, "Stop", nil) }
func (b *Browser) SetViewport(ctx context.Context, v isolation.Viewport) error {
	return b.record("SetViewport", v)
}
func (b *Browser) KeyFrame(ctx context.Context) error { return b.record("KeyFrame", nil) }
func (b *Browser) SetQuality(ctx context.Context, quality int) error {
	return b.record("SetQuality", quality)
}

// SetFramePace records the pace as a call "SetFramePace" with the
// duration, unless the browser has ended; FramePace returns the last.
func (b *Browser) SetFramePace(minInterval time.Duration) {
	_ = b.record("SetFramePace", minInterval)
}

// FramePace returns the pace last set by SetFramePace (zero if never).
func (b *Browser) FramePace() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.calls) - 1; i >= 0; i-- {
		if c := b.calls[i]; c.Method == "SetFramePace" {
			return c.Arg.(time.Duration)
		}
	}
	return 0
}

func (b *Browser) Mouse(ctx context.Context, ev isolation.MouseEvent) error {
	return b.input(ctx, "Mouse", ev)
}
func (b *Browser) Wheel(ctx context.Context, ev isolation.WheelEvent) error {
	return b.input(ctx, "Wheel", ev)
}
func (b *Browser) Key(ctx context.Context, ev isolation.KeyEvent) error {
	return b.input(ctx, "Key", ev)
}
func (b *Browser) Compose(ctx context.Context, text string, s, e int) (isolation.Caret, error) {
	return isolation.Caret{X: 10, Y: 20, Height: 16}, b.input(ctx, "Compose", []any{text, s, e})
}
func (b *Browser) InsertText(ctx context.Context, text string) error {
	return b.input(ctx, "InsertText", text)
}
func (b *Browser) SwitchTab(ctx context.Context, id string) error {
	return b.input(ctx, "SwitchTab", id)
}
func (b *Browser) CloseTab(ctx context.Context, id string) error {
	return b.input(ctx, "CloseTab", id)
}

// AnswerDialog answers and closes a pending dialog; it never blocks.
func (b *Browser) AnswerDialog(ctx context.Context, id string, accept bool, text string) error {
	if err := b.record("AnswerDialog", []any{id, accept, text}); err != nil {
		return err
	}
	b.mu.Lock()
	found := false
	for i, d := range b.dialogs {
		if d.ID == id {
			b.dialogs = append(b.dialogs[:i], b.dialogs[i+1:]...)
			found = true
			break
		}
	}
	b.mu.Unlock()
	if !found {
		return fmt.Errorf("fake: no dialog %q", id)
	}
	if fn := b.Opts.Observer.DialogClosed; fn != nil {
		fn(id)
	}
	return nil
}

func (b *Browser) State() isolation.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *Browser) PendingDialogs() []isolation.Dialog {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]isolation.Dialog(nil), b.dialogs...)
}

func (b *Browser) Done() <-chan struct{} { return b.done }

func (b *Browser) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close ends the browser.
func (b *Browser) Close(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	return nil
}

var _ isolation.Browser = (*Browser)(nil)

// SetFilesArg is what a SetFiles call recorded.
type SetFilesArg struct {
	Chooser string
	Paths   []string
}

// SetCopyText sets what Copy returns.
func (b *Browser) SetCopyText(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.copyText = s
}

// EmitDownload reports a download step through the launch Observer.
func (b *Browser) EmitDownload(d isolation.Download) {
	if f := b.Opts.Observer.Download; f != nil {
		f(d)
	}
}

// EmitFileChooser reports an opened file chooser through the launch
// Observer.
func (b *Browser) EmitFileChooser(c isolation.FileChooser) {
	if f := b.Opts.Observer.FileChooser; f != nil {
		f(c)
	}
}

func (b *Browser) CancelDownload(ctx context.Context, id string) error {
	return b.record("CancelDownload", id)
}
func (b *Browser) SetFiles(ctx context.Context, chooser string, paths []string) error {
	return b.record("SetFiles", SetFilesArg{Chooser: chooser, Paths: append([]string(nil), paths...)})
}
func (b *Browser) Copy(ctx context.Context) (string, error) {
	if err := b.record("Copy", nil); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.copyText, nil
}
func (b *Browser) Print(ctx context.Context) error { return b.record("Print", nil) }

// DropArg is what a DropFiles call recorded.
type DropArg struct {
	URL   string
	X, Y  float64
	Paths []string
}

func (b *Browser) DropFiles(ctx context.Context, pageURL string, x, y float64, paths []string) error {
	return b.record("DropFiles", DropArg{URL: pageURL, X: x, Y: y, Paths: append([]string(nil), paths...)})
}
