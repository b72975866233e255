package bench

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// frame is one JPEG frame as a client received it.
type frame struct {
	at   time.Time // when it arrived, before any decoding
	data []byte
}

// maxPending is how many frames a frameQueue keeps for a measurement; an
// older one is dropped (a measurement takes frames as fast as they come, so
// this bounds memory while nobody measures).
const maxPending = 32

// frameQueue holds the frames a client received: the newest, the ones a
// measurement has not looked at yet, and counts.
type frameQueue struct {
	mu      sync.Mutex
	pending []frame
	latest  frame
	frames  int64
	bytes   int64
	err     error // why no more frames come
	// wake is signalled (capacity 1, latest wins) when a frame arrives or
	// the source ends.
	wake chan struct{}
}

func newFrameQueue() *frameQueue {
	return &frameQueue{wake: make(chan struct{}, 1)}
}

func (q *frameQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push adds a frame. It never blocks.
func (q *frameQueue) push(f frame) {
	q.mu.Lock()
	q.latest = f
	q.frames++
	q.bytes += int64(len(f.data))
	q.pending = append(q.pending, f)
	if len(q.pending) > maxPending {
		q.pending = q.pending[len(q.pending)-maxPending:]
	}
	q.mu.Unlock()
	q.signal()
}

// end records that no more frames come, and why.
func (q *frameQueue) end(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.signal()
}

// take returns the oldest pending frame, waiting for one.
func (q *frameQueue) take(ctx context.Context) (frame, error) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			f := q.pending[0]
			q.pending = q.pending[1:]
			q.mu.Unlock()
			return f, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return frame{}, err
		}
		select {
		case <-ctx.Done():
			return frame{}, ctx.Err()
		case <-q.wake:
		}
	}
}

// reset drops the pending frames and returns the newest frame.
func (q *frameQueue) reset() frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = nil
	return q.latest
}

// latestAt returns when the newest frame arrived.
func (q *frameQueue) latestAt() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.latest.at
}

// counts returns how many frames and bytes arrived so far.
func (q *frameQueue) counts() (frames, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.frames, q.bytes
}

// quiet waits until no frame has arrived for d and at least one frame has
// arrived at all.
func (q *frameQueue) quiet(ctx context.Context, d time.Duration) error {
	for {
		q.mu.Lock()
		last, err := q.latest.at, q.err
		q.mu.Unlock()
		if err != nil {
			return err
		}
		wait := d
		if !last.IsZero() {
			wait = d - time.Since(last)
			if wait <= 0 {
				return nil
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for the screen to stand still: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// inputKind is what a measured input does.
type inputKind int

const (
	inClick inputKind = iota // a left mousedown, released after the change shows
	inKey                    // a key down typing a character, released after
	inIME                    // an IME composition, then its timed commit
)

// gesture is one measured input.
type gesture struct {
	kind    inputKind
	x, y    float64  // inClick: CSS pixels of the remote viewport
	key     keySpec  // inKey
	compose []string // inIME: the composition's steps, not timed
	commit  string   // inIME: the committed text, timed
}

// keySpec is a key that types a character.
type keySpec struct {
	key, code string
	keyCode   int
}

var keyX = keySpec{key: "x", code: "KeyX", keyCode: 88}

// imeInput is the IME sample: にほんご composed, 日本語 committed, so that
// the commit changes the glyphs and not only the underline.
var imeInput = gesture{kind: inIME, compose: []string{"に", "にほ", "にほん", "にほんご"}, commit: "日本語"}

// frameDriver is how a frameClient sends input: over the viewer protocol
// or straight to Chromium over CDP.
type frameDriver interface {
	// press sends the input that is timed: mousedown, key down, or the
	// IME commit.
	press(ctx context.Context, in gesture) error
	// release ends a press: mouseup or key up. Nothing for an IME commit.
	release(ctx context.Context, in gesture) error
	// compose sets the IME composition.
	compose(ctx context.Context, text string) error
	// wheel scrolls by dy CSS pixels at x, y.
	wheel(ctx context.Context, x, y, dy float64) error
	// navigate opens url in the active tab.
	navigate(ctx context.Context, url string) error
}

// frameClient measures from an input it sends to the first received frame
// that shows its effect. The protocol client and the raw-CDP baseline are
// frameClients over different drivers and frame sources.
type frameClient struct {
	name string
	vp   isolation.Viewport
	q    *frameQueue
	drv  frameDriver
}

// Timing of the measurements.
const (
	quietTime     = 150 * time.Millisecond // the screen stands still this long before an input
	sampleTimeout = 10 * time.Second       // one sample's longest wait for its change
	openTimeout   = 30 * time.Second       // a page's longest time to appear
)

// errNoChange is returned by measure when no frame showed the change in
// time.
var errNoChange = errors.New("no frame showed the change")

// measure sends in and returns the time from just before it was sent to
// the arrival of the first frame that shows ch (in CSS pixels).
func (c *frameClient) measure(ctx context.Context, in gesture, ch Change) (time.Duration, error) {
	if in.kind == inIME {
		for _, s := range in.compose {
			if err := c.drv.compose(ctx, s); err != nil {
				return 0, fmt.Errorf("compose %q: %w", s, err)
			}
		}
	}
	ref, err := c.reference(ctx)
	if err != nil {
		return 0, err
	}
	scaled := ch
	scaled.Rect = ch.Rect.scale(frameScale(ref, c.vp))
	t0 := time.Now()
	if err := c.drv.press(ctx, in); err != nil {
		return 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = c.drv.release(rctx, in)
		cancel()
	}()
	sctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	for {
		f, err := c.q.take(sctx)
		if err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				return 0, errNoChange
			}
			return 0, err
		}
		if f.at.Before(t0) {
			continue // sent before the input: it cannot show it
		}
		img, err := decodeJPEG(f.data)
		if err != nil {
			return 0, err
		}
		if scaled.Shows(ref, img) {
			return f.at.Sub(t0), nil
		}
	}
}

// reference waits until the screen stands still and returns its picture:
// the newest frame, once no frame has come for quietTime, also while it
// was decoded.
func (c *frameClient) reference(ctx context.Context) (image.Image, error) {
	for {
		if err := c.q.quiet(ctx, quietTime); err != nil {
			return nil, err
		}
		f := c.q.reset()
		img, err := decodeJPEG(f.data)
		if err != nil {
			return nil, err
		}
		if c.q.latestAt().Equal(f.at) {
			return img, nil
		}
	}
}

// frameScale is the frame's pixels per CSS pixel.
func frameScale(img image.Image, vp isolation.Viewport) float64 {
	if vp.Width <= 0 {
		return 1
	}
	return float64(img.Bounds().Dx()) / float64(vp.Width)
}

// showsPage reports whether img shows p, by its marker.
func showsPage(img image.Image, vp isolation.Viewport, p webPage) bool {
	s := frameScale(img, vp)
	x := int((float64(vp.Width) - markerW/2) * s)
	y := int(markerH / 2 * s)
	return near(img, x, y, p.marker, 40)
}

// open navigates to url and waits for a frame that shows p.
func (c *frameClient) open(ctx context.Context, url string, p webPage) error {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	c.q.reset()
	if err := c.drv.navigate(ctx, url); err != nil {
		return fmt.Errorf("%s: open %s: %w", c.name, url, err)
	}
	if _, err := c.waitPage(ctx, p); err != nil {
		return fmt.Errorf("%s: open %s: %w", c.name, url, err)
	}
	return nil
}

// waitPage waits for a frame that shows p (the newest frame counts too)
// and returns when it arrived.
func (c *frameClient) waitPage(ctx context.Context, p webPage) (time.Time, error) {
	if f := c.q.reset(); f.data != nil {
		if img, err := decodeJPEG(f.data); err == nil && showsPage(img, c.vp, p) {
			return f.at, nil
		}
	}
	for {
		f, err := c.q.take(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("waiting for a frame of %s: %w", p.path, err)
		}
		img, err := decodeJPEG(f.data)
		if err != nil {
			continue
		}
		if showsPage(img, c.vp, p) {
			return f.at, nil
		}
	}
}

// click presses and releases the left button at x, y, untimed.
func (c *frameClient) click(ctx context.Context, x, y float64) error {
	in := gesture{kind: inClick, x: x, y: y}
	if err := c.drv.press(ctx, in); err != nil {
		return err
	}
	return c.drv.release(ctx, in)
}
