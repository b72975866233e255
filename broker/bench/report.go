package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Clients of a latency or rate series, the part of a series key after the
// scenario: "click/protocol".
const (
	clientProtocol = "protocol" // shoji, through the Go protocol client
	clientViewer   = "viewer"   // shoji, through the real viewer page
	clientRaw      = "raw"      // the raw-CDP baseline
	clientVNC      = "vnc"      // the VNC peer, through noVNC
)

func key(scenario, client string) string { return scenario + "/" + client }

// Keys of the series and values that are not a scenario's latency or rate.
var (
	keyBrokerCPU    = key("animation", "broker-cpu")
	keyBrokerRSS    = key("memory", "broker-rss")
	keyChromiumPSS  = key("memory", "chromium-pss")
	keyRawPSS       = key("memory", clientRaw)
	keyLoginCold    = key("login-cold", clientProtocol)
	keyLoginColdRaw = key("login-cold", clientRaw)
	keyLoginWarm    = key("login-warm", clientProtocol)
)

// Rate is the frames and bytes a client received over a time.
type Rate struct {
	Seconds     float64 `json:"seconds"`
	Frames      int64   `json:"frames"`
	Bytes       int64   `json:"bytes"`
	FPS         float64 `json:"fps"`
	BytesPerSec float64 `json:"bytes_per_sec"`
}

// add returns the sum of two measurements.
func (r Rate) add(o Rate) Rate {
	s := Rate{Seconds: r.Seconds + o.Seconds, Frames: r.Frames + o.Frames, Bytes: r.Bytes + o.Bytes}
	if s.Seconds > 0 {
		s.FPS = float64(s.Frames) / s.Seconds
		s.BytesPerSec = float64(s.Bytes) / s.Seconds
	}
	return s
}

// CapacityPoint is one step of the capacity scenario: Sessions idle
// sessions beside the active one.
type CapacityPoint struct {
	Sessions int `json:"sessions"`
	// Click is the active session's click → frame latency (protocol
	// client).
	Click Summary `json:"click_ms"`
	// NodeMemoryMiB is the machine's memory in use (MemTotal −
	// MemAvailable).
	NodeMemoryMiB float64 `json:"node_memory_mib"`
	// BrokerRSSMiB is the broker process's resident memory.
	BrokerRSSMiB float64 `json:"broker_rss_mib"`
	// ChromiumPSSMiB is the PSS of all the broker's browsers.
	ChromiumPSSMiB float64 `json:"chromium_pss_mib"`
}

// Results are the measurements of a run.
type Results struct {
	// Latency holds the samples in milliseconds by series key
	// ("click/protocol", "login-cold/raw"…).
	Latency map[string][]float64 `json:"latency_samples_ms"`
	// Timeouts counts, by series key, the samples where no change showed
	// within the sample timeout; they are not in Latency.
	Timeouts map[string]int `json:"timeouts,omitempty"`
	// Errors says, by series key, why a series is missing or cut short.
	Errors map[string]string `json:"errors,omitempty"`
	// Rates holds frame rates by series key ("animation/raw").
	Rates map[string]Rate `json:"rates"`
	// BrokerCPUPerFrameMS is the broker's CPU time per frame it relayed
	// during the animation, in milliseconds.
	BrokerCPUPerFrameMS *float64 `json:"broker_cpu_per_frame_ms,omitempty"`
	// BrokerCPUFrames is how many frames that figure is over, and
	// BrokerCPUSeconds how long they took.
	BrokerCPUFrames  int64   `json:"broker_cpu_frames,omitempty"`
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds,omitempty"`
	// BrokerIdleCPUMSPerSec is the broker's CPU time per second while its
	// sessions showed a static page, in milliseconds.
	BrokerIdleCPUMSPerSec *float64 `json:"broker_idle_cpu_ms_per_sec,omitempty"`
	// BrokerRSSPerSessionMiB is the growth of the broker's resident memory
	// per idle session, excluding the browsers.
	BrokerRSSPerSessionMiB *float64 `json:"broker_rss_per_session_mib,omitempty"`
	// BrokerRSSSlopeMiB is the slope of the broker's resident memory over
	// the capacity scenario's steps (least squares), per session: over
	// tens of sessions the garbage collector's swings weigh less than over
	// the memory scenario's few.
	BrokerRSSSlopeMiB *float64 `json:"broker_rss_slope_mib,omitempty"`
	// ChromiumPSSPerSessionMiB is the mean PSS of one session's browser
	// (all its processes) on the idle page.
	ChromiumPSSPerSessionMiB *float64 `json:"chromium_pss_per_session_mib,omitempty"`
	// RawChromiumPSSMiB is the PSS of the baseline's browser on the idle
	// page.
	RawChromiumPSSMiB *float64 `json:"raw_chromium_pss_mib,omitempty"`
	// CaptureRates holds, by capture method ("screenshot"), what it
	// delivered while the CSS animation ran.
	CaptureRates map[string]CaptureRate `json:"capture_rates,omitempty"`
	// Encoding holds the encoding scenario's measurements, by page and
	// format.
	Encoding []EncodingRow `json:"encoding,omitempty"`
	// Capacity is the capacity scenario's steps; the first has 0 idle
	// sessions (the active session's solo figure).
	Capacity []CapacityPoint `json:"capacity,omitempty"`
	// CapacityEnd says why the capacity scenario stopped.
	CapacityEnd string `json:"capacity_end,omitempty"`
	// Bandwidth holds the bandwidth scenario's measurements by series key
	// ("bandwidth-typing/viewer", "bandwidth-typing/vnc").
	Bandwidth map[string]BandwidthSample `json:"bandwidth,omitempty"`
	// Notes are remarks on how the figures were taken.
	Notes []string `json:"notes,omitempty"`
}

func newResults() *Results {
	return &Results{Latency: map[string][]float64{}, Timeouts: map[string]int{}, Errors: map[string]string{}, Rates: map[string]Rate{},
		Bandwidth: map[string]BandwidthSample{}}
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	OS        string  `json:"os"`
	Kernel    string  `json:"kernel"`
	Chromium  string  `json:"chromium"`
	Go        string  `json:"go"`
	Shoji     string  `json:"shoji"`
	// LoadStart and LoadEnd are the load averages over 1, 5 and 15
	// minutes when the run started and ended: other work on the machine
	// shows there.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// Settings are the run's parameters.
type Settings struct {
	Viewport          isolation.Viewport `json:"viewport"`
	JPEGQuality       int                `json:"jpeg_quality"`
	MaxFramesInFlight int                `json:"max_frames_in_flight"`
	EveryNthFrame     int                `json:"every_nth_frame"`
	SendLastFrame     bool               `json:"send_last_frame"`
	ClickSamples      int                `json:"click_samples"`
	KeySamples        int                `json:"key_samples"`
	IMESamples        int                `json:"ime_samples"`
	Batch             int                `json:"batch"`
	WindowSeconds     float64            `json:"window_seconds"`
	Quick             bool               `json:"quick"`
	Scenarios         []string           `json:"scenarios"`
	MaxSessions       int                `json:"max_sessions"`
	Target            string             `json:"target,omitempty"`
}

// ScenarioResult is how one scenario went.
type ScenarioResult struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"` // statusOK, statusFailed or statusNotRun
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Scenario statuses.
const (
	statusOK     = "ok"
	statusFailed = "failed"
	statusNotRun = "not run"
)

// Figure is one figure of the report beside its target and baseline.
// Missing values are null.
type Figure struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Shoji *float64 `json:"shoji"`
	Raw   *float64 `json:"raw_cdp"`
	// Ratio is Shoji / Raw.
	Ratio  *float64 `json:"ratio"`
	Peer   *float64 `json:"vnc_peer"`
	Target string   `json:"target"`
	// Met is whether the target is met; null when there is no target or
	// it could not be evaluated.
	Met  *bool  `json:"met"`
	Note string `json:"note,omitempty"`
}

// Report is bench.json.
type Report struct {
	Version   int                `json:"version"`
	Command   string             `json:"command"`
	Started   time.Time          `json:"started"`
	Finished  time.Time          `json:"finished"`
	Machine   Machine            `json:"machine"`
	Settings  Settings           `json:"settings"`
	Scenarios []ScenarioResult   `json:"scenarios"`
	Figures   []Figure           `json:"figures"`
	Summaries map[string]Summary `json:"latency_ms"`
	Results   *Results           `json:"results"`
	// Capture compares the screencast with capture driven by the input.
	Capture []CaptureRow `json:"capture,omitempty"`
	// EncodingAdvice is the recommendation computed from
	// Results.Encoding.
	EncodingAdvice []string `json:"encoding_advice,omitempty"`
	// Bandwidth is the bandwidth scenario's figures, shoji beside the VNC
	// peer with their ratio.
	Bandwidth []BandwidthFigure `json:"bandwidth,omitempty"`
	Plots     []string          `json:"plots,omitempty"`
}

// reportVersion is the version of bench.json's layout.
const reportVersion = 1

// target is a figure's target: its text and the conditions that decide it.
type target struct {
	text  string
	conds []cond
}

// cond is one condition of a target, on the shoji value and, by against,
// the raw baseline's ("raw"), the peer's ("peer") or nothing ("").
type cond struct {
	against string
	ok      func(shoji, other float64) bool
}

// eval decides t for the values: true when every condition holds, false
// when one fails, nil when none fails but one could not be evaluated (its
// reason is returned).
func (t target) eval(shoji, raw, peer *float64) (*bool, string) {
	if len(t.conds) == 0 || shoji == nil {
		return nil, ""
	}
	met, unknown := true, ""
	for _, c := range t.conds {
		var other float64
		switch c.against {
		case "raw":
			if raw == nil {
				unknown = "raw CDP baseline missing"
				continue
			}
			other = *raw
		case "peer":
			if peer == nil {
				unknown = "VNC peer missing"
				continue
			}
			other = *peer
		}
		if !c.ok(*shoji, other) {
			met = false
		}
	}
	if !met {
		return &met, unknown
	}
	if unknown != "" {
		return nil, unknown
	}
	return &met, ""
}

func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// figureBuilder turns results into figures, saying for each missing value
// why it is missing.
type figureBuilder struct {
	res    *Results
	status map[string]ScenarioResult
}

// why says why the series k of scenario has no value.
func (b figureBuilder) why(scenario, k string) string {
	if e, ok := b.res.Errors[k]; ok {
		return "failed: " + e
	}
	st, ok := b.status[scenario]
	switch {
	case !ok:
		return "not run: scenario " + scenario + " not selected"
	case st.Status == statusNotRun:
		return "not run: " + st.Error
	case st.Status == statusFailed:
		return "not run: scenario " + scenario + " failed: " + st.Error
	}
	return "not run: no samples"
}

// series returns the quantile of the latency series k, or nil.
func (b figureBuilder) series(k, q string) *float64 {
	v, ok := Summarize(b.res.Latency[k]).Get(q)
	if !ok {
		return nil
	}
	return num(v)
}

// finish fills in the ratio, the verdict and the note. The keys name the
// series behind the shoji, raw and peer values; an empty key means the
// figure has no such value.
func (b figureBuilder) finish(f Figure, t target, scenario, shojiKey, rawKey, peerKey string) Figure {
	f.Target = t.text
	if f.Target == "" {
		f.Target = "—"
	}
	if f.Shoji != nil && f.Raw != nil && *f.Raw != 0 {
		f.Ratio = num(*f.Shoji / *f.Raw)
	}
	var notes []string
	if f.Shoji == nil {
		notes = append(notes, "shoji "+b.why(scenario, shojiKey))
	}
	if rawKey != "" && f.Raw == nil {
		notes = append(notes, "raw CDP "+b.why(scenario, rawKey))
	}
	if peerKey != "" && f.Peer == nil {
		notes = append(notes, "VNC peer "+b.why(scenario, peerKey))
	}
	met, unknown := t.eval(f.Shoji, f.Raw, f.Peer)
	f.Met = met
	if unknown != "" && len(notes) == 0 {
		notes = append(notes, "target partly evaluated: "+unknown)
	}
	f.Note = strings.Join(notes, "; ")
	return f
}

// latency is a latency figure of scenario's client against the raw
// baseline (and the peer).
func (b figureBuilder) latency(id, name, scenario, client, q string, withPeer bool, t target) Figure {
	f := Figure{ID: id, Name: name, Unit: "ms", Shoji: b.series(key(scenario, client), q), Raw: b.series(key(scenario, clientRaw), q)}
	peerKey := ""
	if withPeer {
		peerKey = key(scenario, clientVNC)
		f.Peer = b.series(peerKey, q)
	}
	return b.finish(f, t, scenario, key(scenario, client), key(scenario, clientRaw), peerKey)
}

// rate is a frame-rate or byte-rate figure.
func (b figureBuilder) rate(id, name, scenario string, bytes bool, t target) Figure {
	get := func(client string) *float64 {
		r, ok := b.res.Rates[key(scenario, client)]
		if !ok {
			return nil
		}
		if bytes {
			return num(r.BytesPerSec / 1024)
		}
		return num(r.FPS)
	}
	f := Figure{ID: id, Name: name, Unit: "frames/s", Shoji: get(clientProtocol), Raw: get(clientRaw)}
	if bytes {
		f.Unit = "KiB/s"
	}
	return b.finish(f, t, scenario, key(scenario, clientProtocol), key(scenario, clientRaw), "")
}

// Targets of the issue, for this 2-core machine.
var (
	targetClickFrameP50 = target{text: "≤ 1.10 × raw CDP p50 + 3 ms", conds: []cond{{"raw", func(s, r float64) bool { return s <= 1.10*r+3 }}}}
	targetClickPaintP50 = target{text: "≤ raw CDP p50 + 8 ms, and ≤ 0.85 × the VNC peer's p50", conds: []cond{
		{"raw", func(s, r float64) bool { return s <= r+8 }},
		{"peer", func(s, p float64) bool { return s <= 0.85*p }}}}
	targetClickPaintP95 = target{text: "≤ 1.25 × raw CDP p95, and ≤ 0.85 × the VNC peer's p95", conds: []cond{
		{"raw", func(s, r float64) bool { return s <= 1.25*r }},
		{"peer", func(s, p float64) bool { return s <= 0.85*p }}}}
	targetFPS       = target{text: "≥ 0.95 × raw CDP", conds: []cond{{"raw", func(s, r float64) bool { return s >= 0.95*r }}}}
	targetStatic    = target{text: "0 frames/s", conds: []cond{{"", func(s, _ float64) bool { return s == 0 }}}}
	targetCPU       = target{text: "≤ 0.2 ms", conds: []cond{{"", func(s, _ float64) bool { return s <= 0.2 }}}}
	targetRSS       = target{text: "≤ 10 MiB", conds: []cond{{"", func(s, _ float64) bool { return s <= 10 }}}}
	targetWarm      = target{text: "p50 ≤ 300 ms", conds: []cond{{"", func(s, _ float64) bool { return s <= 300 }}}}
	targetCold      = target{text: "p50 ≤ 1.5 s", conds: []cond{{"", func(s, _ float64) bool { return s <= 1500 }}}}
	targetSessions  = 30
	targetCapacityX = 2.0
)

// buildFigures returns every figure of the list, in its order.
func buildFigures(res *Results, status map[string]ScenarioResult) []Figure {
	b := figureBuilder{res: res, status: status}
	none := target{}
	var figs []Figure
	add := func(f ...Figure) { figs = append(figs, f...) }

	add(b.latency("click_frame_p50_protocol", "click → frame p50, protocol client", "click", clientProtocol, "p50", false, targetClickFrameP50),
		b.latency("click_frame_p95_protocol", "click → frame p95, protocol client", "click", clientProtocol, "p95", false, none),
		b.latency("click_frame_p99_protocol", "click → frame p99, protocol client", "click", clientProtocol, "p99", false, none),
		b.latency("click_paint_p50_viewer", "click → paint p50, real viewer", "click", clientViewer, "p50", true, targetClickPaintP50),
		b.latency("click_paint_p95_viewer", "click → paint p95, real viewer", "click", clientViewer, "p95", true, targetClickPaintP95),
		b.latency("click_paint_p99_viewer", "click → paint p99, real viewer", "click", clientViewer, "p99", true, none))
	for _, s := range []struct{ scenario, what string }{{"key", "key press → character visible"}, {"ime", "IME commit → text visible"}} {
		for _, c := range []struct{ client, label string }{{clientProtocol, "protocol client"}, {clientViewer, "real viewer"}} {
			for _, q := range []string{"p50", "p95"} {
				add(b.latency(s.scenario+"_"+q+"_"+c.client, s.what+" "+q+", "+c.label, s.scenario, c.client, q, false, none))
			}
		}
	}
	add(b.rate("animation_fps", "frame rate during a CSS animation", "animation", false, targetFPS),
		b.rate("animation_bytes", "bytes/s during a CSS animation", "animation", true, none),
		b.rate("scroll_fps", "frame rate during wheel scrolling", "scroll", false, targetFPS),
		b.rate("scroll_bytes", "bytes/s during wheel scrolling", "scroll", true, none),
		b.rate("static_fps", "frame rate of a static page after it settles", "static", false, targetStatic),
		b.rate("static_bytes", "bytes/s of a static page after it settles", "static", true, none))

	add(b.finish(Figure{ID: "broker_cpu_per_frame", Name: "broker CPU time per relayed frame", Unit: "ms", Shoji: res.BrokerCPUPerFrameMS},
		targetCPU, "animation", keyBrokerCPU, "", ""))
	rssFig := b.finish(Figure{ID: "broker_rss_per_session", Name: "broker memory per session, excluding Chromium (RSS)", Unit: "MiB", Shoji: res.BrokerRSSPerSessionMiB},
		targetRSS, "memory", keyBrokerRSS, "", "")
	if res.BrokerRSSSlopeMiB != nil {
		from := "the memory scenario did not run"
		if v := res.BrokerRSSPerSessionMiB; v != nil {
			from = fmt.Sprintf("the memory scenario's few sessions gave %.1f MiB", *v)
		}
		rssFig.Shoji = res.BrokerRSSSlopeMiB
		rssFig.Met, _ = targetRSS.eval(rssFig.Shoji, nil, nil)
		rssFig.Note = "slope over the capacity steps; " + from
	}
	add(rssFig)
	add(b.finish(Figure{ID: "chromium_pss_per_session", Name: "Chromium memory per session (PSS of all its processes, idle page)", Unit: "MiB",
		Shoji: res.ChromiumPSSPerSessionMiB, Raw: res.RawChromiumPSSMiB}, none, "memory", keyChromiumPSS, keyRawPSS, ""))

	add(b.finish(Figure{ID: "login_warm_p50", Name: "login → first frame, warm pool, p50", Unit: "ms", Shoji: b.series(keyLoginWarm, "p50")},
		targetWarm, "login", keyLoginWarm, "", ""))
	add(b.finish(Figure{ID: "login_cold_p50", Name: "login → first frame, cold, p50 (raw: Chromium start → first frame)", Unit: "ms",
		Shoji: b.series(keyLoginCold, "p50"), Raw: b.series(keyLoginColdRaw, "p50")},
		targetCold, "login", keyLoginCold, keyLoginColdRaw, ""))

	add(capacityFigures(b)...)
	add(bandwidthTargetFigures(b)...)
	return figs
}

// finishResults derives what needs several scenarios: the broker's memory
// slope over the capacity steps, and remarks on the CPU figure.
func finishResults(res *Results) {
	if pts := res.Capacity; len(pts) >= 3 && pts[len(pts)-1].Sessions-pts[0].Sessions >= 10 {
		var mx, my float64
		for _, p := range pts {
			mx += float64(p.Sessions)
			my += p.BrokerRSSMiB
		}
		mx /= float64(len(pts))
		my /= float64(len(pts))
		var sxy, sxx float64
		for _, p := range pts {
			sxy += (float64(p.Sessions) - mx) * (p.BrokerRSSMiB - my)
			sxx += (float64(p.Sessions) - mx) * (float64(p.Sessions) - mx)
		}
		if sxx > 0 {
			res.BrokerRSSSlopeMiB = num(sxy / sxx)
		}
	}
	if cpu, idle := res.BrokerCPUPerFrameMS, res.BrokerIdleCPUMSPerSec; cpu != nil && idle != nil && res.BrokerCPUFrames > 0 {
		net := *cpu - *idle*res.BrokerCPUSeconds/float64(res.BrokerCPUFrames)
		res.Notes = append(res.Notes, fmt.Sprintf("The broker used %.2f ms of CPU per second on a static page; "+
			"without that idle work the CPU per relayed frame would be %.3f ms (the figure subtracts nothing).", *idle, net))
	}
}

// capacityFigures are the capacity scenario's figures: the most sessions
// that ran, and the active session's p95 at the target's count against its
// solo p95.
func capacityFigures(b figureBuilder) []Figure {
	sessions := Figure{ID: "capacity_sessions", Name: "sessions on one node (idle page each) beside one active session", Unit: "sessions",
		Target: fmt.Sprintf("≥ %d, with the active session's p95 ≤ %g × its solo p95", targetSessions, targetCapacityX)}
	at := Figure{ID: "capacity_p95_at_30", Name: fmt.Sprintf("active session's click → frame p95 with %d idle sessions", targetSessions), Unit: "ms"}
	pts := b.res.Capacity
	if len(pts) == 0 {
		note := b.why("capacity", key("capacity", clientProtocol))
		sessions.Note, at.Note, at.Target = note, note, "—"
		return []Figure{sessions, at}
	}
	solo, _ := pts[0].Click.Get("p95")
	at.Target = fmt.Sprintf("≤ %g × solo p95 (%.1f ms)", targetCapacityX, solo)
	best := 0
	var met *bool
	for _, p := range pts {
		best = max(best, p.Sessions)
		p95, ok := p.Click.Get("p95")
		if !ok || p.Sessions < targetSessions {
			continue
		}
		if p.Sessions == targetSessions {
			at.Shoji = num(p95)
			ok := p95 <= targetCapacityX*solo
			at.Met = &ok
		}
		if p95 <= targetCapacityX*solo {
			t := true
			met = &t
		} else if met == nil {
			f := false
			met = &f
		}
	}
	sessions.Shoji = num(float64(best))
	if met == nil {
		f := false
		met = &f
	}
	sessions.Met = met
	sessions.Note = b.res.CapacityEnd
	if at.Shoji == nil {
		at.Note = fmt.Sprintf("not reached: %s", b.res.CapacityEnd)
	}
	return []Figure{sessions, at}
}

// writeJSON writes the report as indented JSON.
func writeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// formatValue formats v in unit.
func formatValue(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	switch unit {
	case "ms":
		return fmt.Sprintf("%.1f ms", *v)
	case "frames/s":
		return fmt.Sprintf("%.1f/s", *v)
	case "KiB/s":
		return fmt.Sprintf("%.0f KiB/s", *v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", *v)
	case "sessions":
		return fmt.Sprintf("%.0f", *v)
	}
	return fmt.Sprintf("%g %s", *v, unit)
}

func formatMet(m *bool) string {
	switch {
	case m == nil:
		return "—"
	case *m:
		return "yes"
	}
	return "**no**"
}

// mdEscape keeps a cell's text from breaking the table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// writeMarkdown writes the report as Markdown: the machine, the command,
// the figures table, the scenarios, the plots.
func writeMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# shoji-bench\n\n")
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", r.Command)
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.1f GiB, %s (kernel %s), %s, %s, shoji %s; load average %s at the start, %s at the end.  \n",
		m.CPU, m.Cores, m.MemoryGiB, m.OS, m.Kernel, m.Chromium, m.Go, m.Shoji, m.LoadStart, m.LoadEnd)
	s := r.Settings
	fmt.Fprintf(&b, "Run: %s, %s. Viewport %d×%d at DPR %g; screencast JPEG quality %d, MaxFramesInFlight %d, everyNthFrame %d, sendLastFrame %v (shoji and raw CDP alike).  \n",
		r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second), s.Viewport.Width, s.Viewport.Height, s.Viewport.DPR,
		s.JPEGQuality, s.MaxFramesInFlight, s.EveryNthFrame, s.SendLastFrame)
	fmt.Fprintf(&b, "Samples: click %d, key %d, IME %d per client, interleaved in batches of %d (raw CDP, protocol client, real viewer, VNC peer, again); frame-rate windows %.0f s per client, interleaved.\n\n",
		s.ClickSamples, s.KeySamples, s.IMESamples, s.Batch, s.WindowSeconds)

	b.WriteString("| figure | shoji | raw CDP | ratio | VNC peer | target | met? |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		ratio := "—"
		if f.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		name := f.Name
		if f.Note != "" {
			name += " (" + f.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(name), formatValue(f.Shoji, f.Unit), formatValue(f.Raw, f.Unit),
			ratio, formatValue(f.Peer, f.Unit), mdEscape(f.Target), formatMet(f.Met))
	}

	b.WriteString("\n## Latency distributions (ms)\n\n| series | n | timeouts | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|---|\n")
	keys := make([]string, 0, len(r.Summaries))
	for k := range r.Summaries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sm := r.Summaries[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", k, sm.N, r.Results.Timeouts[k], sm.Min, sm.P50, sm.P95, sm.P99, sm.Max)
	}

	if len(r.Results.Capacity) > 0 {
		b.WriteString("\n## Capacity\n\n| idle sessions | active click p50 | p95 | node memory | broker RSS | Chromium PSS (all) |\n|---|---|---|---|---|---|\n")
		for _, p := range r.Results.Capacity {
			fmt.Fprintf(&b, "| %d | %.1f ms | %.1f ms | %.0f MiB | %.1f MiB | %.0f MiB |\n", p.Sessions, p.Click.P50, p.Click.P95, p.NodeMemoryMiB, p.BrokerRSSMiB, p.ChromiumPSSMiB)
		}
		if r.Results.CapacityEnd != "" {
			fmt.Fprintf(&b, "\nStopped: %s.\n", mdEscape(r.Results.CapacityEnd))
		}
	}

	writeBandwidthMarkdown(&b, r.Bandwidth)
	writeCaptureMarkdown(&b, r.Capture)
	writeEncodingMarkdown(&b, r.Results.Encoding, r.EncodingAdvice)

	b.WriteString("\n## Scenarios\n\n| scenario | status | time | error |\n|---|---|---|---|\n")
	for _, sc := range r.Scenarios {
		fmt.Fprintf(&b, "| %s | %s | %.0f s | %s |\n", sc.Name, sc.Status, sc.Seconds, mdEscape(sc.Error))
	}
	if len(r.Results.Errors) > 0 {
		b.WriteString("\nSeries that failed or were cut short:\n\n")
		keys := make([]string, 0, len(r.Results.Errors))
		for k := range r.Results.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- %s: %s\n", k, r.Results.Errors[k])
		}
	}
	if len(r.Results.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Results.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.Plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, filepath.Ext(p)), p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFile writes a file through fn, atomically.
func writeFile(path string, fn func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
