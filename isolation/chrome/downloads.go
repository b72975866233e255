package chrome

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"

	"github.com/shoji-rbi/shoji/isolation"
)

// Errors of the transfer methods.
var (
	// ErrNoDownload is wrapped when a download ID names no download in
	// progress.
	ErrNoDownload = errors.New("no such download")
	// ErrNoChooser is wrapped when a file chooser ID names no open chooser:
	// it was answered, or its page navigated or closed.
	ErrNoChooser = errors.New("no such file chooser")
	// ErrFiles is wrapped when the files given to a chooser do not fit it.
	ErrFiles = errors.New("bad files for the file chooser")
	// ErrNoDownloadDir is wrapped by Print when the browser has no
	// LaunchOptions.DownloadDir.
	ErrNoDownloadDir = errors.New("downloads are off")
)

// progressInterval is the least time between two progress reports of one
// download.
const progressInterval = 250 * time.Millisecond

// partialSuffix is the suffix of the file Chromium writes a download into
// until it is complete.
const partialSuffix = ".crdownload"

// downloads is the part of a browser that owns its downloads: it tracks
// the downloads Chromium announced, from Browser.downloadWillBegin to their
// last Browser.downloadProgress, caps their size, checks the finished file,
// and cancels them on request.
//
// Chromium saves every download of every tab into dir under the download's
// GUID (setDownloadBehavior allowAndName), first as GUID.crdownload, then
// renamed to GUID before it reports the download completed. The page's file
// name is reported and never used.
//
// Locks: mu guards active and closed, and the download records in active.
// dir, max and tabOf are set at launch and only read afterwards.
//
// Goroutines: begins and progress run on the browser's loop; end runs on
// loop and hands the removal of a canceled download's files to a worker of
// spawn; Cancel runs on the caller's goroutine; endAll runs in teardown,
// after every other goroutine of the browser ended.
type downloads struct {
	*core
	// tabOf returns the tab of a frame, or "" (browser.tabOfFrame).
	tabOf func(cdp.FrameID) string
	// dir is LaunchOptions.DownloadDir; empty denies downloads.
	dir string
	// max is LaunchOptions.MaxDownloadBytes; zero means no cap.
	max int64

	mu     sync.Mutex
	active map[string]*download
	// closed is set by teardown: no download is tracked any more.
	closed bool
}

// download is one download in progress.
type download struct {
	// d is what the last report said.
	d            isolation.Download
	lastProgress time.Time
	// cancelReason is set once the browser asked Chromium to cancel it.
	cancelReason string
	// ended is closed when its last report was made and its files removed.
	ended chan struct{}
}

// capReason is the Reason of a download canceled for its size.
func (dl *downloads) capReason() string {
	return fmt.Sprintf("larger than the %d-byte download limit", dl.max)
}

// over reports whether n bytes exceed the cap.
func (dl *downloads) over(n int64) bool { return dl.max > 0 && n > dl.max }

// setBehavior turns downloads on into LaunchOptions.DownloadDir, or
// denies them when there is none. It is browser-wide: every tab of the
// default browser context, popups included.
func (dl *downloads) setBehavior(ctx context.Context) error {
	p := cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny}
	if dl.dir != "" {
		p = cdpbrowser.SetDownloadBehaviorParams{
			Behavior:      cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName,
			DownloadPath:  dl.dir,
			EventsEnabled: new(true),
		}
	}
	if _, err := cdp.Call(ctx, dl.session, cdpbrowser.SetDownloadBehavior, p); err != nil {
		return fmt.Errorf("set download behavior %s: %w", p.Behavior, err)
	}
	return nil
}

// begins starts tracking a download and reports it. It runs on
// loop.
func (dl *downloads) begins(ev *cdpbrowser.EventDownloadWillBegin) {
	if dl.dir == "" || !validGUID(ev.GUID) {
		dl.log.Warn("download refused", "guid", ev.GUID)
		return
	}
	d := isolation.Download{
		ID:    ev.GUID,
		TabID: dl.tabOf(ev.FrameID),
		State: isolation.DownloadStarted,
		URL:   ev.URL,
		Name:  ev.SuggestedFilename,
	}
	dl.mu.Lock()
	if dl.closed {
		dl.mu.Unlock()
		return
	}
	dl.active[ev.GUID] = &download{d: d, ended: make(chan struct{})}
	dl.mu.Unlock()
	dl.log.Info("download started", "download", d.ID, logTab, d.TabID)
	dl.obs.Download(d)
}

// progress applies one progress event: it reports progress, asks
// Chromium to cancel a download past the cap, and ends a download that
// completed or was canceled. It runs on loop.
func (dl *downloads) progress(ev *cdpbrowser.EventDownloadProgress) {
	dl.mu.Lock()
	x := dl.active[ev.GUID]
	if x == nil {
		dl.mu.Unlock()
		return
	}
	prev := x.d
	x.d.Received, x.d.Total = int64(ev.ReceivedBytes), int64(ev.TotalBytes)
	switch ev.State {
	case cdpbrowser.DownloadProgressStateCompleted, cdpbrowser.DownloadProgressStateCanceled:
		dl.mu.Unlock()
		dl.end(x, ev.State)
		return
	}
	if x.cancelReason == "" && (dl.over(x.d.Total) || dl.over(x.d.Received)) {
		x.cancelReason = dl.capReason()
		dl.mu.Unlock()
		dl.log.Info("download over the limit", "download", x.d.ID, "received", x.d.Received, "total", x.d.Total)
		dl.spawn(func() { dl.cancelInChromium(x.d.ID) })
		return
	}
	report := x.cancelReason == "" &&
		(x.d.Received != prev.Received || x.d.Total != prev.Total) &&
		time.Since(x.lastProgress) >= progressInterval
	var d isolation.Download
	if report {
		x.lastProgress = time.Now()
		x.d.State = isolation.DownloadProgress
		d = x.d
	}
	dl.mu.Unlock()
	if report {
		dl.obs.Download(d)
	}
}

// end makes the last report of download x, whose Chromium state is
// completed or canceled: done with a file that was checked, or canceled or
// failed once its files are gone. It runs on loop; the report of a download
// that did not end done comes from a worker.
func (dl *downloads) end(x *download, state cdpbrowser.DownloadProgressState) {
	dl.mu.Lock()
	delete(dl.active, x.d.ID)
	d, reason := x.d, x.cancelReason
	dl.mu.Unlock()

	d.Reason = ""
	path := filepath.Join(dl.dir, d.ID)
	switch {
	case state == cdpbrowser.DownloadProgressStateCanceled && reason != "":
		d.State, d.Reason = isolation.DownloadCanceled, reason
	case state == cdpbrowser.DownloadProgressStateCanceled:
		// Chromium reports an interrupted download (a network error, a
		// server that stopped) as canceled. Canceling it makes that final:
		// Chromium would resume some interrupted downloads by itself.
		d.State, d.Reason = isolation.DownloadFailed, "interrupted"
		dl.spawn(func() { dl.cancelInChromium(d.ID) })
	case reason != "":
		// Canceled too late: it completed meanwhile.
		d.State, d.Reason = isolation.DownloadCanceled, reason
	default:
		d.State, d.Reason = dl.check(path, &d)
	}
	if d.State == isolation.DownloadDone {
		d.Path = path
		dl.reportEnd(x, d)
		return
	}
	// Chromium deletes the partial file of a canceled download on its own
	// file sequence, after it reported the cancel: the file may still be
	// there, or not there yet. The report waits until it is gone.
	if !dl.spawn(func() {
		dl.removeSettled(d.ID)
		dl.reportEnd(x, d)
	}) {
		dl.removeFiles(d.ID)
		dl.reportEnd(x, d)
	}
}

// reportEnd makes the last report of download x.
func (dl *downloads) reportEnd(x *download, d isolation.Download) {
	dl.log.Info("download ended", "download", d.ID, "state", d.State, "reason", d.Reason, "bytes", d.Received)
	dl.obs.Download(d)
	close(x.ended)
}

// Bounds of removeSettled.
const (
	settleQuiet = 200 * time.Millisecond
	settleMax   = 5 * time.Second
	settleTick  = 20 * time.Millisecond
)

// removeSettled removes the files of download id until none has been seen
// for settleQuiet, or for at most settleMax. Files left after that are
// removed when the browser ends.
func (dl *downloads) removeSettled(id string) {
	start := time.Now()
	quietSince := start
	for {
		if dl.removeFiles(id) {
			quietSince = time.Now()
		}
		now := time.Now()
		if now.Sub(quietSince) >= settleQuiet || now.Sub(start) >= settleMax {
			return
		}
		select {
		case <-dl.life.Done():
			return
		case <-time.After(settleTick):
		}
	}
}

// check checks the complete file of a download at path: it must be
// a regular file of the size Chromium reported, within the cap. It sets
// d.Received to the file's size and returns the download's last state.
func (dl *downloads) check(path string, d *isolation.Download) (isolation.DownloadState, string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return isolation.DownloadFailed, "the downloaded file is missing"
	}
	if !fi.Mode().IsRegular() {
		return isolation.DownloadFailed, "the downloaded file is not a regular file"
	}
	if fi.Size() != d.Received {
		return isolation.DownloadFailed, fmt.Sprintf("the downloaded file has %d bytes, the browser reported %d", fi.Size(), d.Received)
	}
	if dl.over(fi.Size()) {
		return isolation.DownloadCanceled, dl.capReason()
	}
	d.Received = fi.Size()
	if d.Total == 0 {
		d.Total = fi.Size()
	}
	return isolation.DownloadDone, ""
}

// removeFiles removes what Chromium wrote for download id, and
// reports whether there was anything.
func (dl *downloads) removeFiles(id string) (found bool) {
	for _, name := range []string{id, id + partialSuffix} {
		err := os.Remove(filepath.Join(dl.dir, name))
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, os.ErrNotExist):
			found = true
			dl.log.Warn("remove download file", "download", id, logErr, err)
		}
	}
	return found
}

// cancelInChromium asks Chromium to cancel download id. Its canceled
// progress event ends it.
func (dl *downloads) cancelInChromium(id string) {
	ctx, cancel := context.WithTimeout(dl.life, dl.cfg.CallTimeout)
	defer cancel()
	if _, err := cdp.Call(ctx, dl.session, cdpbrowser.CancelDownload, cdpbrowser.CancelDownloadParams{GUID: id}); err != nil && dl.life.Err() == nil {
		dl.log.Warn("cancel download", "download", id, logErr, err)
	}
}

// Cancel stops download id and removes its file. It returns once
// the download's canceled report was made, or ctx ends. A download that
// completes meanwhile is removed and reported canceled all the same.
func (dl *downloads) Cancel(ctx context.Context, id string) error {
	if dl.life.Err() != nil {
		return isolation.ErrClosed
	}
	dl.mu.Lock()
	x := dl.active[id]
	if x != nil && x.cancelReason == "" {
		x.cancelReason = "canceled on request"
	}
	dl.mu.Unlock()
	if x == nil {
		return fmt.Errorf("download %q: %w", id, ErrNoDownload)
	}
	ctx, cancel := dl.callCtx(ctx)
	defer cancel()
	if _, err := cdp.Call(ctx, dl.session, cdpbrowser.CancelDownload, cdpbrowser.CancelDownloadParams{GUID: id}); err != nil {
		return dl.closedErr(fmt.Errorf("cancel download %q: %w", id, err))
	}
	select {
	case <-x.ended:
		return nil
	case <-ctx.Done():
		return dl.closedErr(fmt.Errorf("cancel download %q: %w", id, ctx.Err()))
	}
}

// endAll runs in teardown, after the browser's process and
// goroutines are gone: every download still in progress is reported
// failed, and the partial files of downloads and prints are removed.
func (dl *downloads) endAll() {
	dl.mu.Lock()
	dl.closed = true
	left := dl.active
	dl.active = nil
	dl.mu.Unlock()
	if dl.dir == "" {
		return
	}
	for _, x := range left {
		dl.removeFiles(x.d.ID)
		d := x.d
		d.State, d.Reason = isolation.DownloadFailed, "the browser closed"
		dl.obs.Download(d)
		close(x.ended)
	}
	// A download Chromium started but never announced leaves a partial file
	// too.
	entries, err := os.ReadDir(dl.dir)
	if err != nil {
		dl.log.Warn("list download dir", logErr, err)
		return
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, partialSuffix) && validGUID(strings.TrimSuffix(n, partialSuffix)) ||
			strings.HasPrefix(n, printTempPrefix) {
			_ = os.Remove(filepath.Join(dl.dir, n))
		}
	}
}

// newGUID returns a random version 4 UUID, the form of Chromium's download
// GUIDs.
func newGUID() string {
	var p [16]byte
	_, _ = rand.Read(p[:])
	p[6] = p[6]&0x0f | 0x40
	p[8] = p[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", p[0:4], p[4:6], p[6:8], p[8:10], p[10:16])
}

// validGUID reports whether s has the form of a GUID, so that it names a
// file in the download directory and nothing else.
func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}
