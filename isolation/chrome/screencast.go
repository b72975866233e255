package chrome

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

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
// A frame is acknowledged as soon as the observer has it, not once the
// viewer has received it: the broker's latest-wins mailbox drops what a
// slow viewer cannot take, and Chromium keeps capturing, so the frame sent
// when the link frees up is a fresh one. Acknowledging after the write was
// measured to lower the frame rate and raise the click latency on slow
// links, for the saving of the encoding of the frames that are dropped.
//
// Acknowledgements are DevTools round trips, which must not run inside
// chromedp's listener and which take tens of milliseconds when Chromium is
// busy: in their own goroutine they never hold back the next frame.
func (b *browser) frameLoop() {
	defer b.wg.Done()
	// acks holds at most MaxFramesInFlight frames per tab: Chromium sends
	// no more before they are acknowledged.
	var acks queue[ackMsg]
	acks.init()
	acked := make(chan struct{})
	go b.ackLoop(&acks, acked)
	defer func() { <-acked }()
	for {
		select {
		case <-b.life.Done():
			return
		case <-b.frames.wake:
		}
		msgs := b.frames.drain()
		b.tabs.mu.Lock()
		active := b.tabs.active
		b.tabs.mu.Unlock()
		// Latest wins: of a batch, only the active tab's newest frame is
		// delivered.
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].t == active {
				b.deliver(msgs[i].ev)
				break
			}
		}
		for _, m := range msgs {
			acks.push(ackMsg{m.t, m.ev.SessionID})
		}
	}
}

// ackLoop acknowledges the queued frames in order until the browser ends,
// then closes done.
func (b *browser) ackLoop(acks *queue[ackMsg], done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-b.life.Done():
			return
		case <-acks.wake:
		}
		for _, a := range acks.drain() {
			b.ack(a)
		}
	}
}

// ack acknowledges one screencast frame.
func (b *browser) ack(a ackMsg) {
	ctx, cancel := a.t.callCtx(b.cfg.CallTimeout)
	defer cancel()
	_, err := cdp.Call(ctx, a.t.sess, page.ScreencastFrameAck, page.ScreencastFrameAckParams{SessionID: a.sessionID})
	if err != nil && b.life.Err() == nil {
		b.log.Debug("ack frame", logTab, a.t.id, logErr, err)
	}
}

// watchFrames has the tap hand t's frames to the observer while t is the
// active tab; the tap acknowledges them itself. Without a tap they come
// through chromedp to frameLoop.
func (b *browser) watchFrames(t *tab) {
	if b.tap == nil || t.sess == nil {
		return
	}
	b.tap.watch(t.sess.SessionID, func(f isolation.Frame, cast int64) {
		b.tabs.mu.Lock()
		active := b.tabs.active == t
		b.tabs.mu.Unlock()
		if active {
			b.deliverFrame(f, cast)
		}
	})
}

// deliver hands one frame to the observer.
func (b *browser) deliver(ev *page.EventScreencastFrame) {
	b.deliverFrame(frameOf(ev), ev.SessionID)
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
	return f
}

// startScreencast starts t's screencast at the screencast's quality. A
// start sends a frame at once.
func (b *browser) startScreencast(ctx context.Context, t *tab) error {
	return b.startScreencastAt(ctx, t, int(b.quality.Load()))
}

// startScreencastAt starts t's screencast at JPEG quality q.
func (b *browser) startScreencastAt(ctx context.Context, t *tab, q int) error {
	b.tabs.mu.Lock()
	v := b.tabs.viewport
	b.tabs.mu.Unlock()
	b.watchFrames(t)
	// A start sends the page's frame at once, which the caller wants even
	// if it is the one on screen.
	b.wantFresh()
	_, err := cdp.Call(ctx, t.sess, page.StartScreencast, b.cfg.ScreencastParams(v, q))
	if err != nil {
		return fmt.Errorf("start screencast: %w", err)
	}
	return nil
}

// KeyFrame makes a fresh frame of the active tab arrive at once, even when
// nothing changed.
func (b *browser) KeyFrame(ctx context.Context) error {
	return b.restartActive(ctx, nil)
}

// restartActive restarts the active tab's screencast, after change, if
// given, reports a change that needs it, under switchMu.
func (b *browser) restartActive(ctx context.Context, change func() bool) error {
	if b.life.Err() != nil {
		return isolation.ErrClosed
	}
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	b.switchMu.Lock()
	defer b.switchMu.Unlock()
	if change != nil && !change() {
		return nil
	}
	b.tabs.mu.Lock()
	t := b.tabs.active
	b.tabs.mu.Unlock()
	if t == nil {
		if change != nil {
			return nil // the next tab starts with it
		}
		return fmt.Errorf("active tab: %w", ErrNoTab)
	}
	return b.closedErr(b.restartScreencast(ctx, t))
}

// SetQuality sets the screencast's JPEG quality and restarts the active
// tab's screencast with it. See isolation.Browser.
func (b *browser) SetQuality(ctx context.Context, quality int) error {
	if quality == 0 {
		quality = b.cfg.JPEGQuality
	}
	if quality < 1 || quality > 100 {
		return fmt.Errorf("screencast quality %d is not within 1..100", quality)
	}
	return b.restartActive(ctx, func() bool {
		return b.quality.Swap(int64(quality)) != int64(quality)
	})
}

// restartScreencast stops and starts t's screencast: Chromium refuses a
// second start, and a start sends a frame at once.
func (b *browser) restartScreencast(ctx context.Context, t *tab) error {
	return b.restartScreencastAt(ctx, t, int(b.quality.Load()))
}

// restartScreencastAt restarts t's screencast at JPEG quality q.
func (b *browser) restartScreencastAt(ctx context.Context, t *tab, q int) error {
	return whileSwapping(ctx, func() error {
		if _, err := cdp.Call(ctx, t.sess, page.StopScreencast, cdp.Empty{}); err != nil {
			return fmt.Errorf("stop screencast: %w", err)
		}
		return b.startScreencastAt(ctx, t, q)
	})
}

// SetViewport resizes every tab's page to v and restarts the screencast, so
// that a frame of the new size arrives at once. Frames then are v.Width*DPR
// by v.Height*DPR pixels, where DPR is v.DPR or, if lower,
// Config.DeviceScaleFactor.
func (b *browser) SetViewport(ctx context.Context, v isolation.Viewport) error {
	if !v.Valid() {
		return fmt.Errorf("%w: %dx%d@%v is out of range", ErrViewport, v.Width, v.Height, v.DPR)
	}
	if b.life.Err() != nil {
		return isolation.ErrClosed
	}
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	b.switchMu.Lock()
	defer b.switchMu.Unlock()
	b.tabs.mu.Lock()
	if b.tabs.sized && b.tabs.viewport == v && b.tabs.active != nil {
		// Nothing changes (a viewer that reconnects says its size again);
		// KeyFrame is how to ask for a frame.
		b.tabs.mu.Unlock()
		return nil
	}
	b.tabs.sized = false
	b.tabs.viewport = v
	var tabs []*tab
	if b.tabs.active != nil {
		tabs = append(tabs, b.tabs.active)
	}
	for _, t := range b.tabs.list {
		if t.ready && t != b.tabs.active {
			tabs = append(tabs, t)
		}
	}
	b.tabs.mu.Unlock()
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
			err = b.restartScreencast(ctx, t)
		}
		if err != nil {
			return b.closedErr(err)
		}
	}
	b.tabs.mu.Lock()
	b.tabs.sized = b.tabs.viewport == v
	b.tabs.mu.Unlock()
	return nil
}
