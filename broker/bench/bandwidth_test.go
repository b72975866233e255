package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWireCountSub(t *testing.T) {
	for _, tc := range []struct {
		name       string
		later, was wireCount
		want       wireCount
	}{
		{"nothing", wireCount{}, wireCount{}, wireCount{}},
		{"growth", wireCount{RX: 1500, RXMsgs: 3, TX: 40, TXMsgs: 2, Paints: 3}, wireCount{RX: 500, RXMsgs: 1, TX: 10, TXMsgs: 1, Paints: 1},
			wireCount{RX: 1000, RXMsgs: 2, TX: 30, TXMsgs: 1, Paints: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.later.sub(tc.was); got != tc.want {
				t.Errorf("sub = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTreeCPUAndCPUUsed(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	before := []procStat{
		{PID: 1, PPID: 0, Start: 1, CPU: ms(5000)},   // not ours
		{PID: 10, PPID: 1, Start: 100, CPU: ms(300)}, // root
		{PID: 11, PPID: 10, Start: 101, CPU: ms(200)},
		{PID: 12, PPID: 11, Start: 102, CPU: ms(100)}, // grandchild
		{PID: 13, PPID: 10, Start: 103, CPU: ms(50)},  // ends before the second snapshot
		{PID: 20, PPID: 1, Start: 200, CPU: ms(900)},  // another root
	}
	after := []procStat{
		{PID: 1, PPID: 0, Start: 1, CPU: ms(9000)},
		{PID: 10, PPID: 1, Start: 100, CPU: ms(350)},
		{PID: 11, PPID: 10, Start: 101, CPU: ms(260)},
		{PID: 12, PPID: 11, Start: 102, CPU: ms(100)},
		{PID: 14, PPID: 10, Start: 104, CPU: ms(30)}, // started since
		{PID: 20, PPID: 1, Start: 200, CPU: ms(1000)},
	}
	for _, tc := range []struct {
		name  string
		roots []int
		want  time.Duration
	}{
		{"one tree", []int{10}, ms(50 + 60 + 0 + 30)},
		{"two trees", []int{10, 20}, ms(50 + 60 + 30 + 100)},
		{"no such process", []int{77}, 0},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cpuUsed(treeCPU(before, tc.roots), treeCPU(after, tc.roots))
			if got != tc.want {
				t.Errorf("cpuUsed = %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("reused PID counts from zero", func(t *testing.T) {
		a := map[procKey]time.Duration{{pid: 5, start: 1}: ms(400)}
		b := map[procKey]time.Duration{{pid: 5, start: 2}: ms(70)}
		if got := cpuUsed(a, b); got != ms(70) {
			t.Errorf("cpuUsed = %s, want 70ms", got)
		}
	})
}

func TestBandwidthSampleAdd(t *testing.T) {
	a := BandwidthSample{Windows: 1, Seconds: 10, DriveSeconds: 9, RXBytes: 100, RXMessages: 2, TXBytes: 5, TXMessages: 1, CanvasUpdates: 2,
		Units: 10, NodeCPUSeconds: 1, TerminalCPUSeconds: 0.5}
	got := BandwidthSample{}.add(a).add(a)
	want := BandwidthSample{Windows: 2, Seconds: 20, DriveSeconds: 18, RXBytes: 200, RXMessages: 4, TXBytes: 10, TXMessages: 2, CanvasUpdates: 4,
		Units: 20, NodeCPUSeconds: 2, TerminalCPUSeconds: 1}
	if got != want {
		t.Errorf("add = %+v, want %+v", got, want)
	}
}

func ptrEq(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

func TestBandwidthValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    BandwidthSample
		ok   bool
		want map[string]*float64
	}{
		{"missing", BandwidthSample{}, false, map[string]*float64{}},
		{"typing", BandwidthSample{Windows: 1, Seconds: 25, DriveSeconds: 20, RXBytes: 400000, RXMessages: 400, TXBytes: 20000, CanvasUpdates: 200,
			Units: 200, NodeCPUSeconds: 5, TerminalCPUSeconds: 2.5},
			true, map[string]*float64{bwReceived: ptr(2000), bwMessages: ptr(2), bwUpstream: ptr(100), bwUpdates: ptr(10), bwNodeCPU: ptr(0.2), bwTerminalCPU: ptr(0.1)}},
		{"nothing scrolled", BandwidthSample{Windows: 1, Seconds: 5, DriveSeconds: 0, RXBytes: 10},
			true, map[string]*float64{bwReceived: nil, bwMessages: nil, bwUpstream: nil, bwUpdates: nil, bwNodeCPU: ptr(0), bwTerminalCPU: ptr(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bandwidthValues(tc.s, tc.ok)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d figures, want %d", len(got), len(tc.want))
			}
			for k, w := range tc.want {
				if !ptrEq(got[k], w) {
					t.Errorf("%s = %s, want %s", k, fmtPtr(got[k]), fmtPtr(w))
				}
			}
		})
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b *float64
		want *float64
	}{
		{"both", ptr(81000), ptr(465), ptr(81000.0 / 465)},
		{"peer zero", ptr(0), ptr(0), nil},
		{"shoji zero", ptr(0), ptr(5), ptr(0)},
		{"peer missing", ptr(3), nil, nil},
		{"shoji missing", nil, ptr(3), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratio(tc.a, tc.b); !ptrEq(got, tc.want) {
				t.Errorf("ratio = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBandwidthFigures(t *testing.T) {
	m := map[string]BandwidthSample{
		key(bwKey("typing"), clientViewer): {Windows: 1, Seconds: 22, DriveSeconds: 20, RXBytes: 16_200_000, RXMessages: 400, Units: 200, NodeCPUSeconds: 11},
		key(bwKey("typing"), clientVNC):    {Windows: 1, Seconds: 22, DriveSeconds: 20, RXBytes: 93_000, RXMessages: 1000, Units: 200, NodeCPUSeconds: 2.2},
		key(bwKey("spinner"), clientVNC):   {Windows: 2, Seconds: 20, DriveSeconds: 20, RXBytes: 5_060_000, Units: 20},
	}
	figs := bandwidthFigures(m)
	// The workloads with a sample, in the workloads' order, six figures
	// each.
	if len(figs) != 12 || figs[0].Workload != "typing" || figs[6].Workload != "spinner" {
		t.Fatalf("figures: %+v", figs)
	}
	for _, tc := range []struct {
		i                  int
		figure, unit       string
		shoji, peer, ratio *float64
	}{
		{0, bwReceived, "B per character", ptr(81000), ptr(465), ptr(81000.0 / 465)},
		{1, bwMessages, "messages per character", ptr(2), ptr(5), ptr(0.4)},
		{4, bwNodeCPU, "cores", ptr(0.5), ptr(0.1), ptr(5)},
		{6, bwReceived, "B/s", nil, ptr(253000), nil},
	} {
		f := figs[tc.i]
		if f.Figure != tc.figure || f.Unit != tc.unit || !ptrEq(f.Shoji, tc.shoji) || !ptrEq(f.Peer, tc.peer) || !ptrEq(f.Ratio, tc.ratio) {
			t.Errorf("figure %d = %s %s shoji %s peer %s ratio %v; want %s %s shoji %s peer %s ratio %v", tc.i,
				f.Figure, f.Unit, fmtPtr(f.Shoji), fmtPtr(f.Peer), f.Ratio, tc.figure, tc.unit, fmtPtr(tc.shoji), fmtPtr(tc.peer), tc.ratio)
		}
	}

	var b strings.Builder
	writeBandwidthMarkdown(&b, figs)
	for _, want := range []string{
		"| typing into a text area, 10 characters/s | received | 81.0 kB per character | 465 B per character | 174.19 |",
		"| typing into a text area, 10 characters/s | node CPU per session | 0.500 | 0.100 | 5.00 |",
		"| 100×100 spinner on a still page | received | — | 253.0 kB/s | — |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
	ok, err := bandwidthPlot(filepath.Join(t.TempDir(), "bandwidth.png"), figs)
	if err != nil || !ok {
		t.Errorf("bandwidthPlot = %v, %v; want a plot", ok, err)
	}
	if ok, err := bandwidthPlot(filepath.Join(t.TempDir(), "none.png"), nil); err != nil || ok {
		t.Errorf("bandwidthPlot of nothing = %v, %v; want no plot", ok, err)
	}
}

func TestBandwidthTargetFigures(t *testing.T) {
	res := newResults()
	res.Bandwidth[key(bwKey("typing"), clientViewer)] = BandwidthSample{Windows: 1, Seconds: 22, DriveSeconds: 20, RXBytes: 16_200_000, Units: 200}
	res.Bandwidth[key(bwKey("typing"), clientVNC)] = BandwidthSample{Windows: 1, Seconds: 22, DriveSeconds: 20, RXBytes: 93_000, Units: 200}
	res.Bandwidth[key(bwKey("spinner"), clientViewer)] = BandwidthSample{Windows: 1, Seconds: 10, DriveSeconds: 10, RXBytes: 100, Units: 10, NodeCPUSeconds: 2}
	res.Errors[key(bwKey("spinner"), clientVNC)] = "no canvas"
	figs := bandwidthTargetFigures(figureBuilder{res: res, status: map[string]ScenarioResult{"bandwidth": {Name: "bandwidth", Status: statusOK}}})
	byID := map[string]Figure{}
	for _, f := range figs {
		byID[f.ID] = f
	}
	for _, tc := range []struct {
		id       string
		met      *bool
		noteHas  string
		shoji    *float64
		peerNull bool
	}{
		{"bandwidth_typing_bytes_per_char", boolPtr(false), "", ptr(81000), false},
		{"bandwidth_spinner_bytes", nil, "VNC peer failed: no canvas", ptr(10), true},
		{"bandwidth_spinner_cpu", boolPtr(true), "", ptr(0.2), true},
		{"bandwidth_scroll_bytes_per_1000px", nil, "shoji not run: no samples", nil, true},
	} {
		f, ok := byID[tc.id]
		if !ok {
			t.Errorf("no figure %s", tc.id)
			continue
		}
		if !ptrEq(f.Shoji, tc.shoji) || (f.Peer == nil) != tc.peerNull {
			t.Errorf("%s: shoji %s peer %v", tc.id, fmtPtr(f.Shoji), f.Peer)
		}
		if (f.Met == nil) != (tc.met == nil) || (f.Met != nil && *f.Met != *tc.met) {
			t.Errorf("%s: met %v, want %v", tc.id, f.Met, tc.met)
		}
		if !strings.Contains(f.Note, tc.noteHas) {
			t.Errorf("%s: note %q, want it to contain %q", tc.id, f.Note, tc.noteHas)
		}
	}
}

func boolPtr(b bool) *bool { return &b }

func TestFormatBandwidth(t *testing.T) {
	for _, tc := range []struct {
		v    *float64
		unit string
		want string
	}{
		{nil, "B/s", "—"},
		{ptr(8_990_000), "B/s", "8.99 MB/s"},
		{ptr(81_000), "B per character", "81.0 kB per character"},
		{ptr(465), "B per character", "465 B per character"},
		{ptr(0.25), "cores", "0.250"},
		{ptr(59.94), "frames/s", "59.9/s"},
		{ptr(2), "messages per 1000 px", "2.0 messages per 1000 px"},
	} {
		if got := formatBandwidth(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatBandwidth(%v, %q) = %q, want %q", fmtPtr(tc.v), tc.unit, got, tc.want)
		}
	}
}

func TestTypingKeys(t *testing.T) {
	text := typingText(200)
	if len(text) != 200 {
		t.Fatalf("typingText(200) has %d characters", len(text))
	}
	for _, r := range text {
		k, err := typingKey(r)
		if err != nil {
			t.Fatal(err)
		}
		if k.key != string(r) || k.keyCode == 0 || k.code == "" {
			t.Errorf("typingKey(%q) = %+v", r, k)
		}
	}
	if k, _ := typingKey('q'); k.code != "KeyQ" || k.keyCode != 81 {
		t.Errorf("typingKey('q') = %+v, want KeyQ 81", k)
	}
	if _, err := typingKey('Q'); err == nil || !strings.Contains(err.Error(), "'Q'") {
		t.Errorf("typingKey('Q') error = %v, want one naming it", err)
	}
}

func TestServeScrolled(t *testing.T) {
	var s scrollReports
	for _, tc := range []struct {
		name, method, query string
		code                int
	}{
		{"shoji", http.MethodPost, "c=shoji&px=1800", http.StatusNoContent},
		{"peer", http.MethodPost, "c=vnc&px=1560.5", http.StatusNoContent},
		{"GET", http.MethodGet, "c=shoji&px=1", http.StatusBadRequest},
		{"unknown client", http.MethodPost, "c=raw&px=1", http.StatusBadRequest},
		{"no distance", http.MethodPost, "c=shoji", http.StatusBadRequest},
		{"negative", http.MethodPost, "c=shoji&px=-5", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.serveScrolled(w, httptest.NewRequest(tc.method, scrolledPath+"?"+tc.query, nil))
			if w.Code != tc.code {
				t.Errorf("%s %s?%s = %d, want %d", tc.method, scrolledPath, tc.query, w.Code, tc.code)
			}
		})
	}
	// The refused reports changed nothing.
	if px, at := s.last("shoji"); px != 1800 || at.IsZero() {
		t.Errorf("shoji's last report = %g at %v, want 1800", px, at)
	}
	if px, _ := s.last("vnc"); px != 1560.5 {
		t.Errorf("the peer's last report = %g, want 1560.5", px)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if px, err := s.settled(ctx, "vnc", 0, time.Second); err != nil || px != 1560.5 {
		t.Errorf("settled = %g, %v; want 1560.5", px, err)
	}
}
