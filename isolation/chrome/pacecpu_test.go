package chrome

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

// groupCPU returns the CPU time (utime+stime) of the processes of process
// group pgid, by Chromium process type ("browser" for the main process).
func groupCPU(t *testing.T, pgid int) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		typ := "browser"
		// Chromium rewrites its children's command lines into one string.
		for _, a := range strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " ")) {
			if v, ok := strings.CutPrefix(a, "--type="); ok {
				typ = v
			}
		}
		// USER_HZ is 100 on Linux.
		out[typ] += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return out
}

// TestScreencastCPU measures what the frame pace saves Chromium on a
// spinner, in one browser, in turn (docs/benchmarks.md, "Frame pacing"):
// the screencast acknowledged at once, paced to 100 ms, held (no frame
// acknowledged), and stopped. It is a measurement, not a check, and runs
// only when SHOJI_MEASURE_CPU=1:
//
//	SHOJI_MEASURE_CPU=1 go test -count=1 -run TestScreencastCPU -v ./isolation/chrome/
func TestScreencastCPU(t *testing.T) {
	if os.Getenv("SHOJI_MEASURE_CPU") != "1" {
		t.Skip("a measurement: set SHOJI_MEASURE_CPU=1 to run it")
	}
	var log frameLog
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, spinnerPage)
	})
	f := launchFixtureWith(t, isolation.Viewport{Width: 1280, Height: 800, DPR: 1}, "http://"+siteHost+"/spinner", fixtureSetup{
		site: site,
		// No settle refresh: it would restart a stopped screencast.
		config: []func(*Config){func(c *Config) { c.SharpQuality = -1 }},
		options: func(o *isolation.LaunchOptions) {
			next := o.Observer.Frame
			o.Observer.Frame = func(fr isolation.Frame) { log.add(fr); next(fr) }
		},
	})
	b := f.b
	eventually(t, "the spinner's frames", func() bool { return log.count() > 10 })
	b.tabs.mu.Lock()
	tb := b.tabs.active
	b.tabs.mu.Unlock()
	const window = 5 * time.Second
	modes := []struct {
		name  string
		setup func()
	}{
		{"acknowledged at once", func() {
			b.SetFramePace(0)
			if err := b.KeyFrame(testCtx(t)); err != nil { // restarts a stopped screencast
				t.Fatal(err)
			}
		}},
		{"paced to 100ms", func() { b.SetFramePace(100 * time.Millisecond) }},
		{"held (pace of an hour)", func() { b.SetFramePace(time.Hour) }},
		{"stopped", func() {
			if _, err := cdp.Call(testCtx(t), tb.sess, page.StopScreencast, cdp.Empty{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for round := range 2 {
		for _, m := range modes {
			m.setup()
			timer := time.NewTimer(time.Second) // the change settles
			<-timer.C
			cpu0, n0, t0 := groupCPU(t, b.pid), log.count(), time.Now()
			timer = time.NewTimer(window)
			<-timer.C
			cpu1, n1, el := groupCPU(t, b.pid), log.count(), time.Since(t0)
			var total time.Duration
			parts := ""
			for typ, d := range cpu1 {
				d -= cpu0[typ]
				total += d
				if d > 0 {
					parts += fmt.Sprintf(" %s %.2f", typ, d.Seconds()/el.Seconds())
				}
			}
			t.Logf("round %d, %s: %.1f frames/s, Chromium %.3f cores (%s)", round+1, m.name,
				float64(n1-n0)/el.Seconds(), total.Seconds()/el.Seconds(), strings.TrimSpace(parts))
		}
	}
}
