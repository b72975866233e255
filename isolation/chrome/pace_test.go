package chrome

import (
	"bytes"
	"fmt"
	"image/color"
	"image/jpeg"
	"net/http"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// TestFramePaceWait holds framePace to its contract without Chromium: no
// pace, or no frame acknowledged yet, lets a frame through at once; a wait
// under a pace ends as soon as the pace goes to zero or becomes shorter
// than the time already waited, and when done is closed.
func TestFramePaceWait(t *testing.T) {
	const forever = time.Hour
	for _, tc := range []struct {
		name string
		// then runs while a wait is under way (after an acknowledgement
		// and a pace of forever).
		then func(p *framePace, done chan struct{})
		want bool
	}{
		{"pace lifted", func(p *framePace, _ chan struct{}) { p.set(0) }, true},
		{"pace shortened", func(p *framePace, _ chan struct{}) { p.set(time.Nanosecond) }, true},
		{"browser ends", func(_ *framePace, done chan struct{}) { close(done) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p framePace
			done := make(chan struct{})
			if !p.wait(done) {
				t.Fatal("a wait without a pace did not let the frame through")
			}
			p.set(forever)
			if !p.wait(done) {
				t.Fatal("a wait before any acknowledgement did not let the frame through")
			}
			p.acked(time.Now())
			if d, _ := p.delay(time.Now()); d <= 0 {
				t.Fatalf("delay after an acknowledgement under a pace of an hour is %v", d)
			}
			got := make(chan bool, 1)
			go func() { got <- p.wait(done) }()
			tc.then(&p, done)
			select {
			case ok := <-got:
				if ok != tc.want {
					t.Errorf("wait = %v, want %v", ok, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the wait did not end")
			}
		})
	}
}

// spinnerPage is a still page with a small animation: a 100×100 square
// that turns, on white.
const spinnerPage = `<!doctype html><title>spinner</title><body style="margin:0;background:#fff">
<style>@keyframes turn { to { transform: rotate(360deg) } }</style>
<div id="s" style="position:absolute;left:50px;top:50px;width:100px;height:100px;background:linear-gradient(90deg,#00f,#f00);animation:turn 1s linear infinite"></div>`

// TestFramePace proves on each frame path that SetFramePace paces the
// screencast of a real Chromium: a spinner sends many fewer frames with a
// pace than without in a window of the same length (the pace is four of
// the unpaced frames' intervals, so that the ratio holds on a loaded
// machine, where the screencast itself slows down); a pace that holds a
// frame back lets it through at once when lifted; and the picture of a
// page that stops moving while a frame is held back still arrives.
func TestFramePace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chromedp bool
	}{
		{"Tap", false},
		{"Chromedp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testFramePace(t, tc.chromedp)
		})
	}
}

func testFramePace(t *testing.T, viaChromedp bool) {
	v := isolation.Viewport{Width: 400, Height: 300, DPR: 1}
	var log frameLog
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, spinnerPage)
	})
	f := launchFixtureWith(t, v, "http://"+siteHost+"/spinner", fixtureSetup{
		site: site,
		config: []func(*Config){func(c *Config) {
			// No settle refresh: its restart of the screencast would
			// send the page's picture whatever the pace held back.
			c.SharpQuality = -1
			c.withoutTap = viaChromedp
		}},
		options: func(o *isolation.LaunchOptions) {
			next := o.Observer.Frame
			o.Observer.Frame = func(fr isolation.Frame) {
				log.add(fr)
				next(fr)
			}
		},
	})
	b := f.b
	if viaChromedp != (b.screen.tap == nil) {
		t.Fatalf("the browser has tap %v, want the frames through chromedp: %v", b.screen.tap != nil, viaChromedp)
	}

	// Unpaced: the window is as long as 30 frames of the spinner take.
	const unpaced = 30
	eventually(t, "the spinner's first frame", func() bool { return log.count() > 0 })
	start, began := log.count(), time.Now()
	eventually(t, "the spinner's frames", func() bool { return log.count() >= start+unpaced })
	window := time.Since(began)

	// Paced to four times the unpaced frames' interval (at least 200ms,
	// so that a loaded machine's slow screencast is still paced well below
	// its own rate): as many frames as the same window holds (the first
	// one after the change of pace may have been acknowledged before it).
	pace := max(4*window/unpaced, 200*time.Millisecond)
	b.SetFramePace(pace)
	n := log.count()
	eventually(t, "a frame under the pace", func() bool { return log.count() > n+1 })
	start = log.count()
	timer := time.NewTimer(window)
	<-timer.C
	paced := log.count() - start
	t.Logf("frames in %v: %d without a pace, %d with a pace of %v", window, unpaced, paced, pace)
	if paced >= unpaced/2 {
		t.Errorf("with a pace of %v the spinner sent %d frames in the window of %d frames without", pace, paced, unpaced)
	}

	// A pace of an hour holds the next frame back until it is lifted.
	b.SetFramePace(time.Hour)
	eventually(t, "a frame held back by the pace of an hour", func() bool { return b.screen.pace.waiting.Load() > 0 })
	b.SetFramePace(0)
	n = log.count()
	eventually(t, "frames once the pace is lifted", func() bool { return log.count() >= n+unpaced })

	// A page that stops while its next frame is held back: the picture
	// of the stopped page still arrives, under the pace.
	b.SetFramePace(pace)
	n = log.count()
	eventually(t, "a frame under the pace", func() bool { return log.count() > n+1 })
	green := color.RGBA{0, 255, 0, 255}
	eval[string](t, b, `const s = document.getElementById('s'); s.style.animation = 'none';
s.style.background = 'rgb(0,255,0)'; document.body.style.background = 'rgb(0,255,0)'; 'ok'`)
	eventually(t, "the picture of the stopped page", func() bool {
		last, ok := log.last()
		if !ok {
			return false
		}
		m, err := jpeg.Decode(bytes.NewReader(last.JPEG))
		return err == nil && near(m.At(100, 100), green) && near(m.At(300, 250), green)
	})
	if got := b.screen.pace.get(); got != pace {
		t.Errorf("pace = %v, want %v", got, pace)
	}
}
