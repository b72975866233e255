package transfer

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// testPolicy: profile "ward" allows uploads to https://upload.test with
// uploads on; profile "strict" turns every transfer off.
const testPolicy = `
profiles:
  - name: ward
    rules:
      - pattern: upload.test
        uploads: true
      - pattern: plain.test
    transfers:
      upload:
        action: allow
        max_size: 1KiB
      clipboard_to_remote:
        action: allow
        max_chars: 10
  - name: strict
    transfers:
      download: {action: "off", types: [{types: [pdf], action: "off"}]}
      print: {action: "off"}
      clipboard_to_terminal: {action: "off"}
`

type setPolicy struct{ set *policy.Set }

func (p setPolicy) Transfers(profile string) policy.Transfers { return p.set.Transfers(profile) }
func (p setPolicy) UploadDestination(profile, u string) policy.Decision {
	return p.set.UploadDestination(profile, u)
}

// fakeScanner is a Scanner we own: it finds "EVIL" and fails when down.
type fakeScanner struct {
	mu   sync.Mutex
	down bool
}

func (f *fakeScanner) Scan(ctx context.Context, r io.Reader) (scan.Result, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	b, err := io.ReadAll(r)
	if err != nil {
		return scan.Result{}, err
	}
	if down {
		return scan.Result{}, errors.New("connection refused")
	}
	if bytes.Contains(b, []byte("EVIL")) {
		return scan.Result{Infected: true, Signature: "Test.Evil"}, nil
	}
	return scan.Result{Engine: "fake"}, nil
}

// flakySink is the harness's audit sink with a switch we own: while fail
// says so of an event, its Commit fails as on a full disk.
type flakySink struct {
	audit.Sink
	mu   sync.Mutex
	fail func(audit.Event) bool
}

func (f *flakySink) Commit(ctx context.Context, e audit.Event) (audit.Event, error) {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil && fail(e) {
		return audit.Event{}, errors.New("disk full")
	}
	return f.Sink.Commit(ctx, e)
}

// failWhen makes Commit fail for the events fail picks; nil heals it.
func (f *flakySink) failWhen(fail func(audit.Event) bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

// always fails every commit.
func always(audit.Event) bool { return true }

// step fails the commits of transfer steps named steps.
func step(steps ...string) func(audit.Event) bool {
	return func(e audit.Event) bool {
		return e.Transfer != nil && slices.Contains(steps, e.Transfer.State)
	}
}

type harness struct {
	m       *Manager
	cfg     Config
	st      *memStore
	sink    *audit.File
	flaky   *flakySink
	scanner *fakeScanner
	data    string
	dir     string
	now     time.Time
	nowMu   sync.Mutex

	mu       sync.Mutex
	notified []Transfer
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	data := t.TempDir()
	st := newMemStore()
	sink, err := audit.OpenFile(filepath.Join(data, "audit"), audit.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.ParseYAML([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, sink: sink, flaky: &flakySink{Sink: sink}, scanner: &fakeScanner{}, data: data, dir: filepath.Join(data, "quarantine"), now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	cfg := Config{
		Store:     st,
		Dir:       h.dir,
		Policy:    setPolicy{set},
		Audit:     h.flaky,
		Protected: []string{data},
		Scanner:   h.scanner,
		Now:       h.clock,
		Notify: func(_ string, tr Transfer) {
			h.mu.Lock()
			h.notified = append(h.notified, tr)
			h.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h.cfg = cfg
	h.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.m.Wait()
		sink.Close()
	})
	return h
}

// restart replaces the harness's manager by a new one on the same store,
// quarantine and trail, as a broker that starts again does, and runs its
// recovery.
func (h *harness) restart(t *testing.T) error {
	t.Helper()
	h.m.Wait()
	m, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	err = m.Recover(context.Background())
	m.Wait()
	return err
}

// trail is the harness's audit directory.
func (h *harness) trail() string { return filepath.Join(h.data, "audit") }

// agree fails the test when the ledger and the trail disagree.
func (h *harness) agree(t *testing.T) {
	t.Helper()
	h.m.Wait()
	list, err := CheckLedger(h.st, h.trail())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		t.Errorf("ledger and trail disagree: %s", d)
	}
}

// steps returns the transfer steps the trail holds for transfer id.
func (h *harness) steps(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for e, err := range audit.Scan(h.trail(), audit.Filter{Type: audit.TypeTransfer}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Transfer.ID == id {
			out = append(out, e.Transfer.State)
		}
	}
	return out
}

func (h *harness) clock() time.Time {
	h.nowMu.Lock()
	defer h.nowMu.Unlock()
	return h.now
}

func (h *harness) advance(d time.Duration) {
	h.nowMu.Lock()
	h.now = h.now.Add(d)
	h.nowMu.Unlock()
}

var alice = Owner{User: "alice", Role: "clinician", Terminal: "10.0.0.5", Session: "s1", Profile: "ward"}

// download plays a browser download of content through the manager and
// returns the transfer once it is decided.
func (h *harness) download(t *testing.T, o Owner, name string, content []byte, print bool) Transfer {
	t.Helper()
	h.advance(time.Second) // the newest transfer is the one made here
	dir, err := h.m.SessionDir(o.Session)
	if err != nil {
		t.Fatal(err)
	}
	guid := NewID()
	path := filepath.Join(dir, guid)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	d := isolation.Download{ID: guid, URL: "https://plain.test/file", Name: name, Print: print}
	d.State = isolation.DownloadStarted
	h.m.Browse(o, d, nil)
	d.State, d.Received, d.Total = isolation.DownloadProgress, int64(len(content))/2, int64(len(content))
	h.m.Browse(o, d, nil)
	d.State, d.Path, d.Received = isolation.DownloadDone, path, int64(len(content))
	h.m.Browse(o, d, nil)
	h.m.Wait()
	list, err := h.m.Mine(o.User)
	if err != nil || len(list) == 0 {
		t.Fatalf("no transfer recorded: %v", err)
	}
	return list[0]
}

var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDownloadPDFReleased(t *testing.T) {
	h := newHarness(t, nil)
	tr := h.download(t, alice, "report.pdf", pdf, false)
	if tr.State != Released || tr.SHA256 != sum(pdf) || tr.Class != policy.ClassPDF || tr.Size != int64(len(pdf)) {
		t.Fatalf("transfer %+v", tr)
	}
	if !strings.HasPrefix(tr.Scan, "clean") {
		t.Errorf("scan verdict %q", tr.Scan)
	}
	f, got, err := h.m.Open(context.Background(), Person{User: "alice"}, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(b, pdf) || got.Saved != 1 {
		t.Errorf("saved %d bytes, record %+v", len(b), got)
	}
	// Nobody else can fetch it, and the answer does not say it exists.
	if _, _, err := h.m.Open(context.Background(), Person{User: "bob"}, tr.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob opened alice's file: %v", err)
	}
	// The session's download directory no longer holds it.
	if left, _ := os.ReadDir(filepath.Join(h.dir, "sessions", alice.Session)); len(left) != 0 {
		t.Errorf("files left in the browser's directory: %v", left)
	}
	// The release is in the audit trail, durable, with the hash.
	found := false
	for e, err := range audit.Scan(filepath.Join(filepath.Dir(h.dir), "audit"), audit.Filter{SHA256: sum(pdf)}) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || (e.Transfer != nil && e.Transfer.State == "released")
	}
	if !found {
		t.Error("no audit record of the release")
	}
	// Viewers were told about progress and the outcome.
	h.mu.Lock()
	n := len(h.notified)
	h.mu.Unlock()
	if n < 3 {
		t.Errorf("%d notifications, want start, progress and outcome", n)
	}
	h.agree(t)
}

func TestDownloadOutcomes(t *testing.T) {
	exe := append([]byte("MZ"), bytes.Repeat([]byte{0x90}, 200)...)
	cases := []struct {
		name    string
		file    string
		content []byte
		owner   Owner
		down    bool
		state   State
		reason  string
	}{
		{"executable", "setup.exe", exe, alice, false, Rejected, "executable"},
		{"other type held", "notes.bin", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, alice, false, Held, "approver"},
		{"infected", "x.pdf", append(append([]byte{}, pdf...), "EVIL"...), alice, false, Rejected, "Test.Evil"},
		{"scanner down", "y.pdf", pdf, alice, true, Held, "could not be scanned"},
		{"profile off", "z.pdf", pdf, Owner{User: "carol", Session: "s9", Profile: "strict"}, false, Rejected, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.scanner.down = c.down
			tr := h.download(t, c.owner, c.file, c.content, false)
			if tr.State != c.state || !strings.Contains(tr.Reason, c.reason) {
				t.Fatalf("state %s reason %q, want %s with %q", tr.State, tr.Reason, c.state, c.reason)
			}
			_, err := os.Stat(h.m.filePath(tr.ID))
			if kept := err == nil; kept != (c.state == Held) {
				t.Errorf("quarantined file kept=%v for state %s", kept, c.state)
			}
			h.agree(t)
		})
	}
}

func TestHeldApproveAndReject(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	h.scanner.down = true
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if tr.State != Held {
		t.Fatalf("state %s", tr.State)
	}
	if _, _, err := h.m.Open(ctx, Person{User: "alice"}, tr.ID); !errors.Is(err, ErrState) {
		t.Fatalf("a held file was delivered: %v", err)
	}
	if _, err := h.m.Justify(Person{User: "alice"}, tr.ID, "drug safety notice for ward 3"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Decide(ctx, Person{User: "alice", Role: "approver"}, tr.ID, true, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("self-approval: %v", err)
	}
	got, err := h.m.Decide(ctx, Person{User: "bob", Role: "approver"}, tr.ID, true, "checked")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Released || got.Approver != "bob" || got.Justification == "" {
		t.Fatalf("after approval: %+v", got)
	}
	if _, err := h.m.Decide(ctx, Person{User: "dave"}, tr.ID, false, ""); !errors.Is(err, ErrState) {
		t.Errorf("decided twice: %v", err)
	}
	f, _, err := h.m.Open(ctx, Person{User: "alice"}, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	second := h.download(t, alice, "b.pdf", pdf, false)
	got, err = h.m.Decide(ctx, Person{User: "bob"}, second.ID, false, "not needed")
	if err != nil || got.State != Rejected || !strings.Contains(got.Reason, "not needed") {
		t.Fatalf("reject: %+v %v", got, err)
	}
	if _, err := os.Stat(h.m.filePath(second.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a rejected file was kept")
	}
	h.agree(t)
}

// TestReleaseWaitsForAudit: a release the trail does not take is not a
// release: the file is held when the trail takes that.
func TestReleaseWaitsForAudit(t *testing.T) {
	h := newHarness(t, nil)
	h.flaky.failWhen(step("released"))
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if tr.State != Held || !strings.Contains(tr.Reason, "audit") {
		t.Fatalf("released without a durable record: %+v", tr)
	}
	h.agree(t)
}

// TestTrailDownKeepsLedger: while the trail takes nothing, a finished
// download stays in receiving with its file in the quarantine, nothing is
// released and nothing is lost; once the trail is back, Retry moves it on
// and the ledger and the trail agree.
func TestTrailDownKeepsLedger(t *testing.T) {
	h := newHarness(t, nil)
	h.flaky.failWhen(always)
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if tr.State != Receiving {
		t.Fatalf("state %s with the trail down, want receiving", tr.State)
	}
	if _, err := os.Stat(h.m.filePath(tr.ID)); err != nil {
		t.Fatalf("the file was lost: %v", err)
	}
	if _, _, err := h.m.Open(context.Background(), Person{User: "alice"}, tr.ID); !errors.Is(err, ErrState) {
		t.Fatalf("delivered with the trail down: %v", err)
	}
	h.m.Retry(context.Background()) // still down: nothing changes
	if got, _ := h.m.Get(tr.ID); got.State != Receiving {
		t.Fatalf("state %s after a retry with the trail down", got.State)
	}
	h.flaky.failWhen(nil)
	h.m.Retry(context.Background())
	got, _ := h.m.Get(tr.ID)
	if got.State != Released {
		t.Fatalf("state %s after the trail came back, want released", got.State)
	}
	if s := h.steps(t, tr.ID); !slices.Equal(s, []string{"received", "released"}) {
		t.Errorf("steps %v", s)
	}
	h.agree(t)
}

func TestCanceledDownload(t *testing.T) {
	h := newHarness(t, nil)
	d := isolation.Download{ID: "g1", URL: "https://plain.test/big", Name: "big.iso", State: isolation.DownloadStarted}
	h.m.Browse(alice, d, nil)
	d.State, d.Reason = isolation.DownloadCanceled, "the file is over the 100 MiB limit"
	h.m.Browse(alice, d, nil)
	list, _ := h.m.Mine("alice")
	if len(list) != 1 || list[0].State != Canceled || list[0].Reason != d.Reason {
		t.Fatalf("%+v", list)
	}
	h.agree(t)
}

func TestHostileNames(t *testing.T) {
	h := newHarness(t, nil)
	for _, name := range []string{"../../etc/passwd", "a\x00b\nc.pdf", strings.Repeat("長", 300) + ".pdf", "invoice\u202efdp.exe"} {
		tr := h.download(t, alice, name, pdf, false)
		if strings.ContainsAny(tr.Name, "/\\\x00\n\u202e") || tr.PageName != name {
			t.Errorf("name %q shown as %q", name, tr.Name)
		}
	}
	if _, err := os.Stat("/etc/passwd.pdf"); err == nil {
		t.Error("something was written outside the quarantine")
	}
	h.agree(t)
}

func TestPrintDecidedAsPrint(t *testing.T) {
	h := newHarness(t, nil)
	tr := h.download(t, alice, "Guideline.pdf", pdf, true)
	if tr.Direction != Print || tr.State != Released {
		t.Fatalf("%+v", tr)
	}
	if err := h.m.Print(context.Background(), Owner{User: "carol", Profile: "strict"}, "https://plain.test/"); !errors.Is(err, ErrForbidden) {
		t.Errorf("print allowed in a profile with print off: %v", err)
	}
}

func TestRetention(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Retention = time.Hour })
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if n := h.m.Sweep(context.Background()); n != 0 {
		t.Fatalf("swept %d fresh files", n)
	}
	h.advance(2 * time.Hour)
	if n := h.m.Sweep(context.Background()); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	got, err := h.m.Get(tr.ID)
	if err != nil || got.Expired.IsZero() {
		t.Fatalf("record after retention: %+v %v", got, err)
	}
	if _, err := os.Stat(h.m.filePath(tr.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Error("file kept after retention")
	}
	if _, _, err := h.m.Open(context.Background(), Person{User: "alice"}, tr.ID); !errors.Is(err, ErrState) {
		t.Errorf("expired file delivered: %v", err)
	}
	h.agree(t)
}

func TestSendToDestination(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	share := t.TempDir()
	admin := Person{User: "root", Role: "admin"}
	if _, err := h.m.AddDestination(ctx, admin, Destination{Name: "ikyoku", Dir: share}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Destination{{Name: "../x", Dir: share}, {Name: "a", Dir: "relative"}, {Name: "b", Dir: filepath.Join(share, "missing")}, {Name: "c", Dir: h.dir}} {
		if _, err := h.m.AddDestination(ctx, admin, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("destination %+v accepted: %v", bad, err)
		}
	}
	tr := h.download(t, alice, "../report.pdf", pdf, false)
	first, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku")
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku")
	if err != nil {
		t.Fatal(err)
	}
	if first == second || strings.ContainsAny(first+second, "/\\") {
		t.Fatalf("names %q and %q", first, second)
	}
	for _, n := range []string{first, second} {
		b, err := os.ReadFile(filepath.Join(share, n))
		if err != nil || !bytes.Equal(b, pdf) {
			t.Errorf("%s: %v", n, err)
		}
	}
	entries, _ := os.ReadDir(share)
	if len(entries) != 2 {
		t.Errorf("share holds %d entries, want the 2 files and no temporary ones", len(entries))
	}
	if _, err := h.m.Send(ctx, Person{User: "bob"}, tr.ID, "ikyoku"); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob sent alice's file: %v", err)
	}
	if _, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "nowhere"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown destination: %v", err)
	}
	h.agree(t)
}

func TestUploads(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	var mu sync.Mutex
	var handed [][]string
	answer := func(_ context.Context, paths []string) error {
		mu.Lock()
		handed = append(handed, paths)
		mu.Unlock()
		return nil
	}
	alicePerson := Person{User: "alice", Terminal: "10.0.0.5"}

	// A destination without uploads: refused at once, the chooser canceled.
	view := h.m.ChooserOpened(alice, isolation.FileChooser{ID: "c0", URL: "https://plain.test/form"}, answer)
	if view.Allowed || view.Reason == "" {
		t.Fatalf("plain.test upload: %+v", view)
	}
	// Plain HTTP never.
	if view := h.m.ChooserOpened(alice, isolation.FileChooser{ID: "c1", URL: "http://upload.test/form"}, answer); view.Allowed {
		t.Fatalf("http upload allowed: %+v", view)
	}
	view = h.m.ChooserOpened(alice, isolation.FileChooser{ID: "c2", URL: "https://upload.test/form"}, answer)
	if !view.Allowed || view.MaxSize != 1024 {
		t.Fatalf("upload.test: %+v", view)
	}
	text := []byte("referral letter, no identifiers\n")
	tr, err := h.m.Upload(ctx, alicePerson, "c2", "letter.txt", int64(len(text)), bytes.NewReader(text))
	if err != nil || tr.State != Released || tr.SHA256 != sum(text) {
		t.Fatalf("upload: %+v %v", tr, err)
	}
	if _, err := h.m.Upload(ctx, Person{User: "bob"}, "c2", "x.txt", 1, strings.NewReader("x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob used alice's chooser: %v", err)
	}
	big := bytes.Repeat([]byte("a"), 2048)
	if _, err := h.m.Upload(ctx, alicePerson, "c2", "big.txt", -1, bytes.NewReader(big)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over-size upload: %v", err)
	}
	exe := append([]byte("MZ"), bytes.Repeat([]byte{0}, 100)...)
	if _, err := h.m.Upload(ctx, alicePerson, "c2", "tool.exe", int64(len(exe)), bytes.NewReader(exe)); !errors.Is(err, ErrForbidden) {
		t.Errorf("executable upload: %v", err)
	}
	if _, err := h.m.Upload(ctx, alicePerson, "c2", "bad.txt", 4, strings.NewReader("EVIL")); !errors.Is(err, ErrForbidden) {
		t.Errorf("infected upload: %v", err)
	}
	if err := h.m.Answer(ctx, alicePerson, "c2", []string{"someone-elses"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("answer with a foreign transfer: %v", err)
	}
	if err := h.m.Answer(ctx, alicePerson, "c2", []string{tr.ID}); err != nil {
		t.Fatal(err)
	}
	h.agree(t)
	mu.Lock()
	defer mu.Unlock()
	if len(handed) < 2 {
		t.Fatalf("answers %v", handed)
	}
	last := handed[len(handed)-1]
	if len(last) != 1 || filepath.Base(last[0]) != "letter.txt" {
		t.Fatalf("handed %v", last)
	}
	if b, err := os.ReadFile(last[0]); err != nil || !bytes.Equal(b, text) {
		t.Errorf("handed file: %v", err)
	}
	if err := h.m.Answer(ctx, alicePerson, "c2", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("a chooser was answered twice: %v", err)
	}
}

func TestClipboard(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if ok, _ := h.m.Clipboard(ctx, alice, ClipboardToTerminal, "dose 5 mg"); !ok {
		t.Error("copy refused")
	}
	if ok, _ := h.m.Clipboard(ctx, alice, ClipboardToRemote, "short"); !ok {
		t.Error("paste refused in a profile that allows it")
	}
	if ok, reason := h.m.Clipboard(ctx, alice, ClipboardToRemote, "far too long for ten"); ok || reason == "" {
		t.Error("paste over max_chars allowed")
	}
	strict := Owner{User: "carol", Profile: "strict"}
	if ok, _ := h.m.Clipboard(ctx, strict, ClipboardToTerminal, "x"); ok {
		t.Error("copy allowed with clipboard_to_terminal off")
	}
	// Neither text is in the audit trail; their hashes are.
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(h.dir), "audit", "audit-000001.jsonl"))
	if err != nil {
		entries, _ := os.ReadDir(filepath.Join(filepath.Dir(h.dir), "audit"))
		t.Fatalf("%v (%v)", err, entries)
	}
	if bytes.Contains(raw, []byte("dose 5 mg")) || !bytes.Contains(raw, []byte(sum([]byte("dose 5 mg")))) {
		t.Error("the audit trail holds clipboard text, or not its hash")
	}
}

func TestOverSizeDownloadCanceled(t *testing.T) {
	h := newHarness(t, nil)
	canceled := make(chan string, 4)
	cancel := func(_ context.Context, id string) error {
		canceled <- id
		return nil
	}
	limit := int64(policy.DefaultDownloadMaxSize)
	d := isolation.Download{ID: "g2", URL: "https://plain.test/huge", Name: "huge.iso", State: isolation.DownloadStarted}
	h.m.Browse(alice, d, cancel)
	d.State, d.Received = isolation.DownloadProgress, limit/2
	h.m.Browse(alice, d, cancel)
	select {
	case id := <-canceled:
		t.Fatalf("canceled %s under the limit", id)
	case <-time.After(50 * time.Millisecond):
	}
	d.Received = limit + 1
	h.m.Browse(alice, d, cancel)
	d.Received = limit + 2
	h.m.Browse(alice, d, cancel)
	if id := <-canceled; id != "g2" {
		t.Fatalf("canceled %q", id)
	}
	d.State, d.Reason = isolation.DownloadCanceled, "canceled"
	h.m.Browse(alice, d, cancel)
	list, _ := h.m.Mine("alice")
	if len(list) != 1 || list[0].State != Canceled || !strings.Contains(list[0].Reason, "100MiB") {
		t.Fatalf("%+v", list)
	}
	if len(canceled) != 0 {
		t.Error("canceled more than once")
	}
	h.agree(t)
}

// TestOverSizeDownloadDoneBeforeCancel: a download that grew past its
// limit but finished before the browser got the cancel still ends canceled,
// for the same reason, and its file leaves the quarantine.
func TestOverSizeDownloadDoneBeforeCancel(t *testing.T) {
	h := newHarness(t, nil)
	tried := make(chan string, 4)
	cancel := func(_ context.Context, id string) error {
		tried <- id
		return fmt.Errorf("download %q: no such download", id)
	}
	dir, err := h.m.SessionDir(alice.Session)
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(policy.DefaultDownloadMaxSize)
	d := isolation.Download{ID: "g3", URL: "https://plain.test/huge", Name: "huge.iso", State: isolation.DownloadStarted}
	h.m.Browse(alice, d, cancel)
	d.State, d.Received = isolation.DownloadProgress, limit+1
	h.m.Browse(alice, d, cancel)
	if id := <-tried; id != "g3" {
		t.Fatalf("tried to cancel %q", id)
	}
	path := filepath.Join(dir, "g3")
	if err := os.WriteFile(path, []byte("the browser's finished file"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.State, d.Path = isolation.DownloadDone, path
	h.m.Browse(alice, d, cancel)
	h.m.Wait()
	list, _ := h.m.Mine("alice")
	if len(list) != 1 || list[0].State != Canceled || !strings.Contains(list[0].Reason, "100MiB") {
		t.Fatalf("%+v", list)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the over-size file is still in the quarantine: %v", err)
	}
	h.agree(t)
}

// zipOf builds a ZIP of the named entries; encrypted sets the entries'
// encryption flag as a password-protected archive has it.
func zipOf(t *testing.T, encrypted bool, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range entries {
		fh := &zip.FileHeader{Name: name, Method: zip.Store}
		if encrypted {
			fh.Flags |= 1
		}
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("content of " + name))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUnscannableHeld: a password-protected archive and an Office document
// with macros are held for an approver even where policy allows archives
// and Office files (XFER-4).
func TestUnscannableHeld(t *testing.T) {
	h := newHarness(t, nil)
	enc := h.download(t, alice, "results.zip", zipOf(t, true, "results.csv"), false)
	if enc.State != Held || !strings.Contains(enc.Reason, "password") {
		t.Errorf("encrypted archive: %s %q", enc.State, enc.Reason)
	}
	docm := h.download(t, alice, "order.docm", zipOf(t, false, "[Content_Types].xml", "word/document.xml", "word/vbaProject.bin"), false)
	if docm.State != Held || !strings.Contains(docm.Reason, "macros") {
		t.Errorf("macro document: %s %q (class %s)", docm.State, docm.Reason, docm.Class)
	}
	h.agree(t)
}
