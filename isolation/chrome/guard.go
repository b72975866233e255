package chrome

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"

	"github.com/shoji-rbi/shoji/isolation"
)

// RuleInvalidCertificate is the Rule of a navigation refused because the
// site's certificate is invalid (SITEID-2).
const RuleInvalidCertificate = "invalid-certificate"

// The certificate commands that cdproto no longer generates; Chromium still
// has them. With the override on, every certificate error waits for
// handleCertificateError, so no error ever becomes Chromium's interstitial
// page, whose "proceed" (or typing "thisisunsafe") would let a clinician
// through.
var (
	setOverrideCertificateErrors = cdp.Command[overrideParams, cdp.Empty]{Method: "Security.setOverrideCertificateErrors"}
	handleCertificateError       = cdp.Command[handleCertParams, cdp.Empty]{Method: "Security.handleCertificateError"}
	securityEnable               = cdp.Command[cdp.Empty, cdp.Empty]{Method: "Security.enable"}
)

// methodCertificateError is the event of a certificate error while the
// override is on.
const methodCertificateError = "Security.certificateError"

type overrideParams struct {
	Override bool `json:"override"`
}

type handleCertParams struct {
	EventID int64  `json:"eventId"`
	Action  string `json:"action"`
}

// certErrorEvent is Security.certificateError.
type certErrorEvent struct {
	EventID    int64  `json:"eventId"`
	ErrorType  string `json:"errorType"`
	RequestURL string `json:"requestURL"`
}

// maxTrackedDocs bounds guard.docs; past it the map starts afresh.
const maxTrackedDocs = 1024

// guard is the browser's navigation check (LaunchOptions.CheckURL) and its
// refusal of invalid certificates. Both run on the browser-wide DevTools
// session, so every tab, popup and frame is covered from its first request:
// Fetch pauses every document request until it is answered, and the
// certificate override pauses every certificate error.
//
// It is a part of the browser: it owns the answers to paused document
// requests and certificate errors, the block pages and the certificate
// block pages, and the "request access" links.
//
// Locks: mu guards the maps below. It is never held while tabs.mu is
// taken, nor the other way round. check, token, tabs and clip are set at
// launch and only read afterwards.
//
// Goroutines: start starts two goroutines (in wg) that read the paused
// requests and the certificate errors and answer each on a worker of
// spawn. frameAttached and frameDetached run on chromedp's listener;
// certNavigationStopped on the browser's loop; showCertPage on a worker.
type guard struct {
	*core
	tabs *tabSet
	// clip tells the clipboard reader's document (special).
	clip *clipboard

	check func(string) isolation.NavDecision // nil: allow all
	// token authenticates the "request access" links of this browser's
	// block pages.
	token string

	mu sync.Mutex
	// docs is the URL of the last document request of each frame, to tell
	// which frame a certificate error belongs to.
	docs map[cdp.FrameID]string
	// frameTab is the tab of each child frame the tabs reported.
	frameTab map[cdp.FrameID]target.ID
	// certMarks are the main frames to show the certificate page in, when
	// their next request for the URL comes.
	certMarks map[cdp.FrameID]certMark
	// blockPages are the main frames that were answered with a block page
	// for a URL, so that its commit is not reported as a navigation.
	blockPages map[cdp.FrameID]string
}

// certMark is a pending certificate block page.
type certMark struct {
	url string
	d   isolation.NavDecision
	// tries counts the navigations to the block page, so that a
	// navigation that keeps failing is not tried for ever.
	tries int
}

// maxCertTries bounds the navigations to one certificate block page.
const maxCertTries = 3

// init prepares g.
func (g *guard) init(check func(string) isolation.NavDecision) {
	var p [16]byte
	_, _ = rand.Read(p[:])
	g.check = check
	g.token = hex.EncodeToString(p[:])
	g.docs = map[cdp.FrameID]string{}
	g.frameTab = map[cdp.FrameID]target.ID{}
	g.certMarks = map[cdp.FrameID]certMark{}
	g.blockPages = map[cdp.FrameID]string{}
}

// frameAttached records the tab of a child frame.
func (g *guard) frameAttached(f cdp.FrameID, t target.ID) {
	g.mu.Lock()
	g.frameTab[f] = t
	g.mu.Unlock()
}

// frameDetached forgets a child frame.
func (g *guard) frameDetached(f cdp.FrameID) {
	g.mu.Lock()
	delete(g.frameTab, f)
	delete(g.docs, f)
	g.mu.Unlock()
}

// forgetTab forgets everything about the tab t and its frames.
func (g *guard) forgetTab(t target.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := cdp.FrameID(t)
	delete(g.docs, f)
	delete(g.certMarks, f)
	delete(g.blockPages, f)
	for c, tab := range g.frameTab {
		if tab == t {
			delete(g.frameTab, c)
			delete(g.docs, c)
		}
	}
}

// takeBlockPage reports whether the commit of u in main frame f is a block
// page this guard answered with, and forgets it. The commit of another URL
// may be an earlier navigation's, reported late: it leaves the record.
func (g *guard) takeBlockPage(f cdp.FrameID, u string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if want, ok := g.blockPages[f]; ok && want == u {
		delete(g.blockPages, f)
		return true
	}
	return false
}

// start turns on the browser-wide document interception and the
// certificate override, and starts the goroutines that answer them. It
// runs before any page loads. Failing to refuse certificate errors fails
// the launch: a browser must never offer a click-through.
func (g *guard) start(ctx context.Context) error {
	// Subscribe first, so that nothing paused is missed. The subscriptions
	// buffer without bound (chromedp's queue); each event is handed to a
	// worker at once.
	paused, stopPaused := g.session.Subscribe(fetch.RequestPaused.Method)
	certs, stopCerts := g.session.Subscribe(methodCertificateError)
	g.wg.Go(func() {
		defer stopPaused()
		g.eventLoop(paused, func(raw jsonv2.Value) {
			var ev fetch.EventRequestPaused
			if err := jsonv2.Unmarshal(raw, &ev); err != nil {
				// Unchecked, it fails; it must not wait for ever either.
				g.log.Error("undecodable paused request", logErr, err)
				var id struct {
					RequestID fetch.RequestID `json:"requestId"`
				}
				if jsonv2.Unmarshal(raw, &id) != nil || id.RequestID == "" {
					return
				}
				ev = fetch.EventRequestPaused{RequestID: id.RequestID}
			}
			g.spawn(func() { g.answerPaused(&ev) })
		})
	})
	g.wg.Go(func() {
		defer stopCerts()
		g.eventLoop(certs, func(raw jsonv2.Value) {
			var ev certErrorEvent
			if err := jsonv2.Unmarshal(raw, &ev); err != nil {
				g.log.Error("undecodable certificate error", logErr, err)
				return
			}
			g.spawn(func() { g.refuseCertificate(&ev) })
		})
	})
	if _, err := cdp.Call(ctx, g.session, securityEnable, cdp.Empty{}); err != nil {
		return fmt.Errorf("enable security domain: %w", err)
	}
	if _, err := cdp.Call(ctx, g.session, setOverrideCertificateErrors, overrideParams{Override: true}); err != nil {
		return fmt.Errorf("refuse certificate errors: %w", err)
	}
	_, err := cdp.Call(ctx, g.session, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*", ResourceType: network.ResourceTypeDocument, RequestStage: fetch.RequestStageRequest}},
	})
	if err != nil {
		return fmt.Errorf("intercept documents: %w", err)
	}
	return nil
}

// eventLoop hands each event of a subscription to fn until the browser
// ends or the subscription closes.
func (g *guard) eventLoop(events <-chan jsonv2.Value, fn func(jsonv2.Value)) {
	for {
		select {
		case <-g.life.Done():
			return
		case raw, ok := <-events:
			if !ok {
				return
			}
			fn(raw)
		}
	}
}

// answer is how a paused request is answered.
type answer struct {
	fulfill []byte // a page to answer with: a block page, unless headers are set
	// headers and code replace the block page's headers and status.
	headers []*fetch.HeaderEntry
	code    int64
	fail    network.ErrorReason // or a failure
}

// answerPaused answers one paused document request: every request gets an
// answer — continue, a block page, or a failure — even when the check
// panics.
func (g *guard) answerPaused(ev *fetch.EventRequestPaused) {
	ctx, cancel := context.WithTimeout(g.life, g.cfg.CallTimeout)
	defer cancel()
	a := g.decidePaused(ctx, ev)
	var err error
	switch {
	case a.fulfill != nil:
		p := fetch.FulfillRequestParams{
			RequestID:       ev.RequestID,
			ResponseCode:    403,
			ResponseHeaders: blockHeaders,
			Body:            a.fulfill,
		}
		if a.headers != nil {
			p.ResponseCode, p.ResponseHeaders = a.code, a.headers
		}
		_, err = cdp.Call(ctx, g.session, fetch.FulfillRequest, p)
	case a.fail != "":
		_, err = cdp.Call(ctx, g.session, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: a.fail})
	default:
		_, err = cdp.Call(ctx, g.session, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}
	if err != nil && g.life.Err() == nil {
		// The request may have gone with its frame.
		g.log.Debug("answer paused request", logErr, err)
	}
}

// decidePaused decides how to answer a paused document request, and
// reports blocks and access requests.
func (g *guard) decidePaused(ctx context.Context, ev *fetch.EventRequestPaused) (a answer) {
	if ev.Request == nil {
		return answer{fail: network.ErrorReasonBlockedByClient}
	}
	raw := ev.Request.URL
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return answer{}
	}
	f := ev.FrameID
	if strings.EqualFold(u.Hostname(), specialHost) {
		return g.special(ctx, f, u)
	}
	g.mu.Lock()
	if len(g.docs) >= maxTrackedDocs {
		g.docs = map[cdp.FrameID]string{}
	}
	g.docs[f] = raw
	// A block page this frame did not commit is no longer coming.
	delete(g.blockPages, f)
	mark, certBlocked := g.certMarks[f]
	if certBlocked {
		// Either this is the navigation to the block page, or the page
		// went elsewhere meanwhile.
		delete(g.certMarks, f)
	}
	if certBlocked && mark.url == raw {
		g.blockPages[f] = raw
	}
	g.mu.Unlock()
	if certBlocked && mark.url == raw {
		return answer{fulfill: blockPage{Host: mark.d.Host, Reason: mark.d.Reason}.render(certTmpl)}
	}
	if g.check == nil {
		return answer{}
	}
	d, ok := g.checkURL(raw)
	if !ok {
		d = isolation.NavDecision{Rule: "check-failed", Reason: "the site check failed"}
	}
	if d.Allow {
		return answer{}
	}
	if d.Host == "" {
		d.Host = u.Hostname()
	}
	main, tab := g.frameKind(ctx, f)
	d.Subframe = !main
	g.events.push(blockedMsg{tab: tab, url: raw, d: d})
	if !main {
		return answer{fail: network.ErrorReasonBlockedByClient}
	}
	g.mu.Lock()
	g.blockPages[f] = raw
	g.mu.Unlock()
	p := blockPage{Host: d.Host, Reason: d.Reason, RequestURL: requestAccessURL(d.Host, raw, g.token)}
	return answer{fulfill: p.render(blockTmpl)}
}

// checkURL asks LaunchOptions.CheckURL; ok is false when it panicked, which
// fails closed.
func (g *guard) checkURL(raw string) (d isolation.NavDecision, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("CheckURL panicked", "panic", fmt.Sprint(r))
			ok = false
		}
	}()
	return g.check(raw), true
}

// special answers a request for specialHost: a valid "request access" link
// from a block page is reported and the block page stays; the clipboard
// reader gets its document; anything else fails. Nothing for specialHost
// goes to the network.
func (g *guard) special(ctx context.Context, f cdp.FrameID, u *url.URL) answer {
	if u.Path == clipboardPath {
		if !g.clip.isReader(f) || u.RawQuery != "" {
			return answer{fail: network.ErrorReasonBlockedByClient}
		}
		return answer{fulfill: readerPage, headers: readerHeaders, code: 200}
	}
	q := u.Query()
	host, refused := q.Get("host"), q.Get("url")
	valid := u.Path == requestAccessPath &&
		subtle.ConstantTimeCompare([]byte(q.Get("token")), []byte(g.token)) == 1 &&
		host != "" && len(host) <= maxRequestHost && len(refused) <= maxRequestURL &&
		(strings.HasPrefix(refused, "http://") || strings.HasPrefix(refused, "https://"))
	if !valid {
		return answer{fail: network.ErrorReasonBlockedByClient}
	}
	main, tab := g.frameKind(ctx, f)
	if !main {
		return answer{fail: network.ErrorReasonBlockedByClient}
	}
	g.events.push(accessMsg{tab: tab, host: host, url: refused})
	// Aborted: the navigation ends without an error page, and the block
	// page stays while the broker asks the clinician for a reason.
	return answer{fail: network.ErrorReasonAborted}
}

// frameKind reports whether frame f is a tab's main frame, and the tab it
// belongs to ("" when unknown). A page target's ID is its main frame's ID.
func (g *guard) frameKind(ctx context.Context, f cdp.FrameID) (main bool, tab string) {
	g.tabs.mu.Lock()
	known := g.tabs.byID(target.ID(f)) != nil
	g.tabs.mu.Unlock()
	if known {
		return true, string(f)
	}
	g.mu.Lock()
	t, child := g.frameTab[f]
	g.mu.Unlock()
	if child {
		return false, string(t)
	}
	// A popup not tracked yet, or a cross-site frame.
	info, err := cdp.Call(ctx, g.session, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: target.ID(f)})
	if err != nil || info.TargetInfo == nil {
		return false, ""
	}
	switch info.TargetInfo.Type {
	case "page":
		return true, string(f)
	case "iframe":
		return false, string(info.TargetInfo.ParentID)
	}
	return false, ""
}

// refuseCertificate cancels the request of a certificate error. When it
// was a page's navigation, the page shows the certificate block page
// instead: once the refused navigation has stopped (see
// certNavigationStopped), the tab navigates again and the Fetch handler
// answers with the page.
func (g *guard) refuseCertificate(ev *certErrorEvent) {
	ctx, cancel := context.WithTimeout(g.life, g.cfg.CallTimeout)
	defer cancel()
	var frames []cdp.FrameID
	g.mu.Lock()
	for f, u := range g.docs {
		if u == ev.RequestURL {
			frames = append(frames, f)
			delete(g.docs, f)
		}
	}
	g.mu.Unlock()
	d := isolation.NavDecision{
		Host:   hostOf(ev.RequestURL),
		Rule:   RuleInvalidCertificate,
		Reason: "invalid certificate (" + ev.ErrorType + ")",
	}
	var mains []target.ID
	for _, f := range frames {
		main, tab := g.frameKind(ctx, f)
		fd := d
		fd.Subframe = !main
		g.events.push(blockedMsg{tab: tab, url: ev.RequestURL, d: fd})
		if main {
			// Marked before the cancel, so that the navigation's stop
			// finds it.
			g.mu.Lock()
			g.certMarks[f] = certMark{url: ev.RequestURL, d: d}
			g.mu.Unlock()
			mains = append(mains, target.ID(f))
		}
	}
	if _, err := cdp.Call(ctx, g.session, handleCertificateError, handleCertParams{EventID: ev.EventID, Action: "cancel"}); err != nil && g.life.Err() == nil {
		g.log.Warn("cancel certificate error", logErr, err)
	}
	g.log.Info("certificate refused", "host", d.Host, "error", ev.ErrorType, "pages", len(mains))
}

// certNavigationStopped shows the pending certificate block page of tab t,
// if any, once a navigation of its main frame has stopped.
func (g *guard) certNavigationStopped(t *tab) {
	g.mu.Lock()
	_, pending := g.certMarks[cdp.FrameID(t.id)]
	g.mu.Unlock()
	if pending {
		g.spawn(func() {
			ctx, cancel := t.callCtx(g.cfg.CallTimeout)
			defer cancel()
			g.showCertPage(ctx, t.id)
		})
	}
}

// showCertPage navigates tab id to its pending certificate block page. A
// tab that is not set up yet does it when it is (see attach).
func (g *guard) showCertPage(ctx context.Context, id target.ID) {
	g.tabs.mu.Lock()
	t := g.tabs.byID(id)
	ready := t != nil && t.ready && t.sess != nil
	g.tabs.mu.Unlock()
	if !ready {
		return
	}
	f := cdp.FrameID(id)
	g.mu.Lock()
	m, ok := g.certMarks[f]
	if ok {
		m.tries++
		if m.tries > maxCertTries {
			delete(g.certMarks, f)
			ok = false
		} else {
			g.certMarks[f] = m
		}
	}
	g.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.life, cancel)
	defer stop()
	if _, err := cdp.Call(ctx, t.sess, page.Navigate, page.NavigateParams{URL: m.url}); err != nil && g.life.Err() == nil {
		g.log.Warn("show certificate block page", logTab, id, logErr, err)
	}
}

// blockedMsg reports a blocked navigation from loop.
type blockedMsg struct {
	tab, url string
	d        isolation.NavDecision
}

// accessMsg reports a "request access" from loop.
type accessMsg struct {
	tab, host, url string
}
