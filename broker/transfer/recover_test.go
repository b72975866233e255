package transfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation"
)

// recoveries returns the recovery records of the harness's trail.
func (h *harness) recoveries(t *testing.T) []audit.Event {
	t.Helper()
	var out []audit.Event
	for e, err := range audit.Scan(h.trail(), audit.Filter{Type: audit.TypeRecovery}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestRecoverEveryState: Recover at start deals with an entry in every
// state a previous run can leave, with or without its quarantined file, and
// with garbage, without panicking; notifications go nowhere (Notify nil).
func TestRecoverEveryState(t *testing.T) {
	type file int
	const (
		none file = iota
		download
		upload
	)
	cases := []struct {
		name      string
		id        string
		state     State
		direction Direction
		file      file
		expired   bool
		content   []byte
		// want
		state2  State
		kept    bool // the file is there afterwards
		expire  bool // the entry is expired afterwards
		wantErr bool
		steps   []string
	}{
		{name: "receiving without a file", state: Receiving, state2: Canceled, steps: []string{"canceled"}},
		{name: "receiving with the complete file", state: Receiving, file: download, content: pdf, state2: Released, kept: true, steps: []string{"received", "released"}},
		{name: "receiving print", state: Receiving, direction: Print, state2: Canceled, steps: []string{"canceled"}},
		{name: "receiving upload", state: Receiving, direction: Upload, file: upload, state2: Canceled, steps: []string{"canceled"}},
		{name: "checking", state: Checking, file: download, content: pdf, state2: Released, kept: true, steps: []string{"released"}},
		{name: "checking a file to hold", state: Checking, file: download, content: []byte{0, 1, 2, 3, 4, 5, 6, 7}, state2: Held, kept: true, steps: []string{"held"}},
		{name: "checking without a file", state: Checking, state2: Rejected, steps: []string{"rejected"}},
		{name: "held", state: Held, file: download, state2: Held, kept: true},
		{name: "held without a file", state: Held, state2: Held, expire: true, steps: []string{"deleted"}},
		{name: "released", state: Released, file: download, state2: Released, kept: true},
		{name: "released without a file", state: Released, state2: Released, expire: true, steps: []string{"deleted"}},
		{name: "released upload", state: Released, direction: Upload, file: upload, state2: Released, kept: true},
		{name: "released upload without a file", state: Released, direction: Upload, state2: Released, expire: true, steps: []string{"deleted"}},
		{name: "rejected with its file left", state: Rejected, file: download, state2: Rejected},
		{name: "rejected upload with its file left", state: Rejected, direction: Upload, file: upload, state2: Rejected},
		{name: "canceled", state: Canceled, state2: Canceled},
		{name: "expired with its file left", state: Released, file: download, expired: true, state2: Released, expire: true},
		{name: "expired held", state: Held, expired: true, state2: Held, expire: true},
		{name: "unknown state", state: "teleported", file: download, state2: "teleported", kept: true, wantErr: true},
		{name: "empty state", state: "", state2: "", wantErr: true},
		{name: "ID that is a path", id: "../../../outside", state: Checking, state2: Checking, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(cfg *Config) { cfg.Notify = nil })
			id := c.id
			if id == "" {
				id = NewID()
			}
			dir := c.direction
			if dir == "" {
				dir = Download
			}
			tr := Transfer{ID: id, Direction: dir, User: "alice", Profile: "ward", Name: "a.pdf", PageName: "a.pdf",
				State: c.state, Created: h.clock(), Updated: h.clock()}
			if c.expired {
				tr.Expired = h.clock()
			}
			if err := h.st.CreateTransfer(tr); err != nil {
				t.Fatal(err)
			}
			content := c.content
			if content == nil {
				content = pdf
			}
			var path string
			switch c.file {
			case download:
				path = h.m.filePath(id)
				if err := os.WriteFile(path, content, 0o600); err != nil {
					t.Fatal(err)
				}
			case upload:
				path = filepath.Join(h.dir, "uploads", id)
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(path, tr.Name), content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := h.restart(t)
			if (err != nil) != c.wantErr {
				t.Fatalf("Recover: %v, want an error: %v", err, c.wantErr)
			}
			got, gerr := h.st.Transfer(id)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if got.State != c.state2 || got.Expired.IsZero() == c.expire {
				t.Errorf("after recovery: state %q expired %v, want %q expired %v", got.State, got.Expired, c.state2, c.expire)
			}
			if path != "" {
				_, err := os.Stat(path)
				if kept := err == nil; kept != c.kept {
					t.Errorf("file kept: %v, want %v", kept, c.kept)
				}
			}
			if s := h.steps(t, id); !slices.Equal(s, c.steps) {
				t.Errorf("steps %v, want %v", s, c.steps)
			}
			// A second start finds nothing more to do.
			before := len(h.steps(t, id)) + len(h.recoveries(t))
			_ = h.restart(t)
			if after := len(h.steps(t, id)) + len(h.recoveries(t)); after != before {
				t.Errorf("a second start wrote %d more records", after-before)
			}
		})
	}
}

// TestRecoverGarbageLedger: a ledger record that cannot be read makes
// Recover leave the quarantine's files alone (nothing says whose they
// are), but it still removes dead sessions' partial downloads, and
// returns the error instead of panicking.
func TestRecoverGarbageLedger(t *testing.T) {
	h := newHarness(t, nil)
	dead := filepath.Join(h.dir, "sessions", "dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "x.crdownload"), []byte("part"), 0o600); err != nil {
		t.Fatal(err)
	}
	someone := filepath.Join(h.dir, "files", NewID())
	if err := os.WriteFile(someone, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	// A record the store cannot decode fails every listing of the ledger
	// (broker/store's TestListTransfersUndecodable shows bbolt's does).
	h.st.mu.Lock()
	h.st.listErr = errors.New("store transfer: decode garbage: invalid character 'n'")
	h.st.mu.Unlock()
	if err := h.restart(t); err == nil || !strings.Contains(err.Error(), "ledger") {
		t.Fatalf("Recover on an unreadable ledger: %v", err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Error("a dead session's downloads were kept")
	}
	if _, err := os.Stat(someone); err != nil {
		t.Error("a quarantined file was removed though the ledger could not be read")
	}
}

// TestRecoverQuarantineLeftovers: the download directories of sessions of
// a previous run go with their partial files, files and upload directories
// no ledger entry owns go, and temporary files an interrupted delivery
// left in a destination go; each with a recovery record that says how many
// files and bytes. A session directory of this run stays.
func TestRecoverQuarantineLeftovers(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	share := t.TempDir()
	if _, err := h.m.AddDestination(ctx, Person{User: "root"}, Destination{Name: "ikyoku", Dir: share}); err != nil {
		t.Fatal(err)
	}
	write := func(path string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Repeat([]byte("x"), n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadID := "0f3c1e7a-dead"
	dead := filepath.Join(h.dir, "sessions", deadID)
	write(filepath.Join(dead, "6a1f.crdownload"), 100)
	write(filepath.Join(dead, "7b2e.crdownload"), 50)
	stray := filepath.Join(h.dir, "files", NewID())
	write(stray, 10)
	strayUpload := filepath.Join(h.dir, "uploads", NewID())
	write(filepath.Join(strayUpload, "letter.txt"), 20)
	temp := filepath.Join(share, ".shoji-0123456789abcdef.part")
	write(temp, 30)
	kept := filepath.Join(share, "20261123-090000-alice-a.pdf")
	write(kept, 40)

	// A released file of the ledger stays.
	tr := h.download(t, alice, "a.pdf", pdf, false)

	if err := h.restart(t); err != nil {
		t.Fatal(err)
	}
	// A browser of the new run gets a directory, and a later recovery (a
	// second start cannot happen while it lives, but Recover must not
	// trust that) keeps it.
	live, err := h.m.SessionDir("live")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dead, stray, strayUpload, temp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", p)
		}
	}
	for _, p := range []string{live, kept, h.m.filePath(tr.ID)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	type rec struct {
		what, target string
		files, bytes int64
	}
	var got []rec
	for _, e := range h.recoveries(t) {
		got = append(got, rec{e.What, e.Target, e.Count, e.Length})
		if e.Reason == "" {
			t.Errorf("recovery record without a reason: %+v", e)
		}
	}
	want := []rec{
		{"quarantine", filepath.Base(stray), 1, 10},
		{"quarantine", filepath.Base(strayUpload), 1, 20},
		{"quarantine", deadID, 2, 150},
		{"quarantine", alice.Session, 0, 0}, // the session of the download above, of the run before
		{"destination", "ikyoku:" + filepath.Base(temp), 1, 30},
	}
	if !slices.Equal(got, want) {
		t.Errorf("recovery records\n got %v\nwant %v", got, want)
	}
	h.agree(t)
}

// TestRecoverLeavesWhatTheTrailRefuses: a removal whose record the trail
// does not take waits for the next start.
func TestRecoverLeavesWhatTheTrailRefuses(t *testing.T) {
	h := newHarness(t, nil)
	dead := filepath.Join(h.dir, "sessions", "dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	h.flaky.failWhen(always)
	if err := h.restart(t); err == nil {
		t.Fatal("Recover reported success with the trail down")
	}
	if _, err := os.Stat(dead); err != nil {
		t.Fatal("removed without a record")
	}
	h.flaky.failWhen(nil)
	if err := h.restart(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("not removed once the trail took the record")
	}
}

// TestRestartAfterCrashAgrees: a run that ends abruptly with a download
// receiving, one checking (its result not taken by the trail), one held,
// one released and saved, and a session directory with a partial file,
// starts again with every transfer moved on, nothing left in the
// quarantine that nobody owns, a verifying trail, and a ledger that agrees
// with it.
func TestRestartAfterCrashAgrees(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	released := h.download(t, alice, "a.pdf", pdf, false)
	if f, _, err := h.m.Open(ctx, Person{User: "alice"}, released.ID); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	h.scanner.down = true
	held := h.download(t, alice, "b.pdf", pdf, false)
	h.scanner.down = false
	if _, err := h.m.Justify(Person{User: "alice"}, held.ID, "ward 3 needs it"); err != nil {
		t.Fatal(err)
	}
	h.flaky.failWhen(step("released", "held"))
	checking := h.download(t, alice, "c.pdf", pdf, false)
	if checking.State != Checking {
		t.Fatalf("state %s, want checking", checking.State)
	}
	h.flaky.failWhen(nil)
	dir, _ := h.m.SessionDir(alice.Session)
	if err := os.WriteFile(filepath.Join(dir, "partial.crdownload"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.m.Browse(alice, isolation.Download{ID: "g-live", URL: "https://plain.test/d", Name: "d.pdf", State: isolation.DownloadStarted}, nil)

	// The broker dies here: no EndSession, no Wait.
	if err := h.restart(t); err != nil {
		t.Fatal(err)
	}
	want := map[string]State{released.ID: Released, held.ID: Held, checking.ID: Released}
	list, _ := h.m.Mine("alice")
	for _, tr := range list {
		w, ok := want[tr.ID]
		if !ok {
			w = Canceled // the download that was receiving
		}
		if tr.State != w {
			t.Errorf("%s: state %s after restart, want %s", tr.Name, tr.State, w)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(h.dir, "sessions")); len(left) != 0 {
		t.Errorf("session directories left: %v", left)
	}
	if _, err := audit.Verify(h.trail()); err != nil {
		t.Fatal(err)
	}
	h.agree(t)
}

// TestWriteAheadEveryStep: every operation that changes the ledger,
// tried while the trail takes nothing, leaves the ledger as it was and
// fails closed; the ledger and the trail agree throughout.
func TestWriteAheadEveryStep(t *testing.T) {
	ctx := context.Background()
	approver := Person{User: "bob", Role: "approver"}
	cases := []struct {
		name string
		// held: start from a held download, else a released one.
		held  bool
		do    func(h *harness, tr Transfer) error
		check func(t *testing.T, h *harness, share string, after Transfer)
	}{
		{name: "justify", held: true,
			do: func(h *harness, tr Transfer) error {
				_, err := h.m.Justify(Person{User: "alice"}, tr.ID, "needed")
				return err
			},
			check: func(t *testing.T, _ *harness, _ string, after Transfer) {
				if after.Justification != "" {
					t.Error("justification stored without its record")
				}
			}},
		{name: "approve", held: true,
			do: func(h *harness, tr Transfer) error {
				_, err := h.m.Decide(ctx, approver, tr.ID, true, "")
				return err
			},
			check: func(t *testing.T, _ *harness, _ string, after Transfer) {
				if after.State != Held {
					t.Errorf("state %s", after.State)
				}
			}},
		{name: "reject", held: true,
			do: func(h *harness, tr Transfer) error {
				_, err := h.m.Decide(ctx, approver, tr.ID, false, "")
				return err
			},
			check: func(t *testing.T, h *harness, _ string, after Transfer) {
				if after.State != Held {
					t.Errorf("state %s", after.State)
				}
				if _, err := os.Stat(h.m.filePath(after.ID)); err != nil {
					t.Error("file deleted without the rejection's record")
				}
			}},
		{name: "save",
			do: func(h *harness, tr Transfer) error {
				f, _, err := h.m.Open(ctx, Person{User: "alice"}, tr.ID)
				if err == nil {
					f.Close()
				}
				return err
			},
			check: func(t *testing.T, _ *harness, _ string, after Transfer) {
				if after.Saved != 0 {
					t.Errorf("saved %d times without a record", after.Saved)
				}
			}},
		{name: "send",
			do: func(h *harness, tr Transfer) error {
				_, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku")
				return err
			},
			check: func(t *testing.T, _ *harness, share string, after Transfer) {
				if len(after.Sent) != 0 {
					t.Error("sent without a record")
				}
				if left, _ := os.ReadDir(share); len(left) != 0 {
					t.Errorf("the destination holds %v", left)
				}
			}},
		{name: "retention",
			do: func(h *harness, tr Transfer) error {
				h.advance(48 * time.Hour)
				if n := h.m.Sweep(ctx); n != 0 {
					return errors.New("swept")
				}
				return errors.New("nothing swept, as it should")
			},
			check: func(t *testing.T, h *harness, _ string, after Transfer) {
				if !after.Expired.IsZero() {
					t.Error("expired without a record")
				}
				if _, err := os.Stat(h.m.filePath(after.ID)); err != nil {
					t.Error("file deleted without a record")
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			share := t.TempDir()
			h := newHarness(t, nil)
			if _, err := h.m.AddDestination(ctx, Person{User: "root"}, Destination{Name: "ikyoku", Dir: share}); err != nil {
				t.Fatal(err)
			}
			h.scanner.down = c.held
			before := h.download(t, alice, "a.pdf", pdf, false)
			h.scanner.down = false
			h.flaky.failWhen(always)
			if err := c.do(h, before); err == nil {
				t.Error("succeeded with the trail down")
			}
			after, err := h.m.Get(before.ID)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, h, share, after)
			h.flaky.failWhen(nil)
			h.agree(t)
		})
	}
}

// TestUploadTrailDown: an upload while the trail takes nothing is refused
// and its entry, left in receiving, is canceled by Retry once the trail is
// back, with its file gone.
func TestUploadTrailDown(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	answer := func(context.Context, []string) error { return nil }
	h.m.ChooserOpened(alice, isolation.FileChooser{ID: "c1", URL: "https://upload.test/form"}, answer)
	h.flaky.failWhen(step("released"))
	tr, err := h.m.Upload(ctx, Person{User: "alice"}, "c1", "letter.txt", 5, strings.NewReader("hello"))
	if err == nil || tr.State == Released {
		t.Fatalf("uploaded with the trail down: %+v %v", tr, err)
	}
	h.flaky.failWhen(nil)
	h.m.Retry(ctx)
	got, _ := h.m.Get(tr.ID)
	if got.State != Canceled {
		t.Fatalf("state %s after retry, want canceled", got.State)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "uploads", tr.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the upload's file was kept")
	}
	h.agree(t)
}

// TestEndSessionCancelsDownloads: a session that ends while its browser is
// downloading (a logout, the idle timeout) cancels the download at once;
// its browser will never report it.
func TestEndSessionCancelsDownloads(t *testing.T) {
	h := newHarness(t, nil)
	h.m.Browse(alice, isolation.Download{ID: "g1", URL: "https://plain.test/big", Name: "big.iso", State: isolation.DownloadStarted}, nil)
	other := Owner{User: "bob", Session: "s2", Profile: "ward"}
	h.m.Browse(other, isolation.Download{ID: "g2", URL: "https://plain.test/big", Name: "big.iso", State: isolation.DownloadStarted}, nil)
	h.m.EndSession(alice.Session)
	mine, _ := h.m.Mine("alice")
	if len(mine) != 1 || mine[0].State != Canceled || !strings.Contains(mine[0].Reason, "session ended") {
		t.Fatalf("%+v", mine)
	}
	bobs, _ := h.m.Mine("bob")
	if len(bobs) != 1 || bobs[0].State != Receiving {
		t.Fatalf("another session's download: %+v", bobs)
	}
	// Run leaves bob's download alone: his browser is still writing it.
	h.m.Retry(context.Background())
	if got, _ := h.m.Get(bobs[0].ID); got.State != Receiving {
		t.Errorf("a live download was canceled: %s", got.State)
	}
	h.agree(t)
}

// TestCanceledDownloadTrailDown: a download the browser cancels while the
// trail takes nothing stays receiving, and Run's Retry cancels it once the
// trail is back.
func TestCanceledDownloadTrailDown(t *testing.T) {
	h := newHarness(t, nil)
	d := isolation.Download{ID: "g1", URL: "https://plain.test/big", Name: "big.iso", State: isolation.DownloadStarted}
	h.m.Browse(alice, d, nil)
	h.flaky.failWhen(always)
	d.State, d.Reason = isolation.DownloadCanceled, "canceled in the browser"
	h.m.Browse(alice, d, nil)
	list, _ := h.m.Mine("alice")
	if len(list) != 1 || list[0].State != Receiving {
		t.Fatalf("%+v", list)
	}
	h.flaky.failWhen(nil)
	h.m.Retry(context.Background())
	got, _ := h.m.Get(list[0].ID)
	if got.State != Canceled {
		t.Fatalf("state %s after retry", got.State)
	}
	if s := h.steps(t, got.ID); !slices.Equal(s, []string{"started", "canceled"}) {
		t.Errorf("steps %v", s)
	}
	h.agree(t)
}
