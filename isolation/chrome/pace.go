package chrome

import (
	"sync"
	"sync/atomic"
	"time"
)

// Frame pacing (isolation.Screen's SetFramePace).
//
// Chromium's screencast is flow-controlled by its acknowledgements: with
// Config.MaxFramesInFlight frames unacknowledged, it sends no new frame,
// and with SendLastFrame it keeps the newest change and sends it once the
// acknowledgement comes, so that a page that stops in the meantime is not
// left showing an older picture. Holding back the acknowledgement
// therefore paces the screencast: it saves the JPEG encoding of the frames
// not sent, and everything after it (the broker's parse and diff, the
// bytes, the terminal's decode). It does not save the capture: Chromium
// 156 copies every frame its compositor draws whatever the
// acknowledgements (docs/benchmarks.md, "Frame pacing").
//
// framePace is the pace both frame paths follow: ackLoop (frames through
// chromedp) waits on it before each acknowledgement; the tap (tap.go)
// acknowledges at once on its reading goroutine while no wait is due, and
// otherwise hands the acknowledgement to its own goroutine, ackLater,
// which waits. A frame is acknowledged no sooner than the interval after
// the previous acknowledgement, so that frames come at most once an
// interval; a change of the pace wakes the waits at once.

// framePace is the least time between two acknowledgements of screencast
// frames. The zero value does not pace. Its methods are safe for
// concurrent use.
type framePace struct {
	mu       sync.Mutex
	interval time.Duration
	// last is when the last frame was acknowledged.
	last time.Time
	// changed is closed, and replaced, when interval changes; nil until a
	// wait needs it.
	changed chan struct{}
	// waiting counts the acknowledgements held back now, for tests.
	waiting atomic.Int64
}

// set sets the interval; zero or less acknowledges at once. A wait under
// way takes the new interval at once.
func (p *framePace) set(d time.Duration) {
	d = max(d, 0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if d == p.interval {
		return
	}
	p.interval = d
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// get returns the interval.
func (p *framePace) get() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval
}

// delay returns how long an acknowledgement must still wait at now, and a
// channel closed when the interval changes before then.
func (p *framePace) delay(now time.Time) (time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.interval <= 0 || p.last.IsZero() {
		return 0, nil
	}
	d := p.last.Add(p.interval).Sub(now)
	if d <= 0 {
		return 0, nil
	}
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return d, p.changed
}

// acked records that a frame was acknowledged at now.
func (p *framePace) acked(now time.Time) {
	p.mu.Lock()
	p.last = now
	p.mu.Unlock()
}

// wait returns once a frame may be acknowledged (true), or when done is
// closed (false).
func (p *framePace) wait(done <-chan struct{}) bool {
	for {
		d, changed := p.delay(time.Now())
		if d <= 0 {
			select {
			case <-done:
				return false
			default:
				return true
			}
		}
		t := time.NewTimer(d)
		p.waiting.Add(1)
		select {
		case <-done:
			t.Stop()
			p.waiting.Add(-1)
			return false
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		p.waiting.Add(-1)
	}
}

// SetFramePace sets the least time between two frames of the screencast.
// See isolation.Screen.
func (sc *screen) SetFramePace(minInterval time.Duration) {
	sc.pace.set(minInterval)
}
