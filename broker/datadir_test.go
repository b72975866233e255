//go:build unix

package broker

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// startBroker builds a broker on data and closes it again.
func startBroker(t *testing.T, data string, logs io.Writer) error {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = data
	cfg.Listen = "127.0.0.1:0"
	cfg.PoolSize = 0
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Out: io.Discard, Launcher: &isolationtest.Launcher{}})
	if err != nil {
		return err
	}
	return srv.Close()
}

// asFSGroupLeavesIt gives every entry under dir to group gid with group
// read and write, as Kubernetes does for a pod's fsGroup: files 0660,
// directories 2770.
func asFSGroupLeavesIt(t *testing.T, dir string, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			return err
		}
		mode := fs.FileMode(0o660)
		if d.IsDir() {
			mode = 0o770 | fs.ModeSetgid
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDataDirFSGroup(t *testing.T) {
	data := t.TempDir()
	if err := startBroker(t, data, io.Discard); err != nil {
		t.Fatal(err)
	}
	asFSGroupLeavesIt(t, data, os.Getegid())
	logs := &lockedBuffer{}
	if err := startBroker(t, data, logs); err != nil {
		t.Fatalf("start on a data directory as fsGroup leaves it: %v", err)
	}
	if !strings.Contains(logs.String(), "removed group access") {
		t.Errorf("the tightening is not logged:\n%s", logs.String())
	}
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 || fi.Mode()&fs.ModeSetgid != 0 {
			t.Errorf("%s has mode %v after the start; want no group or other access", path, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDataDirRefusals(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to a group the broker is not in needs root")
	}
	const nogroup = 65534
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, data string)
		entry   string // named in the refusal
		says    string
	}{
		{"store of a foreign group", func(t *testing.T, data string) {
			asFSGroupLeavesIt(t, data, os.Getegid())
			if err := os.Chown(filepath.Join(data, store.FileName), -1, nogroup); err != nil {
				t.Fatal(err)
			}
		}, store.FileName, "is accessible to group 65534, which the broker"},
		{"audit directory of a foreign group", func(t *testing.T, data string) {
			if err := os.Chown(filepath.Join(data, "audit"), -1, nogroup); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(data, "audit"), 0o750); err != nil {
				t.Fatal(err)
			}
		}, "audit", "is accessible to group 65534"},
		{"world-writable quarantine", func(t *testing.T, data string) {
			if err := os.Chmod(filepath.Join(data, "quarantine"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "quarantine", "is writable by every user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			if err := startBroker(t, data, io.Discard); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, data)
			err := startBroker(t, data, io.Discard)
			entry := filepath.Join(data, tc.entry)
			if !errors.Is(err, store.ErrUnsafeDir) || !strings.Contains(err.Error(), entry+" "+tc.says) {
				t.Errorf("start = %v; want a refusal saying %s %s", err, entry, tc.says)
			}
		})
	}
}

// TestDataDirOwners runs the rule on entries owned by users other than the
// broker's, which a test that runs as one user cannot make on disk.
func TestDataDirOwners(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	const broker, other, brokerGroup, otherGroup = 10001, 20002, 10001, 20002
	for _, tc := range []struct {
		name         string
		path         string
		mode         fs.FileMode
		owner, group int
		uid          int
		says         string // "" for accepted
	}{
		{"file of another user", file, 0o600, other, brokerGroup, broker, "belongs to uid 20002, not to the broker's uid 10001"},
		{"file of another user, broker is root", file, 0o600, other, otherGroup, 0, ""},
		{"volume root of root, group the broker's", sub, 0o770 | fs.ModeSetgid, 0, brokerGroup, broker, ""},
		{"volume root of root, writable by another group", sub, 0o770, 0, otherGroup, broker, "is writable by group 20002, which the broker is not in"},
		{"volume root of root, readable by another group", sub, 0o750, 0, otherGroup, broker, ""},
		{"setgid alone, another group", sub, 0o700 | fs.ModeSetgid, broker, otherGroup, broker, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(tc.path, tc.mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			changed, err := tightenEntry(tc.path, fi, tc.owner, tc.group, tc.uid, []int{brokerGroup})
			switch {
			case tc.says == "" && (err != nil || changed):
				t.Errorf("tightenEntry = %v, %v; want it accepted as it is", changed, err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.path+" ") || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("tightenEntry = %v; want a refusal naming %s saying %q", err, tc.path, tc.says)
			}
		})
	}
}
