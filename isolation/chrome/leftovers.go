package chrome

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoji-rbi/shoji/internal/cleanup"
	"github.com/shoji-rbi/shoji/internal/diskusage"
)

// MarkerEnv names the environment variable that every browser process
// carries, set to the Config.ProfileRoot it was launched under. With the
// profile directory on the command line (--user-data-dir), it is how
// ClearLeftovers tells the browsers of a profile root from every other
// process on the host, the crash reporter and other helpers included.
const MarkerEnv = "SHOJI_PROFILE_ROOT"

// Leftovers is what a run of the broker that did not stop cleanly (kill -9,
// a crash, a power cut) left under a profile root, as ClearLeftovers found
// and removed it.
type Leftovers struct {
	// Browsers are the browsers that were still running, each one process
	// group, killed.
	Browsers []StrayBrowser
	// Profiles are the profile directories (and any other file) that were
	// under the root, removed.
	Profiles []LeftProfile
}

// StrayBrowser is one browser of an earlier run that was still running:
// the processes that carried the profile root's marker, by process group.
type StrayBrowser struct {
	// PGID is the process group that was killed: the browser's, as it
	// runs in a session of its own. Zero when the processes were killed
	// one by one (a process in this process's own group, or in group 1).
	PGID int
	// PIDs are the marked processes found in the group.
	PIDs []int
	// Profile is the profile directory they named, when they named one.
	Profile string
	// Session is the session ID the profile directory's name carries;
	// empty when it carries none.
	Session string
}

// LeftProfile is one entry of the profile root that an earlier run left.
type LeftProfile struct {
	// Dir is its path.
	Dir string
	// Session is the session ID its name carries; empty when it carries
	// none.
	Session string
	// Files and Bytes are how many regular files, and how many bytes in
	// them, went with it.
	Files, Bytes int64
}

// ClearLeftovers cleans up the profile root of a launcher before its first
// launch: it finds every browser process left running under root by an
// earlier run (by MarkerEnv or a --user-data-dir under root), kills their
// process groups and waits for them to be gone, for at most limit; then it
// removes everything under root. Processes of other profile roots are left
// alone. It reports what it found even when it fails; the error names what
// could not be killed or removed. root must be absolute; a missing root has
// no profiles.
//
// It must not run while a launcher uses root: every browser of root counts
// as left over.
func ClearLeftovers(root string, limit time.Duration) (Leftovers, error) {
	var out Leftovers
	if !filepath.IsAbs(root) {
		return out, fmt.Errorf("clear leftovers: profile root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	deadline := time.Now().Add(limit)
	removed := map[string]int{} // profile directory → index in out.Profiles
	for {
		// A helper of a dead browser that carries no marker of its own (a
		// utility process whose browser exited first) may still write
		// into its profile; it is found by the files it holds open, and
		// the profile root is cleared again until nothing comes back.
		browsers := groupStrays(root, findMarked(root))
		out.Browsers = append(out.Browsers, browsers...)
		if err := killMarked(root, browsers, time.Until(deadline)); err != nil {
			return out, err
		}
		profiles, err := removeProfiles(root, time.Until(deadline))
		for _, p := range profiles {
			if i, ok := removed[p.Dir]; ok {
				out.Profiles[i].Files += p.Files
				out.Profiles[i].Bytes += p.Bytes
				continue
			}
			removed[p.Dir] = len(out.Profiles)
			out.Profiles = append(out.Profiles, p)
		}
		if err != nil {
			return out, err
		}
		if len(findMarked(root)) == 0 && emptyDir(root) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("clear leftovers: browser processes kept writing into profile root %s for %v", root, limit)
		}
	}
}

// emptyDir reports whether dir has no entries (or does not exist).
func emptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0
}

// FindLeftovers reports what ClearLeftovers would kill and remove under
// root now, and changes nothing: the broker records each finding before
// it clears them, so that no removal goes unrecorded. root must be
// absolute.
func FindLeftovers(root string) (Leftovers, error) {
	var out Leftovers
	if !filepath.IsAbs(root) {
		return out, fmt.Errorf("find leftovers: profile root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	out.Browsers = groupStrays(root, findMarked(root))
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read profile root: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		files, size := diskusage.Of(dir)
		out.Profiles = append(out.Profiles, LeftProfile{Dir: dir, Session: profileSession(root, dir), Files: files, Bytes: size})
	}
	return out, nil
}

// markedProc is a live process that carries a profile root's marker.
type markedProc struct {
	pid, pgid int
	profile   string
}

// findMarked returns the live processes of root's browsers, but never this
// process.
func findMarked(root string) []markedProc {
	var out []markedProc
	for pid := range otherProcs() {
		dir := "/proc/" + strconv.Itoa(pid)
		profile, ok := marked(dir, root)
		if !ok {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		state, pgid, ok := parseStat(stat)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		out = append(out, markedProc{pid: pid, pgid: pgid, profile: profile})
	}
	return out
}

// marked reports whether the process at procDir belongs to a browser of
// root, and the profile directory it names, if any. A zombie has neither a
// command line nor an environment to read, and is not marked.
func marked(procDir, root string) (profile string, ok bool) {
	dirPrefix := []byte("--user-data-dir=" + root + "/")
	if cmdline, err := os.ReadFile(procDir + "/cmdline"); err == nil {
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if rest, found := bytes.CutPrefix(arg, dirPrefix); found && len(rest) > 0 {
				name, _, _ := strings.Cut(string(rest), "/")
				return filepath.Join(root, name), true
			}
		}
	}
	// The environment is readable only for this user's processes that
	// still allow it; the command line above and the open files below
	// cover the others.
	env, err := os.ReadFile(procDir + "/environ")
	if err != nil {
		return holdsUnder(procDir, root)
	}
	want := []byte(MarkerEnv + "=" + root)
	homePrefix := []byte("HOME=" + root + "/")
	found := false
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if bytes.Equal(kv, want) {
			found = true
		}
		if h, ok := bytes.CutPrefix(kv, homePrefix); ok && len(h) > 0 {
			name, _, _ := strings.Cut(string(h), "/")
			profile = filepath.Join(root, name)
		}
	}
	if !found {
		return holdsUnder(procDir, root)
	}
	return profile, true
}

// holdsUnder reports whether the process at procDir has a file or its
// working directory under root open, and the profile directory that file
// is in. Chromium's utility processes (the network and storage services)
// carry neither the marker nor the profile on their command line, yet
// write into the profile while they live.
func holdsUnder(procDir, root string) (profile string, ok bool) {
	prefix := root + "/"
	links := []string{procDir + "/cwd"}
	if fds, err := os.ReadDir(procDir + "/fd"); err == nil {
		for _, fd := range fds {
			links = append(links, procDir+"/fd/"+fd.Name())
		}
	}
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			continue
		}
		if rest, found := strings.CutPrefix(target, prefix); found && rest != "" {
			name, _, _ := strings.Cut(rest, "/")
			return filepath.Join(root, name), true
		}
	}
	return "", false
}

// groupStrays sorts the marked processes into browsers by process group.
// A process in this process's own group, or in a group this package never
// gives a browser (0 or 1), is a browser of its own that is killed alone.
func groupStrays(root string, procs []markedProc) []StrayBrowser {
	own := syscall.Getpgrp()
	byGroup := map[int]*StrayBrowser{}
	var out []*StrayBrowser
	for _, p := range procs {
		pgid := p.pgid
		var sb *StrayBrowser
		if pgid > 1 && pgid != own {
			sb = byGroup[pgid]
		} else {
			pgid = 0
		}
		if sb == nil {
			sb = &StrayBrowser{PGID: pgid}
			out = append(out, sb)
			if pgid != 0 {
				byGroup[pgid] = sb
			}
		}
		sb.PIDs = append(sb.PIDs, p.pid)
		if sb.Profile == "" && p.profile != "" {
			sb.Profile = p.profile
			sb.Session = profileSession(root, p.profile)
		}
	}
	browsers := make([]StrayBrowser, 0, len(out))
	for _, sb := range out {
		slices.Sort(sb.PIDs)
		browsers = append(browsers, *sb)
	}
	return browsers
}

// killMarked kills the browsers' process groups and their marked
// processes until no marked process of root is left, for at most limit.
func killMarked(root string, browsers []StrayBrowser, limit time.Duration) error {
	if len(browsers) == 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for _, b := range browsers {
		if b.PGID > 1 {
			_ = syscall.Kill(-b.PGID, syscall.SIGKILL)
		}
		for _, pid := range b.PIDs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	own := syscall.Getpgrp()
	for {
		left := findMarked(root)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids := make([]int, 0, len(left))
			for _, p := range left {
				pids = append(pids, p.pid)
			}
			return fmt.Errorf("browser processes %v of profile root %s still running after %v", pids, root, limit)
		}
		// Helpers forked meanwhile, in the group or outside it.
		for _, p := range left {
			if p.pgid > 1 && p.pgid != own {
				_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
			}
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeProfiles removes every entry of root and reports what each held.
func removeProfiles(root string, limit time.Duration) ([]LeftProfile, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read profile root: %w", err)
	}
	var out []LeftProfile
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		files, size := diskusage.Of(dir)
		if err := cleanup.RemoveAll(dir, limit); err != nil {
			errs = append(errs, fmt.Errorf("remove left profile: %w", err))
			continue
		}
		out = append(out, LeftProfile{Dir: dir, Session: profileSession(root, dir), Files: files, Bytes: size})
	}
	return out, errors.Join(errs...)
}

// profileSession returns the session ID that the name of a profile
// directory directly under root carries ("s-" + safeName(ID) + "-" + a
// random suffix, as launch names it), or "".
func profileSession(root, dir string) string {
	if filepath.Dir(dir) != root {
		return ""
	}
	rest, ok := strings.CutPrefix(filepath.Base(dir), "s-")
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return ""
	}
	return rest[:i]
}
