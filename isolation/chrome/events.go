package chrome

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/chromedp/cdproto"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/cdproto/target"

	"github.com/shoji-rbi/shoji/isolation"
)

// crashReloadInterval is how soon after a renderer crash another crash of
// the same tab is left alone instead of reloaded, so a page that crashes on
// load is not reloaded for ever.
const crashReloadInterval = 10 * time.Second

// historyMsg carries a tab's history position to loop.
type historyMsg struct {
	t                   *tab
	canBack, canForward bool
	// title is the current entry's title, which Chromium knows well before
	// it reports the target's new title.
	title string
}

// loop handles the queued events in order, and calls the observer: every
// call of Observer.State, Dialog, DialogClosed, Navigated, Blocked,
// AccessRequested and FileChooser, and of Download for Chromium's downloads,
// comes from here. (A print reports from its own worker; teardown reports
// the downloads that the browser's end cut short, after loop ended.) After
// each batch of events it reports the state once, if it changed.
func (b *browser) loop() {
	defer b.wg.Done()
	var last isolation.State
	sent := false
	for {
		select {
		case <-b.life.Done():
			return
		case <-b.events.wake:
		}
		for _, ev := range b.events.drain() {
			if b.life.Err() != nil {
				return
			}
			b.handle(ev)
		}
		if s := b.State(); !sent || !reflect.DeepEqual(s, last) {
			b.obs.State(s)
			last, sent = s, true
		}
	}
}

// handle applies one queued event.
func (b *browser) handle(ev any) {
	switch ev := ev.(type) {
	case tabEvent:
		b.handleTab(ev.t, ev.ev)
	case historyMsg:
		b.tabs.mu.Lock()
		ev.t.canBack, ev.t.canForward = ev.canBack, ev.canForward
		if ev.title != "" {
			ev.t.title = ev.title
		}
		b.tabs.mu.Unlock()
	case tabFailed:
		b.removeTab(ev.t)
	case stateDirty:
	case blockedMsg:
		b.obs.Blocked(ev.tab, ev.url, ev.d)
	case accessMsg:
		b.obs.AccessRequested(ev.tab, ev.host, ev.url)
	case *target.EventTargetCreated:
		b.targetInfo(ev.TargetInfo)
	case *target.EventTargetInfoChanged:
		b.targetInfo(ev.TargetInfo)
	case *target.EventTargetDestroyed:
		b.tabs.mu.Lock()
		t := b.tabs.byID(ev.TargetID)
		b.tabs.mu.Unlock()
		if t != nil {
			b.removeTab(t)
		}
	case *target.EventTargetCrashed:
		b.rendererCrashed(ev)
	case *cdpbrowser.EventDownloadWillBegin:
		b.dl.begins(ev)
	case *cdpbrowser.EventDownloadProgress:
		b.dl.progress(ev)
	case chooserResolved:
		b.up.chooserReady(ev)
	}
}

// targetInfo tracks a new page target, or updates a known one's title.
func (b *browser) targetInfo(info *target.Info) {
	b.tabs.mu.Lock()
	t := b.tabs.byID(info.TargetID)
	if t != nil {
		t.title = info.Title
		if t.url == "" {
			t.url = info.URL
		}
	}
	b.tabs.mu.Unlock()
	if t == nil {
		b.addTab(info)
	}
}

// handleTab applies one event of t's session.
func (b *browser) handleTab(t *tab, ev any) {
	switch ev := ev.(type) {
	case *page.EventFrameNavigated:
		if ev.Frame.ParentID != "" {
			b.up.forgetChoosers(t, ev.Frame.ID)
		} else {
			b.up.forgetChoosers(t, "")
		}
		if ev.Frame.ParentID != "" {
			return
		}
		u := ev.Frame.URL + ev.Frame.URLFragment
		blocked := b.guard.takeBlockPage(ev.Frame.ID, ev.Frame.URL)
		b.tabs.mu.Lock()
		t.mainFrame = ev.Frame.ID
		t.url = u
		t.blocked = blocked
		if ev.Type != page.NavigationTypeBackForwardCacheRestore {
			// The new document's security state follows; a page restored
			// from the back-forward cache had it reported already.
			t.secure = false
		}
		b.tabs.mu.Unlock()
		if !blocked {
			// A block page was reported to Blocked.
			b.obs.Navigated(string(t.id), u)
		}
		b.refreshHistory(t)
	case *page.EventNavigatedWithinDocument:
		b.tabs.mu.Lock()
		main := ev.FrameID == t.mainFrame
		if main {
			t.url = ev.URL
		}
		b.tabs.mu.Unlock()
		if main {
			b.obs.Navigated(string(t.id), ev.URL)
			b.refreshHistory(t)
		}
	case *page.EventFrameStartedLoading:
		b.tabs.mu.Lock()
		if ev.FrameID == t.mainFrame {
			t.loading = true
		}
		b.tabs.mu.Unlock()
	case *page.EventFrameStoppedLoading:
		b.tabs.mu.Lock()
		main := ev.FrameID == t.mainFrame
		if main {
			t.loading = false
		}
		b.tabs.mu.Unlock()
		if main {
			b.refreshHistory(t)
			b.guard.certNavigationStopped(t)
		}
	case *security.EventVisibleSecurityStateChanged:
		b.tabs.mu.Lock()
		t.secure = ev.VisibleSecurityState != nil && ev.VisibleSecurityState.SecurityState == security.StateSecure
		b.tabs.mu.Unlock()
	case *page.EventFileChooserOpened:
		b.up.chooserOpened(t, ev)
	case *runtime.EventBindingCalled:
		b.pr.pagePrint(t)
	case *page.EventJavascriptDialogOpening:
		b.dialogOpening(t, ev)
	case *page.EventJavascriptDialogClosed:
		b.tabs.mu.Lock()
		d := t.dialog
		t.dialog = nil
		if d != nil {
			d.timer.Stop()
		}
		b.tabs.mu.Unlock()
		if d != nil {
			b.obs.DialogClosed(d.d.ID)
		}
	}
}

// refreshHistory fetches t's history position and title on a worker and
// hands them to loop.
func (b *browser) refreshHistory(t *tab) {
	b.spawn(func() {
		ctx, cancel := t.callCtx(b.cfg.CallTimeout)
		defer cancel()
		h, err := cdp.Call(ctx, t.sess, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return
		}
		msg := historyMsg{
			t:          t,
			canBack:    h.CurrentIndex > 0,
			canForward: h.CurrentIndex+1 < int64(len(h.Entries)),
		}
		if i := h.CurrentIndex; i >= 0 && i < int64(len(h.Entries)) {
			msg.title = h.Entries[i].Title
		}
		b.events.push(msg)
	})
}

// dialogOpening records a dialog, reports it and arms its time-out.
func (b *browser) dialogOpening(t *tab, ev *page.EventJavascriptDialogOpening) {
	d := isolation.Dialog{
		ID:            newID(),
		TabID:         string(t.id),
		Kind:          isolation.DialogKind(ev.Type),
		Message:       ev.Message,
		DefaultPrompt: ev.DefaultPrompt,
		URL:           ev.URL,
	}
	b.tabs.mu.Lock()
	var replaced string
	if old := t.dialog; old != nil {
		old.timer.Stop()
		replaced = old.d.ID
	}
	pd := &pendingDialog{d: d}
	pd.timer = time.AfterFunc(b.cfg.DialogTimeout, func() { b.dismissDialog(t, d.ID) })
	t.dialog = pd
	t.openDialog()
	t.dialogOpened, t.openDialog = context.WithCancel(context.Background())
	b.tabs.mu.Unlock()
	if replaced != "" {
		b.obs.DialogClosed(replaced)
	}
	b.log.Debug("dialog opened", logTab, t.id, "kind", d.Kind)
	b.obs.Dialog(d)
}

// dismissDialog dismisses the dialog id of t if nobody answered it in time.
func (b *browser) dismissDialog(t *tab, id string) {
	b.spawn(func() {
		b.tabs.mu.Lock()
		open := t.dialog != nil && t.dialog.d.ID == id
		b.tabs.mu.Unlock()
		if !open {
			return
		}
		b.log.Info("dialog timed out", logTab, t.id)
		ctx, cancel := t.callCtx(b.cfg.CallTimeout)
		defer cancel()
		_, _ = cdp.Call(ctx, t.sess, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
	})
}

// AnswerDialog accepts or dismisses the pending dialog id. promptText is the
// answer to a prompt.
func (b *browser) AnswerDialog(ctx context.Context, id string, accept bool, promptText string) error {
	if b.life.Err() != nil {
		return isolation.ErrClosed
	}
	b.tabs.mu.Lock()
	var t *tab
	for _, x := range b.tabs.list {
		if x.dialog != nil && x.dialog.d.ID == id {
			t = x
			break
		}
	}
	b.tabs.mu.Unlock()
	if t == nil {
		return fmt.Errorf("dialog %q: %w", id, ErrNoDialog)
	}
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	_, err := cdp.Call(ctx, t.sess, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept, PromptText: promptText})
	var cerr *cdproto.Error
	if errors.As(err, &cerr) {
		// Chromium: "No dialog is showing".
		return fmt.Errorf("dialog %q: %w: %w", id, ErrNoDialog, err)
	}
	return b.closedErr(err)
}

// rendererCrashed reloads a tab whose renderer died, unless it crashed a
// moment ago too; such a tab stays as it is until the clinician reloads or
// navigates.
func (b *browser) rendererCrashed(ev *target.EventTargetCrashed) {
	b.tabs.mu.Lock()
	t := b.tabs.byID(ev.TargetID)
	reload := t != nil && t.ready && time.Since(t.crashedAt) > crashReloadInterval
	if t != nil {
		t.crashedAt = time.Now()
	}
	b.tabs.mu.Unlock()
	if t == nil {
		return
	}
	b.log.Warn("renderer crashed", logTab, t.id, "status", ev.Status, "code", ev.ErrorCode, "reload", reload)
	if !reload {
		return
	}
	b.spawn(func() {
		ctx, cancel := t.callCtx(b.cfg.CallTimeout)
		defer cancel()
		if _, err := cdp.Call(ctx, t.sess, page.Reload, page.ReloadParams{}); err != nil {
			b.log.Warn("reload crashed tab", logTab, t.id, logErr, err)
			return
		}
		b.tabs.mu.Lock()
		active := b.tabs.active == t
		b.tabs.mu.Unlock()
		if active {
			// The screencast belonged to the dead renderer's view.
			_ = b.activate(ctx, t)
		}
	})
}

// newID returns a random ID for a dialog.
func newID() string {
	var p [8]byte
	_, _ = rand.Read(p[:])
	return hex.EncodeToString(p[:])
}
