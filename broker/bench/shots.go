package bench

import (
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/headlessexperimental"
	"github.com/chromedp/cdproto/page"
)

// errNoFrame is returned by a shot that produced no picture: a beginFrame
// without damage.
var errNoFrame = errors.New("no new frame")

// shotFunc pictures a browser's tab on demand and returns the encoded
// picture, or errNoFrame.
type shotFunc func(ctx context.Context, r *rawBrowser) ([]byte, error)

// screenshot returns a shotFunc that takes Page.captureScreenshot of the
// viewport as JPEG of quality q, encoded for speed when fast.
func screenshot(q int, fast bool) shotFunc {
	return func(ctx context.Context, r *rawBrowser) ([]byte, error) {
		ctx, cancel := r.callCtx(ctx)
		defer cancel()
		return captureAs(ctx, r, page.CaptureScreenshotFormatJpeg, q, fast)
	}
}

// captureAs takes Page.captureScreenshot of the viewport in format, with
// quality q unless it is PNG.
func captureAs(ctx context.Context, r *rawBrowser, format page.CaptureScreenshotFormat, q int, fast bool) ([]byte, error) {
	p := page.CaptureScreenshotParams{Format: format}
	if format != page.CaptureScreenshotFormatPng {
		qq := int64(q)
		p.Quality = &qq
	}
	if fast {
		p.OptimizeForSpeed = &fast
	}
	res, err := cdp.Call(ctx, r.target, page.CaptureScreenshot, p)
	if err != nil {
		return nil, fmt.Errorf("Page.captureScreenshot %s: %w", format, err)
	}
	if len(res.Data) == 0 {
		return nil, fmt.Errorf("Page.captureScreenshot %s: empty picture", format)
	}
	return res.Data, nil
}

// beginFrame returns a shotFunc that drives one frame with
// HeadlessExperimental.beginFrame and takes its screenshot as JPEG of
// quality q. A frame without damage gives errNoFrame.
func beginFrame(q int) shotFunc {
	return func(ctx context.Context, r *rawBrowser) ([]byte, error) {
		ctx, cancel := r.callCtx(ctx)
		defer cancel()
		qq := int64(q)
		res, err := cdp.Call(ctx, r.target, headlessexperimental.BeginFrame, headlessexperimental.BeginFrameParams{
			Screenshot: &headlessexperimental.ScreenshotParams{Format: headlessexperimental.ScreenshotParamsFormatJpeg, Quality: &qq},
		})
		if err != nil {
			return nil, fmt.Errorf("HeadlessExperimental.beginFrame: %w", err)
		}
		if len(res.ScreenshotData) == 0 {
			return nil, errNoFrame
		}
		return res.ScreenshotData, nil
	}
}

// shotClient measures from an input to the first picture that shows its
// effect, where the pictures are taken on demand right after the input
// instead of coming from a screencast.
type shotClient struct {
	name string
	r    *rawBrowser
	shot shotFunc
}

// take returns the next picture and when it arrived, skipping shots that
// produced none.
func (c *shotClient) take(ctx context.Context) ([]byte, time.Time, error) {
	for {
		data, err := c.shot(ctx, c.r)
		at := time.Now()
		switch {
		case errors.Is(err, errNoFrame):
			if ctx.Err() != nil {
				return nil, at, ctx.Err()
			}
			continue
		case err != nil:
			return nil, at, err
		}
		return data, at, nil
	}
}

// picture takes a picture and decodes it.
func (c *shotClient) picture(ctx context.Context) (image.Image, error) {
	data, _, err := c.take(ctx)
	if err != nil {
		return nil, err
	}
	return decodeJPEG(data)
}

// measure sends in and returns the time from just before it was sent to
// the arrival of the first picture that shows ch (in CSS pixels). Each
// picture is asked for as soon as the one before has been looked at.
func (c *shotClient) measure(ctx context.Context, in gesture, ch Change) (time.Duration, error) {
	ref, err := c.picture(ctx)
	if err != nil {
		return 0, err
	}
	scaled := ch
	scaled.Rect = ch.Rect.scale(frameScale(ref, c.r.vp))
	t0 := time.Now()
	if err := c.r.press(ctx, in); err != nil {
		return 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = c.r.release(rctx, in)
		cancel()
	}()
	sctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	for {
		data, at, err := c.take(sctx)
		if err != nil {
			if sctx.Err() != nil && ctx.Err() == nil {
				return 0, errNoChange
			}
			return 0, err
		}
		img, err := decodeJPEG(data)
		if err != nil {
			return 0, err
		}
		if scaled.Shows(ref, img) {
			return at.Sub(t0), nil
		}
	}
}

// open navigates to url and waits for a picture that shows p.
func (c *shotClient) open(ctx context.Context, url string, p webPage) error {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := c.r.navigate(ctx, url); err != nil {
		return fmt.Errorf("%s: open %s: %w", c.name, url, err)
	}
	for {
		img, err := c.picture(ctx)
		if err == nil && showsPage(img, c.r.vp, p) {
			return nil
		}
		if ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("%s: open %s: no picture shows the page: %w", c.name, url, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%s: open %s: %w", c.name, url, err)
		}
	}
}
