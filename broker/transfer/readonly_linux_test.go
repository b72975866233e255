package transfer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs at a new directory with the mount options
// opts, unmounted when the test ends. It needs root.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a file system needs root")
	}
	dir := filepath.Join(t.TempDir(), "share")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestReadOnlyDestination: a destination on a file system that is
// read-only to the broker (systemd's ProtectSystem=strict without
// ReadWritePaths) is refused when an admin adds it, reported at start, and
// a send to it fails, each saying what to do.
func TestReadOnlyDestination(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	admin := Person{User: "root"}
	hint := func(dir string) string {
		return dir + " is read-only to the broker; under systemd add ReadWritePaths=" + dir + " to the unit (docs/deploy.md)"
	}

	ro := mountTmpfs(t, "ro,mode=0700")
	_, err := h.m.AddDestination(ctx, admin, Destination{Name: "ro", Dir: ro})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), hint(ro)) {
		t.Errorf("add a read-only destination: %v; want it refused saying %q", err, hint(ro))
	}

	share := mountTmpfs(t, "rw,mode=0700")
	if _, err := h.m.AddDestination(ctx, admin, Destination{Name: "ikyoku", Dir: share}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", share).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	tr := h.download(t, alice, "a.pdf", pdf, false)
	_, err = h.m.Send(ctx, Person{User: "alice"}, tr.ID, "ikyoku")
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), hint(share)) {
		t.Errorf("send to a destination that became read-only: %v; want EROFS saying %q", err, hint(share))
	}

	var logs bytes.Buffer
	h.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := h.restart(t); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "destination=ikyoku") || !strings.Contains(logs.String(), "ReadWritePaths="+share) {
		t.Errorf("a read-only destination is not reported at start:\n%s", logs.String())
	}
}
