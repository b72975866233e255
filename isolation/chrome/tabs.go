package chrome

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// tabSet is the part of a browser that owns its tabs: the page targets
// of the default browser context from their creation to their removal
// (attach, setupTab, removeTab), which one is active (activate, onActive),
// the viewport they are sized to, their state as the clinician sees it
// (handleTab, refreshHistory, State), their JavaScript dialogs
// (dialogOpening, AnswerDialog, PendingDialogs) and their renderer crashes.
// It implements isolation.Tabs.
//
// Locks: mu guards the fields below it and the fields of each tab that the
// tab's comment names. It is taken after clipboard.mu and screen.switchMu
// (activate holds switchMu), and removeTab holds it while it calls
// uploads.forgetChoosers; it is never held across a DevTools call. The
// part pointers and defaultContext are set by launch and start and only
// read afterwards.
//
// Goroutines: the chromedp listeners (tabListener, browserListener) only
// queue; tab events are handled on the browser's loop (targetInfo,
// handleTab, removeTab, dialogOpening, rendererCrashed); attach, history
// refreshes, dialog time-outs and reloads run on workers of spawn; the
// isolation.Tabs methods and onActive run on the caller's goroutine.
type tabSet struct {
	*core
	// The parts a tab's life concerns: its frames and screencast, its
	// file choosers, its print override, its frames' navigation checks.
	screen *screen
	up     *uploads
	pr     *printer
	guard  *guard
	// defaultContext is the browser context of the tabs; pages of other
	// contexts (the clipboard reader) are not tabs. Set by start.
	defaultContext cdp.BrowserContextID

	mu     sync.Mutex
	list   []*tab // open tabs in the order they appeared
	active *tab
	seq    int64 // activation counter, for "most recently active"
	// viewport is the size the tabs' pages are set to.
	viewport isolation.Viewport
	// sized is set once SetViewport applied viewport to the tabs.
	sized   bool
	closing bool // the browser is closing or died: no tab is reopened
}

// tab is one page target of the browser.
type tab struct {
	id     target.ID
	opener target.ID
	// life ends when the tab is removed or the browser ends; calls to the
	// tab derive from it, so none waits for a tab that is gone.
	life context.Context
	end  context.CancelFunc
	// gone is closed when the tab is removed.
	gone chan struct{}

	// The fields below are guarded by tabSet.mu. cancel and sess are
	// written once, before ready is set.

	// cancel detaches from the tab and closes it. It is nil for the first
	// tab, whose context is the browser's.
	cancel context.CancelFunc
	sess   *chromedp.Target

	ready   bool
	removed bool
	// mainFrame is the ID of the tab's top-level frame.
	mainFrame  cdp.FrameID
	url, title string
	loading    bool
	canBack    bool
	canForward bool
	secure     bool
	// blocked is set while the tab shows a block page.
	blocked    bool
	lastActive int64
	dialog     *pendingDialog
	// dialogOpened ends when a dialog opens in the tab (openDialog ends
	// it, and a new one takes its place); input calls waiting for the
	// renderer give up then. A context, not a channel: a call watches it
	// with context.AfterFunc and starts no goroutine.
	dialogOpened context.Context
	openDialog   context.CancelFunc
	crashedAt    time.Time
	// lastPagePrint is when the page last printed by itself, and
	// pagePrintsIgnored counts the prints it asked for too soon after.
	lastPagePrint     time.Time
	pagePrintsIgnored int
}

// pendingDialog is a JavaScript dialog waiting for an answer.
type pendingDialog struct {
	d     isolation.Dialog
	timer *time.Timer
}

// newTab returns a tab that is not attached yet.
func (ts *tabSet) newTab(id, opener target.ID) *tab {
	t := &tab{
		id:        id,
		opener:    opener,
		gone:      make(chan struct{}),
		mainFrame: cdp.FrameID(id),
	}
	t.life, t.end = context.WithCancel(ts.life)
	t.dialogOpened, t.openDialog = context.WithCancel(context.Background())
	return t
}

// callCtx returns the context of a call to t that the browser makes by
// itself: it ends with the tab and after Config.CallTimeout.
func (t *tab) callCtx(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.life, timeout)
}

// tabEvent is an event of one tab's session, queued for loop.
type tabEvent struct {
	t  *tab
	ev any
}

// tabListener returns the chromedp listener of t's session. It runs on
// chromedp's goroutine: it only queues, and records child frames.
func (ts *tabSet) tabListener(t *tab) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *page.EventFrameAttached:
			ts.guard.frameAttached(ev.FrameID, t.id)
		case *page.EventFrameDetached:
			ts.guard.frameDetached(ev.FrameID)
		case *page.EventScreencastFrame:
			ts.screen.frames.push(frameMsg{t: t, ev: ev})
		case *runtime.EventBindingCalled:
			if ev.Name == ts.pr.binding {
				ts.events.push(tabEvent{t, ev})
			}
		case *page.EventFrameNavigated,
			*page.EventNavigatedWithinDocument,
			*page.EventFileChooserOpened,
			*page.EventFrameStartedLoading,
			*page.EventFrameStoppedLoading,
			*page.EventJavascriptDialogOpening,
			*page.EventJavascriptDialogClosed,
			*security.EventVisibleSecurityStateChanged:
			ts.events.push(tabEvent{t, ev})
		}
	}
}

// browserListener is the chromedp listener of the browser session. It runs
// on chromedp's goroutine: it only queues.
func (ts *tabSet) browserListener(ev any) {
	switch ev := ev.(type) {
	case *target.EventTargetCreated:
		if ts.isTab(ev.TargetInfo) {
			ts.events.push(ev)
		}
	case *target.EventTargetInfoChanged:
		if ts.isTab(ev.TargetInfo) {
			ts.events.push(ev)
		}
	case *target.EventTargetDestroyed, *target.EventTargetCrashed,
		*cdpbrowser.EventDownloadWillBegin, *cdpbrowser.EventDownloadProgress:
		ts.events.push(ev)
	}
}

// isTab reports whether info is a tab the clinician sees: a page of the
// default browser context, not a prerendered one.
func (ts *tabSet) isTab(info *target.Info) bool {
	return info != nil && info.Type == "page" && info.Subtype == "" && info.BrowserContextID == ts.defaultContext
}

// addTab starts tracking a new page target and attaches to it. It runs on
// loop.
func (ts *tabSet) addTab(info *target.Info) {
	t := ts.newTab(info.TargetID, info.OpenerID)
	t.url, t.title = info.URL, info.Title
	ts.mu.Lock()
	ts.list = append(ts.list, t)
	ts.mu.Unlock()
	if !ts.spawn(func() { ts.attach(t) }) {
		return
	}
	ts.log.Debug("tab opened", logTab, t.id, "opener", t.opener)
}

// attach opens a session on t, sets it up and, for a popup or when no tab is
// active, activates it.
func (ts *tabSet) attach(t *tab) {
	ctx, cancel := chromedp.NewContext(ts.bctx, chromedp.WithTargetID(t.id), chromedp.WithListener(ts.tabListener(t)))
	ts.mu.Lock()
	t.cancel = cancel
	removed := t.removed
	ts.mu.Unlock()
	if removed {
		cancel()
		return
	}
	// The first Run binds the session to ctx, so it cannot have a deadline
	// of its own: a timer ends a start that hangs.
	timer := time.AfterFunc(ts.cfg.CallTimeout, cancel)
	err := chromedp.Do(ctx)
	timer.Stop()
	if err == nil {
		ts.mu.Lock()
		t.sess = chromedp.FromContext(ctx).Target
		ts.mu.Unlock()
		cctx, ccancel := t.callCtx(ts.cfg.CallTimeout)
		err = ts.setupTab(cctx, t)
		if err == nil {
			// The first page of a popup may have committed before the tab
			// was attached: its title and history are fetched, and a
			// certificate block page it waits for is shown.
			ts.refreshHistory(t)
			ts.guard.showCertPage(cctx, t.id)
		}
		ccancel()
	}
	if err != nil {
		if ts.life.Err() == nil {
			ts.log.Warn("attach tab", logTab, t.id, logErr, err)
		}
		cancel()
		ts.events.push(tabFailed{t})
		return
	}
	ts.mu.Lock()
	activate := t.opener != "" || ts.active == nil
	ts.mu.Unlock()
	if activate {
		cctx, ccancel := t.callCtx(ts.cfg.CallTimeout)
		if err := ts.activate(cctx, t); err != nil && ts.life.Err() == nil {
			ts.log.Warn("activate tab", logTab, t.id, logErr, err)
		}
		ccancel()
	}
	ts.events.push(stateDirty{})
}

// tabFailed tells loop that a tab could not be attached.
type tabFailed struct{ t *tab }

// stateDirty tells loop that the state may have changed.
type stateDirty struct{}

// setupTab sizes t's page and turns on the events the browser needs, then
// marks t ready.
func (ts *tabSet) setupTab(ctx context.Context, t *tab) error {
	if _, err := cdp.Call(ctx, t.sess, security.Enable, cdp.Empty{}); err != nil {
		return fmt.Errorf("enable security events: %w", err)
	}
	if err := setupChooser(ctx, t); err != nil {
		return err
	}
	if err := ts.pr.setup(ctx, t); err != nil {
		return err
	}
	ts.mu.Lock()
	v := ts.viewport
	ts.mu.Unlock()
	for {
		if err := setViewport(ctx, t.sess, v); err != nil {
			return err
		}
		ts.mu.Lock()
		if ts.viewport == v {
			t.ready = true
			ts.mu.Unlock()
			return nil
		}
		// SetViewport ran meanwhile and did not see this tab.
		v = ts.viewport
		ts.mu.Unlock()
	}
}

// setViewport sizes the page of session s.
func setViewport(ctx context.Context, s cdp.Session, v isolation.Viewport) error {
	_, err := cdp.Call(ctx, s, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width:             int64(v.Width),
		Height:            int64(v.Height),
		DeviceScaleFactor: v.DPR,
		Mobile:            false,
		ScreenWidth:       int64(v.Width),
		ScreenHeight:      int64(v.Height),
	})
	if err != nil {
		return fmt.Errorf("set viewport: %w", err)
	}
	return nil
}

// activate makes t the tab the clinician sees: the previous tab's
// screencast stops, t comes to the front and its screencast starts.
func (ts *tabSet) activate(ctx context.Context, t *tab) error {
	ts.screen.switchMu.Lock()
	defer ts.screen.switchMu.Unlock()
	ts.mu.Lock()
	if t.removed || !t.ready {
		ts.mu.Unlock()
		return fmt.Errorf("tab %s: %w", t.id, ErrNoTab)
	}
	old := ts.active
	ts.active = t
	ts.seq++
	t.lastActive = ts.seq
	ts.mu.Unlock()
	defer ts.events.push(stateDirty{})

	if old != nil && old != t {
		// The old tab may be gone already.
		octx, ocancel := context.WithCancel(ctx)
		stop := context.AfterFunc(old.life, ocancel)
		_, _ = cdp.Call(octx, old.sess, page.StopScreencast, cdp.Empty{})
		stop()
		ocancel()
	}
	if _, err := cdp.Call(ctx, ts.session, target.ActivateTarget, target.ActivateTargetParams{TargetID: t.id}); err != nil {
		return fmt.Errorf("activate target: %w", err)
	}
	if _, err := cdp.Call(ctx, t.sess, page.BringToFront, cdp.Empty{}); err != nil {
		return fmt.Errorf("bring to front: %w", err)
	}
	return ts.screen.startScreencast(ctx, t)
}

// SwitchTab makes the tab id the active one.
func (ts *tabSet) SwitchTab(ctx context.Context, id string) error {
	if ts.life.Err() != nil {
		return isolation.ErrClosed
	}
	t := ts.find(id)
	if t == nil {
		return fmt.Errorf("tab %q: %w", id, ErrNoTab)
	}
	ctx, cancel := ts.callCtx(ctx)
	defer cancel()
	return ts.closedErr(ts.activate(ctx, t))
}

// CloseTab closes the tab id and returns once it is gone. Closing the active
// tab activates the most recently active other one; closing the last tab
// opens a blank one first.
func (ts *tabSet) CloseTab(ctx context.Context, id string) error {
	if ts.life.Err() != nil {
		return isolation.ErrClosed
	}
	t := ts.find(id)
	if t == nil {
		return fmt.Errorf("tab %q: %w", id, ErrNoTab)
	}
	ctx, cancel := ts.callCtx(ctx)
	defer cancel()
	ts.mu.Lock()
	last := len(ts.list) == 1
	ts.mu.Unlock()
	if last {
		if err := ts.openBlankTab(ctx); err != nil {
			return ts.closedErr(err)
		}
	}
	if err := ts.closeTarget(ctx, t.id); err != nil {
		return ts.closedErr(fmt.Errorf("close tab: %w", err))
	}
	select {
	case <-t.gone:
		return nil
	case <-ctx.Done():
		return ts.closedErr(ctx.Err())
	}
}

// openBlankTab opens an about:blank tab. loop tracks it like any other.
func (ts *tabSet) openBlankTab(ctx context.Context) error {
	create := func(newWindow bool) error {
		_, err := cdp.Call(ctx, ts.session, target.CreateTarget, target.CreateTargetParams{
			URL:       "about:blank",
			NewWindow: &newWindow,
		})
		return err
	}
	err := create(false)
	var cerr *cdproto.Error
	if errors.As(err, &cerr) {
		// No window is left to hold a tab.
		err = create(true)
	}
	if err != nil {
		return fmt.Errorf("open blank tab: %w", err)
	}
	return nil
}

// removeTab forgets t after its target went away, and picks the next
// active tab. It runs on loop.
func (ts *tabSet) removeTab(t *tab) {
	ts.mu.Lock()
	if t.removed {
		ts.mu.Unlock()
		return
	}
	t.removed = true
	t.end()
	close(t.gone)
	ts.list = slices.DeleteFunc(ts.list, func(x *tab) bool { return x == t })
	ts.up.forgetChoosers(t, "")
	var closedDialog string
	if t.dialog != nil {
		t.dialog.timer.Stop()
		closedDialog = t.dialog.d.ID
		t.dialog = nil
	}
	var next *tab
	if ts.active == t {
		ts.active = nil
		for _, x := range ts.list {
			if x.ready && (next == nil || x.lastActive > next.lastActive) {
				next = x
			}
		}
	}
	empty := len(ts.list) == 0 && !ts.closing
	cancel := t.cancel
	ts.mu.Unlock()

	ts.guard.forgetTab(t.id)
	if ts.screen.tap != nil && t.sess != nil {
		ts.screen.tap.watch(t.sess.SessionID, nil)
	}
	ts.log.Debug("tab closed", logTab, t.id)
	if closedDialog != "" {
		ts.obs.DialogClosed(closedDialog)
	}
	if cancel != nil {
		// Detaching from a target that is gone can wait for a time-out.
		ts.spawn(cancel)
	}
	if next != nil {
		ts.spawn(func() {
			ctx, cancel := next.callCtx(ts.cfg.CallTimeout)
			defer cancel()
			if err := ts.activate(ctx, next); err != nil && ts.life.Err() == nil {
				ts.log.Warn("activate tab", logTab, next.id, logErr, err)
			}
		})
	}
	if empty {
		// The page closed the last tab itself. A new tab becomes active when
		// it is attached, because no tab is active.
		ts.spawn(func() {
			ctx, cancel := context.WithTimeout(ts.life, ts.cfg.CallTimeout)
			defer cancel()
			if err := ts.openBlankTab(ctx); err != nil && ts.life.Err() == nil {
				ts.log.Warn("reopen blank tab", logErr, err)
			}
		})
	}
}

// find returns the ready tab id, or nil.
func (ts *tabSet) find(id string) *tab {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.list {
		if string(t.id) == id && t.ready && !t.removed {
			return t
		}
	}
	return nil
}

// byID returns the tracked tab id, ready or not, or nil. The caller
// holds ts.mu.
func (ts *tabSet) byID(id target.ID) *tab {
	for _, t := range ts.list {
		if t.id == id {
			return t
		}
	}
	return nil
}

// tabOfFrame returns the tab of frame f, or "" when it is not known.
func (ts *tabSet) tabOfFrame(f cdp.FrameID) string {
	ts.mu.Lock()
	t := ts.byID(target.ID(f))
	ts.mu.Unlock()
	if t != nil {
		return string(t.id)
	}
	ts.guard.mu.Lock()
	defer ts.guard.mu.Unlock()
	return string(ts.guard.frameTab[f])
}

// onActive runs fn with the active tab, once the browser runs. A call whose
// handling opens a JavaScript dialog (a click on a button that calls alert,
// a navigation that asks beforeunload) returns when the dialog opens: the
// renderer answers it only after the dialog is closed, and the dialog is
// reported to the observer.
func (ts *tabSet) onActive(ctx context.Context, fn func(context.Context, *tab) error) error {
	if ts.life.Err() != nil {
		return isolation.ErrClosed
	}
	ctx, cancel := ts.callCtx(ctx)
	defer cancel()
	ts.mu.Lock()
	t := ts.active
	var opened context.Context
	if t != nil {
		opened = t.dialogOpened
	}
	ts.mu.Unlock()
	if t == nil {
		return fmt.Errorf("active tab: %w", ErrNoTab)
	}
	// A call to a tab that goes away meanwhile ends at once, and so does
	// one whose tab opens a dialog. AfterFunc registers the watch without
	// a goroutine: this runs for every mouse move.
	stop := context.AfterFunc(t.life, cancel)
	defer stop()
	ctx, cancelDialog := context.WithCancel(ctx)
	defer cancelDialog()
	stopDialog := context.AfterFunc(opened, cancelDialog)
	defer stopDialog()

	err := whileSwapping(ctx, func() error { return fn(ctx, t) })
	if opened.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil && t.life.Err() != nil && ts.life.Err() == nil {
		return fmt.Errorf("tab %s closed: %w", t.id, ErrNoTab)
	}
	return ts.closedErr(err)
}

// markClosing records that the browser is closing or died: a page that
// closes its last tab gets no new one.
func (ts *tabSet) markClosing() {
	ts.mu.Lock()
	ts.closing = true
	ts.mu.Unlock()
}

// stopDialogTimers stops the time-outs of the pending dialogs, in teardown.
func (ts *tabSet) stopDialogTimers() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.list {
		if t.dialog != nil {
			t.dialog.timer.Stop()
		}
	}
}

// State returns the current visible state.
func (ts *tabSet) State() isolation.State {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := isolation.State{Tabs: []isolation.Tab{}}
	for _, t := range ts.list {
		if !t.ready {
			continue
		}
		s.Tabs = append(s.Tabs, isolation.Tab{ID: string(t.id), Title: t.title, URL: t.url, Active: t == ts.active})
	}
	if a := ts.active; a != nil {
		s.URL = a.url
		s.Title = a.title
		s.Host = hostOf(a.url)
		s.HostUnicode, s.HostWarning = describeHost(s.Host)
		s.Secure = a.secure && !a.blocked && strings.HasPrefix(a.url, "https:")
		s.Loading = a.loading
		s.CanGoBack = a.canBack
		s.CanGoForward = a.canForward
	}
	return s
}

// hostOf returns the host of an http or https URL, and "" otherwise.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Hostname()
}

// PendingDialogs returns the dialogs still waiting for an answer.
func (ts *tabSet) PendingDialogs() []isolation.Dialog {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var ds []isolation.Dialog
	for _, t := range ts.list {
		if t.dialog != nil {
			ds = append(ds, t.dialog.d)
		}
	}
	return ds
}
