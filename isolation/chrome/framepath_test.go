package chrome

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// frameLog keeps every frame the observer got, with when it got it.
type frameLog struct {
	mu     sync.Mutex
	frames []loggedFrame
}

// loggedFrame is one frame and the time of its delivery.
type loggedFrame struct {
	f  isolation.Frame
	at time.Time
}

func (l *frameLog) add(f isolation.Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, loggedFrame{f, time.Now()})
}

// count returns how many frames arrived so far.
func (l *frameLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.frames)
}

// all returns the frames so far.
func (l *frameLog) all() []loggedFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedFrame(nil), l.frames...)
}

// last returns the newest frame, and whether there is one.
func (l *frameLog) last() (isolation.Frame, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.frames) == 0 {
		return isolation.Frame{}, false
	}
	return l.frames[len(l.frames)-1].f, true
}

// TestFramePaths holds both frame paths to one contract: the tap's, which
// takes the frames out of the DevTools pipe, and chromedp's, which the
// browser falls back to when chromedp's pipe layout is not the one the tap
// expects. On each path frames arrive while the page changes, each a JPEG
// of the viewport's size whose metadata agrees with the image; the
// acknowledgements keep them coming (Chromium sends the next frame only
// after the last one was acknowledged); a page that stands still gets its
// sharp refresh and then stops sending frames.
func TestFramePaths(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chromedp bool
	}{
		{"Tap", false},
		{"Chromedp", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testFramePath(t, tc.chromedp)
		})
	}
}

// testFramePath checks the frame contract on the tap's path, or on
// chromedp's if viaChromedp.
func testFramePath(t *testing.T, viaChromedp bool) {
	// Enough frames that the acknowledgements of the first ones must have
	// worked: Chromium keeps MaxFramesInFlight (1) unacknowledged.
	const animated = 30
	v := isolation.Viewport{Width: 400, Height: 300, DPR: 1}
	var log frameLog
	f := launchFixtureWith(t, v, "http://"+siteHost+"/animate", fixtureSetup{
		config: []func(*Config){func(c *Config) {
			c.SettleDelay = 200 * time.Millisecond
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

	// A page that moves sends frames, acknowledged one by one.
	start, began := log.count(), time.Now()
	eventually(t, "the animation's frames", func() bool { return log.count() >= start+animated })
	// The measuring window of the still page below: as long as the
	// animation took for its frames.
	window := time.Since(began)
	if b.screen.tap != nil {
		got := log.count()
		if taken := b.screen.tap.frames.Load(); taken < int64(got) {
			t.Errorf("the tap took %d frames, the observer got %d: some came through chromedp", taken, got)
		}
		if acks, taken := b.screen.tap.acks.Load(), b.screen.tap.frames.Load(); acks < taken-1 {
			t.Errorf("the tap acknowledged %d of %d frames", acks, taken)
		}
	}

	// A change shows, and once the page stands still its sharp refresh
	// arrives.
	green := color.RGBA{0, 255, 0, 255}
	eval[string](t, b, `document.querySelector('div').style.animation = 'none';
document.body.style.background = 'rgb(0,255,0)'; 'ok'`)
	eventually(t, "the sharp refresh of the changed page", func() bool {
		last, ok := log.last()
		if !ok || last.Quality != b.cfg.SharpQuality {
			return false
		}
		m, err := jpeg.Decode(bytes.NewReader(last.JPEG))
		return err == nil && near(m.At(200, 200), green)
	})

	// A still page sends (almost) nothing: in as long as the animation
	// took for its frames, at most a fifth as many.
	settled := log.count()
	timer := time.NewTimer(window)
	<-timer.C
	still := log.count() - settled
	t.Logf("%d frames of the animation in %v, %d of the still page in the same time", animated, window, still)
	if animated < 5*max(still, 1) {
		t.Errorf("the still page sent %d frames in the time the animation sent %d", still, animated)
	}

	// The contract holds from the time launch returned: a frame Chromium
	// paints while it starts, before the viewport's emulation is applied,
	// can have another size (seen: 400x126 of a 400x300 viewport, about
	// one run in eight, on either path and before the parts were split).
	checkFrames(t, log.all()[start:], v, b.cfg)
}

// checkFrames checks each frame: a JPEG of the viewport's size that says
// its own size, a quality the browser uses, and a time in the frame's
// metadata that is the wall clock's (seconds since the epoch read in
// another unit would be decades off).
func checkFrames(t *testing.T, frames []loggedFrame, v isolation.Viewport, cfg Config) {
	t.Helper()
	w, h := int(float64(v.Width)*v.DPR), int(float64(v.Height)*v.DPR)
	for i, lf := range frames {
		fr := lf.f
		m, err := jpeg.Decode(bytes.NewReader(fr.JPEG))
		if err != nil {
			t.Errorf("frame %d: not a JPEG: %v", i, err)
			continue
		}
		if got := m.Bounds(); got != image.Rect(0, 0, w, h) || fr.Width != w || fr.Height != h {
			t.Errorf("frame %d: image %v, says %dx%d; want %dx%d", i, got, fr.Width, fr.Height, w, h)
		}
		if fr.Quality != cfg.JPEGQuality && fr.Quality != cfg.SharpQuality {
			t.Errorf("frame %d: quality %d, want the screencast's %d or the refresh's %d", i, fr.Quality, cfg.JPEGQuality, cfg.SharpQuality)
		}
		if d := lf.at.Sub(fr.Time); d < -time.Hour || d > time.Hour {
			t.Errorf("frame %d: time %v, delivered at %v: the frame's timestamp was misread", i, fr.Time, lf.at)
		}
	}
}

// TestTapPipeLayout checks that the tap refuses a command whose DevTools
// pipes are not chromedp's two extra files, with an error that names the
// layout it expected and what it found, and leaves the command as it was,
// so the browser can start with its frames through chromedp.
func TestTapPipeLayout(t *testing.T) {
	pipe := func() (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	r1, w1 := pipe()
	r2, _ := pipe()
	for _, tc := range []struct {
		name  string
		files []*os.File
		want  string
	}{
		{"None", nil, "0 extra files"},
		{"One", []*os.File{r1}, "1 extra files"},
		{"Three", []*os.File{r1, w1, r2}, "3 extra files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &exec.Cmd{ExtraFiles: append([]*os.File(nil), tc.files...)}
			tp, err := attachTap(cmd, slog.New(slog.DiscardHandler), nil)
			if err == nil {
				tp.close()
				t.Fatal("attachTap took a command with another pipe layout")
			}
			if !errors.Is(err, errPipeLayout) {
				t.Errorf("error %v does not wrap errPipeLayout", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "fd 3 and fd 4") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name the expected layout and the %s found", msg, tc.want)
			}
			if len(cmd.ExtraFiles) != len(tc.files) {
				t.Fatalf("the command has %d extra files after the refusal, want its %d", len(cmd.ExtraFiles), len(tc.files))
			}
			for i, f := range cmd.ExtraFiles {
				if f != tc.files[i] {
					t.Errorf("extra file %d was replaced", i)
				}
			}
		})
	}
	// The files are still open: the refusal closed nothing of chromedp's.
	if _, err := w1.Write([]byte("x")); err != nil {
		t.Errorf("chromedp's pipe was closed by the refusal: %v", err)
	}
}
