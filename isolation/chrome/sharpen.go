package chrome

import (
	"bytes"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// A screencast sends frames only while the page changes, at
// Config.JPEGQuality: a quality that keeps moving pages light on the
// network and quick to encode and decode, at the price of some blur at the
// edges of text. Once the page has settled (no frame for
// Config.SettleDelay), the browser restarts the active tab's screencast at
// Config.SharpQuality; a start sends the current view at once, so the text
// a clinician reads becomes sharp. When the page moves again, its first
// frame comes at the sharp quality, and the screencast is restarted at the
// moving quality for the frames after it.
//
// The refresh comes from the screencast itself, so it is drawn by the
// compositor like every other frame. (Page.captureScreenshot was tried
// first: it makes the renderer draw a frame, and on a loaded machine a
// capture racing a navigation or a JavaScript dialog held them up for
// seconds.)
//
// Chromium numbers each start of a tab's screencast and puts the number in
// every frame, which is how a frame is told to come from the sharp
// screencast or from the one before it.

// sharpMode is where the settle refresh stands.
type sharpMode int

const (
	sharpIdle      sharpMode = iota // the screencast runs at the moving quality
	sharpAsked                      // restarted at the sharp quality; its first frame is the refresh
	sharpShown                      // the refresh was delivered; the screencast runs at the sharp quality
	sharpRestoring                  // the page moved; a restart at the moving quality is under way
)

// sharpener is the state of the settle refresh, which the screen owns; the
// screen's methods in this file steer it. Its mu guards all its fields and
// is held while a frame is handed to the observer (deliverFrame), so frames
// reach the observer one at a time and in order, whichever path brought
// them. The timer's function only spawns sharpen.
type sharpener struct {
	// mu is held while a frame is handed to the observer.
	mu    sync.Mutex
	timer *time.Timer
	mode  sharpMode
	// seq counts the frames delivered; sharp is seq after the last
	// refresh.
	seq, sharp uint64
	// cast is the screencast number of the last frame delivered; asked
	// the one before the sharp restart, sharpCast the sharp one's.
	cast, asked, sharpCast int64
	// last is the last frame's image.
	last []byte
	// fresh makes the next frame be delivered even if it is the same as
	// the last: a key frame asked for.
	fresh bool
	// refreshes counts the refreshes delivered, for tests.
	refreshes int
}

// startSharpener arms the settle refresh, unless Config turns it off.
func (sc *screen) startSharpener() {
	if sc.cfg.SharpQuality <= 0 {
		return
	}
	sc.sharp.timer = time.AfterFunc(time.Hour, func() { sc.spawn(sc.sharpen) })
	sc.sharp.timer.Stop()
}

// stopSharpener disarms the settle refresh.
func (sc *screen) stopSharpener() {
	sc.sharp.mu.Lock()
	defer sc.sharp.mu.Unlock()
	if sc.sharp.timer != nil {
		sc.sharp.timer.Stop()
	}
}

// wantFresh has the next frame delivered even if nothing changed.
func (sc *screen) wantFresh() {
	sc.sharp.mu.Lock()
	sc.sharp.fresh = true
	sc.sharp.mu.Unlock()
}

// deliverFrame hands a frame of the active tab's screencast number cast
// to the observer, and steers the settle refresh.
func (sc *screen) deliverFrame(f isolation.Frame, cast int64) {
	s := &sc.sharp
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh && bytes.Equal(f.JPEG, s.last) {
		// The same picture again shows nothing new.
		return
	}
	s.fresh = false
	f.Quality = int(sc.quality.Load())
	refresh := false
	switch s.mode {
	case sharpAsked:
		if cast != s.asked {
			refresh = true
			s.mode, s.sharpCast = sharpShown, cast
			f.Quality = sc.cfg.SharpQuality
		}
	case sharpShown:
		if cast == s.sharpCast {
			// The page moves again: this frame is sharp, the next
			// ones come at the moving quality.
			f.Quality = sc.cfg.SharpQuality
			s.mode = sharpRestoring
			sc.spawn(sc.unsharpen)
		} else {
			s.mode = sharpIdle // another restart replaced the sharp screencast
		}
	case sharpRestoring:
		if cast == s.sharpCast {
			f.Quality = sc.cfg.SharpQuality
		}
	}
	// The label above follows the screencast the frame came from; the
	// JPEG's own tables say what it is, even for a frame that arrived
	// late from a screencast just restarted at another quality (the
	// stream compares frames of one quality only).
	if q := jpegQuality(f.JPEG); q > 0 {
		f.Quality = q
	}
	s.seq++
	s.cast, s.last = cast, f.JPEG
	if refresh {
		s.sharp = s.seq
		s.refreshes++
	} else if s.timer != nil {
		s.timer.Reset(sc.cfg.SettleDelay)
	}
	sc.obs.Frame(f)
}

// sharpen restarts the active tab's screencast at the sharp quality once
// its page has settled, if its last frame is not sharp yet. A tab switch,
// key frame or resize under way, or a page loading, makes it try again
// after another settle delay.
func (sc *screen) sharpen() {
	s := &sc.sharp
	s.mu.Lock()
	idle := s.mode == sharpIdle && s.seq != s.sharp
	s.mu.Unlock()
	if !idle {
		return
	}
	if !sc.switchMu.TryLock() {
		// A tab switch, key frame or resize is under way: try again
		// after another settle delay, for its frames may all have come
		// before this pause, and then no new frame would re-arm the
		// timer (a viewer that reconnected stayed blurred).
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Reset(sc.cfg.SettleDelay)
		}
		s.mu.Unlock()
		return
	}
	defer sc.switchMu.Unlock()
	sc.tabs.mu.Lock()
	t := sc.tabs.active
	loading := t != nil && t.loading
	sc.tabs.mu.Unlock()
	if t == nil || t.sess == nil {
		return
	}
	if loading {
		// Not while the page loads (its frames and checks are under
		// way): the next pause tries again.
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Reset(sc.cfg.SettleDelay)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.mode, s.asked = sharpAsked, s.cast
	s.mu.Unlock()
	ctx, cancel := t.callCtx(sc.cfg.CallTimeout)
	defer cancel()
	if err := sc.restartScreencastAt(ctx, t, sc.cfg.SharpQuality); err != nil {
		s.mu.Lock()
		s.mode = sharpIdle
		s.mu.Unlock()
		if sc.life.Err() == nil {
			sc.log.Debug("sharp refresh", logTab, t.id, logErr, err)
		}
	}
}

// unsharpen restarts the active tab's screencast at the moving quality
// after the page moved on from a sharp refresh.
func (sc *screen) unsharpen() {
	sc.switchMu.Lock()
	defer sc.switchMu.Unlock()
	s := &sc.sharp
	s.mu.Lock()
	restoring := s.mode == sharpRestoring
	s.mu.Unlock()
	sc.tabs.mu.Lock()
	t := sc.tabs.active
	sc.tabs.mu.Unlock()
	if !restoring || t == nil || t.sess == nil {
		return
	}
	ctx, cancel := t.callCtx(sc.cfg.CallTimeout)
	defer cancel()
	err := sc.restartScreencast(ctx, t)
	s.mu.Lock()
	s.mode = sharpIdle
	s.mu.Unlock()
	if err != nil && sc.life.Err() == nil {
		sc.log.Debug("screencast back to the moving quality", logTab, t.id, logErr, err)
	}
}
