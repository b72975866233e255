package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/chromedp"
)

// PeerOptions are what a peer needs to show a scenario page.
type PeerOptions struct {
	// PageURL is the page its browser opens, reachable without a proxy.
	PageURL string
	// Width and Height are its screen and browser window in pixels.
	Width, Height int
	// Chromium is the browser binary.
	Chromium string
}

// PeerStarter starts the classic virtual browser that hospitals deploy
// instead of shoji (Chromium under Xvfb, x11vnc, websockify and noVNC).
type PeerStarter func(ctx context.Context, o PeerOptions) (StartedPeer, error)

// StartedPeer is a peer a PeerStarter started.
type StartedPeer struct {
	// URL is the noVNC page, which connects by itself.
	URL string
	// PIDs are the peer's processes on the node (its servers and its
	// browser); their descendants belong to it too. The bandwidth scenario
	// reads their CPU time.
	PIDs []int
	// Stop stops everything the starter started.
	Stop func() error
}

// peer is a running peer and the terminal browser that shows its noVNC
// page, measured exactly as the real viewer is.
type peer struct {
	*terminal
	stop func() error
	// pids are the peer's processes on the node (StartedPeer.PIDs).
	pids []int
	// page is the scenario page its browser shows.
	page string
}

// startPeer starts the peer on the scenario page pg (at o.PageURL) and a
// terminal on its noVNC page, and waits until the canvas shows the page.
func startPeer(ctx context.Context, start PeerStarter, o PeerOptions, pg webPage) (*peer, error) {
	if start == nil {
		return nil, errors.New("no VNC peer in this build")
	}
	sp, err := start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("start the VNC peer: %w", err)
	}
	u, stop := sp.URL, sp.Stop
	t, err := startTerminal(ctx, "VNC peer's terminal", o.Chromium, o.Width+40, o.Height+80)
	if err != nil {
		_ = stop()
		return nil, err
	}
	p := &peer{terminal: t, stop: stop, pids: sp.PIDs, page: pg.path}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := t.do(octx, chromedp.Navigate(u)); err != nil {
		p.close()
		return nil, fmt.Errorf("open noVNC at %s: %w", u, err)
	}
	// noVNC's screen is the canvas in #noVNC_container; a page of another
	// layout has one canvas.
	t.canvas = "canvas"
	if err := t.waitJS(octx, "noVNC's canvas", `!!document.querySelector('canvas')`); err != nil {
		p.close()
		return nil, err
	}
	if ok, err := evalIn[bool](octx, t, `!!document.querySelector('#noVNC_container canvas')`); err == nil && ok {
		t.canvas = "#noVNC_container canvas"
	}
	// The remote screen shows the page's marker; the click page fills it
	// with one of its two colours besides.
	cond := markerJS(t.canvas, o.Width, pg)
	if pg.path == pageClick.path {
		cond = fmt.Sprintf(`(() => { const c = document.querySelector(%q); if (!c || !c.width) return false;
		const d = c.getContext('2d').getImageData(Math.floor(c.width/2), Math.floor(c.height/2), 1, 1).data;
		const near = (w) => Math.abs(d[0]-w[0]) < 40 && Math.abs(d[1]-w[1]) < 40 && Math.abs(d[2]-w[2]) < 40;
		return near([%d,%d,%d]) || near([%d,%d,%d]); })()`, t.canvas,
			clickA[0], clickA[1], clickA[2], clickB[0], clickB[1], clickB[2])
	}
	if err := t.waitJS(octx, pg.path+" on the noVNC canvas", cond); err != nil {
		p.close()
		return nil, err
	}
	if err := t.installProbe(octx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// centre returns the centre of the canvas in canvas CSS pixels.
func (p *peer) centre(ctx context.Context) (x, y float64, err error) {
	_, _, w, h, err := p.canvasBox(ctx)
	return w / 2, h / 2, err
}

func (p *peer) close() {
	p.terminal.close()
	if p.stop != nil {
		_ = p.stop()
	}
}
