package stream

import (
	"log/slog"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// Frame pacing: the frame rate follows the change on screen.
//
// A small animation on a still page (a spinner, a ticker, a blinking
// banner) makes Chromium encode and send a whole screen up to 60 times a
// second, and the broker and the terminal handle each, for a change of a
// few hundred pixels that nobody is interacting with. The writer weighs each frame it
// takes against the one before (ChangeMeter, the tile engine's
// Delta.Changed, which parses each frame once for both) and sets the
// browser's frame pace (isolation.Screen's SetFramePace, which holds back
// the screencast's acknowledgements) to Handler.IdleFrameInterval while:
//
//   - the changes are small: under paceSmallChange of the screen, and no
//     large one for paceHold; and
//   - the viewer did nothing to the page for paceHold: no mouse, wheel,
//     key, IME, navigation, tab, dialog, paste or drop message
//     (paceLifters).
//
// Otherwise the browser sends every frame as soon as the page changes. The
// reading goroutine lifts the pace the moment a viewer's message arrives,
// before its browser call is queued, so the frame that shows what the
// clinician did (typing echo, a click) is never held back. Scrolling, a
// page-sized animation or video, and a navigation are large changes and
// keep their full frame rate; a spinner runs at 1/IdleFrameInterval
// frames a second. Once the viewer goes, the browser is paced: nobody
// watches it, and a viewer that connects gets a key frame at once (a
// restarted screencast sends its first frame whatever the pace).

// ChangeMeter tells how much of the screen changed between two frames of
// a screencast. *tiles.Delta is one.
type ChangeMeter interface {
	// Changed returns the share of cur's area that differs from prev,
	// from 0 (the same picture) to 1 (all of it, or prev is of another
	// size or quality).
	Changed(prev, cur *isolation.Frame) (float64, error)
}

// The policy's constants (see above). A 100×100 spinner is about 1% of a
// 1280×800 screen; a 640×360 video 22%; typing changes well under 1%.
const (
	// paceSmallChange is the largest share of the screen a change between
	// two frames may have and still be paced.
	paceSmallChange = 0.05
	// paceHold is how long input, or a large change, keeps the pace off.
	paceHold = time.Second
)

// paceLifters are the viewer messages that act on the page and lift the
// pace at once.
var paceLifters = map[protocol.Type]bool{
	protocol.TypeMouse: true, protocol.TypeWheel: true, protocol.TypeKey: true, protocol.TypeIME: true,
	protocol.TypeNav: true, protocol.TypeTab: true, protocol.TypeDialog: true,
	protocol.TypePaste: true, protocol.TypeDrop: true,
}

// paceSetter is the part of a browser the pacer steers.
type paceSetter interface {
	SetFramePace(minInterval time.Duration)
}

// framePacer chooses one viewer's browser's frame pace. The writer calls
// frame, the reading goroutine input, the connection's end stop (after
// the others ended); its mutex orders them. Each sets the pace on the browser, whatever it was: the
// browser may have been restarted, or paced by a viewer this one replaced,
// and SetFramePace is cheap and never blocks, so it is called under the
// mutex.
type framePacer struct {
	interval time.Duration
	meter    ChangeMeter
	log      *slog.Logger
	now      func() time.Time

	mu sync.Mutex
	// prev is the last frame weighed.
	prev *isolation.Frame
	// lastInput and lastLarge are when the viewer last acted on the page
	// and when the last large change came.
	lastInput, lastLarge time.Time
}

// newFramePacer returns a pacer that paces small changes to interval,
// measured by meter; now is the clock.
func newFramePacer(interval time.Duration, meter ChangeMeter, log *slog.Logger, now func() time.Time) *framePacer {
	return &framePacer{interval: interval, meter: meter, log: log, now: now}
}

// set sets b's pace to d. Call with mu held.
func (p *framePacer) set(b paceSetter, d time.Duration) {
	if b != nil {
		b.SetFramePace(d)
	}
}

// input lifts b's pace at once: the viewer acted on the page.
func (p *framePacer) input(b paceSetter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastInput = p.now()
	p.set(b, 0)
}

// frame weighs f against the previous frame and sets b's pace. Only the
// writer calls it; the measure (a parse of f, which the partial frame
// reuses) runs outside the mutex, so that input is never held up by it.
func (p *framePacer) frame(b paceSetter, f *isolation.Frame) {
	p.mu.Lock()
	prev := p.prev
	p.mu.Unlock()
	change := 1.0
	if prev != nil {
		c, err := p.meter.Changed(prev, f)
		if err != nil {
			p.log.Debug("stream: frame change not measured, not paced", "err", err)
		} else {
			change = c
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.prev = f
	if change >= paceSmallChange {
		p.lastLarge = now
	}
	d := time.Duration(0)
	if now.Sub(p.lastLarge) >= paceHold && now.Sub(p.lastInput) >= paceHold {
		d = p.interval
	}
	p.set(b, d)
}

// stop paces b: the viewer is gone.
func (p *framePacer) stop(b paceSetter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set(b, p.interval)
}

// browserPace is the connection's browser, or nil while it has none.
func (c *conn_) browserPace() paceSetter {
	b, err := c.sess.Browser()
	if err != nil {
		return nil
	}
	return b
}

// paceFrame has the pacer weigh a frame the writer took.
func (c *conn_) paceFrame(f *isolation.Frame) {
	if c.pacer != nil && f != nil {
		c.pacer.frame(c.browserPace(), f)
	}
}

// paceInput lifts the pace for a viewer message of type kind that acts on
// the page.
func (c *conn_) paceInput(kind protocol.Type) {
	if c.pacer != nil && paceLifters[kind] {
		c.pacer.input(c.browserPace())
	}
}
