package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildShoji builds the shoji binary of this tree into a temporary
// directory, for the broker the bench starts.
func buildShoji(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "shoji")
	out, err := exec.Command("go", "build", "-o", exe, "../shoji").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ../shoji: %v\n%s", err, out)
	}
	return exe
}

// TestBenchQuickClick runs `shoji-bench --quick --scenarios click` end to
// end: a broker child process, the raw-CDP baseline, the protocol client
// and the real viewer, all with real Chromium, and checks that bench.json
// has the click figures.
func TestBenchQuickClick(t *testing.T) {
	chromium := "/usr/lib/chromium/chromium"
	if p := os.Getenv("SHOJI_CHROMIUM"); p != "" {
		chromium = p
	}
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("Chromium not found at %s (SHOJI_REQUIRE_DEPS=1): %v", chromium, err)
		}
		t.Skipf("Chromium not found at %s", chromium)
	}
	shoji := buildShoji(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"--shoji", shoji, "--quick", "--scenarios", "click", "--samples", "10", "--vnc=false",
		"--chromium", chromium, "--out", out}, strings.NewReader(""), &stdout, &stderr)
	if err != nil {
		broker, _ := os.ReadFile(filepath.Join(out, "broker.log"))
		t.Fatalf("shoji-bench: %v\nstderr:\n%s\nbroker log:\n%s", err, stderr.String(), broker)
	}

	data, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenarios []struct{ Name, Status, Error string }
		Figures   []struct {
			ID    string
			Shoji *float64
			Raw   *float64 `json:"raw_cdp"`
			Peer  *float64 `json:"vnc_peer"`
			Met   *bool
			Note  string
		}
		Machine struct{ Chromium string }
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("bench.json: %v", err)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Name != "click" || rep.Scenarios[0].Status != "ok" {
		t.Errorf("scenarios = %+v, want click ok", rep.Scenarios)
	}
	if !strings.Contains(rep.Machine.Chromium, "Chromium") {
		t.Errorf("machine's Chromium = %q", rep.Machine.Chromium)
	}
	found := 0
	for _, f := range rep.Figures {
		switch f.ID {
		case "click_frame_p50_protocol", "click_frame_p95_protocol", "click_paint_p50_viewer", "click_paint_p95_viewer":
			found++
			if f.Shoji == nil || f.Raw == nil || *f.Shoji <= 0 || *f.Raw <= 0 {
				t.Errorf("%s: shoji %v, raw %v; want both positive (note %q)", f.ID, f.Shoji, f.Raw, f.Note)
			}
			if f.ID == "click_frame_p50_protocol" && f.Met == nil {
				t.Errorf("%s: target not evaluated", f.ID)
			}
			if strings.HasPrefix(f.ID, "click_paint") && (f.Peer != nil || !strings.Contains(f.Note, "VNC peer")) {
				t.Errorf("%s: the VNC peer was off, but peer %v, note %q", f.ID, f.Peer, f.Note)
			}
		case "animation_fps":
			if f.Shoji != nil || !strings.Contains(f.Note, "not selected") {
				t.Errorf("%s: not selected, but shoji %v, note %q", f.ID, f.Shoji, f.Note)
			}
		}
	}
	if found != 4 {
		t.Errorf("found %d of the 4 click figures", found)
	}
	for _, name := range []string{"README.md", "latency-click.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
