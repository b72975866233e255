//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// The restart suite runs the real shoji binary, built with the crashpoints
// tag, as a child process on a data directory, ends it in one of the ways a
// hospital's broker ends (SIGTERM, SIGKILL, a crash point, a full disk),
// starts it again on the same directory and checks what the issue's "Done
// when" asks: it starts on the first try, the trail verifies and agrees with
// the ledger, nothing of the dead run is left, and every session that died
// with it is closed in the trail.

// Deadlines of the suite. They bound waits that normally end far sooner;
// none is a measurement.
const (
	// startDeadline bounds a broker start until /healthz and /readyz
	// answer 200.
	startDeadline = 60 * time.Second
	// stopDeadline bounds a clean stop after SIGTERM, and a death by a
	// crash point or SIGKILL.
	stopDeadline = 60 * time.Second
	// sessionDeadline bounds a session start (a Chromium launch).
	sessionDeadline = 60 * time.Second
	// stepDeadline bounds one step of a client: a navigation, a transfer
	// reaching a state.
	stepDeadline = 45 * time.Second
	// cleanupDeadline bounds how long the restarted broker may take to
	// remove what the dead run left.
	cleanupDeadline = 20 * time.Second
	// pollInterval is the pause between two looks at a condition polled
	// with a deadline.
	pollInterval = 50 * time.Millisecond
)

// The accounts of the restart suite, all with staffPassword.
const (
	nurseUser    = "nurse"
	approverUser = "boss" // an approver, who browses too
	adminUser    = "admin1"
)

// shojiBuild is the shoji binary built once per test binary run.
var shojiBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// shojiBinary builds ./cmd/shoji with -tags crashpoints, once, and returns
// its path.
func shojiBinary(t *testing.T) string {
	t.Helper()
	shojiBuild.once.Do(func() {
		shojiBuild.path, shojiBuild.dir, shojiBuild.err = buildShoji()
	})
	if shojiBuild.err != nil {
		t.Fatalf("build shoji: %v", shojiBuild.err)
	}
	return shojiBuild.path
}

func buildShoji() (path, dir string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("the go tool is needed to build shoji: %w", err)
	}
	dir, err = os.MkdirTemp("", "shoji-restart-bin")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "shoji")
	cmd := exec.Command(goTool, "build", "-tags", "crashpoints", "-o", path, "./cmd/shoji")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build -tags crashpoints ./cmd/shoji: %w\n%s", err, out)
	}
	return path, dir, nil
}

// removeShojiBinary removes the binary built for this run, if any.
func removeShojiBinary() {
	if shojiBuild.dir != "" {
		os.RemoveAll(shojiBuild.dir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeShojiBinary()
	os.Exit(code)
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// restartOptions shape a restart environment.
type restartOptions struct {
	// dataParent is the directory the data directory is made in; empty
	// means a fresh temporary directory.
	dataParent string
	// clamd is the transfer.clamd address; empty means no scanning.
	clamd string
	// prepare runs on the data directory once the accounts are added,
	// before the first start.
	prepare func(data string)
}

// restartEnv is a data directory, a config file and a test site that a
// series of broker runs share.
type restartEnv struct {
	t      *testing.T
	bin    string
	data   string
	config string
	site   *restartSite
	runs   []*shojiRun
}

// newRestartEnv makes a data directory with the suite's accounts (added
// with shoji user add, before any start) and a config that lets the
// browsers reach the test site.
func newRestartEnv(t *testing.T, opts restartOptions) *restartEnv {
	t.Helper()
	requireChromium(t)
	e := &restartEnv{t: t, bin: shojiBinary(t), site: newRestartSite(t)}
	parent := opts.dataParent
	if parent == "" {
		parent = t.TempDir()
	}
	e.data = filepath.Join(parent, "data")
	if err := os.MkdirAll(e.data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role string }{
		{nurseUser, "clinician"}, {approverUser, "approver"}, {adminUser, "admin"},
	} {
		e.cli(strings.NewReader(staffPassword+"\n"), "user", "add", u.name, "--role", u.role, "--password-stdin", "--data", e.data)
	}
	if opts.prepare != nil {
		opts.prepare(e.data)
	}
	siteAddr := e.site.ts.Listener.Addr().String()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
chromium: %q
max_sessions: 8
pool_size: 0
min_free_memory_mib: 0
idle_timeout: "30m"
egress:
  allow: [%q]
  allow_addrs: [%q]
  hosts: {%q: "127.0.0.1"}
transfer:
  clamd: %q
  scan_timeout: "2m"
audit:
  max_file_mib: 1
`, chromiumPath(), e.site.host, siteAddr, siteHost, opts.clamd)
	e.config = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range e.runs {
			r.kill()
		}
		// Browsers a killed broker left behind were started by this test:
		// end them by their pid.
		for _, pid := range browserPIDs(e.profiles()) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			for i, r := range e.runs {
				t.Logf("broker run %d (%s) stderr:\n%s", i+1, r.ended(), tail(r.stderr.String(), 6000))
			}
		}
	})
	return e
}

// profiles is the browsers' profile root.
func (e *restartEnv) profiles() string { return filepath.Join(e.data, "profiles") }

// cli runs a shoji command to completion and fails the test on an error.
func (e *restartEnv) cli(stdin io.Reader, args ...string) string {
	e.t.Helper()
	out, err := e.runCLI(stdin, args...)
	if err != nil {
		e.t.Fatalf("shoji %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runCLI runs a shoji command to completion.
func (e *restartEnv) runCLI(stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = shojiEnv()
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// shojiEnv is the environment of a shoji child: this one without SHOJI_*
// settings, so that only the config file configures it.
func shojiEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOJI_") {
			env = append(env, kv)
		}
	}
	return env
}

// shojiRun is one `shoji serve` process.
type shojiRun struct {
	t      *testing.T
	e      *restartEnv
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed once the process has been waited for
	state  *os.ProcessState
	url    string
}

// servingRE finds the address in the broker's "shoji serving" log line.
var servingRE = regexp.MustCompile(`msg="shoji serving" listen=(\S+)`)

// start starts the broker on the environment's data directory, with the
// crash points given armed, and waits until /healthz and /readyz answer
// 200. It fails the test when the process exits first: the broker must
// start on the first try.
func (e *restartEnv) start(points ...string) *shojiRun {
	e.t.Helper()
	r := e.launch(points...)
	r.waitReady()
	return r
}

// launch starts the broker without waiting for it.
func (e *restartEnv) launch(points ...string) *shojiRun {
	e.t.Helper()
	cmd := exec.Command(e.bin, "serve", "--listen", "127.0.0.1:0", "--data", e.data, "--config", e.config)
	cmd.Env = append(shojiEnv(), crashpoint.EnvVar+"="+strings.Join(points, ","))
	r := &shojiRun{t: e.t, e: e, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, r.stderr
	// The broker dies with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start shoji serve: %v", err)
	}
	e.runs = append(e.runs, r)
	go func() {
		_ = cmd.Wait()
		r.state = cmd.ProcessState
		close(r.done)
	}()
	return r
}

// exited reports whether the process has ended.
func (r *shojiRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// ended describes how the process ended, or says it runs.
func (r *shojiRun) ended() string {
	if !r.exited() {
		return "running"
	}
	return r.state.String()
}

// waitReady waits until the broker serves and is ready for a session.
func (r *shojiRun) waitReady() {
	r.t.Helper()
	deadline := time.Now().Add(startDeadline)
	for {
		if r.exited() {
			r.t.Fatalf("the broker did not start on the first try: it ended (%s) before it was ready:\n%s", r.ended(), tail(r.stderr.String(), 6000))
		}
		if r.url == "" {
			if m := servingRE.FindStringSubmatch(r.stderr.String()); m != nil {
				r.url = "http://" + m[1]
			}
		}
		if r.url != "" && httpOK(r.url+"/healthz") && httpOK(r.url+"/readyz") {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the broker was not ready within %s:\n%s", startDeadline, tail(r.stderr.String(), 6000))
		}
		time.Sleep(pollInterval)
	}
}

// httpOK reports whether a GET of url answers 200.
func httpOK(url string) bool {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitExit waits for the process to end, failing the test after
// stopDeadline (and killing it).
func (r *shojiRun) waitExit(why string) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(stopDeadline):
		r.kill()
		r.t.Fatalf("the broker did not end %s within %s:\n%s", why, stopDeadline, tail(r.stderr.String(), 6000))
	}
}

// stop ends the broker with SIGTERM, as systemd does, and checks that it
// stopped cleanly: exit status 0 and no panic.
func (r *shojiRun) stop() {
	r.t.Helper()
	if r.exited() {
		r.t.Fatalf("the broker ended (%s) before it was stopped:\n%s", r.ended(), tail(r.stderr.String(), 6000))
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	r.waitExit("after SIGTERM")
	if !r.state.Success() {
		r.t.Fatalf("the broker's stop after SIGTERM ended with %s:\n%s", r.state, tail(r.stderr.String(), 6000))
	}
	r.checkNoPanic()
}

// checkNoPanic fails the test when the broker's stderr shows a panic.
func (r *shojiRun) checkNoPanic() {
	r.t.Helper()
	if s := r.stderr.String(); strings.Contains(s, "panic") {
		i := strings.Index(s, "panic")
		r.t.Errorf("the broker panicked:\n%s", s[i:min(len(s), i+4000)])
	}
}

// kill9 kills the broker with SIGKILL, as a power cut or the OOM killer
// would, and waits until it is gone.
func (r *shojiRun) kill9() {
	r.t.Helper()
	if r.exited() {
		r.t.Fatalf("the broker ended (%s) before it was killed:\n%s", r.ended(), tail(r.stderr.String(), 6000))
	}
	r.kill()
	if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		r.t.Fatalf("the broker ended with %s, not by SIGKILL", r.state)
	}
}

// killNow kills the broker with SIGKILL unless it has died already (by a
// crash point, which also kills with SIGKILL), and checks how it ended.
func (r *shojiRun) killNow() {
	r.t.Helper()
	r.kill()
	if ws, ok := r.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		r.t.Fatalf("the broker ended with %s, not by SIGKILL:\n%s", r.state, tail(r.stderr.String(), 6000))
	}
}

// kill sends SIGKILL if the process runs and waits for it.
func (r *shojiRun) kill() {
	if !r.exited() {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-r.done
}

// crashed reports whether the broker has said it dies at a crash point.
func (r *shojiRun) crashed() bool {
	return strings.Contains(r.stderr.String(), "crashpoint ")
}

// waitCrashed waits until the broker killed itself at the crash point.
func (r *shojiRun) waitCrashed(point string) {
	r.t.Helper()
	r.waitExit("at crash point " + point)
	ws, ok := r.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL || !strings.Contains(r.stderr.String(), "crashpoint "+point+"\n") {
		r.t.Fatalf("the broker ended with %s, not at crash point %s:\n%s", r.state, point, tail(r.stderr.String(), 6000))
	}
}

// client is one login to the broker through its HTTP API.
type client struct {
	run  *shojiRun
	user string
	http *http.Client
}

// login logs user in and accepts the pledge, as the viewer does.
func (r *shojiRun) login(user string) (*client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &client{run: r, user: user, http: &http.Client{Jar: jar, Timeout: stepDeadline}}
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, user, staffPassword)
	if _, err := c.call("POST", "/api/login", body, nil, http.StatusOK); err != nil {
		return nil, err
	}
	if _, err := c.call("POST", "/api/pledge", "", nil, http.StatusOK); err != nil {
		return nil, err
	}
	return c, nil
}

// mustLogin is login that fails the test on an error.
func (r *shojiRun) mustLogin(user string) *client {
	r.t.Helper()
	c, err := r.login(user)
	if err != nil {
		r.t.Fatalf("login of %s: %v", user, err)
	}
	return c
}

// call sends a request with a JSON body (none when empty) and returns the
// response body, or an error when the status is not want.
func (c *client) call(method, path, body string, hdr map[string]string, want int) ([]byte, error) {
	req, err := http.NewRequest(method, c.run.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", c.run.url)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s as %s: %w", method, path, c.user, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s as %s: %w", method, path, c.user, err)
	}
	if resp.StatusCode != want {
		return data, fmt.Errorf("%s %s as %s: %d %s", method, path, c.user, resp.StatusCode, bytes.TrimSpace(data))
	}
	return data, nil
}

// transfers returns the user's ledger entries, newest first.
func (c *client) transfers() ([]transfer.Transfer, error) {
	data, err := c.call("GET", "/api/transfers", "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list []transfer.Transfer
	return list, json.Unmarshal(data, &list)
}

// waitTransfer polls the user's ledger until the newest entry whose page
// name contains name is in one of states, and returns it.
func (c *client) waitTransfer(name string, states ...transfer.State) (transfer.Transfer, error) {
	deadline := time.Now().Add(stepDeadline)
	var last transfer.Transfer
	for {
		list, err := c.transfers()
		if err != nil {
			return last, err
		}
		for _, tr := range list {
			if strings.Contains(tr.PageName, name) {
				last = tr
				if slices.Contains(states, tr.State) {
					return tr, nil
				}
				break
			}
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%s's transfer %q did not reach %v within %s; last %q %s", c.user, name, states, stepDeadline, last.State, last.Reason)
		}
		time.Sleep(pollInterval)
	}
}

// policyVersion returns the site policy's version (admins).
func (c *client) policyVersion() (int, error) {
	data, err := c.call("GET", "/api/admin/policy", "", nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var p struct {
		Version int `json:"version"`
	}
	return p.Version, json.Unmarshal(data, &p)
}

// putPolicy replaces the site policy with one allowing host, if the policy
// is still at version ifMatch, and returns the new version.
func (c *client) putPolicy(host string, ifMatch int) (int, error) {
	doc := fmt.Sprintf(`{"profiles":[{"name":"ward","rules":[{"pattern":%q}]}],"default":"ward"}`, host)
	data, err := c.call("PUT", "/api/admin/policy", doc, map[string]string{"If-Match": strconv.Quote(strconv.Itoa(ifMatch))}, http.StatusOK)
	if err != nil {
		return 0, err
	}
	var v struct {
		Version int `json:"version"`
	}
	return v.Version, json.Unmarshal(data, &v)
}

// decide approves or rejects a held transfer (approvers).
func (c *client) decide(id string, approve bool) (transfer.Transfer, error) {
	verb := "reject"
	if approve {
		verb = "approve"
	}
	var tr transfer.Transfer
	data, err := c.call("POST", "/api/approvals/transfers/"+id+"/"+verb, `{"comment":"restart suite"}`, nil, http.StatusOK)
	if err != nil {
		return tr, err
	}
	return tr, json.Unmarshal(data, &tr)
}

// viewerStream is the viewer protocol (docs/protocol.md) spoken by the
// test: it says hello, keeps every text message it gets and counts frames.
type viewerStream struct {
	ws      *websocket.Conn
	session string
	writeMu sync.Mutex

	mu     sync.Mutex
	msgs   []map[string]any
	frames int
	err    error         // why the connection ended, once it has
	change chan struct{} // closed and replaced at every message
}

// stream opens the viewer WebSocket, says hello and waits until the
// session is live (a real Chromium runs for the user).
func (c *client) stream() (*viewerStream, error) {
	u := strings.Replace(c.run.url, "http://", "ws://", 1) + "/api/stream"
	d := websocket.Dialer{Jar: c.http.Jar, HandshakeTimeout: stepDeadline}
	ws, resp, err := d.Dial(u, http.Header{"Origin": {c.run.url}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("open the stream as %s: %w (%s)", c.user, err, resp.Status)
		}
		return nil, fmt.Errorf("open the stream as %s: %w", c.user, err)
	}
	s := &viewerStream{ws: ws, change: make(chan struct{})}
	ws.SetReadLimit(16 << 20)
	go s.read()
	if err := s.send(map[string]any{"type": "hello", "version": 1, "width": 1000, "height": 700, "dpr": 1}); err != nil {
		ws.Close()
		return nil, err
	}
	ready, err := s.wait("ready", 0, sessionDeadline, func(m map[string]any) bool { return m["type"] == "ready" })
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("%s's session: %w", c.user, err)
	}
	s.session, _ = ready["sessionId"].(string)
	return s, nil
}

// mustStream is stream that fails the test on an error.
func (c *client) mustStream() *viewerStream {
	c.run.t.Helper()
	s, err := c.stream()
	if err != nil {
		c.run.t.Fatal(err)
	}
	c.run.t.Cleanup(func() { s.ws.Close() })
	return s
}

// read is the connection's only reader.
func (s *viewerStream) read() {
	for {
		typ, data, err := s.ws.ReadMessage()
		s.mu.Lock()
		switch {
		case err != nil:
			s.err = err
		case typ == websocket.BinaryMessage:
			s.frames++
		default:
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				s.msgs = append(s.msgs, m)
			}
		}
		close(s.change)
		s.change = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// send writes one text message.
func (s *viewerStream) send(v any) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(stepDeadline))
	return s.ws.WriteJSON(v)
}

// wait returns the first message after the first from that matches,
// waiting up to limit; it gives up at once when the connection has ended.
func (s *viewerStream) wait(what string, from int, limit time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	seen := from
	for {
		s.mu.Lock()
		msgs, err, change := s.msgs, s.err, s.change
		s.mu.Unlock()
		for ; seen < len(msgs); seen++ {
			if match(msgs[seen]) {
				return msgs[seen], nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: the stream ended: %w (%s)", what, err, lastStatus(msgs))
		}
		select {
		case <-change:
		case <-timer.C:
			return nil, fmt.Errorf("waiting for %s: nothing within %s (%s)", what, limit, lastStatus(msgs))
		}
	}
}

// lastStatus describes the last status or error message, for failures.
func lastStatus(msgs []map[string]any) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if t := msgs[i]["type"]; t == "status" || t == "error" {
			b, _ := json.Marshal(msgs[i])
			return string(b)
		}
	}
	return "no status message"
}

// navigate goes to url and waits until the remote page has loaded it.
func (s *viewerStream) navigate(url string) error {
	s.mu.Lock()
	from := len(s.msgs)
	s.mu.Unlock()
	if err := s.send(map[string]any{"type": "nav", "action": "go", "url": url}); err != nil {
		return err
	}
	_, err := s.wait("the page "+url, from, stepDeadline, func(m map[string]any) bool {
		u, _ := m["url"].(string)
		return m["type"] == "state" && strings.HasPrefix(u, url) && m["loading"] == false
	})
	return err
}

// download starts a download of url in the remote browser: the page stays,
// the file goes to the quarantine.
func (s *viewerStream) download(url string) error {
	return s.send(map[string]any{"type": "nav", "action": "go", "url": url})
}

// siteHost is the name of the test site inside the remote browsers.
const siteHost = "files.test"

// restartSite is the site the remote browsers reach: a page, files that
// the transfer policy releases (PDF) or holds (CSV), a download that stalls
// after its first part until released, and one that trickles.
type restartSite struct {
	ts *httptest.Server
	// host is "files.test:PORT", base "http://files.test:PORT".
	host, base string
	// stalled gets a value each time /slow.bin has sent its first part
	// and stalls.
	stalled chan struct{}
	// gate is closed by release; /slow.bin finishes then.
	gate     chan struct{}
	gateOnce sync.Once
}

// slowFirstPart and slowSize are what /slow.bin sends before it stalls,
// and in all.
const (
	slowFirstPart = 256 << 10
	slowSize      = 1 << 20
)

func newRestartSite(t *testing.T) *restartSite {
	t.Helper()
	s := &restartSite{stalled: make(chan struct{}, 16), gate: make(chan struct{})}
	mux := http.NewServeMux()
	attach := func(w http.ResponseWriter, ctype, name string, body []byte) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
	mux.HandleFunc("/report.pdf", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "application/pdf", "report.pdf", reportPDF)
	})
	mux.HandleFunc("/stock.csv", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "text/csv", "stock.csv", []byte("drug,stock\nheparin,40\n"))
	})
	mux.HandleFunc("/slow.bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="slow.bin"`)
		w.Header().Set("Content-Length", strconv.Itoa(slowSize))
		chunk := bytes.Repeat([]byte{'s'}, 16<<10)
		for sent := 0; sent < slowFirstPart; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.(http.Flusher).Flush()
		select {
		case s.stalled <- struct{}{}:
		default:
		}
		select {
		case <-s.gate:
		case <-r.Context().Done():
			return
		}
		for sent := slowFirstPart; sent < slowSize; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/trickle.bin", func(w http.ResponseWriter, r *http.Request) {
		// 16 parts, one per tick: a download that is in flight for a while.
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="trickle.bin"`)
		w.Header().Set("Content-Length", strconv.Itoa(16*(16<<10)))
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		chunk := bytes.Repeat([]byte{'t'}, 16<<10)
		for range 16 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>ward notices %s</title><body><h1>Ward notices</h1><p>%s</p></body>`, r.URL.Path, r.URL.Path)
	})
	s.ts = httptest.NewServer(mux)
	t.Cleanup(s.ts.Close)
	t.Cleanup(s.release) // before Close: a stalled download must end
	port := s.ts.URL[strings.LastIndex(s.ts.URL, ":")+1:]
	s.host = siteHost + ":" + port
	s.base = "http://" + s.host
	return s
}

// release lets stalled downloads finish.
func (s *restartSite) release() { s.gateOnce.Do(func() { close(s.gate) }) }

// url is the address of path on the site, as the remote browser sees it.
func (s *restartSite) url(path string) string { return s.base + path }

// waitStalled waits until /slow.bin has sent its first part and stalls.
func (s *restartSite) waitStalled(t *testing.T) {
	t.Helper()
	select {
	case <-s.stalled:
	case <-time.After(stepDeadline):
		t.Fatalf("the slow download did not start within %s", stepDeadline)
	}
}

// stallProxy is a TCP proxy in front of a real clamd that holds INSTREAM
// requests while it is told to, so that a broker can be killed while a
// scan is in progress.
type stallProxy struct {
	l      net.Listener
	socket string
	// stalled gets a value for each INSTREAM request held.
	stalled chan struct{}

	mu      sync.Mutex
	holding bool
	gate    chan struct{}
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

func newStallProxy(t *testing.T, clamdSocket string) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{l: l, socket: clamdSocket, stalled: make(chan struct{}, 16), gate: make(chan struct{}), conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.release()
		l.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// addr is the proxy's address for transfer.clamd.
func (p *stallProxy) addr() string { return "tcp:" + p.l.Addr().String() }

// hold makes the proxy hold INSTREAM requests until release.
func (p *stallProxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// release lets held requests through and stops holding.
func (p *stallProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.holding = false
		close(p.gate)
	}
}

func (p *stallProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Go(func() {
			defer func() {
				c.Close()
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
			p.serve(c)
		})
	}
}

// serve reads the clamd command (zCOMMAND\0 or nCOMMAND\n), holds it if
// it is INSTREAM and the proxy holds, then relays the connection.
func (p *stallProxy) serve(c net.Conn) {
	br := bufio.NewReader(c)
	var cmd []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return
		}
		cmd = append(cmd, b)
		if b == 0 || b == '\n' || len(cmd) > 64 {
			break
		}
	}
	if bytes.Contains(cmd, []byte("INSTREAM")) {
		p.mu.Lock()
		holding, gate := p.holding, p.gate
		p.mu.Unlock()
		if holding {
			select {
			case p.stalled <- struct{}{}:
			default:
			}
			<-gate
		}
	}
	up, err := net.Dial("unix", p.socket)
	if err != nil {
		return
	}
	defer up.Close()
	if _, err := up.Write(cmd); err != nil {
		return
	}
	p.wg.Go(func() {
		// The client is gone (or done): clamd must not wait for the
		// rest of a stream that will never come.
		_, _ = io.Copy(up, br)
		up.Close()
	})
	_, _ = io.Copy(c, up)
}

// waitStalled waits until a scan is held.
func (p *stallProxy) waitStalled(t *testing.T) {
	t.Helper()
	select {
	case <-p.stalled:
	case <-time.After(stepDeadline):
		t.Fatalf("no scan reached clamd within %s", stepDeadline)
	}
}

// browserPIDs lists the processes whose command line names a directory
// under profiles: the browsers of a broker on that data directory.
func browserPIDs(profiles string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmd, []byte(profiles+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// liveSessions are the IDs of the sessions of the streams given, which die
// with the broker when it is killed.
func liveSessions(streams ...*viewerStream) []string {
	var ids []string
	for _, s := range streams {
		ids = append(ids, s.session)
	}
	return ids
}

// checkNothingLeft waits until the running broker has removed what the
// dead run left: the quarantine directories of its sessions, its browsers'
// processes and profiles. Call it before any session of the new run starts.
func (e *restartEnv) checkNothingLeft(died []string) {
	e.t.Helper()
	qdir := filepath.Join(e.data, "quarantine", "sessions")
	deadline := time.Now().Add(cleanupDeadline)
	for {
		var left []string
		ents, _ := os.ReadDir(qdir)
		for _, d := range ents {
			files, _ := os.ReadDir(filepath.Join(qdir, d.Name()))
			left = append(left, fmt.Sprintf("quarantine/sessions/%s (%d files)", d.Name(), len(files)))
		}
		for _, d := range profileDirs(e.t, e.data) {
			left = append(left, "profiles/"+d+" ("+strings.Join(filesUnder(filepath.Join(e.profiles(), d), 8), ", ")+")")
		}
		for _, pid := range browserPIDs(e.profiles()) {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			left = append(left, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmd[:min(len(cmd), 160)]), "\x00", " ")))
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("%s after the restart, the dead run (sessions %v) left behind:\n  %s", cleanupDeadline, died, strings.Join(left, "\n  "))
			return
		}
		time.Sleep(pollInterval)
	}
}

// filesUnder names up to n files under dir, for a failure message.
func filesUnder(dir string, n int) []string {
	var names []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || len(names) >= n {
			return filepath.SkipAll
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, rel)
		}
		return nil
	})
	return names
}

// readTrail reads every record of the trail in DIR/audit, in order.
func (e *restartEnv) readTrail() []audit.Event {
	e.t.Helper()
	files, err := filepath.Glob(filepath.Join(e.data, "audit", "audit-*.jsonl"))
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(files)
	var out []audit.Event
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			e.t.Fatal(err)
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var ev audit.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				e.t.Errorf("%s line %d is not a record: %v", filepath.Base(f), i+1, err)
				continue
			}
			out = append(out, ev)
		}
	}
	return out
}

// checkStopped checks the data directory of a broker that was stopped
// cleanly after a restart: shoji audit verify passes, the ledger agrees
// with the trail, and every session is closed in the trail, those that
// died with a broker with reason broker_stopped.
func (e *restartEnv) checkStopped(died []string) []audit.Event {
	e.t.Helper()
	if out, err := e.runCLI(nil, "audit", "verify", "--data", e.data); err != nil {
		e.t.Errorf("shoji audit verify after the restart: %v\n%s", err, out)
	}
	trail := e.readTrail()
	e.checkLedger(trail)
	checkSessionsClosed(e.t, trail, died)
	return trail
}

// checkLedger checks that the ledger and the trail agree: every ledger
// entry has its audit steps, its state among them, and none is left
// unfinished by a broker that stopped cleanly.
func (e *restartEnv) checkLedger(trail []audit.Event) {
	e.t.Helper()
	steps := map[string][]string{}
	for _, ev := range trail {
		if ev.Type == audit.TypeTransfer && ev.Transfer != nil {
			steps[ev.Transfer.ID] = append(steps[ev.Transfer.ID], ev.Transfer.State)
		}
	}
	st, err := store.Open(e.data)
	if err != nil {
		e.t.Fatalf("open the store of the stopped broker: %v", err)
	}
	defer st.Close()
	list, err := st.ListTransfers(func(*transfer.Transfer) bool { return true })
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tr := range list {
		got := steps[tr.ID]
		switch {
		case tr.State == transfer.Receiving || tr.State == transfer.Checking:
			e.t.Errorf("ledger: transfer %s (%s) is still %s after a clean stop; trail steps %v", tr.ID, tr.PageName, tr.State, got)
		case len(got) == 0:
			e.t.Errorf("ledger: transfer %s (%s, %s) has no record in the trail", tr.ID, tr.PageName, tr.State)
		case !slices.Contains(got, string(tr.State)) && !(tr.State == transfer.Released && slices.Contains(got, "approved")):
			e.t.Errorf("ledger: transfer %s (%s) is %s, but the trail has only the steps %v", tr.ID, tr.PageName, tr.State, got)
		}
	}
}

// checkSessionsClosed checks that every session_start of the trail has a
// session_end, and that those of the sessions in died say broker_stopped.
func checkSessionsClosed(t *testing.T, trail []audit.Event, died []string) {
	t.Helper()
	ends := map[string][]string{}
	for _, ev := range trail {
		if ev.Type == audit.TypeSessionEnd {
			ends[ev.Session] = append(ends[ev.Session], ev.Reason)
		}
	}
	for _, ev := range trail {
		if ev.Type == audit.TypeSessionStart && len(ends[ev.Session]) == 0 {
			t.Errorf("trail: session %s of %s (started %s) has no session_end", ev.Session, ev.User, ev.Time.Format(time.RFC3339))
		}
	}
	for _, id := range died {
		if !slices.Contains(ends[id], "broker_stopped") {
			t.Errorf("trail: session %s died with the broker, but its session_end reasons are %v, not broker_stopped", id, ends[id])
		}
	}
}

// checkPolicyRecorded checks that the stored site policy's version has its
// policy_change record in the trail, with the stored rule in it.
func (e *restartEnv) checkPolicyRecorded(trail []audit.Event, wantVersion int, wantHost string) {
	e.t.Helper()
	st, err := store.Open(e.data)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, version, err := st.Policy()
	st.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	if version != wantVersion || !bytes.Contains(raw, []byte(wantHost)) {
		e.t.Errorf("stored policy: version %d %s; want version %d with %s", version, raw, wantVersion, wantHost)
	}
	what := fmt.Sprintf("site policy version %d", version)
	for _, ev := range trail {
		if ev.Type == audit.TypePolicyChange && ev.What == what && strings.Contains(ev.After, wantHost) {
			return
		}
	}
	e.t.Errorf("trail: no policy_change %q with %s: the policy in force was never recorded", what, wantHost)
}

// useAfterRestart proves the restarted broker serves: a clinician logs in,
// gets a live browser and loads a page.
func (e *restartEnv) useAfterRestart(r *shojiRun) {
	e.t.Helper()
	s := r.mustLogin(nurseUser).mustStream()
	if err := s.navigate(e.site.url("/after-restart")); err != nil {
		e.t.Fatal(err)
	}
}

// restartAndCheck starts the broker again on the data directory the last
// run left, checks it, lets check (if any) use the running broker, stops
// it cleanly and checks the data directory. died are the sessions that
// died with the last run. It returns the trail.
func (e *restartEnv) restartAndCheck(died []string, check func(r *shojiRun)) []audit.Event {
	e.t.Helper()
	r := e.start()
	e.checkNothingLeft(died)
	if check != nil {
		check(r)
	}
	r.stop()
	return e.checkStopped(died)
}
