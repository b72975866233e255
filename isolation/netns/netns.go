// Package netns gives each browser a network namespace of its own whose
// only way out is the egress proxy (Linux, root only).
//
// A namespace made here holds nothing but an up loopback interface: no
// veth, no route, no address other than 127.0.0.1 and ::1. The session's
// egress listener is a socket created inside it (NS.Listen) but served by
// the broker, which runs in the host namespace and dials the allowed sites
// from there. The browser is started inside it (NS.Command, through
// `ip netns exec`), so everything it and its helpers send goes to its own
// loopback, where only the proxy listens. Nothing else on the machine — the
// broker's port, Redis, the hospital LAN — has an address it can reach,
// whatever protocol a page uses (WebRTC's UDP included).
//
// Namespaces are named Prefix-<broker pid>-<label>-<seq> and appear in
// `ip netns list`. Close removes one; RemoveStale removes those left by a
// broker that was killed.
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "shoji-"

// runDir is where iproute2 keeps named namespaces.
const runDir = "/run/netns"

// ErrUnavailable is returned when namespaces cannot be used here: not
// Linux, not root, or no iproute2.
var ErrUnavailable = errors.New("network namespaces unavailable")

// seq numbers namespaces, so a restarted browser of the same session gets
// a fresh one even while the old one is being removed.
var seq atomic.Uint64

// NS is one named network namespace. Its methods may be called
// concurrently; Close is idempotent.
type NS struct {
	name   string
	ip     string // path of the ip tool
	closed atomic.Bool
}

// Name returns the namespace's name, as `ip netns list` shows it.
func (n *NS) Name() string { return n.name }

// Path returns the file that holds the namespace.
func (n *NS) Path() string { return runDir + "/" + n.name }

// Command returns the command line prefix that runs a program inside the
// namespace: append the program and its arguments.
func (n *NS) Command() []string { return []string{n.ip, "netns", "exec", n.name} }

// ipTool finds the ip command of iproute2.
func ipTool() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: the ip command (iproute2) is not installed", ErrUnavailable)
}

// run runs the ip tool with args.
func run(ip string, args ...string) (string, error) {
	out, err := exec.Command(ip, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Available reports why namespaces cannot be used here, or nil.
func Available() error {
	if err := platformAvailable(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the broker must run as root", ErrUnavailable)
	}
	_, err := ipTool()
	return err
}

// safeLabel keeps the characters of label that are safe in a name.
func safeLabel(label string) string {
	var b strings.Builder
	for _, r := range label {
		if b.Len() >= 12 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// New creates a namespace for label (a session ID) with only its loopback
// interface up.
func New(label string) (*NS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	ip, _ := ipTool()
	n := &NS{
		name: Prefix + strconv.Itoa(os.Getpid()) + "-" + safeLabel(label) + "-" + strconv.FormatUint(seq.Add(1), 10),
		ip:   ip,
	}
	if _, err := run(ip, "netns", "add", n.name); err != nil {
		return nil, fmt.Errorf("create network namespace: %w", err)
	}
	if _, err := run(ip, "-n", n.name, "link", "set", "lo", "up"); err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("set up loopback in %s: %w", n.name, err)
	}
	return n, nil
}

// Close deletes the namespace's name. The kernel frees the namespace once
// the last process in it and the last socket made in it are gone, so close
// the listener and end the browser too.
func (n *NS) Close() error {
	if n.closed.Swap(true) {
		return nil
	}
	if _, err := run(n.ip, "netns", "delete", n.name); err != nil {
		if _, serr := os.Stat(n.Path()); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete network namespace: %w", err)
	}
	return nil
}

// RemoveStale deletes the namespaces named with Prefix whose broker
// process is gone (a broker that was killed), and returns their names.
// Namespaces of running brokers are left alone.
func RemoveStale() ([]string, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	ip, _ := ipTool()
	ents, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || processExists(pid) {
			continue // a running broker's, perhaps ours
		}
		if _, err := run(ip, "netns", "delete", name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// processExists reports whether a process with pid runs.
func processExists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
