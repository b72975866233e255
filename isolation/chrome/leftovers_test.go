package chrome

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/isolation"
)

// strayProc is a process started as a browser of an earlier run would be
// left: in a session of its own, marked for a profile root, with a child
// in its process group that carries no marker.
type strayProc struct {
	cmd   *exec.Cmd
	child int
}

// startStray starts a stray for root, marked by its environment (env) or
// by a --user-data-dir argument naming profile.
func startStray(t *testing.T, root, profile string, env bool) *strayProc {
	t.Helper()
	// The child prints its pid, then both wait.
	cmd := exec.Command("/bin/sh", "-c", "env -u "+MarkerEnv+" sleep 300 & echo $!; wait", "sh")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if env {
		cmd.Env = append(cmd.Env, MarkerEnv+"="+root, "HOME="+profile)
	} else {
		cmd.Args = append(cmd.Args, "--user-data-dir="+profile)
	}
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
		t.Fatalf("read the stray's child pid: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("stray's child pid %q: %v", line, err)
	}
	// Until the child has run sleep it is a copy of the shell, with the
	// shell's marker and command line: wait, or it counts as a marked
	// browser of its own.
	eventually(t, "the stray's child to run sleep", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/cmdline")
		return err == nil && strings.HasPrefix(string(b), "sleep\x00")
	})
	return &strayProc{cmd: cmd, child: child}
}

// running reports whether pid is a process that has not exited.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state, _, ok := parseStat(stat)
	return ok && state != 'Z' && state != 'X'
}

// waitExited waits for pid to exit, and fails the test after a while.
func waitExited(t *testing.T, what string, pid int) {
	t.Helper()
	eventually(t, what+" to exit", func() bool { return !running(pid) })
}

// groupMembers returns the processes in the process groups.
func groupMembers(groups map[int]bool) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if state, pgid, ok := parseStat(stat); ok && groups[pgid] && state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClearLeftoversKillsStraysOfItsRootOnly starts processes marked as
// browsers of a profile root, by environment and by command line, and
// others marked for a root whose name starts the same: the first are
// killed with their process groups and their profiles removed; the others
// run on.
func TestClearLeftoversKillsStraysOfItsRootOnly(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "profiles")
	other := filepath.Join(base, "profiles-other")
	byEnv := filepath.Join(root, "s-0a1b-123")
	byArg := filepath.Join(root, "s-2c3d-456")
	writeFile(t, filepath.Join(byEnv, "Default", "Preferences"), 100)
	writeFile(t, filepath.Join(byEnv, "Default", "Cookies"), 28)
	writeFile(t, filepath.Join(byArg, "Default", "Preferences"), 50)
	writeFile(t, filepath.Join(root, "stray-file"), 7)
	writeFile(t, filepath.Join(other, "s-ffff-1", "Default", "Preferences"), 10)

	strays := []*strayProc{startStray(t, root, byEnv, true), startStray(t, root, byArg, false)}
	keep := []*strayProc{
		startStray(t, other, filepath.Join(other, "s-ffff-1"), true),
		startStray(t, other, filepath.Join(other, "s-ffff-1"), false),
	}

	got, err := ClearLeftovers(root, 10*time.Second)
	if err != nil {
		t.Fatalf("ClearLeftovers: %v", err)
	}
	for i, s := range strays {
		waitExited(t, "stray "+strconv.Itoa(i), s.cmd.Process.Pid)
		waitExited(t, "the unmarked child in stray "+strconv.Itoa(i)+"'s group", s.child)
	}
	for i, k := range keep {
		if !running(k.cmd.Process.Pid) || !running(k.child) {
			t.Errorf("process %d of another profile root was killed", i)
		}
	}

	want := Leftovers{
		Browsers: []StrayBrowser{
			{PGID: strays[0].cmd.Process.Pid, PIDs: []int{strays[0].cmd.Process.Pid}, Profile: byEnv, Session: "0a1b"},
			{PGID: strays[1].cmd.Process.Pid, PIDs: []int{strays[1].cmd.Process.Pid}, Profile: byArg, Session: "2c3d"},
		},
		Profiles: []LeftProfile{
			{Dir: byEnv, Session: "0a1b", Files: 2, Bytes: 128},
			{Dir: byArg, Session: "2c3d", Files: 1, Bytes: 50},
			{Dir: filepath.Join(root, "stray-file"), Files: 1, Bytes: 7},
		},
	}
	slices.SortFunc(got.Browsers, func(a, b StrayBrowser) int { return strings.Compare(a.Session, b.Session) })
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("leftovers (-want +got):\n%s", d)
	}
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Errorf("profile root after ClearLeftovers: %v, %v; want it empty", entries, err)
	}
	if _, err := os.Stat(filepath.Join(other, "s-ffff-1", "Default", "Preferences")); err != nil {
		t.Errorf("another root's profile was touched: %v", err)
	}

	// A second run finds nothing.
	again, err := ClearLeftovers(root, time.Second)
	if err != nil || len(again.Browsers) != 0 || len(again.Profiles) != 0 {
		t.Errorf("second ClearLeftovers = %+v, %v; want nothing", again, err)
	}
}

func TestClearLeftoversRefusesRelativeRoot(t *testing.T) {
	if _, err := ClearLeftovers("profiles", time.Second); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative root: %v, want an error saying it is not absolute", err)
	}
}

// TestClearLeftoversKillsRealChromium treats a running Chromium as a
// browser an earlier run left: every process of it is found by its
// marker and killed, and its profile removed.
func TestClearLeftoversKillsRealChromium(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 800, Height: 600, DPR: 1}, "")
	profile := f.b.profileDir
	// Every process of the browser: those in the process groups of its
	// marked processes (the renderers carry no marker).
	groups := map[int]bool{}
	for _, p := range findMarked(f.root) {
		groups[p.pgid] = true
	}
	all := groupMembers(groups)
	if !groups[f.b.pid] || len(all) < 3 {
		t.Fatalf("the browser's processes %v in groups %v: want the browser's group %d and its helpers", all, groups, f.b.pid)
	}

	got, err := ClearLeftovers(f.root, 10*time.Second)
	if err != nil {
		t.Fatalf("ClearLeftovers: %v", err)
	}
	i := slices.IndexFunc(got.Browsers, func(b StrayBrowser) bool { return b.PGID == f.b.pid })
	if i < 0 || got.Browsers[i].Session != "test" || got.Browsers[i].Profile != profile {
		t.Errorf("browsers found = %+v, want the group %d of session test, profile %s", got.Browsers, f.b.pid, profile)
	}
	for _, pid := range all {
		waitExited(t, "process "+strconv.Itoa(pid)+" of the browser", pid)
	}
	if len(got.Profiles) != 1 || got.Profiles[0].Dir != profile || got.Profiles[0].Files == 0 || got.Profiles[0].Bytes == 0 {
		t.Errorf("profiles removed = %+v, want %s with its files", got.Profiles, profile)
	}
	select {
	case <-f.b.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the browser did not notice that it was killed")
	}
	if left := findMarked(f.root); len(left) != 0 {
		t.Errorf("marked processes left: %+v", left)
	}
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Errorf("profile directory still there: %v", err)
	}
}

// startHolder starts a process in a session of its own that carries no
// marker but keeps file open, as a dead browser's network or storage
// service does while it shuts down.
func startHolder(t *testing.T, file string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `exec 3>>"$1"; echo ready; exec sleep 300`, "sh", file)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
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
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("wait for the holder to open %s: %v", file, err)
	}
	return cmd
}

// TestClearLeftoversKillsUnmarkedWriters: a process with neither the
// marker nor the profile on its command line, but with a file of the
// profile open, is a helper of a dead browser: it is killed before the
// profile is removed, so that nothing writes the profile back. One that
// holds a file of another root is left alone.
func TestClearLeftoversKillsUnmarkedWriters(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "profiles")
	other := filepath.Join(base, "profiles-other")
	mine := filepath.Join(root, "s-0a1b-123", "Default", "Local Storage", "LOG")
	theirs := filepath.Join(other, "s-ffff-1", "Default", "LOG")
	writeFile(t, mine, 10)
	writeFile(t, theirs, 10)
	writer := startHolder(t, mine)
	bystander := startHolder(t, theirs)

	got, err := ClearLeftovers(root, 10*time.Second)
	if err != nil {
		t.Fatalf("ClearLeftovers: %v", err)
	}
	waitExited(t, "the unmarked writer", writer.Process.Pid)
	if !running(bystander.Process.Pid) {
		t.Error("a process holding a file of another profile root was killed")
	}
	if len(got.Browsers) != 1 || !slices.Contains(got.Browsers[0].PIDs, writer.Process.Pid) ||
		got.Browsers[0].Profile != filepath.Join(root, "s-0a1b-123") {
		t.Errorf("Browsers = %+v; want the writer, in profile s-0a1b-123", got.Browsers)
	}
	if !emptyDir(root) {
		t.Errorf("the profile root is not empty after ClearLeftovers")
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another root's profile: %v", err)
	}
}
