package transfer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/audit"
)

func TestWithin(t *testing.T) {
	cases := []struct {
		path, dir string
		want      bool
	}{
		{"/srv/a", "/srv/a", true},
		{"/srv/a/b", "/srv/a", true},
		{"/srv/ab", "/srv/a", false},
		{"/srv", "/srv/a", false},
		{"/anything", "/", true},
		{"/", "/", true},
	}
	for _, c := range cases {
		if got := within(c.path, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.path, c.dir, got)
		}
	}
}

// TestDestinationRefused: a destination in, equal to or above the data
// directory (its audit trail, profiles, quarantine), another protected
// directory, or a system directory is refused, also through a symbolic
// link; an ordinary share is accepted.
func TestDestinationRefused(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	admin := Person{User: "root", Role: "admin"}
	share := t.TempDir()
	for _, sub := range []string{"audit", "profiles"} {
		if err := os.MkdirAll(filepath.Join(h.data, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(share, "link-to-data")
	if err := os.Symlink(filepath.Join(h.data, "audit"), link); err != nil {
		t.Fatal(err)
	}
	linkUp := filepath.Join(share, "link-to-root")
	if err := os.Symlink("/", linkUp); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dir, why string }{
		{"data directory", h.data, "directory of the broker or the system"},
		{"audit trail", filepath.Join(h.data, "audit"), "inside"},
		{"profiles", filepath.Join(h.data, "profiles"), "inside"},
		{"quarantine", h.dir, "directory of the broker or the system"},
		{"inside the quarantine", filepath.Join(h.dir, "files"), "inside"},
		{"above the data directory", filepath.Dir(h.data), "holds"},
		{"root", "/", "directory of the broker or the system"},
		{"etc", "/etc", "directory of the broker or the system"},
		{"inside usr", "/usr/share", "inside"},
		{"inside proc", "/proc/self", "inside"},
		{"var", "/var", "directory of the broker or the system"},
		{"var/lib itself", "/var/lib", "directory of the broker or the system"},
		{"tmp itself", "/tmp", "directory of the broker or the system"},
		{"link into the trail", link, "inside"},
		{"link to root", linkUp, "directory of the broker or the system"},
		{"missing", filepath.Join(share, "missing"), "not an existing directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.m.AddDestination(ctx, admin, Destination{Name: "bad", Dir: c.dir})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("destination %s: %v, want ErrInvalid saying %q", c.dir, err, c.why)
			}
		})
	}
	if list, _ := h.m.Destinations(); len(list) != 0 {
		t.Errorf("registered: %+v", list)
	}
	if _, err := h.m.AddDestination(ctx, admin, Destination{Name: "ikyoku", Dir: share}); err != nil {
		t.Fatalf("an ordinary share: %v", err)
	}
	if left, _ := os.ReadDir(share); len(left) != 2 {
		t.Errorf("the probe was left behind: %v", left)
	}
}

// TestDestinationSwappedForLink: a destination that was safe when it was
// registered and then replaced by a symbolic link into the data directory
// is refused at the next send, with a clear error for the clinician (no
// path), a "refused" record in the trail, and nothing written into the
// data directory.
func TestDestinationSwappedForLink(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	parent := t.TempDir()
	share := filepath.Join(parent, "ikyoku")
	if err := os.Mkdir(share, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.AddDestination(ctx, Person{User: "root"}, Destination{Name: "ikyoku", Dir: share}); err != nil {
		t.Fatal(err)
	}
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if _, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku"); err != nil {
		t.Fatal(err)
	}
	// The admin (or anyone who can write parent) swaps the share.
	if err := os.Rename(share, share+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.data, share); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(h.data)
	_, err := h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku")
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "not safe") || strings.Contains(err.Error(), h.data) {
		t.Fatalf("send to a swapped destination: %v", err)
	}
	after, _ := os.ReadDir(h.data)
	if len(after) != len(before) {
		t.Errorf("the data directory holds %d entries, had %d", len(after), len(before))
	}
	// The refusal is in the trail, with the reason.
	found := false
	for e, err := range audit.Scan(h.trail(), audit.Filter{Type: audit.TypeTransfer}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Transfer.ID == tr.ID && e.Transfer.State == "refused" && strings.Contains(e.Transfer.Reason, "unsafe destination") {
			found = true
		}
	}
	if !found {
		t.Error("no audit record of the refused send")
	}
	got, _ := h.m.Get(tr.ID)
	if len(got.Sent) != 1 {
		t.Errorf("sent %d times, want the one before the swap", len(got.Sent))
	}
}

// TestUnsafeDestinationAtStart: a destination in the store that is not
// safe (registered by an older version, or edited) is reported at start and
// refused at send.
func TestUnsafeDestinationAtStart(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, nil)
	if err := h.st.PutDestination(Destination{Name: "old", Dir: h.data}); err != nil {
		t.Fatal(err)
	}
	h.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := h.restart(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "destination=old") {
		t.Errorf("not reported at start:\n%s", logs.String())
	}
	tr := h.download(t, alice, "a.pdf", pdf, false)
	if _, err := h.m.Send(context.Background(), Person{User: "alice"}, tr.ID, "old"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("send to an unsafe destination: %v", err)
	}
}

// TestProtectedConfig: a Protected entry that is empty is a configuration
// error.
func TestProtectedConfig(t *testing.T) {
	h := newHarness(t, nil)
	cfg := h.cfg
	cfg.Protected = []string{""}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Protected") {
		t.Fatalf("New with an empty protected path: %v", err)
	}
}
