package chrome

import (
	"reflect"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/target"

	"github.com/shoji-rbi/shoji/isolation"
)

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
		b.tabs.handleTab(ev.t, ev.ev)
	case historyMsg:
		b.tabs.mu.Lock()
		ev.t.canBack, ev.t.canForward = ev.canBack, ev.canForward
		if ev.title != "" {
			ev.t.title = ev.title
		}
		b.tabs.mu.Unlock()
	case tabFailed:
		b.tabs.removeTab(ev.t)
	case stateDirty:
	case blockedMsg:
		b.obs.Blocked(ev.tab, ev.url, ev.d)
	case accessMsg:
		b.obs.AccessRequested(ev.tab, ev.host, ev.url)
	case *target.EventTargetCreated:
		b.tabs.targetInfo(ev.TargetInfo)
	case *target.EventTargetInfoChanged:
		b.tabs.targetInfo(ev.TargetInfo)
	case *target.EventTargetDestroyed:
		b.tabs.mu.Lock()
		t := b.tabs.byID(ev.TargetID)
		b.tabs.mu.Unlock()
		if t != nil {
			b.tabs.removeTab(t)
		}
	case *target.EventTargetCrashed:
		b.tabs.rendererCrashed(ev)
	case *cdpbrowser.EventDownloadWillBegin:
		b.dl.begins(ev)
	case *cdpbrowser.EventDownloadProgress:
		b.dl.progress(ev)
	case chooserResolved:
		b.up.chooserReady(ev)
	}
}
