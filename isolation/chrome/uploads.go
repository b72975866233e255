package chrome

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"

	"github.com/shoji-rbi/shoji/isolation"
)

// maxChoosersPerTab bounds the open file choosers of one tab; a page that
// opens more loses its oldest.
const maxChoosersPerTab = 8

// chooserObjectGroup is the DevTools object group of the inputs of open
// file choosers.
const chooserObjectGroup = "shoji-file-choosers"

// uploads is the part of a browser that gives files on the broker's disk
// to pages: it owns the file choosers the pages opened, until they are
// answered (SetFiles) or their document goes, and drops files onto the
// active tab (DropFiles).
//
// Locks: mu guards open and seq. A tab's fields are read under tabs.mu,
// never while mu is held; removeTab calls forgetChoosers with tabs.mu
// held (lock order tabs.mu, then mu). tabs and input are set at launch
// and only read afterwards.
//
// Goroutines: chooserOpened, chooserReady and forgetChoosers run on the
// browser's loop; a chooser is resolved and released on workers of spawn;
// SetFiles and DropFiles run on the caller's goroutine, DropFiles in order
// with the other input.
type uploads struct {
	*core
	tabs *tabSet
	// input runs fn with the active tab, in order with the other input
	// (the input part's run).
	input func(ctx context.Context, fn func(context.Context, *tab) error) error

	mu sync.Mutex
	// open are the open file choosers by ID.
	open map[string]*chooser
	seq  int64
}

// chooser is a file chooser a page opened, waiting for SetFiles. Its input
// is held as a JavaScript object of the document that opened it: once that
// document is gone, so is the object, and no file can reach another
// document, even one whose nodes reuse the input's backend node ID.
type chooser struct {
	c     isolation.FileChooser
	t     *tab
	frame cdp.FrameID
	node  cdp.BackendNodeID
	// object is the input, set once the chooser is resolved and reported.
	object runtime.RemoteObjectID
	seq    int64
}

// chooserResolved carries a resolved chooser to loop.
type chooserResolved struct {
	id     string
	url    string
	accept string
	object runtime.RemoteObjectID
	err    error
}

// setupChooser makes tab t report file choosers instead of opening them.
func setupChooser(ctx context.Context, t *tab) error {
	_, err := cdp.Call(ctx, t.sess, page.SetInterceptFileChooserDialog, page.SetInterceptFileChooserDialogParams{Enabled: true})
	if err != nil {
		return fmt.Errorf("intercept file choosers: %w", err)
	}
	return nil
}

// chooserOpened records a file chooser of tab t and resolves it on a
// worker; it is reported once resolved. It runs on loop.
func (up *uploads) chooserOpened(t *tab, ev *page.EventFileChooserOpened) {
	if ev.BackendNodeID == 0 {
		// A picker that no <input type=file> opened (showOpenFilePicker):
		// there is no input to give files to.
		up.log.Info("file picker without an input ignored", logTab, t.id)
		return
	}
	x := &chooser{
		c: isolation.FileChooser{
			ID:       newID(),
			TabID:    string(t.id),
			Multiple: ev.Mode == page.FileChooserOpenedModeSelectMultiple,
		},
		t:     t,
		frame: ev.FrameID,
		node:  ev.BackendNodeID,
	}
	up.tabs.mu.Lock()
	removed := t.removed
	up.tabs.mu.Unlock()
	if removed {
		return
	}
	up.mu.Lock()
	up.seq++
	x.seq = up.seq
	var oldest *chooser
	n := 0
	for _, c := range up.open {
		if c.t == t {
			n++
			if oldest == nil || c.seq < oldest.seq {
				oldest = c
			}
		}
	}
	if n < maxChoosersPerTab {
		oldest = nil
	} else {
		delete(up.open, oldest.c.ID)
	}
	up.open[x.c.ID] = x
	up.mu.Unlock()
	if oldest != nil && oldest.object != "" {
		up.releaseChooser(oldest)
	}
	up.spawn(func() {
		ctx, cancel := t.callCtx(up.cfg.CallTimeout)
		defer cancel()
		r := up.resolveChooser(ctx, x)
		r.id = x.c.ID
		up.events.push(r)
	})
}

// resolveChooser finds the URL of the document that opened chooser x, the
// accept attribute of its input, and holds the input as an object of that
// document.
func (up *uploads) resolveChooser(ctx context.Context, x *chooser) chooserResolved {
	node, err := cdp.Call(ctx, x.t.sess, dom.DescribeNode, dom.DescribeNodeParams{BackendNodeID: x.node})
	if err != nil {
		return chooserResolved{err: fmt.Errorf("describe input: %w", err)}
	}
	var r chooserResolved
	if n := node.Node; n != nil {
		if !strings.EqualFold(n.LocalName, "input") {
			return chooserResolved{err: fmt.Errorf("chooser opened by a <%s>, not an input", n.LocalName)}
		}
		for i := 0; i+1 < len(n.Attributes); i += 2 {
			if strings.EqualFold(n.Attributes[i], "accept") {
				r.accept = n.Attributes[i+1]
			}
		}
	}
	tree, err := cdp.Call(ctx, x.t.sess, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return chooserResolved{err: fmt.Errorf("frame tree: %w", err)}
	}
	f := findFrame(tree.FrameTree, x.frame)
	if f == nil {
		return chooserResolved{err: fmt.Errorf("frame %s of the chooser is gone", x.frame)}
	}
	r.url = f.URL
	obj, err := cdp.Call(ctx, x.t.sess, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: x.node, ObjectGroup: chooserObjectGroup})
	if err != nil {
		return chooserResolved{err: fmt.Errorf("resolve input: %w", err)}
	}
	if obj.Object == nil || obj.Object.ObjectID == "" {
		return chooserResolved{err: errors.New("resolve input: no object")}
	}
	r.object = obj.Object.ObjectID
	return r
}

// findFrame returns the frame id in tree, or nil.
func findFrame(tree *page.FrameTree, id cdp.FrameID) *cdp.Frame {
	if tree == nil || tree.Frame == nil {
		return nil
	}
	if tree.Frame.ID == id {
		return tree.Frame
	}
	for _, c := range tree.ChildFrames {
		if f := findFrame(c, id); f != nil {
			return f
		}
	}
	return nil
}

// chooserReady reports a resolved chooser, unless it went away meanwhile.
// It runs on loop.
func (up *uploads) chooserReady(r chooserResolved) {
	up.mu.Lock()
	x := up.open[r.id]
	if x != nil && r.err != nil {
		delete(up.open, r.id)
	}
	if x != nil && r.err == nil {
		x.c.URL, x.c.Accept, x.object = r.url, r.accept, r.object
	}
	up.mu.Unlock()
	switch {
	case x == nil:
	case r.err != nil:
		up.log.Warn("file chooser dropped", logTab, x.t.id, logErr, r.err)
	default:
		up.log.Info("file chooser opened", logTab, x.t.id, "chooser", x.c.ID, "multiple", x.c.Multiple)
		up.obs.FileChooser(x.c)
	}
}

// forgetChoosers forgets the choosers of tab t, or only those of its frame
// f when f is not empty.
func (up *uploads) forgetChoosers(t *tab, f cdp.FrameID) {
	up.mu.Lock()
	defer up.mu.Unlock()
	for id, c := range up.open {
		if c.t == t && (f == "" || c.frame == f) {
			delete(up.open, id)
		}
	}
}

// SetFiles answers the file chooser id with files on the broker's disk:
// the page's input gets them, with its input and change events. No paths
// cancels the chooser. A chooser is answered once; it is gone when its
// page navigated or closed, and SetFiles then fails with ErrNoChooser.
func (up *uploads) SetFiles(ctx context.Context, id string, paths []string) error {
	if up.life.Err() != nil {
		return isolation.ErrClosed
	}
	up.mu.Lock()
	x := up.open[id]
	if x == nil || x.object == "" {
		up.mu.Unlock()
		return fmt.Errorf("file chooser %q: %w", id, ErrNoChooser)
	}
	if len(paths) == 0 {
		delete(up.open, id)
		up.mu.Unlock()
		up.log.Info("file chooser canceled", logTab, x.t.id, "chooser", id)
		up.releaseChooser(x)
		return nil
	}
	up.mu.Unlock()
	if !x.c.Multiple && len(paths) > 1 {
		return fmt.Errorf("file chooser %q takes one file, got %d: %w", id, len(paths), ErrFiles)
	}
	for _, p := range paths {
		if err := checkUploadFile(p); err != nil {
			return fmt.Errorf("file chooser %q: %w", id, err)
		}
	}
	// Taken before the call, so that two answers cannot both go through.
	up.mu.Lock()
	if up.open[id] != x {
		up.mu.Unlock()
		return fmt.Errorf("file chooser %q: %w", id, ErrNoChooser)
	}
	delete(up.open, id)
	up.mu.Unlock()

	ctx, cancel := up.callCtx(ctx)
	defer cancel()
	stop := context.AfterFunc(x.t.life, cancel)
	defer stop()
	_, err := cdp.Call(ctx, x.t.sess, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: paths, ObjectID: x.object})
	var cerr *cdproto.Error
	switch {
	case errors.As(err, &cerr):
		// The document that opened it is gone ("Could not find object with
		// given id"), or the page made the input something else.
		return fmt.Errorf("file chooser %q: %w: %w", id, ErrNoChooser, err)
	case err != nil && x.t.life.Err() != nil && up.life.Err() == nil:
		return fmt.Errorf("file chooser %q: tab closed: %w", id, ErrNoChooser)
	case err != nil:
		return up.closedErr(fmt.Errorf("set files: %w", err))
	}
	up.log.Info("file chooser answered", logTab, x.t.id, "chooser", id, "files", len(paths))
	up.releaseChooser(x)
	return nil
}

// releaseChooser lets the page's input go.
func (up *uploads) releaseChooser(x *chooser) {
	up.spawn(func() {
		ctx, cancel := x.t.callCtx(up.cfg.CallTimeout)
		defer cancel()
		_, _ = cdp.Call(ctx, x.t.sess, runtime.ReleaseObject, runtime.ReleaseObjectParams{ObjectID: x.object})
	})
}

// checkUploadFile refuses a path that is not an absolute path of a regular
// file.
func checkUploadFile(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%w: %q is not an absolute path", ErrFiles, p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFiles, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %q is not a regular file", ErrFiles, p)
	}
	return nil
}

// ErrMoved is returned by DropFiles when the active tab no longer shows the
// page the drop was meant for.
var ErrMoved = errors.New("the page changed")

// DropFiles drops files onto the active tab at x, y, as a drag of files
// from the desktop does: dragenter, dragover and drop, with the files in the
// drop's dataTransfer.
func (up *uploads) DropFiles(ctx context.Context, pageURL string, x, y float64, paths []string) error {
	if len(paths) == 0 {
		return fmt.Errorf("%w: no files to drop", ErrFiles)
	}
	for _, p := range paths {
		if err := checkUploadFile(p); err != nil {
			return fmt.Errorf("drop: %w", err)
		}
	}
	return up.input(ctx, func(ctx context.Context, t *tab) error {
		up.tabs.mu.Lock()
		cur := t.url
		up.tabs.mu.Unlock()
		if cur != pageURL {
			return fmt.Errorf("drop on %s: %w: the tab shows %s", pageURL, ErrMoved, cur)
		}
		data := &input.DragData{Items: []*input.DragDataItem{}, Files: paths, DragOperationsMask: 1}
		for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
			if _, err := cdp.Call(ctx, t.sess, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: x, Y: y, Data: data}); err != nil {
				return fmt.Errorf("drop: %s: %w", typ, err)
			}
		}
		up.log.Info("files dropped", logTab, t.id, "files", len(paths))
		return nil
	})
}
