package stream

import (
	"context"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
)

// Transfers: what crosses between the terminal and the remote page (copy,
// paste, print, files dropped on the screen). The handlers only carry the
// viewer's request to the policy (Handler.Transfers), in order with the
// input around it; the policy decides.

// Transfers is the policy side of the clipboard and print. An error that is
// an *isolation.UserError is shown to the clinician as it is.
type Transfers interface {
	// Copy copies the active tab's selection and returns the text the
	// terminal may receive.
	Copy(ctx context.Context, s *session.Session, b isolation.Browser) (string, error)
	// Paste pastes the terminal's text into the active tab.
	Paste(ctx context.Context, s *session.Session, b isolation.Browser, text string) error
	// Print prints the active tab as a PDF, delivered as a download.
	Print(ctx context.Context, s *session.Session, b isolation.Browser) error
	// Drop prepares files dropped at x, y of the active tab: the viewer is
	// told whether and where they may go, and uploads them.
	Drop(ctx context.Context, s *session.Session, b isolation.Browser, x, y float64) error
}

// errNoTransfers is the answer to copy, paste and print when the broker has
// no transfer channel.
var errNoTransfers = &isolation.UserError{Message: "the clipboard and printing are not available"}

type (
	pasteMsg struct {
		Text string `json:"text"`
	}
	dropMsg struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	}
)

// onCopy copies the remote selection; the text the policy lets through
// goes to the viewer as a clipboard message.
func (c *conn_) onCopy(context.Context, *emptyMsg) error {
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error {
		if c.h.Transfers == nil {
			return errNoTransfers
		}
		text, err := c.h.Transfers.Copy(ctx, c.sess, b)
		if err == nil {
			c.viewer.Send(protocol.Clipboard{Text: text})
		}
		return err
	})
}

// onPaste types the terminal's text into the remote page, if the policy
// lets it through. JSON decoding has made the text valid UTF-8 already.
func (c *conn_) onPaste(_ context.Context, m *pasteMsg) error {
	c.sess.Touch()
	text := m.Text
	return c.queue(func(ctx context.Context, b isolation.Browser) error {
		if c.h.Transfers == nil {
			return errNoTransfers
		}
		return c.h.Transfers.Paste(ctx, c.sess, b, text)
	})
}

// onPrint prints the remote page as a PDF, delivered as a download.
func (c *conn_) onPrint(context.Context, *emptyMsg) error {
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error {
		if c.h.Transfers == nil {
			return errNoTransfers
		}
		return c.h.Transfers.Print(ctx, c.sess, b)
	})
}

// onDrop prepares the files the clinician dropped on the remote screen.
func (c *conn_) onDrop(_ context.Context, m *dropMsg) error {
	x, y, err := m.point(*c.vp.Load())
	if err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error {
		if c.h.Transfers == nil {
			return errNoTransfers
		}
		return c.h.Transfers.Drop(ctx, c.sess, b, x, y)
	})
}

// point checks that a drop is inside the viewport.
func (m *dropMsg) point(vp isolation.Viewport) (x, y float64, err error) {
	return m.X, m.Y, checkPoint("drop", m.X, m.Y, vp)
}
