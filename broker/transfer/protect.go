package transfer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// systemTrees are system directories that no destination may be in, equal
// to or above: the operating system, its configuration, its logs and the
// kernel's file systems.
var systemTrees = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
	"/run", "/sbin", "/sys", "/usr", "/var/backups", "/var/cache", "/var/log", "/var/mail",
	"/var/run", "/var/spool",
}

// systemDirs are directories that hold other things' directories: a
// destination may be below them (/srv/ikyoku, /mnt/share), never one of
// them or above one.
var systemDirs = []string{
	"/", "/home", "/media", "/mnt", "/opt", "/srv", "/tmp", "/var", "/var/lib", "/var/tmp",
}

// protectedDir is a directory destinations must keep away from; tree says
// whether everything below it is protected too.
type protectedDir struct {
	path string
	tree bool
}

// protectedDirs resolves the quarantine, the configured protected roots and
// the system directories, each as written and with symbolic links
// resolved.
func protectedDirs(quarantine string, extra []string) ([]protectedDir, error) {
	var out []protectedDir
	add := func(p string, tree bool) error {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("transfer config: protected directory %q: %w", p, err)
		}
		out = append(out, protectedDir{abs, tree})
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			out = append(out, protectedDir{real, tree})
		}
		return nil
	}
	for _, p := range append([]string{quarantine}, extra...) {
		if p == "" {
			return nil, errors.New("transfer config: Protected holds an empty path")
		}
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range systemTrees {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	for _, p := range systemDirs {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// within reports whether path is dir or below it; both are clean and
// absolute.
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	if dir == string(filepath.Separator) {
		return true
	}
	return len(path) > len(dir) && path[:len(dir)] == dir && path[len(dir)] == filepath.Separator
}

// errUnsafeDestination says why a directory cannot be a destination.
var errUnsafeDestination = errors.New("unsafe destination")

// checkDir says whether real, a directory with every symbolic link
// resolved, is safe to write released files into: not a protected
// directory, not above one, and not below a protected tree.
func (m *Manager) checkDir(real string) error {
	for _, p := range m.protected {
		switch {
		case real == p.path:
			return fmt.Errorf("%w: %s is a directory of the broker or the system", errUnsafeDestination, real)
		case within(p.path, real):
			return fmt.Errorf("%w: %s holds %s, a directory of the broker or the system", errUnsafeDestination, real, p.path)
		case p.tree && within(real, p.path):
			return fmt.Errorf("%w: %s is inside %s, a directory of the broker or the system", errUnsafeDestination, real, p.path)
		}
	}
	return nil
}

// resolveDestination resolves every symbolic link in dir and checks the
// directory it names.
func (m *Manager) resolveDestination(dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%w: %q is not an existing directory", errUnsafeDestination, dir)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %q cannot be resolved: %v", errUnsafeDestination, dir, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", errUnsafeDestination, dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %q is not an existing directory", errUnsafeDestination, dir)
	}
	return real, m.checkDir(real)
}

// openDestination opens the directory dir names for writing released files
// into, after resolving and checking it. On Linux it checks again the
// directory it actually opened (through /proc/self/fd), so a directory
// swapped for a link between the check and the open is refused too; every
// write then goes through the returned root, which cannot leave it.
func (m *Manager) openDestination(dir string) (*os.Root, error) {
	real, err := m.resolveDestination(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dir, err)
	}
	if runtime.GOOS != "linux" {
		return root, nil
	}
	f, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open destination %s: %w", dir, err)
	}
	opened, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	f.Close()
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open destination %s: %w", dir, err)
	}
	if err := m.checkDir(opened); err != nil {
		root.Close()
		return nil, err
	}
	if opened != real {
		root.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened (now %s)", errUnsafeDestination, dir, opened)
	}
	return root, nil
}

// checkDestinations logs every registered destination that is not safe to
// write to; Send refuses them.
func (m *Manager) checkDestinations() {
	list, err := m.cfg.Store.Destinations()
	if err != nil {
		m.log.Error("transfer: read destinations", "err", err)
		return
	}
	for _, d := range list {
		real, err := m.resolveDestination(d.Dir)
		if err != nil {
			m.log.Error("transfer: a registered destination is not safe to write to; sending there is refused until an administrator fixes or removes it",
				"destination", d.Name, "dir", d.Dir, "err", err)
			continue
		}
		if readOnly(real) {
			m.log.Error("transfer: a registered destination cannot be written to; sending there fails until it can",
				"destination", d.Name, "dir", d.Dir, "err", writeHint(d.Dir, syscall.EROFS))
		}
	}
}

// writeHint adds to err, an error writing into the destination directory
// dir, what to do when the directory is on a file system that is
// read-only to the broker (EROFS): the case of a systemd unit with
// ProtectSystem=strict that does not list the directory in ReadWritePaths,
// or of a container whose volume is mounted read-only.
func writeHint(dir string, err error) error {
	if !errors.Is(err, syscall.EROFS) {
		return err
	}
	return fmt.Errorf("%w: %s is read-only to the broker; under systemd add ReadWritePaths=%s to the unit (docs/deploy.md); in a container, mount it read-write",
		err, dir, dir)
}
