package stream

import (
	"context"

	"github.com/shoji-rbi/shoji/isolation"
)

// Session control: the viewer's hello and canvas, its presence, the
// browser's restart, and the screencast calls (key frames and quality) the
// connection makes on its own.

// helloMsg is a viewer's hello, and a resize: its canvas.
type helloMsg struct {
	Version int     `json:"version"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	DPR     float64 `json:"dpr"`
}

// emptyMsg is a message without fields (restart, activity, copy, print).
type emptyMsg struct{}

func (m *helloMsg) viewport(kind string) (isolation.Viewport, error) {
	vp := isolation.Viewport{Width: m.Width, Height: m.Height, DPR: m.DPR}
	if !vp.Valid() {
		return vp, badData("%s: width and height must be %d–%d and dpr %g–%g, got %dx%d@%g",
			kind, isolation.MinViewportSide, isolation.MaxViewportSide, isolation.MinDPR, isolation.MaxDPR,
			m.Width, m.Height, m.DPR)
	}
	return vp, nil
}

// onHello refuses a second hello: readHello took the first.
func (c *conn_) onHello(context.Context, *helloMsg) error {
	return badPolicy("hello sent twice")
}

// onResize resizes the remote page to the viewer's new canvas, in order
// with the input around it (a click after a resize lands on the resized
// page).
func (c *conn_) onResize(_ context.Context, m *helloMsg) error {
	vp, err := m.viewport("resize")
	if err != nil {
		return err
	}
	c.vp.Store(&vp)
	return c.queue(func(ctx context.Context, _ isolation.Browser) error {
		return c.sess.SetViewport(ctx, vp)
	})
}

// onRestart starts a fresh browser, as the viewer offers after a crash.
// It does not wait in the input queue: there is no browser to take input.
func (c *conn_) onRestart(ctx context.Context, _ *emptyMsg) error {
	c.sess.Touch()
	c.wg.Go(func() { c.restart(ctx) })
	return nil
}

// onActivity says the clinician is present.
func (c *conn_) onActivity(context.Context, *emptyMsg) error {
	c.sess.Touch()
	return nil
}

func (c *conn_) restart(ctx context.Context) {
	if err := c.sess.Restart(ctx); err != nil {
		c.log.Warn("stream: restart browser", "err", err)
		return
	}
	c.requestKeyFrame()
}

// requestKeyFrame asks the browser for a frame at once: a new or
// reconnected viewer must not wait for the page to change. It does not
// block; the control goroutine makes the call.
func (c *conn_) requestKeyFrame() {
	c.wantKeyFrame.Store(true)
	c.wakeControl()
}

// applyQuality has the browser encode at the quality the meter decided.
// It does not block; the control goroutine makes the call.
func (c *conn_) applyQuality() {
	c.wantQuality.Store(true)
	c.wakeControl()
}

// wakeControl wakes the control goroutine; a wake-up already pending
// covers this request too.
func (c *conn_) wakeControl() {
	select {
	case c.control <- struct{}{}:
	default:
	}
}

// controlLoop makes the screencast calls requestKeyFrame and applyQuality
// ask for, one at a time, until ctx ends. Requests made while a call runs
// are coalesced into the next round.
func (c *conn_) controlLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.control:
		}
		keyFrame := c.wantKeyFrame.Swap(false)
		quality := c.wantQuality.Swap(false)
		if !keyFrame && !quality {
			continue
		}
		b, err := c.sess.Browser()
		if err != nil {
			continue // starting, crashed or ended: a restart asks again
		}
		cctx, cancel := context.WithTimeout(ctx, c.h.callTimeout())
		// The browser may come from an earlier viewer, or be new: it
		// gets this viewer's quality before a key frame.
		if err := b.SetQuality(cctx, int(c.quality.Load())); err != nil && ctx.Err() == nil {
			c.log.Debug("stream: set quality", "err", err)
		}
		if keyFrame {
			if err := b.KeyFrame(cctx); err != nil && ctx.Err() == nil {
				c.log.Debug("stream: key frame", "err", err)
			}
		}
		cancel()
	}
}
