package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Methods of the capture scenario, the clients of its series
// ("capture/screenshot"). The screencast is the raw-CDP baseline.
const (
	methodScreencast     = clientRaw
	methodScreenshot     = "screenshot"
	methodScreenshotFast = "screenshot-fast"
	methodBeginFrame     = "beginframe"
)

// captureMethods name the capture scenario's methods in the order they
// are reported.
var captureMethods = []seriesLabel{
	{methodScreencast, "screencast (raw CDP)"},
	{methodScreenshot, "Page.captureScreenshot after the input"},
	{methodScreenshotFast, "Page.captureScreenshot, optimizeForSpeed"},
	{methodBeginFrame, "HeadlessExperimental.beginFrame with screenshot"},
}

// CaptureRate is what one capture method delivered while the CSS
// animation ran.
type CaptureRate struct {
	Seconds float64 `json:"seconds"`
	// Frames are the pictures received; Distinct those that differ from
	// the picture before (a capture loop faster than the animation takes
	// the same picture twice). The screencast sends a frame only on
	// damage, so its Distinct is its Frames.
	Frames      int64   `json:"frames"`
	Distinct    int64   `json:"distinct"`
	Bytes       int64   `json:"bytes"`
	FPS         float64 `json:"fps"`
	DistinctFPS float64 `json:"distinct_fps"`
	// ChromiumCPUMS is the CPU time of the browser's processes (all of
	// its process group) over the windows, in milliseconds; nil when it
	// could not be read.
	ChromiumCPUMS *float64 `json:"chromium_cpu_ms,omitempty"`
}

// add returns the sum of two measurements.
func (r CaptureRate) add(o CaptureRate) CaptureRate {
	s := CaptureRate{Seconds: r.Seconds + o.Seconds, Frames: r.Frames + o.Frames, Distinct: r.Distinct + o.Distinct, Bytes: r.Bytes + o.Bytes}
	// The CPU time is known for the sum only when it is for each part
	// that has any time.
	switch {
	case r.Seconds == 0:
		s.ChromiumCPUMS = o.ChromiumCPUMS
	case o.Seconds == 0:
		s.ChromiumCPUMS = r.ChromiumCPUMS
	case r.ChromiumCPUMS != nil && o.ChromiumCPUMS != nil:
		s.ChromiumCPUMS = num(*r.ChromiumCPUMS + *o.ChromiumCPUMS)
	}
	if s.Seconds > 0 {
		s.FPS = float64(s.Frames) / s.Seconds
		s.DistinctFPS = float64(s.Distinct) / s.Seconds
	}
	return s
}

// CPUPerSecond is the browser's CPU milliseconds per second of the
// windows, or nil.
func (r CaptureRate) CPUPerSecond() *float64 {
	if r.ChromiumCPUMS == nil || r.Seconds <= 0 {
		return nil
	}
	return num(*r.ChromiumCPUMS / r.Seconds)
}

// CPUPerFrame is the browser's CPU milliseconds per distinct picture, or
// nil.
func (r CaptureRate) CPUPerFrame() *float64 {
	if r.ChromiumCPUMS == nil || r.Distinct == 0 {
		return nil
	}
	return num(*r.ChromiumCPUMS / float64(r.Distinct))
}

// captureOn returns the capture browser (the baseline's flags, no
// screencast) showing pg.
func (e *env) captureOn(ctx context.Context, pg webPage) (*shotClient, error) {
	err := e.part("capture", func() error {
		if e.capture != nil {
			return nil
		}
		e.log.Info("starting the capture browser (raw CDP, no screencast)")
		r, err := startRawMode(ctx, e.o.Chromium, e.pages.Addr(), e.vp, rawMode{settings: e.o.Screencast})
		if err != nil {
			return fmt.Errorf("capture browser: %w", err)
		}
		e.capture = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &shotClient{name: "capture browser", r: e.capture, shot: screenshot(e.quality(), false)}
	if e.capturePage != pg.path {
		if err := c.open(ctx, e.pages.URL(pg), pg); err != nil {
			return nil, err
		}
		e.capturePage = pg.path
	}
	return c, nil
}

// quality is the screencast's JPEG quality.
func (e *env) quality() int { return e.o.Screencast.Quality }

// startBeginFrame starts a browser whose tab's frames
// HeadlessExperimental.beginFrame drives and checks that Chromium accepts
// the command. An error says why the method is not available.
func (e *env) startBeginFrame(ctx context.Context) (*rawBrowser, error) {
	e.log.Info("starting the begin-frame browser (raw CDP, --enable-begin-frame-control)")
	r, err := startRawMode(ctx, e.o.Chromium, e.pages.Addr(), e.vp, rawMode{beginFrame: true, settings: e.o.Screencast})
	if err != nil {
		return nil, fmt.Errorf("not available: %w", err)
	}
	if _, err := beginFrame(e.quality())(ctx, r); err != nil && !errors.Is(err, errNoFrame) {
		r.close()
		return nil, fmt.Errorf("not available: %w", err)
	}
	return r, nil
}

// runCapture compares the screencast with capture driven by the input, on
// raw-CDP browsers with no broker: the latency from a mousedown to the
// first picture that shows its effect, then the pictures each method
// delivers, and the browser's CPU time, while a CSS animation runs.
func runCapture(ctx context.Context, e *env) error {
	x, y := float64(e.vp.Width/2), float64(e.vp.Height/2)
	in := gesture{kind: inClick, x: x, y: y}
	ch := change(Rect{X: int(x) - 80, Y: int(y) - 80, W: 160, H: 160})
	q := e.quality()

	var ss []sampler
	if c, err := e.rawOn(ctx, pageClick); err != nil {
		e.fail(key("capture", methodScreencast), err)
	} else {
		ss = append(ss, sampler{methodScreencast, func(ctx context.Context) (time.Duration, error) { return c.measure(ctx, in, ch) }})
	}
	for _, sc := range e.shotClients(ctx, pageClick, "capture", q) {
		ss = append(ss, sampler{sc.name, func(ctx context.Context) (time.Duration, error) { return sc.measure(ctx, in, ch) }})
	}
	bf, err := e.startBeginFrame(ctx)
	if err != nil {
		e.fail(key("capture", methodBeginFrame), err)
	} else {
		bc := &shotClient{name: methodBeginFrame, r: bf, shot: beginFrame(q)}
		if err := bc.open(ctx, e.pages.URL(pageClick), pageClick); err != nil {
			e.fail(key("capture", methodBeginFrame), err)
			bf.close()
			bf = nil
		} else {
			defer bf.close()
			ss = append(ss, sampler{methodBeginFrame, func(ctx context.Context) (time.Duration, error) { return bc.measure(ctx, in, ch) }})
		}
	}
	if len(ss) == 0 {
		return e.noMethods()
	}
	if err := e.interleave(ctx, "capture", ss, e.p.clickN, e.p.batch); err != nil {
		return err
	}
	return e.captureRates(ctx, bf)
}

// noMethods is the error of a capture scenario none of whose methods ran.
func (e *env) noMethods() error {
	var why []error
	for _, m := range captureMethods {
		if err, ok := e.res.Errors[key("capture", m.client)]; ok {
			why = append(why, fmt.Errorf("%s: %s", m.client, err))
		}
	}
	return fmt.Errorf("no capture method could run: %w", errors.Join(why...))
}

// captureRates runs the frame-rate windows of the capture scenario on the
// animation page, each method in turn, round after round: the screencast
// as it comes, the others in a loop that asks for the next picture as soon
// as the one before arrived. bf is the begin-frame browser, or nil.
func (e *env) captureRates(ctx context.Context, bf *rawBrowser) error {
	type rateMethod struct {
		method string
		window func(ctx context.Context) (CaptureRate, error)
	}
	var ms []rateMethod
	toggleX, toggleY := 20.0, float64(e.vp.Height-20)
	if rc, err := e.rawOn(ctx, pageAnimation); err != nil {
		e.fail(key("capture-rate", methodScreencast), err)
	} else {
		ms = append(ms, rateMethod{methodScreencast, func(ctx context.Context) (CaptureRate, error) {
			if err := rc.q.quiet(ctx, 500*time.Millisecond); err != nil {
				return CaptureRate{}, err
			}
			return e.animated(ctx, rc.click, toggleX, toggleY, e.raw.pid, func(ctx context.Context) (CaptureRate, error) {
				r, err := window(ctx, rc, e.p.window, nil)
				return CaptureRate{Seconds: r.Seconds, Frames: r.Frames, Distinct: r.Frames, Bytes: r.Bytes}, err
			})
		}})
	}
	q := e.quality()
	for _, sc := range e.shotClients(ctx, pageAnimation, "capture-rate", q) {
		ms = append(ms, rateMethod{sc.name, func(ctx context.Context) (CaptureRate, error) {
			return e.animated(ctx, sc.click, toggleX, toggleY, sc.r.pid, func(ctx context.Context) (CaptureRate, error) {
				return shotLoop(ctx, sc, e.p.window)
			})
		}})
	}
	if bf != nil {
		bc := &shotClient{name: methodBeginFrame, r: bf, shot: beginFrame(q)}
		if err := bc.open(ctx, e.pages.URL(pageAnimation), pageAnimation); err != nil {
			e.fail(key("capture-rate", methodBeginFrame), err)
		} else {
			ms = append(ms, rateMethod{methodBeginFrame, func(ctx context.Context) (CaptureRate, error) {
				return e.animated(ctx, bc.click, toggleX, toggleY, bf.pid, func(ctx context.Context) (CaptureRate, error) {
					return shotLoop(ctx, bc, e.p.window)
				})
			}})
		}
	}
	if e.res.CaptureRates == nil {
		e.res.CaptureRates = map[string]CaptureRate{}
	}
	for range e.p.rounds {
		for _, m := range ms {
			k := key("capture-rate", m.method)
			if _, failed := e.res.Errors[k]; failed {
				continue
			}
			r, err := m.window(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				e.fail(k, err)
				continue
			}
			e.res.CaptureRates[m.method] = e.res.CaptureRates[m.method].add(r)
		}
	}
	e.res.Notes = append(e.res.Notes, "Capture: raw-CDP browsers with shoji's flags and no broker. Latency: mousedown (Input.dispatchMouseEvent) → "+
		"the arrival of the first picture that shows the click page's new colour; for the capture methods each picture is asked for as soon as "+
		"the one before was decoded and compared. Frame rate: pictures received while the CSS animation runs; distinct: those that differ from "+
		"the one before. Chromium CPU: user+system time of the browser's whole process group over the windows.")
	return nil
}

// animated starts the animation page's animation with click, runs
// measure, and stops the animation; the CPU time of the browser whose
// main process is pid over measure goes into the result.
func (e *env) animated(ctx context.Context, click func(context.Context, float64, float64) error, x, y float64, pid int,
	measure func(ctx context.Context) (CaptureRate, error)) (CaptureRate, error) {
	if err := click(ctx, x, y); err != nil {
		return CaptureRate{}, fmt.Errorf("start the animation: %w", err)
	}
	if err := sleep(ctx, 300*time.Millisecond); err != nil { // past the start
		return CaptureRate{}, err
	}
	cpu0, ok0 := groupCPU(pid)
	r, err := measure(ctx)
	cpu1, ok1 := groupCPU(pid)
	if ok0 && ok1 && cpu1 >= cpu0 {
		v := float64(cpu1-cpu0) / float64(time.Millisecond)
		r.ChromiumCPUMS = &v
	}
	if err != nil {
		return r, err
	}
	if err := click(ctx, x, y); err != nil {
		return r, fmt.Errorf("stop the animation: %w", err)
	}
	return r, nil
}

// groupCPU returns the CPU time of the browser whose main process is pid:
// all of its processes that run now.
func groupCPU(pid int) (time.Duration, bool) {
	procs, ok := browserGroups(listProcs(), os.Getpid())[pid]
	if !ok {
		return 0, false
	}
	var total time.Duration
	for _, p := range procs {
		total += p.CPU
	}
	return total, true
}

// shotLoop takes pictures back to back for d and counts them.
func shotLoop(ctx context.Context, c *shotClient, d time.Duration) (CaptureRate, error) {
	var r CaptureRate
	var prev []byte
	t0 := time.Now()
	until := t0.Add(d)
	for time.Now().Before(until) {
		data, err := c.shot(ctx, c.r)
		switch {
		case errors.Is(err, errNoFrame):
			continue
		case err != nil:
			r.Seconds = time.Since(t0).Seconds()
			return r, err
		}
		r.Frames++
		r.Bytes += int64(len(data))
		if !bytes.Equal(data, prev) {
			r.Distinct++
		}
		prev = data
	}
	r.Seconds = time.Since(t0).Seconds()
	return CaptureRate{}.add(r), nil
}

// click presses and releases the left button at x, y, untimed.
func (c *shotClient) click(ctx context.Context, x, y float64) error {
	in := gesture{kind: inClick, x: x, y: y}
	if err := c.r.press(ctx, in); err != nil {
		return err
	}
	return c.r.release(ctx, in)
}

// CaptureRow is one capture method in the report.
type CaptureRow struct {
	Method string `json:"method"`
	Label  string `json:"label"`
	// Latency is mousedown → the first picture that shows it, in ms.
	Latency Summary `json:"latency_ms"`
	// Timeouts counts the samples where no picture showed the change.
	Timeouts int `json:"timeouts,omitempty"`
	// RatioP50, RatioP95 and RatioP99 are the latency's quantiles over
	// the screencast's.
	RatioP50 *float64 `json:"ratio_p50"`
	RatioP95 *float64 `json:"ratio_p95"`
	RatioP99 *float64 `json:"ratio_p99"`
	// Animation is what the method delivered while the CSS animation ran;
	// nil when it was not measured.
	Animation *CaptureRate `json:"animation,omitempty"`
	// Error says why the method's latency or rate is missing.
	Error string `json:"error,omitempty"`
}

// captureRows returns the capture scenario's rows, one per method that
// has a measurement or an error; none when the scenario did not run.
func captureRows(res *Results) []CaptureRow {
	base := Summarize(res.Latency[key("capture", methodScreencast)])
	ratio := func(s Summary, q string) *float64 {
		a, ok1 := s.Get(q)
		b, ok2 := base.Get(q)
		if !ok1 || !ok2 || b == 0 {
			return nil
		}
		return num(a / b)
	}
	var rows []CaptureRow
	for _, m := range captureMethods {
		lk, rk := key("capture", m.client), key("capture-rate", m.client)
		row := CaptureRow{Method: m.client, Label: m.label, Latency: Summarize(res.Latency[lk]), Timeouts: res.Timeouts[lk]}
		row.RatioP50, row.RatioP95, row.RatioP99 = ratio(row.Latency, "p50"), ratio(row.Latency, "p95"), ratio(row.Latency, "p99")
		if r, ok := res.CaptureRates[m.client]; ok {
			row.Animation = &r
		}
		var errs []string
		if e, ok := res.Errors[lk]; ok {
			errs = append(errs, e)
		}
		if e, ok := res.Errors[rk]; ok && !slices.Contains(errs, e) {
			errs = append(errs, "frame rate: "+e)
		}
		row.Error = strings.Join(errs, "; ")
		if row.Latency.N == 0 && row.Animation == nil && row.Error == "" {
			continue
		}
		rows = append(rows, row)
	}
	return rows
}

// writeCaptureMarkdown writes the capture scenario's table.
func writeCaptureMarkdown(b *strings.Builder, rows []CaptureRow) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("\n## Capture: screencast against capture driven by the input\n\n" +
		"Raw-CDP Chromium with shoji's flags, no broker. Latency: mousedown → the first picture that shows the click page's new colour; " +
		"the capture methods ask for a picture at once after the input and again until one shows it. " +
		"Frame rate: pictures received during the CSS animation (a capture loop asks back to back); distinct: differing from the one before. " +
		"CPU: the browser's whole process group.\n\n" +
		"| method | n | p50 | p95 | p99 | p50 ratio | p95 ratio | p99 ratio | frames/s | distinct/s | Chromium CPU ms/s | CPU ms per distinct frame | note |\n" +
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	ms := func(s Summary, q string) string {
		v, ok := s.Get(q)
		if !ok {
			return "—"
		}
		return fmt.Sprintf("%.1f ms", v)
	}
	f := func(v *float64, format string) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf(format, *v)
	}
	for _, r := range rows {
		fps, dfps, cpuS, cpuF := "—", "—", "—", "—"
		if a := r.Animation; a != nil {
			fps, dfps = fmt.Sprintf("%.1f", a.FPS), fmt.Sprintf("%.1f", a.DistinctFPS)
			cpuS, cpuF = f(a.CPUPerSecond(), "%.0f"), f(a.CPUPerFrame(), "%.1f")
		}
		note := r.Error
		if r.Timeouts > 0 {
			note = strings.TrimPrefix(note+fmt.Sprintf("; %d samples showed no change", r.Timeouts), "; ")
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdEscape(r.Label), r.Latency.N,
			ms(r.Latency, "p50"), ms(r.Latency, "p95"), ms(r.Latency, "p99"),
			f(r.RatioP50, "%.2f"), f(r.RatioP95, "%.2f"), f(r.RatioP99, "%.2f"), fps, dfps, cpuS, cpuF, mdEscape(note))
	}
}

// shotMethods are the capture methods that picture on demand with
// Page.captureScreenshot.
var shotMethods = []struct {
	method string
	fast   bool
}{{methodScreenshot, false}, {methodScreenshotFast, true}}

// shotClients returns a client per screenshot method on the capture
// browser showing pg, at JPEG quality q; if that browser cannot show it,
// each method of series fails with the reason.
func (e *env) shotClients(ctx context.Context, pg webPage, series string, q int) []*shotClient {
	c, err := e.captureOn(ctx, pg)
	if err != nil {
		for _, m := range shotMethods {
			e.fail(key(series, m.method), err)
		}
		return nil
	}
	var out []*shotClient
	for _, m := range shotMethods {
		out = append(out, &shotClient{name: m.method, r: c.r, shot: screenshot(q, m.fast)})
	}
	return out
}
