package broker

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/chrome"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// TestSessionJournalFollowsSessions: a live session has its journal entry;
// once it ends, its session_end is in the trail and the entry is gone.
func TestSessionJournalFollowsSessions(t *testing.T) {
	f := newAPI(t, nil)
	term := netip.MustParseAddr("10.1.2.3")
	s, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician", Terminal: term}, testViewport)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.srv.store.JournalEntries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Session != s.ID || entries[0].User != "alice" || entries[0].Role != "clinician" ||
		entries[0].Terminal != "10.1.2.3" || !entries[0].Started.Equal(s.Started) {
		t.Fatalf("journal of a live session = %+v, want alice's session %s", entries, s.ID)
	}
	s.End(session.ReasonAdmin)
	if entries, err := f.srv.store.JournalEntries(); err != nil || len(entries) != 0 {
		t.Errorf("journal after the end = %+v, %v; want it empty", entries, err)
	}
	ends := f.auditEvents(audit.Filter{Type: audit.TypeSessionEnd})
	if len(ends) != 1 || ends[0].Session != s.ID || ends[0].Reason != "admin" {
		t.Errorf("session_end records %+v, want one for %s", ends, s.ID)
	}
}

// copyTree copies the directory src to dst, as a broker that was killed
// left it.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startOn starts a broker with a fake launcher on the data directory dir.
func startOn(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = dir
	cfg.Listen = "127.0.0.1:0"
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: io.Discard, Launcher: &isolationtest.Launcher{}})
	if err != nil {
		t.Fatalf("start on %s: %v", dir, err)
	}
	return srv
}

// TestSessionsOfAKilledBrokerRecordedAsEnded starts a broker on the data
// directory a broker left while it had live sessions (a copy taken while
// it ran, as kill -9 leaves it): each of those sessions gets a session_end
// with the reason broker_stopped, once, and the trail verifies.
func TestSessionsOfAKilledBrokerRecordedAsEnded(t *testing.T) {
	f := newAPI(t, nil)
	var live []*session.Session
	for i, user := range []string{"alice", "bob"} {
		s, err := f.srv.Sessions().Attach(context.Background(), session.Owner{
			User: user, Role: "clinician", Terminal: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}),
		}, testViewport)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, s)
	}
	f.auditEvents(audit.Filter{}) // everything recorded so far is on disk
	left := filepath.Join(t.TempDir(), "data")
	copyTree(t, f.srv.cfg.Data, left)

	srv := startOn(t, left)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// A second start finds nothing more to record.
	srv = startOn(t, left)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	var ends []audit.Event
	for e, err := range audit.Scan(filepath.Join(left, "audit"), audit.Filter{Type: audit.TypeSessionEnd}) {
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, e)
	}
	if len(ends) != len(live) {
		t.Fatalf("%d session_end records, want %d: %+v", len(ends), len(live), ends)
	}
	for _, s := range live {
		i := slices.IndexFunc(ends, func(e audit.Event) bool { return e.Session == s.ID })
		if i < 0 {
			t.Errorf("no session_end for %s's session %s", s.User, s.ID)
			continue
		}
		e := ends[i]
		if e.Reason != reasonBrokerStopped || e.User != s.User || e.Role != "clinician" || e.Terminal != s.Terminal.String() {
			t.Errorf("session_end %+v, want %s's with reason %s", e, s.User, reasonBrokerStopped)
		}
	}
	if _, err := audit.Verify(filepath.Join(left, "audit")); err != nil {
		t.Errorf("trail after the recovery: %v", err)
	}
	st, err := store.Open(left)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if entries, err := st.JournalEntries(); err != nil || len(entries) != 0 {
		t.Errorf("journal after the recovery = %+v, %v; want it empty", entries, err)
	}
}

// TestSessionEndFailedRecordedAtNextStart: a session whose end could not
// be recorded (its entry says why it ended) gets its session_end with that
// reason at the next start.
func TestSessionEndFailedRecordedAtNextStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour).UTC()
	err = st.PutJournalEntry(store.JournalEntry{Session: "s1", User: "alice", Role: "clinician", Started: started, Ended: "idle"})
	if err == nil {
		err = st.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := startOn(t, dir).Close(); err != nil {
		t.Fatal(err)
	}
	var got []audit.Event
	for e, err := range audit.Scan(filepath.Join(dir, "audit"), audit.Filter{Type: audit.TypeSessionEnd}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 1 || got[0].Session != "s1" || got[0].Reason != "idle" || got[0].User != "alice" {
		t.Errorf("session_end records %+v, want s1's with reason idle", got)
	}
}

// startStray starts a process as a browser of a previous run is left: in
// a session of its own, carrying the marker of the profile root, with a
// child in its process group. It returns the process and its child's pid.
func startStray(t *testing.T, root, profile string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	cmd.Env = []string{"PATH=/usr/bin:/bin", chrome.MarkerEnv + "=" + root, "HOME=" + profile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	return cmd, child
}

// exited reports whether pid has exited (it may be a zombie).
func exited(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// TestBrowsersOfPreviousRunRemovedAtStart: a browser process a previous
// run left running under DATA/profiles is killed with its process group
// when the broker starts, its profile is removed, and both are recorded;
// a browser of another data directory runs on.
func TestBrowsersOfPreviousRunRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "profiles")
	profile := filepath.Join(root, "s-5e55-42")
	if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "Default", "Cookies"), make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	stray, child := startStray(t, root, profile)
	otherRoot := filepath.Join(t.TempDir(), "profiles")
	other, otherChild := startStray(t, otherRoot, filepath.Join(otherRoot, "s-0the-1"))

	srv := startOn(t, dir)
	defer srv.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !exited(stray.Process.Pid) || !exited(child) {
		if time.Now().After(deadline) {
			t.Fatal("the stray browser or its child is still running")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if exited(other.Process.Pid) || exited(otherChild) {
		t.Error("the browser of another data directory was killed")
	}
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Errorf("the stray's profile is still there: %v", err)
	}

	var rec []audit.Event
	for e, err := range audit.Scan(filepath.Join(dir, "audit"), audit.Filter{Type: audit.TypeRecovery}) {
		if err != nil {
			t.Fatal(err)
		}
		rec = append(rec, e)
	}
	want := map[string]bool{"browser": false, "profile": false}
	for _, e := range rec {
		switch {
		case e.What == "browser" && e.Target == "pid "+strconv.Itoa(stray.Process.Pid) && e.Session == "5e55":
			want["browser"] = true
		case e.What == "profile" && e.Target == profile && e.Session == "5e55" && e.Count == 1 && e.Length == 1000:
			want["profile"] = true
		}
	}
	for what, seen := range want {
		if !seen {
			t.Errorf("no recovery record of the %s: %+v", what, rec)
		}
	}
}
