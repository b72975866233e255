//go:build unix

package broker

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/shoji-rbi/shoji/broker/store"
)

// Kubernetes gives a pod's volumes to its fsGroup: at every mount it sets
// the group of every file to that group and adds group read and write
// (files 0660, directories 2770). The broker's own checks then refuse its
// database, keys and audit trail as "accessible to other users". The group
// is the pod's own, so no one else gains anything from it; the broker takes
// the access away again at start instead of refusing.

// tightenDataDir walks the data directory dir (not the browser profiles
// under it, which the start removes) and removes group access from every
// entry the broker owns whose group is one of the broker's own (its gid,
// or a supplementary group such as the fsGroup). It refuses, naming the
// entry, anything that every user may write, an entry whose group is not
// the broker's and has access, a file someone else owns, and a directory
// someone else owns that a group not the broker's may write. It returns
// the entries it changed.
func tightenDataDir(dir string) ([]string, error) {
	uid := os.Geteuid()
	groups, err := os.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("data directory: the broker's groups: %w", err)
	}
	groups = append(groups, os.Getegid())
	profiles := filepath.Join(dir, "profiles")
	var changed []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // its target is checked where it is used
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		tightened, err := tightenEntry(path, fi, int(st.Uid), int(st.Gid), uid, groups)
		if err != nil {
			return err
		}
		if tightened {
			changed = append(changed, path)
		}
		if d.IsDir() && path == profiles {
			return fs.SkipDir
		}
		return nil
	})
	return changed, err
}

// tightenEntry applies tightenDataDir's rule to one entry, owned by
// owner and group, for the broker's uid and groups.
func tightenEntry(path string, fi fs.FileInfo, owner, group, uid int, groups []int) (bool, error) {
	perm := fi.Mode().Perm()
	ours := slices.Contains(groups, group)
	// Root may change any entry: as root, every entry counts as its own.
	mine := owner == uid || uid == 0
	kind := "file"
	if fi.IsDir() {
		kind = "directory"
	}
	switch {
	case perm&0o002 != 0:
		return false, fmt.Errorf("data directory: %s %s is writable by every user (mode %v): chmod o-w it: %w", kind, path, perm, store.ErrUnsafeDir)
	case !mine && !fi.IsDir():
		return false, fmt.Errorf("data directory: file %s belongs to uid %d, not to the broker's uid %d: chown it to the broker's user: %w", path, owner, uid, store.ErrUnsafeDir)
	case !mine:
		// A directory the broker does not own (a volume's root that
		// Kubernetes or an admin made): the broker cannot change it, and
		// accepts it unless a group not its own may write there.
		if perm&0o020 != 0 && !ours {
			return false, fmt.Errorf("data directory: directory %s (uid %d) is writable by group %d, which the broker is not in (mode %v): chmod g-w it: %w", path, owner, group, perm, store.ErrUnsafeDir)
		}
		return false, nil
	case perm&0o070 == 0 && (fi.Mode()&fs.ModeSetgid == 0 || !ours):
		return false, nil // no group access (a setgid bit alone gives none)
	case !ours:
		return false, fmt.Errorf("data directory: %s %s is accessible to group %d, which the broker (uid %d, groups %v) is not in (mode %v): chmod g-rwx it, or chgrp it to the broker's group: %w",
			kind, path, group, uid, groups, perm, store.ErrUnsafeDir)
	}
	if err := os.Chmod(path, perm&^0o070); err != nil {
		return false, fmt.Errorf("data directory: remove group access from %s: %w", path, err)
	}
	return true, nil
}
