package transfer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestQuarantine: a session's browser downloads into its own directory of
// the quarantine, capped by its owner's profile; a pooled browser, whose
// owner is not known yet, gets its directory and no cap.
func TestQuarantine(t *testing.T) {
	h := newHarness(t, nil)
	want := h.m.MaxDownload(alice.Profile)
	if want <= 0 {
		t.Fatalf("profile %q: cap %d", alice.Profile, want)
	}
	for _, c := range []struct {
		name string
		o    Owner
		cap  int64
	}{
		{"owned", alice, want},
		{"pooled", Owner{Session: "pool1"}, 0},
	} {
		dir, got, err := h.m.Quarantine(c.o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.cap || dir != filepath.Join(h.dir, "sessions", c.o.Session) {
			t.Errorf("%s: %s capped at %d, want %d", c.name, dir, got, c.cap)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: directory %s: %v", c.name, dir, err)
		}
	}
	if _, _, err := h.m.Quarantine(Owner{User: "alice", Session: "../x"}); err == nil {
		t.Error("a session ID that is a path was given a directory")
	}
}
