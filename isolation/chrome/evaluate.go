package chrome

import (
	"context"
	"encoding/json"

	"github.com/chromedp/chromedp"
)

// Evaluate runs a JavaScript expression in the active tab and returns its
// JSON value, awaiting it when it is a promise. The broker never calls it: it is the hook through which
// end-to-end tests check what happened inside the remote page (an input's
// value, the scroll position), never how to cause it.
func (b *browser) Evaluate(ctx context.Context, expr string) (json.RawMessage, error) {
	var out json.RawMessage
	err := b.onActive(ctx, func(ctx context.Context, t *tab) error {
		v, err := chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise)(ctx, t.sess)
		out = v
		return err
	})
	return out, err
}
