package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// viewer is shoji's real viewer page in a terminal browser, logged in as a
// clinician, exactly as a terminal opens it. Its canvas is sized to the
// bench's viewport, so canvas CSS pixels are remote CSS pixels.
type viewer struct {
	*terminal
	vp isolation.Viewport
}

// startViewer starts a terminal browser, logs in to the broker at base as
// user (accepting the pledge when asked) and waits for the first frame on
// the canvas.
func startViewer(ctx context.Context, chromium, base, user, pw string, vp isolation.Viewport) (*viewer, error) {
	t, err := startTerminal(ctx, "real viewer", chromium, vp.Width, vp.Height+100)
	if err != nil {
		return nil, err
	}
	t.canvas = "#screen"
	v := &viewer{terminal: t, vp: vp}
	if err := v.login(ctx, base, user, pw); err != nil {
		t.close()
		return nil, err
	}
	if err := v.fit(ctx); err != nil {
		t.close()
		return nil, err
	}
	if err := v.installProbe(ctx); err != nil {
		t.close()
		return nil, err
	}
	return v, nil
}

// login logs in through the login form, as a clinician does.
func (v *viewer) login(ctx context.Context, base, user, pw string) error {
	if err := v.do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form#login`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pw),
		chromedp.Click(chromedp.CSS(`form#login button[type=submit]`)),
	); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	const pledgeShown = `!!document.querySelector('#pledge-agree') && document.querySelector('#pledge-agree').offsetParent !== null`
	if err := v.waitJS(ctx, "the pledge or the live viewer", pledgeShown+` || document.body.dataset.state === 'live'`); err != nil {
		return err
	}
	if shown, err := evalIn[bool](ctx, v.terminal, pledgeShown); err != nil {
		return err
	} else if shown {
		if err := v.do(ctx, chromedp.Click(chromedp.CSS(`#pledge-agree`))); err != nil {
			return fmt.Errorf("accept the pledge: %w", err)
		}
	}
	return v.waitJS(ctx, "a live session with a frame", `document.body.dataset.state === 'live' && Number(document.body.dataset.frames || 0) > 0`)
}

// fit resizes the terminal's page so that the canvas is exactly the
// bench's viewport, and waits for a frame of that size.
func (v *viewer) fit(ctx context.Context) error {
	extra, err := evalIn[[]float64](ctx, v.terminal, `(() => { const r = document.getElementById('screen').getBoundingClientRect();
		return [innerWidth - r.width, innerHeight - r.height]; })()`)
	if err != nil {
		return err
	}
	if len(extra) != 2 {
		return fmt.Errorf("real viewer: no canvas size")
	}
	dctx, cancel := derive(v.ctx, ctx)
	defer cancel()
	_, err = cdp.Call(dctx, chromedp.FromContext(v.ctx).Target, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: int64(v.vp.Width) + int64(extra[0]), Height: int64(v.vp.Height) + int64(extra[1]), DeviceScaleFactor: 1,
	})
	if err != nil {
		return fmt.Errorf("real viewer: size the window: %w", err)
	}
	frames, err := evalIn[int](ctx, v.terminal, `Number(document.body.dataset.frames || 0)`)
	if err != nil {
		return err
	}
	// The viewer reports its new size after a debounce; the broker then
	// sends a frame of that size.
	time.Sleep(500 * time.Millisecond)
	return v.waitJS(ctx, "a frame of the fitted canvas", fmt.Sprintf(`(() => {
		const c = document.getElementById('screen'); const r = c.getBoundingClientRect();
		return r.width === %d && r.height === %d && Number(document.body.dataset.frames || 0) > %d; })()`,
		v.vp.Width, v.vp.Height, frames))
}

// markerJS is a condition that holds when the canvas shows page p.
func markerJS(sel string, vpWidth int, p webPage) string {
	return fmt.Sprintf(`(() => {
		const c = document.querySelector(%q); if (!c || !c.width) return false;
		const s = c.width / %d;
		const d = c.getContext('2d').getImageData(Math.floor((%d - %d) * s), Math.floor(%d * s), 1, 1).data;
		return Math.abs(d[0]-%d) < 40 && Math.abs(d[1]-%d) < 40 && Math.abs(d[2]-%d) < 40;
	})()`, sel, vpWidth, vpWidth, markerW/2, markerH/2, p.marker[0], p.marker[1], p.marker[2])
}

// open types url into the viewer's address bar and waits for the canvas to
// show p.
func (v *viewer) open(ctx context.Context, url string, p webPage) error {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if err := v.do(ctx,
		chromedp.Click(chromedp.CSS(`#address`)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('address').select()`),
		chromedp.KeyEvent(url+"\r"),
	); err != nil {
		return fmt.Errorf("real viewer: open %s: %w", url, err)
	}
	if err := v.waitJS(ctx, p.path+" on the canvas", markerJS(v.canvas, v.vp.Width, p)); err != nil {
		return fmt.Errorf("real viewer: open %s: %w", url, err)
	}
	return nil
}

// clickRemote clicks the remote page at x, y (remote CSS pixels) through
// the canvas, untimed.
func (v *viewer) clickRemote(ctx context.Context, x, y float64) error {
	ox, oy, _, _, err := v.canvasBox(ctx)
	if err != nil {
		return err
	}
	return v.clickAt(ctx, ox+x, oy+y)
}
