package chrome

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// How Copy reads the remote clipboard, as found on Chromium 156 headless:
//
//   - Ctrl+C sent with Input.dispatchKeyEvent (a rawKeyDown with the Ctrl
//     modifier, no "commands") runs the copy command in the focused frame:
//     the page's copy handlers run, and the selection of the page or of a
//     focused input or textarea lands on the clipboard.
//   - The clipboard cannot be read from the page itself: navigator.clipboard
//     exists only in secure contexts (not on an http: page, in any world),
//     Browser.grantPermissions refuses an insecure origin, and a grant to
//     the page's origin would let the page read the clipboard too.
//   - So the browser keeps a reader: a hidden page in a browser context of
//     its own (its own renderer, no page can reach it; the clipboard is the
//     browser's, shared by every context). Its document is
//     https://shoji.invalid/clipboard, answered by the Fetch handler and so
//     a secure context; it has the clipboard permissions of its context
//     only, and focus emulation, since only a focused document may read the
//     clipboard. An about:blank reader is not a secure context.
//   - To tell "the copy put nothing" from "the copy put the same text
//     again", the reader saves the clipboard and puts a random marker on it
//     before Ctrl+C. If the marker is still there afterwards, nothing was
//     copied: the saved content is put back (text, HTML and images, as the
//     async clipboard API reads them), and Copy returns the saved text only
//     if something else (a page's copy button) put it there after the last
//     Copy, and "" otherwise.

// clipboardPath is the path of the reader's document on specialHost.
const clipboardPath = "/clipboard"

// readerURL is the reader's document.
const readerURL = "https://" + specialHost + clipboardPath

// maxCopyText bounds the text Copy returns, in UTF-16 code units.
const maxCopyText = 1 << 20

// copySettle is how long Copy waits for a copy that was not on the clipboard
// at once, such as a page's asynchronous clipboard write.
const copySettle = 100 * time.Millisecond

// readerHeaders are the headers of the reader's document.
var readerHeaders = []*fetch.HeaderEntry{
	{Name: "Content-Type", Value: "text/html; charset=utf-8"},
	{Name: "Content-Security-Policy", Value: "default-src 'none'"},
	{Name: "Cache-Control", Value: "no-store"},
}

// readerPage is the reader's document.
var readerPage = []byte("<!doctype html><title>clipboard</title>")

// grantPermissions is Browser.grantPermissions, which cdproto no longer
// generates.
var grantPermissions = cdp.Command[grantPermissionsParams, cdp.Empty]{Method: "Browser.grantPermissions"}

type grantPermissionsParams struct {
	Permissions      []cdpbrowser.PermissionType `json:"permissions"`
	BrowserContextID cdp.BrowserContextID        `json:"browserContextId,omitempty"`
}

// clipboard is the part of a browser that owns Copy: the hidden reader
// page in a browser context of its own, and the text the last Copy found.
//
// Locks: mu serializes Copy and guards reader and last. readerID is
// atomic: the navigation guard reads it on its own goroutine (isReader).
// key is set at launch and only read afterwards.
//
// Goroutines: Copy runs on the caller's goroutine; a broken reader is
// closed on a worker of spawn (dropReader).
type clipboard struct {
	*core
	// key presses one key in the active tab, in order with the other
	// input (the input part's Key).
	key func(context.Context, isolation.KeyEvent) error

	// mu serializes Copy and guards reader and last.
	mu     sync.Mutex
	reader *clipReader
	// last is the text on the clipboard after the last Copy.
	last string
	// readerID is the reader's target ID, for the Fetch handler.
	readerID atomic.Value // target.ID
}

// clipReader is the hidden page that reads the clipboard.
type clipReader struct {
	context cdp.BrowserContextID
	id      target.ID
	sess    *chromedp.Target
	cancel  context.CancelFunc
}

// isReader reports whether frame f is the reader's document.
func (c *clipboard) isReader(f cdp.FrameID) bool {
	id, _ := c.readerID.Load().(target.ID)
	return id != "" && target.ID(f) == id
}

// copyResult is what the reader reports after a copy.
type copyResult struct {
	Copied  bool   `json:"copied"`
	Text    string `json:"text"`
	TooLong bool   `json:"tooLong"`
}

// Copy presses Ctrl+C in the active tab, as the clinician's copy shortcut
// would, and returns the text that the copy put on the remote clipboard:
// the page's selection or the selection in a focused input or textarea, or
// what the page's copy handler put there. When the copy put nothing, it
// returns what a page put on the clipboard since the last Copy (a copy
// button), and "" when there is nothing new. The viewer must not forward
// the Ctrl+C keys itself. See the comment at the top of clipboard.go.
func (c *clipboard) Copy(ctx context.Context) (string, error) {
	if c.life.Err() != nil {
		return "", isolation.ErrClosed
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	text, err := c.copyLocked(ctx)
	if err != nil && c.life.Err() == nil && !errors.Is(err, ErrNoTab) {
		// The reader may be broken; the next Copy starts a new one.
		c.dropReader()
	}
	return text, c.closedErr(err)
}

// copyLocked does Copy with c.mu held.
func (c *clipboard) copyLocked(ctx context.Context) (string, error) {
	r, err := c.ensureReader(ctx)
	if err != nil {
		return "", fmt.Errorf("clipboard reader: %w", err)
	}
	marker := "shoji-copy-" + newID() + newID()
	mjs, _ := json.Marshal(marker)
	prepare := `(async () => {
  const items = [];
  let text = '';
  try {
    for (const item of await navigator.clipboard.read()) {
      const parts = {};
      for (const type of item.types) {
        const blob = await item.getType(type);
        parts[type] = new Blob([await blob.arrayBuffer()], {type});
      }
      items.push(new ClipboardItem(parts));
    }
  } catch (e) {}
  try { text = await navigator.clipboard.readText(); } catch (e) {}
  window.saved = items; window.savedText = text;
  await navigator.clipboard.writeText(` + string(mjs) + `);
  return true;
})()`
	if _, err := chromedp.Evaluate[bool](prepare, chromedp.EvalAwaitPromise)(ctx, r.sess); err != nil {
		return "", fmt.Errorf("save clipboard: %w", err)
	}
	copyErr := c.pressCopy(ctx)

	check := `(async () => {
  const t = await navigator.clipboard.readText();
  if (t === ` + string(mjs) + `) return {copied: false};
  return t.length > ` + fmt.Sprint(maxCopyText) + ` ? {copied: true, tooLong: true} : {copied: true, text: t};
})()`
	res, err := chromedp.Evaluate[copyResult](check, chromedp.EvalAwaitPromise)(ctx, r.sess)
	if err == nil && !res.Copied && copyErr == nil {
		select {
		case <-time.After(copySettle):
		case <-ctx.Done():
		}
		res, err = chromedp.Evaluate[copyResult](check, chromedp.EvalAwaitPromise)(ctx, r.sess)
	}
	if err != nil {
		return "", fmt.Errorf("read clipboard: %w", err)
	}
	if !res.Copied {
		restore := `(async () => {
  try {
    if (window.saved.length) await navigator.clipboard.write(window.saved);
    else await navigator.clipboard.writeText(window.savedText);
  } catch (e) {
    await navigator.clipboard.writeText(window.savedText);
  }
  const t = window.savedText;
  window.saved = null; window.savedText = null;
  return t.length > ` + fmt.Sprint(maxCopyText) + ` ? {tooLong: true} : {text: t};
})()`
		res, err = chromedp.Evaluate[copyResult](restore, chromedp.EvalAwaitPromise)(ctx, r.sess)
		if err != nil {
			return "", fmt.Errorf("restore clipboard: %w", err)
		}
	} else {
		_, _ = chromedp.Evaluate[bool](`window.saved = null; window.savedText = null; true`)(ctx, r.sess)
	}
	if copyErr != nil {
		return "", copyErr
	}
	if res.TooLong {
		c.last = ""
		return "", fmt.Errorf("copied text is longer than %d characters", maxCopyText)
	}
	last := c.last
	c.last = res.Text
	if !res.Copied && res.Text == last {
		return "", nil
	}
	return res.Text, nil
}

// copyKeys are the key events of Ctrl+C on a US keyboard.
var copyKeys = []isolation.KeyEvent{
	{Action: isolation.KeyDown, Key: "Control", Code: "ControlLeft", KeyCode: 17, Modifiers: isolation.ModCtrl, Location: 1},
	{Action: isolation.KeyDown, Key: "c", Code: "KeyC", KeyCode: 67, Modifiers: isolation.ModCtrl},
	{Action: isolation.KeyUp, Key: "c", Code: "KeyC", KeyCode: 67, Modifiers: isolation.ModCtrl},
	{Action: isolation.KeyUp, Key: "Control", Code: "ControlLeft", KeyCode: 17, Location: 1},
}

// pressCopy presses Ctrl+C in the active tab, in order with the other
// input: Copy's caller (the viewer's input queue) makes no other input
// call until Copy returns.
func (c *clipboard) pressCopy(ctx context.Context) error {
	for _, k := range copyKeys {
		if err := c.key(ctx, k); err != nil {
			return fmt.Errorf("press ctrl+c: %w", err)
		}
	}
	return nil
}

// ensureReader returns the clipboard reader, starting it first if there is
// none. The caller holds c.mu.
func (c *clipboard) ensureReader(ctx context.Context) (*clipReader, error) {
	if r := c.reader; r != nil {
		return r, nil
	}
	r, err := c.startReader(ctx)
	if err != nil {
		if r != nil {
			c.closeReader(r)
		}
		return nil, err
	}
	c.reader = r
	return r, nil
}

// startReader opens the reader in a browser context of its own. On error
// it returns what it opened so far, for closeReader.
func (c *clipboard) startReader(ctx context.Context) (*clipReader, error) {
	bc, err := cdp.Call(ctx, c.session, target.CreateBrowserContext, target.CreateBrowserContextParams{})
	if err != nil {
		return nil, fmt.Errorf("create browser context: %w", err)
	}
	r := &clipReader{context: bc.BrowserContextID}
	// No Browser.setDownloadBehavior for this context: on this Chromium a
	// behaviour set for one browser context replaces the default context's
	// too, which would stop the clinician's downloads reaching the
	// quarantine (TestDownloadAfterCopy). The reader only ever shows its
	// own page, which downloads nothing.
	if _, err := cdp.Call(ctx, c.session, grantPermissions, grantPermissionsParams{
		Permissions:      []cdpbrowser.PermissionType{cdpbrowser.PermissionTypeClipboardReadWrite, cdpbrowser.PermissionTypeClipboardSanitizedWrite},
		BrowserContextID: r.context,
	}); err != nil {
		return r, fmt.Errorf("grant clipboard permissions: %w", err)
	}
	tg, err := cdp.Call(ctx, c.session, target.CreateTarget, target.CreateTargetParams{
		URL:              "about:blank",
		BrowserContextID: r.context,
		Background:       new(true),
		Hidden:           new(true),
	})
	if err != nil {
		return r, fmt.Errorf("create reader page: %w", err)
	}
	r.id = tg.TargetID
	c.readerID.Store(r.id)
	tctx, cancel := chromedp.NewContext(c.bctx, chromedp.WithTargetID(r.id))
	r.cancel = cancel
	// As in attach: the first Run binds the session to tctx.
	timer := time.AfterFunc(c.cfg.CallTimeout, cancel)
	err = chromedp.Do(tctx)
	timer.Stop()
	if err != nil {
		return r, fmt.Errorf("attach reader page: %w", err)
	}
	r.sess = chromedp.FromContext(tctx).Target
	if _, err := cdp.Call(ctx, r.sess, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		return r, fmt.Errorf("reader focus: %w", err)
	}
	nav, err := cdp.Call(ctx, r.sess, page.Navigate, page.NavigateParams{URL: readerURL})
	if err != nil {
		return r, fmt.Errorf("open reader page: %w", err)
	}
	if nav.ErrorText != "" {
		return r, fmt.Errorf("open reader page: %s", nav.ErrorText)
	}
	ready := `location.href === ` + jsString(readerURL) + ` && document.readyState === 'complete' && isSecureContext && document.hasFocus() && !!navigator.clipboard`
	for {
		ok, err := chromedp.Evaluate[bool](ready)(ctx, r.sess)
		if ok {
			return r, nil
		}
		if err != nil && !navigating(err) {
			return r, fmt.Errorf("reader page: %w", err)
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("reader page not ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// dropReader closes the reader, if any, on a worker. The caller holds
// c.mu.
func (c *clipboard) dropReader() {
	r := c.reader
	c.reader = nil
	if r != nil {
		c.spawn(func() { c.closeReader(r) })
	}
}

// closeReader closes the reader's page and its browser context.
func (c *clipboard) closeReader(r *clipReader) {
	if c.isReader(cdp.FrameID(r.id)) {
		c.readerID.Store(target.ID(""))
	}
	if r.cancel != nil {
		r.cancel()
	}
	ctx, cancel := context.WithTimeout(c.life, c.cfg.CallTimeout)
	defer cancel()
	if _, err := cdp.Call(ctx, c.session, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: r.context}); err != nil && c.life.Err() == nil {
		c.log.Warn("close clipboard reader", logErr, err)
	}
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
