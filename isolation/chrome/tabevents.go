package chrome

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/cdproto"
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

// targetInfo tracks a new page target, or updates a known one's title.
func (ts *tabSet) targetInfo(info *target.Info) {
	ts.mu.Lock()
	t := ts.byID(info.TargetID)
	if t != nil {
		t.title = info.Title
		if t.url == "" {
			t.url = info.URL
		}
	}
	ts.mu.Unlock()
	if t == nil {
		ts.addTab(info)
	}
}

// handleTab applies one event of t's session.
func (ts *tabSet) handleTab(t *tab, ev any) {
	switch ev := ev.(type) {
	case *page.EventFrameNavigated:
		if ev.Frame.ParentID != "" {
			ts.up.forgetChoosers(t, ev.Frame.ID)
		} else {
			ts.up.forgetChoosers(t, "")
		}
		if ev.Frame.ParentID != "" {
			return
		}
		u := ev.Frame.URL + ev.Frame.URLFragment
		blocked := ts.guard.takeBlockPage(ev.Frame.ID, ev.Frame.URL)
		ts.mu.Lock()
		t.mainFrame = ev.Frame.ID
		t.url = u
		t.blocked = blocked
		if ev.Type != page.NavigationTypeBackForwardCacheRestore {
			// The new document's security state follows; a page restored
			// from the back-forward cache had it reported already.
			t.secure = false
		}
		ts.mu.Unlock()
		if !blocked {
			// A block page was reported to Blocked.
			ts.obs.Navigated(string(t.id), u)
		}
		ts.refreshHistory(t)
	case *page.EventNavigatedWithinDocument:
		ts.mu.Lock()
		main := ev.FrameID == t.mainFrame
		if main {
			t.url = ev.URL
		}
		ts.mu.Unlock()
		if main {
			ts.obs.Navigated(string(t.id), ev.URL)
			ts.refreshHistory(t)
		}
	case *page.EventFrameStartedLoading:
		ts.mu.Lock()
		if ev.FrameID == t.mainFrame {
			t.loading = true
		}
		ts.mu.Unlock()
	case *page.EventFrameStoppedLoading:
		ts.mu.Lock()
		main := ev.FrameID == t.mainFrame
		if main {
			t.loading = false
		}
		ts.mu.Unlock()
		if main {
			ts.refreshHistory(t)
			ts.guard.certNavigationStopped(t)
		}
	case *security.EventVisibleSecurityStateChanged:
		ts.mu.Lock()
		t.secure = ev.VisibleSecurityState != nil && ev.VisibleSecurityState.SecurityState == security.StateSecure
		ts.mu.Unlock()
	case *page.EventFileChooserOpened:
		ts.up.chooserOpened(t, ev)
	case *runtime.EventBindingCalled:
		ts.pr.pagePrint(t)
	case *page.EventJavascriptDialogOpening:
		ts.dialogOpening(t, ev)
	case *page.EventJavascriptDialogClosed:
		ts.mu.Lock()
		d := t.dialog
		t.dialog = nil
		if d != nil {
			d.timer.Stop()
		}
		ts.mu.Unlock()
		if d != nil {
			ts.obs.DialogClosed(d.d.ID)
		}
	}
}

// refreshHistory fetches t's history position and title on a worker and
// hands them to loop.
func (ts *tabSet) refreshHistory(t *tab) {
	ts.spawn(func() {
		ctx, cancel := t.callCtx(ts.cfg.CallTimeout)
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
		ts.events.push(msg)
	})
}

// dialogOpening records a dialog, reports it and arms its time-out.
func (ts *tabSet) dialogOpening(t *tab, ev *page.EventJavascriptDialogOpening) {
	d := isolation.Dialog{
		ID:            newID(),
		TabID:         string(t.id),
		Kind:          isolation.DialogKind(ev.Type),
		Message:       ev.Message,
		DefaultPrompt: ev.DefaultPrompt,
		URL:           ev.URL,
	}
	ts.mu.Lock()
	var replaced string
	if old := t.dialog; old != nil {
		old.timer.Stop()
		replaced = old.d.ID
	}
	pd := &pendingDialog{d: d}
	pd.timer = time.AfterFunc(ts.cfg.DialogTimeout, func() { ts.dismissDialog(t, d.ID) })
	t.dialog = pd
	t.openDialog()
	t.dialogOpened, t.openDialog = context.WithCancel(context.Background())
	ts.mu.Unlock()
	if replaced != "" {
		ts.obs.DialogClosed(replaced)
	}
	ts.log.Debug("dialog opened", logTab, t.id, "kind", d.Kind)
	ts.obs.Dialog(d)
}

// dismissDialog dismisses the dialog id of t if nobody answered it in time.
func (ts *tabSet) dismissDialog(t *tab, id string) {
	ts.spawn(func() {
		ts.mu.Lock()
		open := t.dialog != nil && t.dialog.d.ID == id
		ts.mu.Unlock()
		if !open {
			return
		}
		ts.log.Info("dialog timed out", logTab, t.id)
		ctx, cancel := t.callCtx(ts.cfg.CallTimeout)
		defer cancel()
		_, _ = cdp.Call(ctx, t.sess, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
	})
}

// AnswerDialog accepts or dismisses the pending dialog id. promptText is the
// answer to a prompt.
func (ts *tabSet) AnswerDialog(ctx context.Context, id string, accept bool, promptText string) error {
	if ts.life.Err() != nil {
		return isolation.ErrClosed
	}
	ts.mu.Lock()
	var t *tab
	for _, x := range ts.list {
		if x.dialog != nil && x.dialog.d.ID == id {
			t = x
			break
		}
	}
	ts.mu.Unlock()
	if t == nil {
		return fmt.Errorf("dialog %q: %w", id, ErrNoDialog)
	}
	ctx, cancel := ts.callCtx(ctx)
	defer cancel()
	_, err := cdp.Call(ctx, t.sess, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept, PromptText: promptText})
	var cerr *cdproto.Error
	if errors.As(err, &cerr) {
		// Chromium: "No dialog is showing".
		return fmt.Errorf("dialog %q: %w: %w", id, ErrNoDialog, err)
	}
	return ts.closedErr(err)
}

// rendererCrashed reloads a tab whose renderer died, unless it crashed a
// moment ago too; such a tab stays as it is until the clinician reloads or
// navigates.
func (ts *tabSet) rendererCrashed(ev *target.EventTargetCrashed) {
	ts.mu.Lock()
	t := ts.byID(ev.TargetID)
	reload := t != nil && t.ready && time.Since(t.crashedAt) > crashReloadInterval
	if t != nil {
		t.crashedAt = time.Now()
	}
	ts.mu.Unlock()
	if t == nil {
		return
	}
	ts.log.Warn("renderer crashed", logTab, t.id, "status", ev.Status, "code", ev.ErrorCode, "reload", reload)
	if !reload {
		return
	}
	ts.spawn(func() {
		ctx, cancel := t.callCtx(ts.cfg.CallTimeout)
		defer cancel()
		if _, err := cdp.Call(ctx, t.sess, page.Reload, page.ReloadParams{}); err != nil {
			ts.log.Warn("reload crashed tab", logTab, t.id, logErr, err)
			return
		}
		ts.mu.Lock()
		active := ts.active == t
		ts.mu.Unlock()
		if active {
			// The screencast belonged to the dead renderer's view.
			_ = ts.activate(ctx, t)
		}
	})
}

// newID returns a random ID for a dialog.
func newID() string {
	var p [8]byte
	_, _ = rand.Read(p[:])
	return hex.EncodeToString(p[:])
}
