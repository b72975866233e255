package chrome

import (
	"context"
	"log/slog"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
)

// core is what every part of one browser shares: its configuration, its
// observer and logger, its life, its DevTools session, the queue of events
// for loop, and the wait group of its goroutines. The browser holds it and
// each part points to it.
//
// Locks: spawnMu guards ending only. Everything else is written by launch and
// start before the browser's goroutines start, and only read afterwards;
// events is a queue with its own lock.
type core struct {
	cfg Config
	obs isolation.Observer
	log *slog.Logger

	// life is canceled when the browser starts to end; every DevTools call
	// and every goroutine of the browser derives from it.
	life       context.Context
	lifeCancel context.CancelFunc
	// bctx is the chromedp context that owns the Chromium process and is
	// attached to its first tab. It has no deadline.
	bctx context.Context
	// session is the browser-level DevTools session.
	session *chromedp.Browser

	// events carries target and page events from the chromedp listeners,
	// and internal messages of the parts, to loop. Unbounded: a listener
	// must never block. Only a filtered set of low-rate events is queued.
	events queue[any]

	// wg counts the browser's goroutines but monitor.
	wg      sync.WaitGroup
	spawnMu sync.Mutex
	// ending is set before wg.Wait; spawn refuses afterwards.
	ending bool
}

// spawn runs fn on a new goroutine of the browser, unless the browser is
// ending. fn must return soon after life is canceled.
func (c *core) spawn(fn func()) bool {
	c.spawnMu.Lock()
	defer c.spawnMu.Unlock()
	if c.ending {
		return false
	}
	c.wg.Go(fn)
	return true
}

// stopSpawning makes spawn refuse from now on, so that wg.Wait can wait for
// every goroutine.
func (c *core) stopSpawning() {
	c.spawnMu.Lock()
	c.ending = true
	c.spawnMu.Unlock()
}

// callCtx derives the context of one DevTools call from the caller's: it
// ends with the browser and, when the caller set no deadline, after
// Config.CallTimeout.
func (c *core) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
	}
	stop := context.AfterFunc(c.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// closedErr returns isolation.ErrClosed once the browser is ending, and err
// otherwise.
func (c *core) closedErr(err error) error {
	if err != nil && c.life.Err() != nil {
		return isolation.ErrClosed
	}
	return err
}

// closeTarget closes the target id through the browser session.
func (c *core) closeTarget(ctx context.Context, id target.ID) error {
	_, err := cdp.Call(ctx, c.session, target.CloseTarget, target.CloseTargetParams{TargetID: id})
	return err
}
