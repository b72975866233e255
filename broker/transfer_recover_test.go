package broker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// TestStartAfterInterruptedTransfers: a broker starts on the first try on a
// data directory that a killed broker left with a download receiving, one
// checking, a held file that is gone and a dead session's partial
// download (issue 9: the start panicked in notifyTransfer). The warm
// pool's browsers keep their download directories, the dead session's goes,
// and the ledger and the trail agree afterwards.
func TestStartAfterInterruptedTransfers(t *testing.T) {
	data := t.TempDir()
	st, err := store.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	entry := func(state transfer.State) transfer.Transfer {
		tr := transfer.Transfer{ID: transfer.NewID(), Direction: transfer.Download, User: "nurse", Role: "clinician",
			Session: "dead", Name: "a.pdf", PageName: "a.pdf", State: state, Created: now, Updated: now}
		if err := st.CreateTransfer(tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	receiving, checking, held := entry(transfer.Receiving), entry(transfer.Checking), entry(transfer.Held)
	st.Close()
	// The killed broker had recorded the hold.
	sink, err := audit.OpenFile(filepath.Join(data, "audit"), audit.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Commit(context.Background(), audit.TransferStep(now, audit.Actor{User: "nurse"}, audit.Transfer{ID: held.ID, State: "held"})); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	quarantine := filepath.Join(data, "quarantine")
	for path, content := range map[string][]byte{
		filepath.Join(quarantine, "files", checking.ID):               testPDF,
		filepath.Join(quarantine, "sessions", "dead", "x.crdownload"): []byte("half a file"),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.Data, cfg.Listen, cfg.PoolSize = data, "127.0.0.1:0", 1
	l := &isolationtest.Launcher{}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Launcher: l})
	if err != nil {
		t.Fatal(err)
	}
	srv.Transfers().Wait()
	for _, c := range []struct {
		tr    transfer.Transfer
		state transfer.State
	}{{receiving, transfer.Canceled}, {checking, transfer.Released}, {held, transfer.Held}} {
		got, err := srv.Transfers().Get(c.tr.ID)
		if err != nil || got.State != c.state {
			t.Errorf("transfer %s: %s %v, want %s", c.tr.State, got.State, err, c.state)
		}
	}
	sessions, _ := os.ReadDir(filepath.Join(quarantine, "sessions"))
	for _, e := range sessions {
		if e.Name() == "dead" {
			t.Error("the dead session's partial download was kept")
		}
	}
	if len(sessions) != 1 {
		t.Errorf("session directories %v, want the pooled browser's", sessions)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(filepath.Join(data, "audit")); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list, err := transfer.CheckLedger(st, filepath.Join(data, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		t.Errorf("ledger and trail disagree: %s", d)
	}
}

// TestDestinationIntoDataDir (adversarial): an admin cannot make a
// departmental destination of the broker's own data directory, its trail,
// profiles or quarantine, a directory above it, the configuration's
// directory or a system directory, not even through a symbolic link; and a
// share swapped for a link into the data directory after it was registered
// is refused at the next send.
func TestDestinationIntoDataDir(t *testing.T) {
	confDir := t.TempDir()
	f := newAPI(t, func(c *Config) { c.ConfigFile = filepath.Join(confDir, "shoji.yaml") })
	f.addUser("nurse", auth.Clinician)
	f.addUser("root", auth.Admin)
	nurse, root := f.login("nurse"), f.login("root")
	data := f.srv.Config().Data
	if err := os.MkdirAll(filepath.Join(data, "profiles"), 0o700); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	sneaky := filepath.Join(parent, "sneaky")
	if err := os.Symlink(filepath.Join(data, "audit"), sneaky); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{
		data, filepath.Join(data, "audit"), filepath.Join(data, "profiles"), filepath.Join(data, "quarantine"),
		filepath.Dir(data), confDir, "/", "/etc", "/usr/lib", "/var/lib", sneaky,
	} {
		resp, m := f.post(root, "/api/admin/destinations", `{"name":"x","dir":"`+dir+`"}`)
		msg, _ := m["error"].(string)
		if resp.StatusCode != 400 || !strings.Contains(msg, "directory of the broker or the system") {
			t.Errorf("destination %s: %d %q", dir, resp.StatusCode, msg)
		}
	}

	share := filepath.Join(parent, "ikyoku")
	if err := os.Mkdir(share, 0o700); err != nil {
		t.Fatal(err)
	}
	if resp, m := f.post(root, "/api/admin/destinations", `{"name":"ikyoku","dir":"`+share+`"}`); resp.StatusCode != 201 {
		t.Fatalf("add: %d %v", resp.StatusCode, m)
	}
	released := f.fakeDownload("nurse", "notice.pdf", testPDF)
	if err := os.Remove(share); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, share); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(data)
	resp, m := f.post(nurse, "/api/transfers/"+released.ID+"/send", `{"destination":"ikyoku"}`)
	msg, _ := m["error"].(string)
	if resp.StatusCode != 403 || !strings.Contains(msg, "not safe") || strings.Contains(msg, data) {
		t.Errorf("send into the data directory: %d %q", resp.StatusCode, msg)
	}
	after, _ := os.ReadDir(data)
	if len(after) != len(before) {
		t.Errorf("the data directory holds %d entries, had %d", len(after), len(before))
	}
	if _, err := os.Stat(filepath.Join(data, "shoji.db")); errors.Is(err, os.ErrNotExist) {
		t.Error("the store is gone")
	}
}
