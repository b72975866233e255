package chrome

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/chromedp/cdproto/cdp"
	cdpio "github.com/chromedp/cdproto/io"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"

	"github.com/shoji-rbi/shoji/isolation"
)

// pagePrintInterval is how often one tab may print by itself
// (window.print()); more prints are ignored, so a hostile page cannot fill
// the quarantine.
const pagePrintInterval = 5 * time.Second

// printTimeout bounds one print that the page asked for.
const printTimeout = time.Minute

// printTempPrefix starts the name of a PDF being written into the download
// directory; it is renamed to its GUID once complete.
const printTempPrefix = ".print-"

// A4 paper in inches.
const (
	a4Width  = 8.27
	a4Height = 11.69
)

// maxPrintName bounds the length of a print's Name, in runes.
const maxPrintName = 120

// printer is the part of a browser that prints tabs into PDFs in the
// download directory: on request (Print) and when a page calls
// window.print(), which it overrides in every tab (setup).
//
// Locks: it has none of its own. A tab's print fields (lastPagePrint,
// pagePrintsIgnored) and the fields it reads are guarded by tabs.mu; the
// download directory and cap are dl's, set at launch. binding is set at
// launch and only read afterwards.
//
// Goroutines: pagePrint runs on the browser's loop and prints on a worker
// of spawn; Print runs on the caller's goroutine and prints on a worker, so
// that teardown waits for its last report.
type printer struct {
	*core
	tabs *tabSet
	dl   *downloads
	// binding is the name of the binding of window.print().
	binding string
}

// newPrintBinding returns the name of the Runtime binding through which a
// page's window.print() asks for a print. It is random so that it does not
// collide with a page's own globals; a page that finds it gains nothing it
// does not have with window.print().
func newPrintBinding() string {
	var p [8]byte
	_, _ = rand.Read(p[:])
	return "__shojiPrint_" + hex.EncodeToString(p[:])
}

// printOverride is the script every document of every tab runs first: its
// window.print() asks the browser for a PDF through the binding instead of
// opening a print dialog, which a headless browser cannot show.
func printOverride(binding string) string {
	name, _ := json.Marshal(binding)
	return `(() => {
  const name = ` + string(name) + `;
  const print = function print() {
    const send = globalThis[name];
    if (typeof send === 'function') send('');
  };
  try {
    Object.defineProperty(window, 'print', {value: print, writable: true, configurable: true, enumerable: true});
  } catch (e) {}
})()`
}

// setup installs the window.print() override in tab t: in the
// documents to come and in the current one, which a popup may have loaded
// before it was attached.
func (pr *printer) setup(ctx context.Context, t *tab) error {
	if _, err := cdp.Call(ctx, t.sess, runtime.AddBinding, runtime.AddBindingParams{Name: pr.binding}); err != nil {
		return fmt.Errorf("add print binding: %w", err)
	}
	_, err := cdp.Call(ctx, t.sess, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source:         printOverride(pr.binding),
		RunImmediately: new(true),
	})
	if err != nil {
		return fmt.Errorf("install print override: %w", err)
	}
	return nil
}

// pagePrint handles a page's window.print() in tab t: at most one print per
// pagePrintInterval per tab. It runs on loop.
func (pr *printer) pagePrint(t *tab) {
	if pr.dl.dir == "" {
		pr.log.Info("page print ignored: downloads are off", logTab, t.id)
		return
	}
	pr.tabs.mu.Lock()
	now := time.Now()
	allowed := t.lastPagePrint.IsZero() || now.Sub(t.lastPagePrint) >= pagePrintInterval
	if allowed {
		t.lastPagePrint = now
	} else {
		t.pagePrintsIgnored++
	}
	ignored := t.pagePrintsIgnored
	pr.tabs.mu.Unlock()
	if !allowed {
		pr.log.Info("page print ignored: too soon after the last one", logTab, t.id, "ignored", ignored)
		return
	}
	pr.spawn(func() {
		ctx, cancel := t.callCtx(printTimeout)
		defer cancel()
		if err := pr.printTab(ctx, t); err != nil && pr.life.Err() == nil {
			pr.log.Warn("page print", logTab, t.id, logErr, err)
		}
	})
}

// Print renders the active tab as an A4 PDF into the download directory,
// reported through Observer.Download with Print set: started, then done,
// canceled (over MaxDownloadBytes) or failed. It returns once the last
// report was made.
func (pr *printer) Print(ctx context.Context) error {
	if pr.life.Err() != nil {
		return isolation.ErrClosed
	}
	if pr.dl.dir == "" {
		return fmt.Errorf("print: %w", ErrNoDownloadDir)
	}
	pr.tabs.mu.Lock()
	t := pr.tabs.active
	pr.tabs.mu.Unlock()
	if t == nil {
		return fmt.Errorf("active tab: %w", ErrNoTab)
	}
	ctx, cancel := pr.callCtx(ctx)
	defer cancel()
	stop := context.AfterFunc(t.life, cancel)
	defer stop()
	// A worker of the browser, so that teardown waits for its last report.
	errc := make(chan error, 1)
	if !pr.spawn(func() { errc <- pr.printTab(ctx, t) }) {
		return isolation.ErrClosed
	}
	return pr.closedErr(<-errc)
}

// printTab prints tab t into the download directory and reports it.
func (pr *printer) printTab(ctx context.Context, t *tab) error {
	pr.tabs.mu.Lock()
	open := t.dialog != nil
	pageURL, title := t.url, t.title
	pr.tabs.mu.Unlock()
	if open {
		return errors.New("print: a dialog is open in the tab")
	}
	var res page.PrintToPDFResult
	err := whileSwapping(ctx, func() error {
		var err error
		res, err = cdp.Call(ctx, t.sess, page.PrintToPDF, page.PrintToPDFParams{
			PrintBackground: new(true),
			PaperWidth:      a4Width,
			PaperHeight:     a4Height,
			TransferMode:    page.PrintToPDFTransferModeReturnAsStream,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("print to pdf: %w", err)
	}
	d := isolation.Download{
		ID:    newGUID(),
		TabID: string(t.id),
		State: isolation.DownloadStarted,
		URL:   pageURL,
		Name:  printName(title, pageURL),
		Print: true,
	}
	pr.obs.Download(d)
	n, err := pr.savePDF(ctx, t, res.Stream, d.ID)
	d.Received, d.Total = n, n
	switch {
	case errors.Is(err, errTooLarge):
		d.State, d.Reason = isolation.DownloadCanceled, pr.dl.capReason()
	case err != nil:
		d.State, d.Reason = isolation.DownloadFailed, "the PDF could not be saved"
	default:
		d.State, d.Path = isolation.DownloadDone, filepath.Join(pr.dl.dir, d.ID)
	}
	pr.log.Info("print ended", "download", d.ID, logTab, t.id, "state", d.State, "bytes", n, logErr, err)
	pr.obs.Download(d)
	if err != nil && !errors.Is(err, errTooLarge) {
		return fmt.Errorf("save pdf: %w", err)
	}
	return nil
}

// errTooLarge says a PDF grew past MaxDownloadBytes.
var errTooLarge = errors.New("over the download limit")

// savePDF reads the PDF stream h of tab t into the download directory as
// id, mode 0600: into a temporary file that is renamed once complete, so
// that the file named id is always whole. It returns the PDF's size.
func (pr *printer) savePDF(ctx context.Context, t *tab, h cdpio.StreamHandle, id string) (n int64, err error) {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pr.cfg.CallTimeout)
		defer cancel()
		stop := context.AfterFunc(pr.life, cancel)
		defer stop()
		_, _ = cdp.Call(cctx, t.sess, cdpio.Close, cdpio.CloseParams{Handle: h})
	}()
	f, err := os.CreateTemp(pr.dl.dir, printTempPrefix+"*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			_ = os.Remove(tmp)
		}
	}()
	for {
		res, err := cdp.Call(ctx, t.sess, cdpio.Read, cdpio.ReadParams{Handle: h, Size: 1 << 20})
		if err != nil {
			return n, fmt.Errorf("read pdf stream: %w", err)
		}
		n += int64(len(res.Data))
		if pr.dl.over(n) {
			return n, errTooLarge
		}
		if _, err := f.Write(res.Data); err != nil {
			return n, err
		}
		if res.EOF {
			break
		}
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp, filepath.Join(pr.dl.dir, id))
}

// printName is the Name of a print: the page's title, or its host, with
// ".pdf". It is metadata for the clinician; path separators and control
// characters are replaced all the same.
func printName(title, pageURL string) string {
	name := strings.TrimSpace(title)
	if name == "" {
		name = hostOf(pageURL)
	}
	if name == "" {
		name = "page"
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, name)
	if rs := []rune(name); len(rs) > maxPrintName {
		name = string(rs[:maxPrintName])
	}
	return name + ".pdf"
}
