package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker"
)

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:0\nidle_timout: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"--config", bad, "--data", dir}, "idle_timout"},
		{"plain HTTP beyond loopback", []string{"--listen", "0.0.0.0:0", "--data", dir}, "plain HTTP"},
		{"stray argument", []string{"--data", dir, "extra"}, `unexpected argument "extra"`},
		{"bad log level", []string{"--log-level", "loud", "--data", dir}, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runServe(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	var help bytes.Buffer
	if err := runServe(context.Background(), []string{"--help"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	if !strings.Contains(help.String(), "Usage: shoji serve") || !strings.Contains(help.String(), "-tls-cert") {
		t.Errorf("--help output:\n%s", help.String())
	}
}

// lineWriter collects a process's output and lets a test wait for a line.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *lineWriter) wait(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %v in output:\n%s", re, w.String())
	return nil
}

// realBinary returns the Chromium the tests of the real binary use (it
// fails with SHOJI_REQUIRE_DEPS=1, else skips, when there is none), a
// temporary directory, and the shoji binary built into it.
func realBinary(t *testing.T) (chromium, dir, bin string) {
	t.Helper()
	chromium = os.Getenv("SHOJI_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/lib/chromium/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("Chromium missing (SHOJI_REQUIRE_DEPS=1): %v", err)
		}
		t.Skip("Chromium missing")
	}
	dir = t.TempDir()
	bin = filepath.Join(dir, "shoji")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return chromium, dir, bin
}

// TestDemoServeAndSIGTERM runs the real binary as `make demo` does, logs in
// as the printed demo clinician, opens a session, and sends SIGTERM: the
// viewer is told, and no Chromium process or profile is left behind.
func TestDemoServeAndSIGTERM(t *testing.T) {
	chromium, dir, bin := realBinary(t)
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--data", data, "--chromium", chromium)
	stdout, stderr := &lineWriter{}, &lineWriter{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Chromium's helpers inherit the output pipes; do not wait on them
	// for ever once shoji itself has exited.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	})

	base := stdout.wait(t, regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)`))[1]
	stdout.wait(t, regexp.MustCompile(`one-time set-up token[^\n]*\n\n    (\S+)`))
	pw := stdout.wait(t, regexp.MustCompile(`user demo\s+password (\S+)`))[1]

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.Post(base+"/api/login", "application/json", strings.NewReader(`{"username":"demo","password":"`+pw+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("demo login: %d", resp.StatusCode)
	}
	// The broker refuses the stream until the pledge in force is accepted.
	resp, err = client.Get(base + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	var sess struct {
		PledgeVersion string `json:"pledgeVersion"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = client.Post(base+"/api/pledge", "application/json", strings.NewReader(`{"version":"`+sess.PledgeVersion+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("demo accepts the pledge: %d", resp.StatusCode)
	}
	u, _ := url.Parse(base)
	hdr := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/stream", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)); err != nil {
		t.Fatal(err)
	}
	gotFrame := false
	for !gotFrame {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		typ, _, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the first frame: %v", err)
		}
		gotFrame = typ == websocket.BinaryMessage
	}
	profiles := filepath.Join(data, "profiles")
	if n := countProcs(profiles); n == 0 {
		t.Fatal("no Chromium process found for the session: the check below would prove nothing")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ended map[string]any
	for ended == nil {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("viewer not told of the shutdown: %v", err)
		}
		var m map[string]any
		if typ == websocket.TextMessage && json.Unmarshal(msg, &m) == nil && m["type"] == "status" && m["state"] == "ended" {
			ended = m
		}
	}
	if ended["reason"] != "shutdown" {
		t.Errorf("ended status %v, want reason shutdown", ended)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("shoji exited with %v after SIGTERM, want 0", waitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("shoji did not exit after SIGTERM")
	}
	if n := countProcs(profiles); n != 0 {
		t.Errorf("%d Chromium processes left after shutdown", n)
	}
	if ents, _ := os.ReadDir(profiles); len(ents) != 0 {
		t.Errorf("profile directories left after shutdown: %v", ents)
	}
}

// countProcs counts the processes whose command line mentions dir.
func countProcs(dir string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		f, err := os.Open(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		line, _ := bufio.NewReader(f).ReadString(0)
		rest, _ := io.ReadAll(f)
		f.Close()
		if strings.Contains(line+string(rest), dir) {
			n++
		}
	}
	return n
}

// TestServeHelpListsEnv checks that `shoji serve --help` lists every
// environment variable serve reads, each with the config key it sets.
func TestServeHelpListsEnv(t *testing.T) {
	var help bytes.Buffer
	if err := runServe(context.Background(), []string{"--help"}, io.Discard, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	lines := strings.Split(help.String(), "\n")
	listed := func(name, key string) bool {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == name && f[1] == key {
				return true
			}
		}
		return false
	}
	if !listed("SHOJI_CONFIG", "-") {
		t.Errorf("--help does not list SHOJI_CONFIG:\n%s", help.String())
	}
	for _, e := range broker.EnvVars() {
		if !listed(e.Name, e.Key) {
			t.Errorf("--help does not list %s with its key %s:\n%s", e.Name, e.Key, help.String())
		}
	}
}
