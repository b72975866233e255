package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
)

// poolKey is the broker's config key for the number of pre-started
// browsers (the warm pool).
const poolKey = "pool_size"

// errNoPool means the broker does not know poolKey: it has no warm pool.
var errNoPool = errors.New("the broker has no " + poolKey + " setting (no warm pool)")

// brokerSpec says how to run a broker.
type brokerSpec struct {
	// command runs shoji; "serve --config FILE --log-level warn" is
	// appended.
	command []string
	env     []string
	// name names the broker in logs and file names.
	name        string
	chromium    string
	pages       *pageServer
	maxSessions int
	// pool is the pool size to configure; nil leaves the key out.
	pool     *int
	users    []string
	password string
	// logDir receives the broker's log as NAME.log.
	logDir string
	// screencast is the brokers' stream settings.
	screencast Screencast
}

// brokerProc is a shoji broker that the bench runs as a child process
// ("shoji serve" on a fresh data directory), so that its CPU time and
// memory are its own and not the bench's.
type brokerProc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	base string // its public URL, http://127.0.0.1:PORT
	data string
	done chan struct{}
	err  error // how the process ended; valid after done
	hc   *http.Client
}

// startBroker creates the users in a fresh data directory, starts the
// broker and waits until it answers /healthz.
func startBroker(ctx context.Context, spec brokerSpec) (*brokerProc, error) {
	if len(spec.command) == 0 {
		return nil, errors.New("no command to run shoji with")
	}
	data, err := os.MkdirTemp("", "shoji-bench-"+spec.name+"-")
	if err != nil {
		return nil, fmt.Errorf("broker data directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(data)
		}
	}()
	if err := addUsers(data, spec.users, spec.password); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(data, "bench.yaml")
	if err := writeBrokerConfig(cfgPath, spec, data, port); err != nil {
		return nil, err
	}
	logPath := filepath.Join(spec.logDir, spec.name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("broker log: %w", err)
	}
	args := append(append([]string(nil), spec.command[1:]...), "serve", "--config", cfgPath, "--log-level", "warn")
	cmd := exec.Command(spec.command[0], args...)
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.Stderr = logf
	// Its own process group, and it dies with the bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start the broker (%s): %w", spec.command[0], err)
	}
	b := &brokerProc{
		name: spec.name, cmd: cmd, pid: cmd.Process.Pid, data: data, done: make(chan struct{}),
		base: "http://127.0.0.1:" + strconv.Itoa(port),
		hc:   &http.Client{Timeout: 10 * time.Second},
	}
	go func() {
		b.err = cmd.Wait()
		_ = logf.Close()
		close(b.done)
	}()
	ok = true
	if err := b.waitHealthy(ctx, 60*time.Second); err != nil {
		b.stop()
		msg := lastLines(logPath, 5)
		if strings.Contains(msg, poolKey) {
			return nil, errNoPool
		}
		return nil, fmt.Errorf("%w; its log ends: %s", err, msg)
	}
	return b, nil
}

// addUsers creates the clinicians in the store of data.
func addUsers(data string, users []string, password string) error {
	st, err := store.Open(data)
	if err != nil {
		return err
	}
	defer st.Close()
	sink, err := audit.OpenFile(filepath.Join(data, "audit"), audit.FileOptions{})
	if err != nil {
		return fmt.Errorf("open audit trail: %w", err)
	}
	defer sink.Close()
	svc, err := auth.New(auth.Config{DataDir: data, Audit: sink, Operator: "cli:shoji-bench"}, st)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := svc.AddUser(u, auth.Clinician, password); err != nil {
			return fmt.Errorf("add bench user: %w", err)
		}
	}
	return nil
}

// writeBrokerConfig writes the broker's config: the scenario pages are the
// only site its browsers may open, each new browser opens the idle page,
// sessions outlive the run, and failed logins never lock an account.
func writeBrokerConfig(path string, spec brokerSpec, data string, port int) error {
	pagesPort := spec.pages.port
	cfg := map[string]any{
		"listen":            "127.0.0.1:" + strconv.Itoa(port),
		"data":              data,
		"chromium":          spec.chromium,
		"max_sessions":      spec.maxSessions,
		"idle_timeout":      "4h",
		"max_lifetime":      "12h",
		"lockout_threshold": 1000,
		"start_url":         spec.pages.URL(pageIdle),
		"stream": map[string]any{
			"jpeg_quality":         spec.screencast.Quality,
			"max_frames_in_flight": spec.screencast.MaxFramesInFlight,
			"send_last_frame":      spec.screencast.SendLastFrame,
		},
		"egress": map[string]any{
			"allow":       []string{pageHost + ":" + pagesPort},
			"allow_addrs": []string{net.JoinHostPort(spec.pages.ip(), pagesPort)},
			"hosts":       map[string]string{pageHost: spec.pages.ip()},
		},
	}
	if spec.pool != nil {
		cfg[poolKey] = *spec.pool
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("write broker config: %w", err)
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHealthy polls /healthz until it answers 200 or the process ends.
func (b *brokerProc) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := b.hc.Get(b.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-b.done:
			return fmt.Errorf("the broker exited at start: %v", b.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker did not answer %s/healthz within %s", b.base, limit)
		}
	}
}

// browsers returns the broker's browsers, each with its processes, by
// the PID of the browser's main process.
func (b *brokerProc) browsers() map[int][]procStat {
	return browserGroups(listProcs(), b.pid)
}

// stop ends the broker gracefully (it ends every session, killing each
// browser's process group), then by force; anything of it still running
// afterwards is killed. It removes the data directory.
func (b *brokerProc) stop() {
	seen := descendants(listProcs(), b.pid)
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(45 * time.Second):
		_ = syscall.Kill(-b.pid, syscall.SIGKILL)
		<-b.done
	}
	// Browsers die with the broker (parent-death signal); this catches a
	// helper process that outlived its browser.
	killLeftovers(seen)
	_ = os.RemoveAll(b.data)
}

// lastLines returns the last n lines of a file, joined by " | ".
func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
