package chrome

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

// screen is the part of a browser that owns the picture of the active tab:
// the screencasts of the tabs, the frames from both paths (the tap, tap.go,
// and chromedp's, frameLoop) up to Observer.Frame, their acknowledgements
// to Chromium, the JPEG quality, the settle refresh (sharpen.go) and the
// viewport changes.
//
// Locks: switchMu serializes what starts and stops screencasts: tab
// activation (tabSet's activate), key frames, quality and viewport changes,
// and the settle refresh. It is taken before tabs.mu and sharp.mu, never
// while either is held. sharp.mu guards the settle refresh and is held while
// a frame is handed to the observer. quality is atomic. tap has its own
// locks (tap.go); tap and the sharpener's timer are set by launch and start
// and only read afterwards.
//
// Goroutines: frameLoop owns the frames that come through chromedp and
// hands their acknowledgements to ackLoop, which it starts and waits for;
// the tap's reader goroutine owns the frames it takes, delivers through
// deliverFrame and acknowledges them itself; the settle refresh runs on
// workers of spawn; the isolation.Screen methods run on the caller's
// goroutine. All end when life is canceled.
type screen struct {
	*core
	tabs *tabSet

	// switchMu serializes what starts and stops screencasts: tab
	// activation, key frames and viewport changes.
	switchMu sync.Mutex
	// quality is the screencast's JPEG quality (SetQuality).
	quality atomic.Int64
	// pace holds back the acknowledgements of frames (SetFramePace,
	// pace.go).
	pace framePace
	// sharp is the settle refresh (sharpen.go).
	sharp sharpener
	// tap takes the screencast frames out of the DevTools pipe (tap.go);
	// nil if it could not be set up, and then frames come through chromedp.
	tap *tap
	// frames carries screencast frames that came through chromedp to
	// frameLoop. Unbounded, but Chromium sends at most MaxFramesInFlight
	// unacknowledged frames per screencast, so it stays short.
	frames queue[frameMsg]
}

// frameMsg is one screencast frame of a tab, queued for frameLoop.
type frameMsg struct {
	t  *tab
	ev *page.EventScreencastFrame
}

// ackMsg is the acknowledgement of one screencast frame, queued for
// ackLoop.
type ackMsg struct {
	t         *tab
	sessionID int64
}

// frameLoop handles the screencast frames that come through chromedp:
// those of a browser without a tap, or that the tap could not read
// (tap.go takes all the others, decodes and acknowledges them on its own
// goroutine). It hands the newest frame of the active tab to the observer
// and has ackLoop acknowledge every frame, so that Chromium sends the next.
//
// A frame is acknowledged as soon as the observer has it (or, under a
// frame pace, once the pace allows: pace.go), not once the viewer has
// received it: the broker's latest-wins mailbox drops what a
// slow viewer cannot take, and Chromium keeps capturing, so the frame sent
// when the link frees up is a fresh one. Acknowledging after the write was
// measured to lower the frame rate and raise the click latency on slow
// links, for the saving of the encoding of the frames that are dropped.
//
// Acknowledgements are DevTools round trips, which must not run inside
// chromedp's listener and which take tens of milliseconds when Chromium is
// busy: in their own goroutine they never hold back the next frame.
func (sc *screen) frameLoop() {
	defer sc.wg.Done()
	// acks holds at most MaxFramesInFlight frames per tab: Chromium sends
	// no more before they are acknowledged.
	var acks queue[ackMsg]
	acks.init()
	acked := make(chan struct{})
	go sc.ackLoop(&acks, acked)
	defer func() { <-acked }()
	for {
		select {
		case <-sc.life.Done():
			return
		case <-sc.frames.wake:
		}
		msgs := sc.frames.drain()
		sc.tabs.mu.Lock()
		active := sc.tabs.active
		sc.tabs.mu.Unlock()
		// Latest wins: of a batch, only the active tab's newest frame is
		// delivered.
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].t == active {
				sc.deliver(msgs[i].ev)
				break
			}
		}
		for _, m := range msgs {
			acks.push(ackMsg{m.t, m.ev.SessionID})
		}
	}
}

// ackLoop acknowledges the queued frames in order, each once the frame
// pace allows it (pace.go), until the browser ends, then closes done.
func (sc *screen) ackLoop(acks *queue[ackMsg], done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-sc.life.Done():
			return
		case <-acks.wake:
		}
		for _, a := range acks.drain() {
			if !sc.pace.wait(sc.life.Done()) {
				return
			}
			sc.ack(a)
			sc.pace.acked(time.Now())
		}
	}
}

// ack acknowledges one screencast frame.
func (sc *screen) ack(a ackMsg) {
	ctx, cancel := a.t.callCtx(sc.cfg.CallTimeout)
	defer cancel()
	_, err := cdp.Call(ctx, a.t.sess, page.ScreencastFrameAck, page.ScreencastFrameAckParams{SessionID: a.sessionID})
	if err != nil && sc.life.Err() == nil {
		sc.log.Debug("ack frame", logTab, a.t.id, logErr, err)
	}
}

// watchFrames has the tap hand t's frames to the observer while t is the
// active tab; the tap acknowledges them itself. Without a tap they come
// through chromedp to frameLoop.
func (sc *screen) watchFrames(t *tab) {
	if sc.tap == nil || t.sess == nil {
		return
	}
	sc.tap.watch(t.sess.SessionID, func(f isolation.Frame, cast int64) {
		sc.tabs.mu.Lock()
		active := sc.tabs.active == t
		sc.tabs.mu.Unlock()
		if active {
			sc.deliverFrame(f, cast)
		}
	})
}

// deliver hands one frame to the observer.
func (sc *screen) deliver(ev *page.EventScreencastFrame) {
	sc.deliverFrame(frameOf(ev), ev.SessionID)
}

// frameOf is the frame of a screencast event.
func frameOf(ev *page.EventScreencastFrame) isolation.Frame {
	f := isolation.Frame{JPEG: ev.Data}
	if w, h, ok := jpegSize(ev.Data); ok {
		f.Width, f.Height = w, h
	}
	if md := ev.Metadata; md != nil && md.Timestamp > 0 {
		sec, frac := math.Modf(float64(md.Timestamp))
		f.Time = time.Unix(int64(sec), int64(frac*1e9))
	} else {
		f.Time = time.Now()
	}
	if md := ev.Metadata; md != nil {
		frameScroll(&f, md.ScrollOffsetX, md.ScrollOffsetY, md.DeviceWidth, md.PageScaleFactor)
	}
	return f
}

// startScreencast starts t's screencast at the screencast's quality. A
// start sends a frame at once.
func (sc *screen) startScreencast(ctx context.Context, t *tab) error {
	return sc.startScreencastAt(ctx, t, int(sc.quality.Load()))
}

// startScreencastAt starts t's screencast at JPEG quality q.
func (sc *screen) startScreencastAt(ctx context.Context, t *tab, q int) error {
	sc.tabs.mu.Lock()
	v := sc.tabs.viewport
	sc.tabs.mu.Unlock()
	sc.watchFrames(t)
	// A start sends the page's frame at once, which the caller wants even
	// if it is the one on screen.
	sc.wantFresh()
	_, err := cdp.Call(ctx, t.sess, page.StartScreencast, sc.cfg.ScreencastParams(v, q))
	if err != nil {
		return fmt.Errorf("start screencast: %w", err)
	}
	return nil
}

// KeyFrame makes a fresh frame of the active tab arrive at once, even when
// nothing changed.
func (sc *screen) KeyFrame(ctx context.Context) error {
	return sc.restartActive(ctx, nil)
}

// restartActive restarts the active tab's screencast, after change, if
// given, reports a change that needs it, under switchMu.
func (sc *screen) restartActive(ctx context.Context, change func() bool) error {
	if sc.life.Err() != nil {
		return isolation.ErrClosed
	}
	ctx, cancel := sc.callCtx(ctx)
	defer cancel()
	sc.switchMu.Lock()
	defer sc.switchMu.Unlock()
	if change != nil && !change() {
		return nil
	}
	sc.tabs.mu.Lock()
	t := sc.tabs.active
	sc.tabs.mu.Unlock()
	if t == nil {
		if change != nil {
			return nil // the next tab starts with it
		}
		return fmt.Errorf("active tab: %w", ErrNoTab)
	}
	return sc.closedErr(sc.restartScreencast(ctx, t))
}

// SetQuality sets the screencast's JPEG quality and restarts the active
// tab's screencast with it. See isolation.Browser.
func (sc *screen) SetQuality(ctx context.Context, quality int) error {
	if quality == 0 {
		quality = sc.cfg.JPEGQuality
	}
	if quality < 1 || quality > 100 {
		return fmt.Errorf("screencast quality %d is not within 1..100", quality)
	}
	return sc.restartActive(ctx, func() bool {
		return sc.quality.Swap(int64(quality)) != int64(quality)
	})
}

// restartScreencast stops and starts t's screencast: Chromium refuses a
// second start, and a start sends a frame at once.
func (sc *screen) restartScreencast(ctx context.Context, t *tab) error {
	return sc.restartScreencastAt(ctx, t, int(sc.quality.Load()))
}

// restartScreencastAt restarts t's screencast at JPEG quality q.
func (sc *screen) restartScreencastAt(ctx context.Context, t *tab, q int) error {
	return whileSwapping(ctx, func() error {
		if _, err := cdp.Call(ctx, t.sess, page.StopScreencast, cdp.Empty{}); err != nil {
			return fmt.Errorf("stop screencast: %w", err)
		}
		return sc.startScreencastAt(ctx, t, q)
	})
}

// SetViewport resizes every tab's page to v and restarts the screencast, so
// that a frame of the new size arrives at once. Frames then are v.Width*DPR
// by v.Height*DPR pixels, where DPR is v.DPR or, if lower,
// Config.DeviceScaleFactor.
func (sc *screen) SetViewport(ctx context.Context, v isolation.Viewport) error {
	if !v.Valid() {
		return fmt.Errorf("%w: %dx%d@%v is out of range", ErrViewport, v.Width, v.Height, v.DPR)
	}
	if sc.life.Err() != nil {
		return isolation.ErrClosed
	}
	ctx, cancel := sc.callCtx(ctx)
	defer cancel()
	sc.switchMu.Lock()
	defer sc.switchMu.Unlock()
	sc.tabs.mu.Lock()
	if sc.tabs.sized && sc.tabs.viewport == v && sc.tabs.active != nil {
		// Nothing changes (a viewer that reconnects says its size again);
		// KeyFrame is how to ask for a frame.
		sc.tabs.mu.Unlock()
		return nil
	}
	sc.tabs.sized = false
	sc.tabs.viewport = v
	var tabs []*tab
	if sc.tabs.active != nil {
		tabs = append(tabs, sc.tabs.active)
	}
	for _, t := range sc.tabs.list {
		if t.ready && t != sc.tabs.active {
			tabs = append(tabs, t)
		}
	}
	sc.tabs.mu.Unlock()
	for i, t := range tabs {
		err := setViewport(ctx, t.sess, v)
		if i > 0 {
			// A background tab may be closing; only the active tab's
			// failure matters to the caller.
			continue
		}
		if err == nil {
			// A screencast of the old size sends nothing more for a page
			// that stands still.
			err = sc.restartScreencast(ctx, t)
		}
		if err != nil {
			return sc.closedErr(err)
		}
	}
	sc.tabs.mu.Lock()
	sc.tabs.sized = sc.tabs.viewport == v
	sc.tabs.mu.Unlock()
	return nil
}
