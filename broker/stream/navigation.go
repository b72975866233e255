package stream

import (
	"context"
	"strings"

	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation"
)

// Navigation: the toolbar (go, back, forward, reload, stop), the tabs, and
// the answers to the pages' JavaScript dialogs.

type (
	navMsg struct {
		Action string `json:"action"`
		URL    string `json:"url"`
	}
	tabMsg struct {
		Action string `json:"action"`
		ID     string `json:"id"`
	}
	dialogMsg struct {
		ID     string `json:"id"`
		Accept bool   `json:"accept"`
		Text   string `json:"text"`
	}
)

// onNav acts on the toolbar's navigation.
func (c *conn_) onNav(_ context.Context, m *navMsg) error {
	if err := m.check(); err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(navOp(*m))
}

func navOp(m navMsg) func(context.Context, isolation.Browser) error {
	return func(ctx context.Context, b isolation.Browser) error {
		switch m.Action {
		case "go":
			return b.Navigate(ctx, m.URL)
		case "back":
			return b.Back(ctx)
		case "forward":
			return b.Forward(ctx)
		case "reload":
			return b.Reload(ctx)
		default:
			return b.Stop(ctx)
		}
	}
}

// onTab switches to or closes a tab.
func (c *conn_) onTab(_ context.Context, m *tabMsg) error {
	if err := m.check(); err != nil {
		return err
	}
	c.sess.Touch()
	return c.queue(func(ctx context.Context, b isolation.Browser) error {
		if m.Action == "close" {
			return b.CloseTab(ctx, m.ID)
		}
		return b.SwitchTab(ctx, m.ID)
	})
}

// onDialog answers a JavaScript dialog. It is answered here, on the
// reading goroutine, not through the input queue: the queue may be
// waiting on the very page the dialog stalls.
func (c *conn_) onDialog(ctx context.Context, m *dialogMsg) error {
	if err := m.check(); err != nil {
		return err
	}
	c.sess.Touch()
	b, err := c.sess.Browser()
	if err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.h.callTimeout())
	defer cancel()
	if err := b.AnswerDialog(cctx, m.ID, m.Accept, m.Text); err != nil {
		c.sendError("the dialog could not be answered: it may have closed")
	}
	return nil
}

func (m *navMsg) check() error {
	switch m.Action {
	case "back", "forward", "reload", "stop":
		return nil
	case "go":
		u := strings.TrimSpace(m.URL)
		if u == "" {
			return badData("nav.url is empty")
		}
		if len(u) > maxURLBytes {
			return badData("nav.url too long: %d bytes, at most %d", len(u), maxURLBytes)
		}
		return nil
	default:
		return badData("nav.action must be go, back, forward, reload or stop, got %q", truncate.Ellipsis(m.Action, 16))
	}
}

func (m *tabMsg) check() error {
	if m.Action != "switch" && m.Action != "close" {
		return badData("tab.action must be switch or close, got %q", truncate.Ellipsis(m.Action, 16))
	}
	if m.ID == "" || len(m.ID) > maxIDBytes {
		return badData("tab.id must be 1–%d bytes", maxIDBytes)
	}
	return nil
}

func (m *dialogMsg) check() error {
	if m.ID == "" || len(m.ID) > maxIDBytes {
		return badData("dialog.id must be 1–%d bytes", maxIDBytes)
	}
	if len(m.Text) > maxDialogText {
		return badData("dialog.text too long: %d bytes, at most %d", len(m.Text), maxDialogText)
	}
	return nil
}
