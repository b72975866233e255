package stream

import (
	"context"
	"errors"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/isolation"
)

// The order of a viewer's input.
//
// The input queue is the one place that orders what a viewer does to the
// remote page. The reading goroutine checks each message and appends its
// browser call to c.input; the input goroutine (inputLoop) makes the calls
// one at a time, each finished before the next starts, in the order the
// viewer sent the messages. That covers everything that acts on the page
// (mouse, wheel, keys, IME, navigation, tabs, resize, copy, paste, print
// and drops), so a key after a click, or a click after a resize, lands
// where the clinician meant it.
//
// isolation.Browser does not order calls itself: isolation/chrome sends
// each input event to the page as it is called, and leaves the order to
// its caller, which for a viewer is this queue. Two messages do not wait
// in it, on purpose: a dialog's answer (the queue may be waiting on the
// very page the dialog stalls) and restart (there is no browser to take
// input). The viewer coalesces mouse moves to one per animation frame
// before it sends them; the server neither coalesces nor drops input: a
// viewer whose queue is full is disconnected (close 1013) and reconnects,
// rather than lose a key.

// queue hands a browser call to the input goroutine, in order. It does not
// block: a full queue is an error that disconnects the viewer.
func (c *conn_) queue(op func(context.Context, isolation.Browser) error) error {
	select {
	case c.input <- op:
		return nil
	default:
		return &protocolError{Code: websocket.CloseTryAgainLater, Reason: "input backlog full: the remote page is not responding"}
	}
}

// inputLoop calls the browser for each queued input, one at a time, until
// ctx ends. An *isolation.UserError a call returns is shown to the
// clinician; other errors are logged.
func (c *conn_) inputLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-c.input:
			b, err := c.sess.Browser()
			if err != nil {
				continue // starting, crashed or ended: input has nowhere to go
			}
			cctx, cancel := context.WithTimeout(ctx, c.h.callTimeout())
			err = op(cctx, b)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Debug("stream: browser call", "err", err)
				if ue, ok := errors.AsType[*isolation.UserError](err); ok {
					c.sendError(ue.Message)
				}
			}
		}
	}
}
