package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// demoBroker is the real binary serving a data directory in demo mode.
type demoBroker struct {
	cmd    *exec.Cmd
	out    *lineWriter
	exited chan struct{}
	base   string
	pw     string
}

// startDemo starts bin serve --demo on data and waits until it serves.
func startDemo(t *testing.T, bin, data, chromium string) *demoBroker {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--data", data, "--chromium", chromium)
	out, errOut := &lineWriter{}, &lineWriter{}
	cmd.Stdout, cmd.Stderr = out, errOut
	// Chromium's helpers inherit the output pipes.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoBroker{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.exited
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
	})
	d.base = out.wait(t, regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)`))[1]
	d.pw = out.wait(t, regexp.MustCompile(`user demo\s+password (\S+)`))[1]
	return d
}

// openSession logs in as the demo clinician, accepts the pledge, and opens
// the viewer stream until the first frame.
func (d *demoBroker) openSession(t *testing.T) *websocket.Conn {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	for _, step := range []struct{ path, body string }{
		{"/api/login", `{"username":"demo","password":"` + d.pw + `"}`},
		{"/api/pledge", `{}`},
	} {
		req, _ := http.NewRequest("POST", d.base+step.path, strings.NewReader(step.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", d.base)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", step.path, resp.StatusCode)
		}
	}
	u, _ := url.Parse(d.base)
	hdr := http.Header{"Origin": {d.base}}
	for _, c := range jar.Cookies(u) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(d.base, "http")+"/api/stream", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
		typ, _, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the first frame: %v", err)
		}
		if typ == websocket.BinaryMessage {
			return ws
		}
	}
}

// TestKilledWithLiveSessionCleanedAtRestart kills the real binary with
// kill -9 while a clinician's browser runs, and starts it again on the same
// data directory: no process of the dead run's browsers is left, its
// profile is removed and recorded, the session has its session_end with
// the reason broker_stopped, and the trail verifies.
func TestKilledWithLiveSessionCleanedAtRestart(t *testing.T) {
	chromium, dir, bin := realBinary(t)
	data := filepath.Join(dir, "data")
	profiles := filepath.Join(data, "profiles")

	first := startDemo(t, bin, data, chromium)
	first.openSession(t)
	left, err := os.ReadDir(profiles)
	if err != nil || len(left) == 0 || countProcs(profiles) == 0 {
		t.Fatalf("no browser running for the session (profiles %v, %v): the checks below would prove nothing", left, err)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	t.Logf("%d processes of the killed run's browsers were left running", countProcs(profiles))

	second := startDemo(t, bin, data, chromium)
	if n := countProcs(profiles); n != 0 {
		t.Errorf("%d processes of the killed run's browsers still run after the restart", n)
	}
	if ents, _ := os.ReadDir(profiles); len(ents) != 0 {
		t.Errorf("profile directories left after the restart: %v", ents)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("shoji did not exit after SIGTERM")
	}

	var starts, ends, profileRecs []audit.Event
	for e, err := range audit.Scan(filepath.Join(data, "audit"), audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Type == audit.TypeSessionStart:
			starts = append(starts, e)
		case e.Type == audit.TypeSessionEnd:
			ends = append(ends, e)
		case e.Type == audit.TypeRecovery && e.What == "profile":
			profileRecs = append(profileRecs, e)
		}
	}
	if len(starts) != 1 || len(ends) != 1 || ends[0].Session != starts[0].Session || ends[0].Reason != "broker_stopped" || ends[0].User != "demo" {
		t.Errorf("session_start %+v, session_end %+v: want the session's end with reason broker_stopped", starts, ends)
	}
	if len(profileRecs) != len(left) || len(profileRecs) > 0 && profileRecs[0].Target != filepath.Join(profiles, left[0].Name()) {
		t.Errorf("profile recovery records %+v, want one for each of %v", profileRecs, left)
	}
	if out, err := exec.Command(bin, "audit", "verify", "--data", data).CombinedOutput(); err != nil {
		t.Errorf("audit verify after the restart: %v\n%s", err, out)
	}
}
