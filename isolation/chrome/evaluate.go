package chrome

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// Evaluate runs a JavaScript expression in the active tab and returns its
// JSON value, awaiting it when it is a promise, and asking again while the
// page is between two documents. The broker never calls it: it is the hook
// through which end-to-end tests check what happened inside the remote page (an input's
// value, the scroll position), never how to cause it.
func (ts *tabSet) Evaluate(ctx context.Context, expr string) (json.RawMessage, error) {
	for {
		var out json.RawMessage
		err := ts.onActive(ctx, func(ctx context.Context, t *tab) error {
			v, err := chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise)(ctx, t.sess)
			out = v
			return err
		})
		if err == nil || !navigating(err) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// navigating reports whether err is what CDP answers while the page it
// asked is between two documents: the old context is gone and the next
// one does not exist yet, so asking again shortly succeeds.
func navigating(err error) bool {
	msg := err.Error()
	for _, s := range []string{"Inspected target navigated or closed", "Execution context was destroyed", "Cannot find context"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
