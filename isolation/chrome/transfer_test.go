package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// transferRec records the download and file chooser reports.
type transferRec struct {
	mu        sync.Mutex
	downloads []isolation.Download
	choosers  []isolation.FileChooser
}

// observe makes o report to r.
func (r *transferRec) observe(o *isolation.LaunchOptions) {
	o.Observer.Download = func(d isolation.Download) {
		r.mu.Lock()
		r.downloads = append(r.downloads, d)
		r.mu.Unlock()
	}
	o.Observer.FileChooser = func(c isolation.FileChooser) {
		r.mu.Lock()
		r.choosers = append(r.choosers, c)
		r.mu.Unlock()
	}
}

// reports returns the download reports so far, of id only when id is set.
func (r *transferRec) reports(id string) []isolation.Download {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []isolation.Download
	for _, d := range r.downloads {
		if id == "" || d.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// waitDownload waits for a download report after the first n that
// satisfies ok, and returns it.
func (r *transferRec) waitDownload(t *testing.T, what string, n int, ok func(isolation.Download) bool) isolation.Download {
	t.Helper()
	var got isolation.Download
	defer func() {
		if t.Failed() {
			t.Logf("download reports: %+v", r.reports(""))
		}
	}()
	eventually(t, what, func() bool {
		for _, d := range r.reports("")[n:] {
			if ok(d) {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

// waitEnd waits for the last report of download id.
func (r *transferRec) waitEnd(t *testing.T, id string) isolation.Download {
	t.Helper()
	return r.waitDownload(t, "the end of download "+id, 0, func(d isolation.Download) bool {
		return d.ID == id && d.State != isolation.DownloadStarted && d.State != isolation.DownloadProgress
	})
}

// waitChooser waits for a file chooser report after the first n.
func (r *transferRec) waitChooser(t *testing.T, n int) isolation.FileChooser {
	t.Helper()
	var c isolation.FileChooser
	eventually(t, "a file chooser", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.choosers) <= n {
			return false
		}
		c = r.choosers[n]
		return true
	})
	return c
}

// chooserCount returns how many choosers were reported.
func (r *transferRec) chooserCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.choosers)
}

// checkSequence fails unless the reports of one download are started,
// progress..., and exactly one last report, which is returned.
func checkSequence(t *testing.T, ds []isolation.Download) isolation.Download {
	t.Helper()
	if len(ds) < 2 || ds[0].State != isolation.DownloadStarted {
		t.Fatalf("reports = %+v, want started first and an end", ds)
	}
	for _, d := range ds[1 : len(ds)-1] {
		if d.State != isolation.DownloadProgress {
			t.Fatalf("reports = %+v, want only progress between start and end", ds)
		}
	}
	return ds[len(ds)-1]
}

// payload is the content of download n bytes long.
func payload(n int) []byte {
	return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
}

// transferSite serves the pages and files of the transfer tests. Handlers
// that hold a response end when quit is closed.
type transferSite struct {
	quit chan struct{}
	// release lets /gated send its second half.
	release chan struct{}

	mu     sync.Mutex
	served map[string]int // finished responses by path
}

func newTransferSite() *transferSite {
	return &transferSite{quit: make(chan struct{}), release: make(chan struct{}), served: map[string]int{}}
}

// servedCount returns how many responses for path were finished.
func (s *transferSite) servedCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[path]
}

// wait waits for release (if set), the client to go, or the test to end.
func (s *transferSite) wait(r *http.Request, release chan struct{}) bool {
	select {
	case <-release:
		return true
	case <-r.Context().Done():
	case <-s.quit:
	case <-time.After(60 * time.Second):
	}
	return false
}

const (
	gatedSize = 32 << 10
	fileSize  = 20000
	testCap   = 64 << 10
)

// transferPages are the HTML pages of the transfer tests.
var transferPages = map[string]string{
	"/dl": `<!doctype html><title>downloads</title><body style="margin:0">
<a href="/gated" style="position:absolute;left:0;top:0;width:200px;height:40px;display:block">gated</a>
<a href="/file?n=popup" target="_blank" style="position:absolute;left:0;top:50px;width:200px;height:40px;display:block">popup</a>
<a href="/evil" style="position:absolute;left:0;top:100px;width:200px;height:40px;display:block">evil</a>
<a href="/big" style="position:absolute;left:0;top:150px;width:200px;height:40px;display:block">big</a>
<a href="/huge" style="position:absolute;left:0;top:200px;width:200px;height:40px;display:block">huge</a>
<a href="/hold" style="position:absolute;left:0;top:250px;width:200px;height:40px;display:block">hold</a>
<a href="/file?n=plain" style="position:absolute;left:0;top:300px;width:200px;height:40px;display:block">file</a>
<a href="/broken" style="position:absolute;left:0;top:350px;width:200px;height:40px;display:block">broken</a>`,

	"/dropzone": `<!doctype html><title>drop</title><body style="margin:0">
<div id="zone" style="position:absolute;left:0;top:0;width:400px;height:300px;background:#eee">drop here</div>
<script>
window.dropped = null;
const zone = document.getElementById('zone');
zone.addEventListener('dragover', e => e.preventDefault());
zone.addEventListener('drop', async e => {
  e.preventDefault();
  const out = [];
  for (const f of e.dataTransfer.files) out.push(f.name + '|' + f.size + '|' + await f.text());
  window.dropped = out;
});
</script>`,

	"/upload": `<!doctype html><title>upload</title><body style="margin:0">
<input type="file" id="one" accept=".pdf,image/*" style="position:absolute;left:0;top:0;width:300px;height:40px">
<input type="file" id="many" multiple style="position:absolute;left:0;top:60px;width:300px;height:40px">
<iframe src="/upload-frame" style="position:absolute;left:0;top:120px;width:320px;height:80px;border:0"></iframe>
<script>
window.changes = 0;
window.got = null;
for (const id of ['one', 'many']) {
  document.getElementById(id).addEventListener('change', async e => {
    window.changes++;
    const files = [];
    for (const f of e.target.files) files.push({name: f.name, size: f.size, text: await f.text()});
    window.got = files;
  });
}
</script>`,

	"/upload-frame": `<!doctype html><body style="margin:0">
<input type="file" id="inner" style="position:absolute;left:0;top:0;width:300px;height:40px">`,

	"/copy": `<!doctype html><title>copy</title><body style="margin:0">
<p id="p" style="position:absolute;left:0;top:0;margin:0">Hello paragraph text</p>
<input id="i" value="input value here" style="position:absolute;left:0;top:50px;width:300px">
<textarea id="ta" style="position:absolute;left:0;top:100px;width:300px;height:60px">first line
second line</textarea>
<button id="btn" onclick="navigator.clipboard.writeText('from button').then(() => window.wrote = 'ok', e => window.wrote = String(e))"
  style="position:absolute;left:0;top:200px;width:200px;height:40px">copy</button>
<script>
window.copies = 0;
window.override = '';
document.addEventListener('copy', e => {
  window.copies++;
  if (window.override) { e.clipboardData.setData('text/plain', window.override); e.preventDefault(); }
});
</script>`,

	"/print": `<!doctype html><title>Report 1</title><body style="margin:0;background:#ffe">
<h1>Report</h1><p>Printed page.</p>
<button onclick="for (let i = 0; i < 20; i++) window.print()"
  style="position:absolute;left:0;top:200px;width:200px;height:40px">print</button>`,

	"/plain": `<!doctype html><title>plain</title><body>plain`,
}

// longPage is a page whose PDF is larger than testCap.
func longPage() string {
	var sb strings.Builder
	sb.WriteString(`<!doctype html><title>long</title><body>`)
	for i := range 3000 {
		fmt.Fprintf(&sb, "<p>Paragraph %d: the quick brown fox jumps over the lazy dog %d times.</p>", i, i*7919)
	}
	return sb.String()
}

func (s *transferSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		s.mu.Lock()
		s.served[r.URL.Path]++
		s.mu.Unlock()
	}()
	attach := func(name string) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	flush := func() { w.(http.Flusher).Flush() }
	switch r.URL.Path {
	case "/file":
		attach(r.URL.Query().Get("n") + ".txt")
		w.Header().Set("Content-Length", strconv.Itoa(fileSize))
		w.Write(payload(fileSize))
	case "/gated":
		attach("report.txt")
		w.Header().Set("Content-Length", strconv.Itoa(gatedSize))
		p := payload(gatedSize)
		w.Write(p[:gatedSize/2])
		flush()
		if s.wait(r, s.release) {
			w.Write(p[gatedSize/2:])
		}
	case "/evil":
		attach("../../etc/passwd")
		w.Write([]byte("root:x:0:0::/root:/bin/sh\n"))
	case "/big":
		// Past the cap, slowly, with no announced size.
		attach("big.bin")
		chunk := payload(8 << 10)
		for range 512 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			flush()
			select {
			case <-r.Context().Done():
				return
			case <-s.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	case "/huge":
		// Announces more than the cap.
		attach("huge.bin")
		w.Header().Set("Content-Length", strconv.Itoa(100<<20))
		w.Write(payload(1 << 10))
		flush()
		s.wait(r, nil)
	case "/hold":
		attach("hold.bin")
		w.Header().Set("Content-Length", "50000")
		w.Write(payload(1 << 10))
		flush()
		s.wait(r, nil)
	case "/broken":
		// Ends the connection half way.
		attach("broken.bin")
		w.Header().Set("Content-Length", "50000")
		w.Write(payload(1 << 10))
		flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case "/long":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, longPage())
	default:
		body, ok := transferPages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, body)
	}
}

// launchTransfer starts a browser on a transfer site with downloads into
// dir (none when empty) and cap.
func launchTransfer(t *testing.T, dir string, limit int64) (*fixture, *transferSite, *transferRec) {
	t.Helper()
	site := newTransferSite()
	rec := &transferRec{}
	f := launchFixtureWith(t, isolation.Viewport{Width: 600, Height: 400, DPR: 1}, "", fixtureSetup{
		site: site,
		options: func(o *isolation.LaunchOptions) {
			o.DownloadDir = dir
			o.MaxDownloadBytes = limit
			rec.observe(o)
		},
	})
	// Cleanups run last first: the held responses end before the site
	// closes, which waits for them.
	t.Cleanup(func() { close(site.quit) })
	return f, site, rec
}

// dirNames returns the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// checkGone fails if the download id left a file in dir.
func checkGone(t *testing.T, dir, id string) {
	t.Helper()
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, id) {
			t.Fatalf("download %s left %s in %s", id, n, dir)
		}
	}
}

func TestDownloads(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "q", "r", "downloads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, site, rec := launchTransfer(t, dir, testCap)
	b := f.b

	t.Run("Link", func(t *testing.T) {
		f.open(t, "/dl")
		tab := activeTab(b)
		n := len(rec.reports(""))
		f.click(t, 50, 20)
		started := rec.waitDownload(t, "the gated download to start", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, "/gated")
		})
		id := started.ID
		if !validGUID(id) {
			t.Fatalf("download ID %q is not a GUID", id)
		}
		if started.Name != "report.txt" || started.URL != f.base+"/gated" || started.TabID != tab {
			t.Fatalf("started = %+v, want report.txt from %s in tab %s", started, f.base+"/gated", tab)
		}
		rec.waitDownload(t, "progress", n, func(d isolation.Download) bool {
			return d.ID == id && d.State == isolation.DownloadProgress && d.Received > 0
		})
		close(site.release)
		end := rec.waitEnd(t, id)
		if got := checkSequence(t, rec.reports(id)); got != end {
			t.Fatalf("last report %+v, want %+v", got, end)
		}
		if end.State != isolation.DownloadDone || end.Path != filepath.Join(dir, id) || end.Received != gatedSize || end.Total != gatedSize {
			t.Fatalf("end = %+v, want done at %s with %d bytes", end, filepath.Join(dir, id), gatedSize)
		}
		data, err := os.ReadFile(end.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, payload(gatedSize)) {
			t.Fatalf("downloaded %d bytes that differ from the served ones", len(data))
		}
	})

	t.Run("Popup", func(t *testing.T) {
		f.open(t, "/dl")
		n := len(rec.reports(""))
		f.click(t, 50, 70)
		started := rec.waitDownload(t, "the popup's download", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && d.Name == "popup.txt"
		})
		end := rec.waitEnd(t, started.ID)
		if end.State != isolation.DownloadDone || end.Received != fileSize {
			t.Fatalf("end = %+v", end)
		}
		if data, err := os.ReadFile(filepath.Join(dir, started.ID)); err != nil || !bytes.Equal(data, payload(fileSize)) {
			t.Fatalf("popup download: %d bytes, %v", len(data), err)
		}
		// The download's tab went away; one tab is left.
		eventually(t, "the download's tab to close", func() bool {
			s := b.State()
			return len(s.Tabs) == 1 && s.URL == f.base+"/dl"
		})
	})

	t.Run("HostileName", func(t *testing.T) {
		f.open(t, "/dl")
		n := len(rec.reports(""))
		f.click(t, 50, 120)
		started := rec.waitDownload(t, "the evil download", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, "/evil")
		})
		end := rec.waitEnd(t, started.ID)
		if end.State != isolation.DownloadDone || end.Path != filepath.Join(dir, started.ID) {
			t.Fatalf("end = %+v", end)
		}
		t.Logf("suggested name reported: %q", started.Name)
		// Nothing but GUIDs in the directory, and nothing anywhere else.
		for _, name := range dirNames(t, dir) {
			if !validGUID(name) {
				t.Errorf("%s in the download dir is not named by a GUID", name)
			}
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && filepath.Dir(p) != dir {
				t.Errorf("file outside the download dir: %s", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name string
		y    float64
		path string
	}{
		{"OverCapStreamed", 170, "/big"},
		{"OverCapAnnounced", 220, "/huge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.open(t, "/dl")
			n := len(rec.reports(""))
			f.click(t, 50, tc.y)
			started := rec.waitDownload(t, "the download of "+tc.path, n, func(d isolation.Download) bool {
				return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, tc.path)
			})
			rec.waitEnd(t, started.ID)
			end := checkSequence(t, rec.reports(started.ID))
			if end.State != isolation.DownloadCanceled || !strings.Contains(end.Reason, strconv.Itoa(testCap)) {
				t.Fatalf("end = %+v, want canceled naming the %d-byte limit", end, testCap)
			}
			checkGone(t, dir, started.ID)
		})
	}

	t.Run("Cancel", func(t *testing.T) {
		f.open(t, "/dl")
		n := len(rec.reports(""))
		f.click(t, 50, 270)
		started := rec.waitDownload(t, "the held download", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, "/hold")
		})
		if err := b.CancelDownload(testCtx(t), started.ID); err != nil {
			t.Fatal(err)
		}
		// CancelDownload returns after the last report.
		end := checkSequence(t, rec.reports(started.ID))
		if end.State != isolation.DownloadCanceled || end.Reason == "" {
			t.Fatalf("end = %+v", end)
		}
		checkGone(t, dir, started.ID)
		err := b.CancelDownload(testCtx(t), started.ID)
		if !errors.Is(err, ErrNoDownload) || !strings.Contains(err.Error(), started.ID) {
			t.Fatalf("cancel an ended download: %v", err)
		}
		if err := b.CancelDownload(testCtx(t), "nope"); !errors.Is(err, ErrNoDownload) || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("cancel an unknown download: %v", err)
		}
	})

	t.Run("Interrupted", func(t *testing.T) {
		f.open(t, "/dl")
		n := len(rec.reports(""))
		f.click(t, 50, 370)
		started := rec.waitDownload(t, "the broken download", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, "/broken")
		})
		rec.waitEnd(t, started.ID)
		end := checkSequence(t, rec.reports(started.ID))
		if end.State != isolation.DownloadFailed || end.Reason == "" {
			t.Fatalf("end = %+v", end)
		}
		checkGone(t, dir, started.ID)
	})

	t.Run("PrintOverCap", func(t *testing.T) {
		f.open(t, "/long")
		n := len(rec.reports(""))
		if err := b.Print(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		ds := rec.reports("")[n:]
		if len(ds) != 2 || ds[0].State != isolation.DownloadStarted || !ds[0].Print {
			t.Fatalf("print reports = %+v", ds)
		}
		if end := ds[1]; end.State != isolation.DownloadCanceled || !end.Print || !strings.Contains(end.Reason, strconv.Itoa(testCap)) {
			t.Fatalf("print end = %+v, want canceled over the limit", end)
		}
		checkGone(t, dir, ds[0].ID)
		for _, name := range dirNames(t, dir) {
			if strings.HasPrefix(name, printTempPrefix) {
				t.Fatalf("print left %s", name)
			}
		}
	})

	t.Run("Close", func(t *testing.T) {
		f.open(t, "/dl")
		n := len(rec.reports(""))
		f.click(t, 50, 270)
		started := rec.waitDownload(t, "the held download", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadStarted && strings.HasSuffix(d.URL, "/hold")
		})
		eventually(t, "the partial file", func() bool {
			_, err := os.Stat(filepath.Join(dir, started.ID+partialSuffix))
			return err == nil
		})
		if err := b.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		end := checkSequence(t, rec.reports(started.ID))
		if end.State != isolation.DownloadFailed {
			t.Fatalf("end after close = %+v", end)
		}
		checkGone(t, dir, started.ID)
		for _, name := range dirNames(t, dir) {
			if !validGUID(name) {
				t.Errorf("left after close: %s", name)
			}
		}
		if err := b.CancelDownload(testCtx(t), started.ID); !errors.Is(err, isolation.ErrClosed) {
			t.Fatalf("cancel after close: %v", err)
		}
	})
}

// TestDownloadDenied checks that a browser without a download directory
// saves nothing.
func TestDownloadDenied(t *testing.T) {
	f, site, rec := launchTransfer(t, "", 0)
	f.open(t, "/dl")
	f.click(t, 50, 320)
	eventually(t, "the file to be served", func() bool { return site.servedCount("/file") > 0 })
	f.open(t, "/plain")
	if ds := rec.reports(""); len(ds) != 0 {
		t.Fatalf("download reports = %+v", ds)
	}
	want := payload(fileSize)
	err := filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // the profile changes under the walk
		}
		if fi, err := d.Info(); err == nil && fi.Size() == int64(len(want)) {
			if data, err := os.ReadFile(p); err == nil && bytes.Equal(data, want) {
				t.Errorf("the denied download was saved at %s", p)
			}
		}
		if strings.HasSuffix(p, partialSuffix) {
			t.Errorf("partial download at %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.b.Print(testCtx(t)); !errors.Is(err, ErrNoDownloadDir) {
		t.Fatalf("print without a download dir: %v", err)
	}
}

func TestPrint(t *testing.T) {
	dir := t.TempDir()
	f, _, rec := launchTransfer(t, dir, 0)
	b := f.b
	f.open(t, "/print")

	checkPDF := func(t *testing.T, ds []isolation.Download) {
		t.Helper()
		if len(ds) != 2 || ds[0].State != isolation.DownloadStarted || ds[1].State != isolation.DownloadDone {
			t.Fatalf("print reports = %+v", ds)
		}
		end := ds[1]
		if !end.Print || !ds[0].Print || end.ID != ds[0].ID || !validGUID(end.ID) {
			t.Fatalf("print reports = %+v", ds)
		}
		if end.Name != "Report 1.pdf" || end.URL != f.base+"/print" || end.Path != filepath.Join(dir, end.ID) {
			t.Fatalf("print = %+v", end)
		}
		fi, err := os.Stat(end.Path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() != end.Received {
			t.Fatalf("pdf mode %v size %d, report %+v", fi.Mode(), fi.Size(), end)
		}
		data, err := os.ReadFile(end.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("%PDF-")) {
			t.Fatalf("pdf starts with %q", data[:min(len(data), 16)])
		}
	}

	t.Run("Print", func(t *testing.T) {
		n := len(rec.reports(""))
		if err := b.Print(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		checkPDF(t, rec.reports("")[n:])
	})

	t.Run("WindowPrint", func(t *testing.T) {
		n := len(rec.reports(""))
		// print() twenty times: one print, nineteen ignored.
		f.click(t, 50, 220)
		rec.waitDownload(t, "the page's print", n, func(d isolation.Download) bool {
			return d.State == isolation.DownloadDone
		})
		eventually(t, "the other prints to be ignored", func() bool {
			b.tabs.mu.Lock()
			defer b.tabs.mu.Unlock()
			return b.tabs.active.pagePrintsIgnored == 19
		})
		checkPDF(t, rec.reports("")[n:])
		for _, name := range dirNames(t, dir) {
			if !validGUID(name) {
				t.Errorf("left in the download dir: %s", name)
			}
		}
	})
}

func TestFileChooser(t *testing.T) {
	f, _, rec := launchTransfer(t, "", 0)
	b := f.b
	tmp := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hello := write("hello.txt", "hello upload")
	second := write("second.csv", "a,b\n1,2\n")

	// open clicks at y and returns the chooser it opened.
	open := func(t *testing.T, y float64) isolation.FileChooser {
		t.Helper()
		n := rec.chooserCount()
		f.click(t, 100, y)
		return rec.waitChooser(t, n)
	}
	type file struct {
		Name string `json:"name"`
		Size int    `json:"size"`
		Text string `json:"text"`
	}
	got := func(t *testing.T, changes int) []file {
		t.Helper()
		var files []file
		eventually(t, "the page to read the files", func() bool {
			files = eval[[]file](t, b, `window.changes === `+strconv.Itoa(changes)+` && window.got || []`)
			return len(files) > 0
		})
		return files
	}

	t.Run("Single", func(t *testing.T) {
		f.open(t, "/upload")
		c := open(t, 20)
		want := isolation.FileChooser{ID: c.ID, TabID: activeTab(b), URL: f.base + "/upload", Multiple: false, Accept: ".pdf,image/*"}
		if c != want {
			t.Fatalf("chooser = %+v, want %+v", c, want)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello, second}); !errors.Is(err, ErrFiles) {
			t.Fatalf("two files for a single chooser: %v", err)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{"relative.txt"}); !errors.Is(err, ErrFiles) {
			t.Fatalf("relative path: %v", err)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello}); err != nil {
			t.Fatal(err)
		}
		files := got(t, 1)
		if len(files) != 1 || files[0] != (file{"hello.txt", 12, "hello upload"}) {
			t.Fatalf("page got %+v", files)
		}
		// Answered once.
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello}); !errors.Is(err, ErrNoChooser) {
			t.Fatalf("second answer: %v", err)
		}
	})

	t.Run("Multiple", func(t *testing.T) {
		f.open(t, "/upload")
		c := open(t, 80)
		if !c.Multiple || c.Accept != "" {
			t.Fatalf("chooser = %+v", c)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello, second}); err != nil {
			t.Fatal(err)
		}
		files := got(t, 1)
		if len(files) != 2 || files[0].Name != "hello.txt" || files[1] != (file{"second.csv", 8, "a,b\n1,2\n"}) {
			t.Fatalf("page got %+v", files)
		}
	})

	t.Run("Frame", func(t *testing.T) {
		f.open(t, "/upload")
		c := open(t, 140)
		if c.URL != f.base+"/upload-frame" || c.Multiple {
			t.Fatalf("chooser = %+v, want one of the frame", c)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello}); err != nil {
			t.Fatal(err)
		}
		name := ""
		eventually(t, "the frame's input to get the file", func() bool {
			name = eval[string](t, b, `(document.querySelector('iframe').contentDocument.getElementById('inner').files[0] || {}).name || ''`)
			return name != ""
		})
		if name != "hello.txt" {
			t.Fatalf("frame input got %q", name)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		f.open(t, "/upload")
		c := open(t, 20)
		if err := b.SetFiles(testCtx(t), c.ID, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello}); !errors.Is(err, ErrNoChooser) {
			t.Fatalf("answer a canceled chooser: %v", err)
		}
		if n := eval[int](t, b, `window.changes`); n != 0 {
			t.Fatalf("changes after cancel = %d", n)
		}
	})

	t.Run("Stale", func(t *testing.T) {
		f.open(t, "/upload")
		c := open(t, 20)
		f.open(t, "/plain")
		err := b.SetFiles(testCtx(t), c.ID, []string{hello})
		if !errors.Is(err, ErrNoChooser) || !strings.Contains(err.Error(), c.ID) {
			t.Fatalf("answer after navigation: %v", err)
		}
		if err := b.SetFiles(testCtx(t), "nope", []string{hello}); !errors.Is(err, ErrNoChooser) || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("answer an unknown chooser: %v", err)
		}
	})

	t.Run("StaleDocument", func(t *testing.T) {
		// A chooser whose navigation was not handled yet still cannot
		// reach the next document: its input was an object of the old one.
		f.open(t, "/upload")
		c := open(t, 20)
		b.up.mu.Lock()
		x := b.up.open[c.ID]
		b.up.mu.Unlock()
		f.open(t, "/upload")
		b.up.mu.Lock()
		b.up.open[c.ID] = x
		b.up.mu.Unlock()
		if err := b.SetFiles(testCtx(t), c.ID, []string{hello}); !errors.Is(err, ErrNoChooser) {
			t.Fatalf("answer into a new document: %v", err)
		}
		if n := eval[int](t, b, `window.changes`); n != 0 {
			t.Fatalf("the new document got files: %d changes", n)
		}
	})
}

func TestCopy(t *testing.T) {
	f, _, _ := launchTransfer(t, "", 0)
	b := f.b
	copyText := func(t *testing.T) string {
		t.Helper()
		s, err := b.Copy(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	selectParagraph := `(() => {
  const r = document.createRange();
  r.selectNodeContents(document.getElementById('p'));
  getSelection().removeAllRanges();
  getSelection().addRange(r);
  return true;
})()`

	for _, base := range []string{f.base, "https://" + secureHost} {
		t.Run(strings.SplitN(base, ":", 2)[0], func(t *testing.T) {
			u := base + "/copy"
			if err := b.Navigate(testCtx(t), u); err != nil {
				t.Fatal(err)
			}
			eventually(t, "load of "+u, func() bool {
				return eval[string](t, b, "location.href") == u && eval[string](t, b, "document.readyState") == "complete"
			})
			if got := copyText(t); got != "" {
				t.Fatalf("copy with nothing selected = %q", got)
			}

			eval[bool](t, b, selectParagraph)
			if got := copyText(t); got != "Hello paragraph text" {
				t.Fatalf("copy of the paragraph = %q", got)
			}
			// The same text again is copied again.
			if got := copyText(t); got != "Hello paragraph text" {
				t.Fatalf("second copy of the paragraph = %q", got)
			}
			if n := eval[int](t, b, "window.copies"); n != 3 {
				t.Fatalf("page saw %d copy events, want 3", n)
			}

			f.click(t, 100, 60)
			eval[bool](t, b, `document.getElementById('i').setSelectionRange(0, 5), true`)
			if got := copyText(t); got != "input" {
				t.Fatalf("copy of the input's selection = %q", got)
			}
			f.click(t, 100, 130)
			eval[bool](t, b, `document.getElementById('ta').select(), true`)
			if got := copyText(t); got != "first line\nsecond line" {
				t.Fatalf("copy of the textarea = %q", got)
			}

			// Nothing selected: nothing new.
			eval[bool](t, b, `document.activeElement.blur(), getSelection().removeAllRanges(), true`)
			if got := copyText(t); got != "" {
				t.Fatalf("copy with nothing selected = %q", got)
			}

			// The page's copy handler decides what is copied.
			eval[bool](t, b, selectParagraph)
			eval[bool](t, b, `window.override = 'from handler', true`)
			if got := copyText(t); got != "from handler" {
				t.Fatalf("copy through the page's handler = %q", got)
			}
			eval[bool](t, b, `window.override = '', getSelection().removeAllRanges(), true`)

			if strings.HasPrefix(base, "https:") {
				// A copy button, clicked for real, then the clinician's copy.
				f.click(t, 100, 220)
				eventually(t, "the copy button", func() bool { return eval[string](t, b, "window.wrote || ''") != "" })
				if w := eval[string](t, b, "window.wrote"); w != "ok" {
					t.Fatalf("the page's clipboard write: %s", w)
				}
				if got := copyText(t); got != "from button" {
					t.Fatalf("copy after the copy button = %q", got)
				}
				if got := copyText(t); got != "" {
					t.Fatalf("copy again with nothing new = %q", got)
				}
				// The clipboard still holds the button's text: a paste in the
				// remote page gets it.
				f.click(t, 100, 60)
				f.key(t, "a", "KeyA", 65, isolation.ModCtrl)
				f.key(t, "v", "KeyV", 86, isolation.ModCtrl)
				if got := eval[string](t, b, "document.getElementById('i').value"); got != "from button" {
					t.Fatalf("paste after copy = %q", got)
				}
			}
		})
	}
	// The clipboard reader is no tab.
	if s := b.State(); len(s.Tabs) != 1 {
		t.Fatalf("tabs = %+v", s.Tabs)
	}
}

func TestPrintName(t *testing.T) {
	for _, tc := range []struct{ title, url, want string }{
		{"Report 1", "http://site.test/r", "Report 1.pdf"},
		{"  ", "https://example.jp/x", "example.jp.pdf"},
		{"", "about:blank", "page.pdf"},
		{"../../etc/passwd", "http://site.test/", ".._.._etc_passwd.pdf"},
		{"a\nb\\c", "http://site.test/", "a_b_c.pdf"},
		{strings.Repeat("長", 200), "http://site.test/", strings.Repeat("長", maxPrintName) + ".pdf"},
	} {
		if got := printName(tc.title, tc.url); got != tc.want {
			t.Errorf("printName(%q, %q) = %q, want %q", tc.title, tc.url, got, tc.want)
		}
	}
}

func TestGUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		g := newGUID()
		if !validGUID(g) || seen[g] {
			t.Fatalf("newGUID() = %q", g)
		}
		seen[g] = true
	}
	for _, s := range []string{"", "../../etc/passwd", "bb533a19-d526-4524-afe4-b7038920ad9", "bb533a19-d526-4524-afe4-b7038920ad9c/", "bb533a19xd526-4524-afe4-b7038920ad9c", "bb533a19-d526-4524-afe4-b7038920ad9g"} {
		if validGUID(s) {
			t.Errorf("validGUID(%q) = true", s)
		}
	}
}

// TestDownloadAfterCopy: the clipboard reader's own browser context does not
// change what the clinician's tabs may do: a download after a copy lands in
// the quarantine as before.
func TestDownloadAfterCopy(t *testing.T) {
	dir := t.TempDir()
	f, _, rec := launchTransfer(t, dir, testCap)
	b := f.b
	f.open(t, "/copy")
	if _, err := b.Copy(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	f.open(t, "/dl")
	n := len(rec.reports(""))
	f.click(t, 50, 320)
	started := rec.waitDownload(t, "a download after the copy", n, func(d isolation.Download) bool {
		return d.State == isolation.DownloadStarted && d.Name == "plain.txt"
	})
	if end := rec.waitEnd(t, started.ID); end.State != isolation.DownloadDone {
		t.Fatalf("end = %+v", end)
	}
}

// TestDropFiles: files dropped at a point of the page reach its drop
// handler with their names and bytes; a drop meant for another page is
// refused.
func TestDropFiles(t *testing.T) {
	f, _, _ := launchTransfer(t, "", 0)
	b := f.b
	f.open(t, "/dropzone")
	dir := t.TempDir()
	a := filepath.Join(dir, "letter.txt")
	if err := os.WriteFile(a, []byte("referral"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.DropFiles(testCtx(t), f.base+"/elsewhere", 100, 100, []string{a}); !errors.Is(err, ErrMoved) {
		t.Fatalf("drop for another page: %v", err)
	}
	if err := b.DropFiles(testCtx(t), f.base+"/dropzone", 100, 100, []string{"relative.txt"}); !errors.Is(err, ErrFiles) {
		t.Fatalf("relative path: %v", err)
	}
	if err := b.DropFiles(testCtx(t), f.base+"/dropzone", 100, 100, []string{a}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the dropped file in the page", func() bool {
		return eval[string](t, b, "JSON.stringify(window.dropped)") == `["letter.txt|8|referral"]`
	})
}
