package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shoji-rbi/shoji/isolation"
)

func ptr(v float64) *float64 { return &v }

func TestTargetEval(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name             string
		t                target
		shoji, raw, peer *float64
		want             *bool
		unknown          string
	}{
		{"no target", target{}, ptr(1), ptr(1), nil, nil, ""},
		{"no value", targetClickFrameP50, nil, ptr(30), nil, nil, ""},
		{"raw met", targetClickFrameP50, ptr(35.9), ptr(30), nil, &yes, ""},
		{"raw missed", targetClickFrameP50, ptr(36.1), ptr(30), nil, &no, ""},
		{"raw missing", targetClickFrameP50, ptr(30), nil, nil, nil, "raw CDP baseline missing"},
		{"both met", targetClickPaintP50, ptr(40), ptr(35), ptr(60), &yes, ""},
		{"the peer's part missed", targetClickPaintP50, ptr(40), ptr(35), ptr(45), &no, ""},
		{"no peer, raw met", targetClickPaintP50, ptr(40), ptr(35), nil, nil, "VNC peer missing"},
		{"no peer, raw missed", targetClickPaintP50, ptr(50), ptr(35), nil, &no, "VNC peer missing"},
		{"absolute met", targetCPU, ptr(0.2), nil, nil, &yes, ""},
		{"absolute missed", targetCPU, ptr(0.21), nil, nil, &no, ""},
		{"static needs zero", targetStatic, ptr(0.1), ptr(0), nil, &no, ""},
		{"frame rate met", targetFPS, ptr(57), ptr(60), nil, &yes, ""},
		{"frame rate missed", targetFPS, ptr(56.9), ptr(60), nil, &no, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, unknown := tc.t.eval(tc.shoji, tc.raw, tc.peer)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("met (-want +got):\n%s", diff)
			}
			if unknown != tc.unknown {
				t.Errorf("unknown = %q, want %q", unknown, tc.unknown)
			}
		})
	}
}

// sampleResults are results as a run with every scenario but the capacity
// one would leave them, the key scenario's viewer having failed.
func sampleResults() (*Results, map[string]ScenarioResult) {
	r := newResults()
	r.Latency[key("click", clientRaw)] = []float64{20, 30, 40}
	r.Latency[key("click", clientProtocol)] = []float64{22, 31, 45}
	r.Latency[key("click", clientViewer)] = []float64{40, 50, 60}
	r.Latency[key("click", clientVNC)] = []float64{70, 80, 90}
	r.Latency[key("key", clientRaw)] = []float64{10}
	r.Latency[key("key", clientProtocol)] = []float64{12}
	r.Errors[key("key", clientViewer)] = "real viewer: log in: boom"
	r.Rates[key("animation", clientRaw)] = Rate{Seconds: 10, Frames: 600, Bytes: 10 << 20, FPS: 60, BytesPerSec: 1 << 20}
	r.Rates[key("animation", clientProtocol)] = Rate{Seconds: 10, Frames: 550, Bytes: 9 << 20, FPS: 55, BytesPerSec: 0.9 * (1 << 20)}
	r.Rates[key("static", clientRaw)] = Rate{Seconds: 10}
	r.Rates[key("static", clientProtocol)] = Rate{Seconds: 10}
	r.BrokerCPUPerFrameMS = ptr(0.15)
	r.Latency[keyLoginCold] = []float64{1200, 1400}
	r.Errors[keyLoginWarm] = "not measured: no pool"
	status := map[string]ScenarioResult{
		"click": {Name: "click", Status: statusOK}, "key": {Name: "key", Status: statusOK},
		"animation": {Name: "animation", Status: statusOK}, "static": {Name: "static", Status: statusOK},
		"scroll": {Name: "scroll", Status: statusFailed, Error: "wheel: broken pipe"},
		"login":  {Name: "login", Status: statusOK},
		"memory": {Name: "memory", Status: statusNotRun, Error: "needs the bench's own broker, not --target"},
	}
	return r, status
}

func figureByID(t *testing.T, figs []Figure, id string) Figure {
	t.Helper()
	for _, f := range figs {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no figure %q", id)
	return Figure{}
}

func TestBuildFigures(t *testing.T) {
	res, status := sampleResults()
	figs := buildFigures(res, status)
	yes, no := true, false
	for _, tc := range []struct {
		id   string
		want Figure
	}{
		{"click_frame_p50_protocol", Figure{Name: "click → frame p50, protocol client", Unit: "ms", Shoji: ptr(31), Raw: ptr(30),
			Ratio: ptr(31.0 / 30), Target: targetClickFrameP50.text, Met: &yes}},
		{"click_paint_p50_viewer", Figure{Name: "click → paint p50, real viewer", Unit: "ms", Shoji: ptr(50), Raw: ptr(30), Peer: ptr(80),
			Ratio: ptr(50.0 / 30), Target: targetClickPaintP50.text, Met: &no}},
		{"key_p50_viewer", Figure{Name: "key press → character visible p50, real viewer", Unit: "ms", Raw: ptr(10), Target: "—",
			Note: "shoji failed: real viewer: log in: boom"}},
		{"ime_p50_protocol", Figure{Name: "IME commit → text visible p50, protocol client", Unit: "ms", Target: "—",
			Note: "shoji not run: scenario ime not selected; raw CDP not run: scenario ime not selected"}},
		{"animation_fps", Figure{Name: "frame rate during a CSS animation", Unit: "frames/s", Shoji: ptr(55), Raw: ptr(60),
			Ratio: ptr(55.0 / 60), Target: targetFPS.text, Met: &no}},
		{"scroll_fps", Figure{Name: "frame rate during wheel scrolling", Unit: "frames/s", Target: targetFPS.text,
			Note: "shoji not run: scenario scroll failed: wheel: broken pipe; raw CDP not run: scenario scroll failed: wheel: broken pipe"}},
		{"static_fps", Figure{Name: "frame rate of a static page after it settles", Unit: "frames/s", Shoji: ptr(0), Raw: ptr(0),
			Target: targetStatic.text, Met: &yes}},
		{"broker_cpu_per_frame", Figure{Name: "broker CPU time per relayed frame", Unit: "ms", Shoji: ptr(0.15), Target: targetCPU.text, Met: &yes}},
		{"broker_rss_per_session", Figure{Name: "broker memory per session, excluding Chromium (RSS)", Unit: "MiB", Target: targetRSS.text,
			Note: "shoji not run: needs the bench's own broker, not --target"}},
		{"login_cold_p50", Figure{Name: "login → first frame, cold, p50 (raw: Chromium start → first frame)", Unit: "ms", Shoji: ptr(1300),
			Target: targetCold.text, Met: &yes, Note: "raw CDP not run: no samples"}},
		{"login_warm_p50", Figure{Name: "login → first frame, warm pool, p50", Unit: "ms", Target: targetWarm.text,
			Note: "shoji failed: not measured: no pool"}},
		{"capacity_sessions", Figure{Name: "sessions on one node (idle page each) beside one active session", Unit: "sessions",
			Target: "≥ 30, with the active session's p95 ≤ 2 × its solo p95", Note: "not run: scenario capacity not selected"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			tc.want.ID = tc.id
			got := figureByID(t, figs, tc.id)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	ids := map[string]bool{}
	for _, f := range figs {
		if ids[f.ID] {
			t.Errorf("figure %s appears twice", f.ID)
		}
		ids[f.ID] = true
	}
}

func TestCapacityFigures(t *testing.T) {
	res := newResults()
	pt := func(n int, p95 float64) CapacityPoint {
		return CapacityPoint{Sessions: n, Click: Summary{N: 10, P50: p95 / 2, P95: p95}}
	}
	res.Capacity = []CapacityPoint{pt(0, 40), pt(10, 50), pt(30, 75), pt(40, 120)}
	res.CapacityEnd = "the node refused idle session 41: 1013 the server is full"
	figs := capacityFigures(figureBuilder{res: res, status: map[string]ScenarioResult{"capacity": {Status: statusOK}}})
	yes := true
	want := []Figure{
		{ID: "capacity_sessions", Name: "sessions on one node (idle page each) beside one active session", Unit: "sessions", Shoji: ptr(40),
			Target: "≥ 30, with the active session's p95 ≤ 2 × its solo p95", Met: &yes, Note: res.CapacityEnd},
		{ID: "capacity_p95_at_30", Name: "active session's click → frame p95 with 30 idle sessions", Unit: "ms", Shoji: ptr(75),
			Target: "≤ 2 × solo p95 (40.0 ms)", Met: &yes},
	}
	if diff := cmp.Diff(want, figs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	res.Capacity = res.Capacity[:2]
	res.CapacityEnd = "stopped at --max-sessions 10; the node had not refused a session"
	figs = capacityFigures(figureBuilder{res: res, status: map[string]ScenarioResult{"capacity": {Status: statusOK}}})
	if f := figs[0]; f.Met == nil || *f.Met || *f.Shoji != 10 {
		t.Errorf("10 sessions: %+v, want 10 and not met", f)
	}
	if f := figs[1]; f.Shoji != nil || !strings.Contains(f.Note, "not reached") {
		t.Errorf("p95 at 30 without 30 sessions: %+v", f)
	}
}

// sampleReport is a small report for the writers.
func sampleReport() *Report {
	res, status := sampleResults()
	res.Capacity = []CapacityPoint{{Sessions: 0, Click: Summary{N: 3, P50: 30, P95: 40}, NodeMemoryMiB: 1000, BrokerRSSMiB: 40, ChromiumPSSMiB: 300}}
	start := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	r := &Report{
		Version: reportVersion, Command: "shoji-bench --quick", Started: start, Finished: start.Add(90 * time.Second),
		Machine:   Machine{CPU: "AMD EPYC", Cores: 2, MemoryGiB: 23.5, OS: "Debian", Kernel: "6.1", Chromium: "Chromium 156", Go: "go1.26", Shoji: "dev"},
		Settings:  Settings{Viewport: isolation.Viewport{Width: 1280, Height: 720, DPR: 1}, JPEGQuality: 70, MaxFramesInFlight: 2, EveryNthFrame: 1},
		Scenarios: []ScenarioResult{{Name: "click", Status: statusOK, Seconds: 40}, {Name: "scroll", Status: statusFailed, Error: "wheel | broken"}},
		Figures:   buildFigures(res, status),
		Summaries: map[string]Summary{key("click", clientRaw): Summarize(res.Latency[key("click", clientRaw)])},
		Results:   res,
		Plots:     []string{"latency-click.png"},
	}
	return r
}

func TestWriteJSON(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := writeJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("bench.json does not parse: %v\n%s", err, buf.String())
	}
	if diff := cmp.Diff(r, &back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s", diff)
	}
	// Missing values are null, not absent or NaN, so that a reader sees
	// every figure.
	var raw struct {
		Figures []map[string]json.RawMessage `json:"figures"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range raw.Figures {
		if string(f["id"]) == `"ime_p50_protocol"` && string(f["shoji"]) != "null" {
			t.Errorf("a figure not run has shoji %s, want null", f["shoji"])
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := writeMarkdown(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"```sh\nshoji-bench --quick\n```",
		"Machine: AMD EPYC, 2 cores, 23.5 GiB",
		"| figure | shoji | raw CDP | ratio | VNC peer | target | met? |",
		"| click → frame p50, protocol client | 31.0 ms | 30.0 ms | 1.03 | — | ≤ 1.10 × raw CDP p50 + 3 ms | yes |",
		"| click → paint p50, real viewer | 50.0 ms | 30.0 ms | 1.67 | 80.0 ms | ≤ raw CDP p50 + 8 ms, and ≤ 0.85 × the VNC peer's p50 | **no** |",
		"| frame rate during a CSS animation | 55.0/s | 60.0/s | 0.92 | — | ≥ 0.95 × raw CDP | **no** |",
		"| bytes/s during a CSS animation | 922 KiB/s | 1024 KiB/s | 0.90 | — | — | — |",
		"| click/raw | 3 | 0 | 20.0 | 30.0 | 39.0 | 39.8 | 40.0 |",
		"| 0 | 30.0 ms | 40.0 ms | 1000 MiB | 40.0 MiB | 300 MiB |",
		`| scroll | failed | 0 s | wheel \| broken |`,
		"- key/viewer: real viewer: log in: boom",
		"![latency-click](latency-click.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("README.md lacks %q:\n%s", want, md)
		}
	}
	// Every table row has the header's number of cells.
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| click → ") || strings.HasPrefix(line, "| key press") {
			if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 8 {
				t.Errorf("row has %d separators, want 8: %s", n, line)
			}
		}
	}
}
