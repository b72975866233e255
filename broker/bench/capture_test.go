package bench

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCaptureRateAdd(t *testing.T) {
	a := CaptureRate{Seconds: 5, Frames: 100, Distinct: 50, Bytes: 1000, ChromiumCPUMS: ptr(2000)}
	b := CaptureRate{Seconds: 5, Frames: 60, Distinct: 60, Bytes: 600, ChromiumCPUMS: ptr(1000)}
	got := CaptureRate{}.add(a).add(b)
	want := CaptureRate{Seconds: 10, Frames: 160, Distinct: 110, Bytes: 1600, FPS: 16, DistinctFPS: 11, ChromiumCPUMS: ptr(3000)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sum (-want +got):\n%s", diff)
	}
	if v := got.CPUPerSecond(); v == nil || *v != 300 {
		t.Errorf("CPU per second = %v, want 300", v)
	}
	if v := got.CPUPerFrame(); v == nil || *v != 3000.0/110 {
		t.Errorf("CPU per frame = %v, want %v", v, 3000.0/110)
	}
	// A window whose CPU time is unknown makes the sum's unknown.
	b.ChromiumCPUMS = nil
	if s := a.add(b); s.ChromiumCPUMS != nil || s.CPUPerSecond() != nil || s.CPUPerFrame() != nil {
		t.Errorf("sum with an unknown CPU time has CPU %v", *s.ChromiumCPUMS)
	}
	if s := (CaptureRate{Seconds: 1}).CPUPerFrame(); s != nil {
		t.Errorf("CPU per frame of no frames = %v", *s)
	}
}

func captureResults() *Results {
	r := newResults()
	r.Latency[key("capture", methodScreencast)] = []float64{20, 30, 40}
	r.Latency[key("capture", methodScreenshot)] = []float64{40, 60, 80}
	r.Timeouts[key("capture", methodScreenshot)] = 2
	r.Errors[key("capture", methodBeginFrame)] = "not available: HeadlessExperimental.beginFrame: 'HeadlessExperimental.beginFrame' wasn't found (-32601)"
	r.Errors[key("capture-rate", methodScreenshotFast)] = "Page.captureScreenshot jpeg: boom"
	r.CaptureRates = map[string]CaptureRate{
		methodScreencast: CaptureRate{}.add(CaptureRate{Seconds: 10, Frames: 200, Distinct: 200, Bytes: 2000, ChromiumCPUMS: ptr(8000)}),
		methodScreenshot: CaptureRate{}.add(CaptureRate{Seconds: 10, Frames: 100, Distinct: 90, Bytes: 1000}),
	}
	return r
}

func TestCaptureRows(t *testing.T) {
	r := captureResults()
	sc := r.CaptureRates[methodScreencast]
	ss := r.CaptureRates[methodScreenshot]
	want := []CaptureRow{
		{Method: methodScreencast, Label: "screencast (raw CDP)", Latency: Summarize([]float64{20, 30, 40}),
			RatioP50: ptr(1), RatioP95: ptr(1), RatioP99: ptr(1), Animation: &sc},
		{Method: methodScreenshot, Label: "Page.captureScreenshot after the input", Latency: Summarize([]float64{40, 60, 80}), Timeouts: 2,
			RatioP50: ptr(2), RatioP95: ptr(2), RatioP99: ptr(2), Animation: &ss},
		{Method: methodScreenshotFast, Label: "Page.captureScreenshot, optimizeForSpeed", Error: "frame rate: Page.captureScreenshot jpeg: boom"},
		{Method: methodBeginFrame, Label: "HeadlessExperimental.beginFrame with screenshot",
			Error: "not available: HeadlessExperimental.beginFrame: 'HeadlessExperimental.beginFrame' wasn't found (-32601)"},
	}
	if diff := cmp.Diff(want, captureRows(r), cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if rows := captureRows(newResults()); len(rows) != 0 {
		t.Errorf("rows of a run without the capture scenario: %+v", rows)
	}
}

func TestWriteCaptureMarkdown(t *testing.T) {
	var b strings.Builder
	writeCaptureMarkdown(&b, captureRows(captureResults()))
	for _, want := range []string{
		"## Capture: screencast against capture driven by the input",
		"| screencast (raw CDP) | 3 | 30.0 ms | 39.0 ms | 39.8 ms | 1.00 | 1.00 | 1.00 | 20.0 | 20.0 | 800 | 40.0 |  |",
		"| Page.captureScreenshot after the input | 3 | 60.0 ms | 78.0 ms | 79.6 ms | 2.00 | 2.00 | 2.00 | 10.0 | 9.0 | — | — | 2 samples showed no change |",
		"| HeadlessExperimental.beginFrame with screenshot | 0 | — | — | — | — | — | — | — | — | — | — | not available: HeadlessExperimental.beginFrame: 'HeadlessExperimental.beginFrame' wasn't found (-32601) |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}
