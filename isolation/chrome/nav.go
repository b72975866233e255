package chrome

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
)

// NormalizeURL turns what a clinician typed into the address bar into a URL
// the browser may open. Text without a scheme gets https://. Schemes other
// than http and https (file:, chrome:, javascript:, data: and the rest) are
// refused with an error that wraps ErrScheme and names the scheme.
func NormalizeURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrURL)
	}
	if scheme, ok := schemeOf(s); ok {
		switch strings.ToLower(scheme) {
		case "http", "https":
		default:
			return "", fmt.Errorf("%w: %q", ErrScheme, strings.ToLower(scheme)+":")
		}
	} else {
		s = "https://" + strings.TrimPrefix(s, "//")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrURL, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%w: %q has no host", ErrURL, raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %q has user info", ErrURL, raw)
	}
	// Chromium canonicalizes the rest (case, IDN hosts, escaping).
	return s, nil
}

// schemeOf returns the scheme of s, if s has one. "example.jp:8443/x" and
// "localhost:8080" are a host and a port, not a scheme and an opaque part.
func schemeOf(s string) (string, bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", false
	}
	scheme, rest := s[:i], s[i+1:]
	for j, r := range scheme {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (j == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return "", false
		}
	}
	if strings.HasPrefix(rest, "//") {
		return scheme, true
	}
	// host:port[/path]: a dotted name or a port number after the colon.
	port, _, _ := strings.Cut(rest, "/")
	if port != "" && strings.Trim(port, "0123456789") == "" {
		return "", false
	}
	if strings.Contains(scheme, ".") {
		return "", false
	}
	return scheme, true
}

// navigator is the part of a browser that moves the active tab through the
// web: Navigate, Back, Forward, Reload and Stop (isolation.Navigator).
//
// Locks: it has none; the active tab is tabs' (onActive). Navigations are
// checked by the guard, not here.
//
// Goroutines: its methods run on the caller's goroutine; it starts none.
type navigator struct {
	tabs *tabSet
}

// Navigate opens rawURL in the active tab. It does not wait for the page to
// load.
func (nv *navigator) Navigate(ctx context.Context, rawURL string) error {
	u, err := NormalizeURL(rawURL)
	if err != nil {
		return err
	}
	return nv.tabs.onActive(ctx, func(ctx context.Context, t *tab) error {
		res, err := cdp.Call(ctx, t.sess, page.Navigate, page.NavigateParams{URL: u})
		if err != nil {
			return err
		}
		if res.ErrorText != "" && res.ErrorText != "net::ERR_ABORTED" {
			return fmt.Errorf("navigate to %s: %s", u, res.ErrorText)
		}
		return nil
	})
}

// Back goes one step back in the active tab's history, if it can.
func (nv *navigator) Back(ctx context.Context) error { return nv.history(ctx, -1) }

// Forward goes one step forward in the active tab's history, if it can.
func (nv *navigator) Forward(ctx context.Context) error { return nv.history(ctx, +1) }

// history moves by delta entries in the active tab's history. It does nothing
// at either end.
func (nv *navigator) history(ctx context.Context, delta int64) error {
	return nv.tabs.onActive(ctx, func(ctx context.Context, t *tab) error {
		h, err := cdp.Call(ctx, t.sess, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return err
		}
		i := h.CurrentIndex + delta
		if i < 0 || i >= int64(len(h.Entries)) {
			return nil
		}
		_, err = cdp.Call(ctx, t.sess, page.NavigateToHistoryEntry, page.NavigateToHistoryEntryParams{EntryID: h.Entries[i].ID})
		return err
	})
}

// Reload reloads the active tab.
func (nv *navigator) Reload(ctx context.Context) error {
	return nv.tabs.onActive(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, page.Reload, page.ReloadParams{})
		return err
	})
}

// Stop stops loading the active tab.
func (nv *navigator) Stop(ctx context.Context) error {
	return nv.tabs.onActive(ctx, func(ctx context.Context, t *tab) error {
		_, err := cdp.Call(ctx, t.sess, page.StopLoading, cdp.Empty{})
		return err
	})
}
