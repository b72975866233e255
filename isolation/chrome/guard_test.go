package chrome

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// Hosts of the guard tests. All are served by one site; the proxy knows
// them all, so a request that reached the network would be seen.
const (
	otherHost  = "other.test"
	deniedHost = "denied.test"
)

// hitLog records the requests a test server served, as "host/path".
type hitLog struct {
	mu   sync.Mutex
	hits []string
}

func (h *hitLog) add(r *http.Request) {
	h.mu.Lock()
	h.hits = append(h.hits, r.Host+r.URL.Path)
	h.mu.Unlock()
}

// count returns how many requests had host.
func (h *hitLog) count(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.hits {
		if strings.HasPrefix(s, host+"/") {
			n++
		}
	}
	return n
}

// gif is a 1×1 GIF.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// guardSite serves the pages of the guard tests on every host.
func guardSite(hits *hitLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.add(r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/frames":
			var sb strings.Builder
			sb.WriteString(`<!doctype html><title>frames</title><script>window.loaded = new Set();
addEventListener('message', e => window.loaded.add(e.data));</script>`)
			for i := range 20 {
				fmt.Fprintf(&sb, `<iframe src="/frame?i=%d" width=20 height=20></iframe><img src="/img?i=%d">`, i, i)
			}
			fmt.Fprintf(&sb, `<iframe id="other" src="http://%s/frame?i=other" width=20 height=20></iframe>`, otherHost)
			fmt.Fprintf(&sb, `<iframe id="denied" src="http://%s/frame?i=denied" width=20 height=20></iframe>`, deniedHost)
			fmt.Fprint(w, sb.String())
		case "/frame":
			fmt.Fprintf(w, `<!doctype html><script>parent.postMessage(%q, '*')</script>`, "frame"+r.URL.Query().Get("i"))
		case "/img":
			w.Header().Set("Content-Type", "image/gif")
			w.Write(gif)
		case "/popup":
			fmt.Fprintf(w, `<!doctype html><title>popup</title><body style="margin:0">
<a href="%s" target="_blank" style="position:absolute;left:0;top:0;width:200px;height:100px;display:block">open</a>`, r.URL.Query().Get("to"))
		case "/redirect":
			http.Redirect(w, r, "http://"+deniedHost+"/redirected", http.StatusFound)
		case "/badimg":
			fmt.Fprint(w, `<!doctype html><title>badimg</title><img id="img" src="https://badcert.test/img.gif">`)
		default:
			fmt.Fprintf(w, `<!doctype html><title>%s</title>page %s`, r.URL.Path, r.Host)
		}
	})
}

// guardCheck is the CheckURL of the tests: denied.test is not allowed,
// site.test/private/ is refused by a path rule, and a URL with "panic"
// makes the check panic.
func guardCheck(raw string) isolation.NavDecision {
	u, err := url.Parse(raw)
	if err != nil {
		return isolation.NavDecision{Rule: "bad-url", Reason: "bad URL"}
	}
	switch {
	case strings.Contains(raw, "panic"):
		panic("check failed on purpose")
	case u.Hostname() == deniedHost:
		return isolation.NavDecision{Host: deniedHost, Rule: "default-deny", Reason: "host not in allowlist"}
	case u.Hostname() == siteHost && strings.HasPrefix(u.Path, "/private/"):
		return isolation.NavDecision{Host: siteHost, Rule: "site.test/public/", Reason: "path not allowed"}
	}
	return isolation.NavDecision{Allow: true, Host: u.Hostname(), Rule: "allow"}
}

// text returns the text of the element id on the active page.
func text(t *testing.T, b *browser, id string) string {
	t.Helper()
	return eval[string](t, b, fmt.Sprintf("(document.getElementById(%q) || {}).textContent || ''", id))
}

// waitBlockPage waits until the active tab shows the block page of u for
// host, with its title starting with title.
func waitBlockPage(t *testing.T, b *browser, u, host, title string) {
	t.Helper()
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", last)
		}
	}()
	eventually(t, "the block page of "+u, func() bool {
		s := b.State()
		href, h := eval[string](t, b, "location.href"), text(t, b, "host")
		last = fmt.Sprintf("state %+v, location %s, host %q", s, href, h)
		return s.URL == u && !s.Loading && strings.HasPrefix(s.Title, title) && href == u && h == host
	})
	if s := b.State(); s.Secure {
		t.Errorf("block page is secure: %+v", s)
	}
}

func TestNavigationCheck(t *testing.T) {
	hits := &hitLog{}
	site := guardSite(hits)
	f := launchFixtureWith(t, isolation.Viewport{Width: 800, Height: 600, DPR: 1}, "http://"+siteHost+"/start", fixtureSetup{
		site:    site,
		aliases: []string{otherHost, deniedHost},
		options: func(o *isolation.LaunchOptions) {
			o.CheckURL = guardCheck
		},
	})
	b, rec := f.b, f.rec
	const blockTitle = "アクセスできません / Not allowed"

	t.Run("BlockPage", func(t *testing.T) {
		u := "http://" + deniedHost + "/page?q=1"
		if err := b.Navigate(testCtx(t), u); err != nil {
			t.Fatal(err)
		}
		waitBlockPage(t, b, u, deniedHost, blockTitle)
		body := eval[string](t, b, "document.body.innerText")
		for _, want := range []string{"このサイトへのアクセスは許可されていません", "This site is not allowed",
			deniedHost, "host not in allowlist", "アクセスを申請 / Request access"} {
			if !strings.Contains(body, want) {
				t.Errorf("block page does not say %q:\n%s", want, body)
			}
		}
		if n := eval[int](t, b, "document.querySelectorAll('script,img,link,iframe').length"); n != 0 {
			t.Errorf("block page has %d elements that load or run something", n)
		}
		active := activeTab(b)
		if got := rec.blockedReports(); !slices.ContainsFunc(got, func(r blockedReport) bool {
			return r.tab == active && r.url == u && r.d.Rule == "default-deny" && r.d.Host == deniedHost && !r.d.Subframe
		}) {
			t.Errorf("Blocked reports %+v, want one for %s in tab %s", got, u, active)
		}
	})

	t.Run("RequestAccess", func(t *testing.T) {
		// A forged request from the address bar, without the token: refused,
		// not reported.
		forged := "https://" + specialHost + requestAccessPath + "?host=evil.test&url=http%3A%2F%2Fevil.test%2F&token=guess"
		_ = b.Navigate(testCtx(t), forged)
		// A forged request from a page's script.
		f.open(t, "/start")
		eval[string](t, b, "location.href = "+fmt.Sprintf("%q", forged)+"; ''")

		u := "http://" + deniedHost + "/needed"
		if err := b.Navigate(testCtx(t), u); err != nil {
			t.Fatal(err)
		}
		waitBlockPage(t, b, u, deniedHost, blockTitle)
		x := eval[float64](t, b, "(r => r.left + r.width/2)(document.getElementById('request-access').getBoundingClientRect())")
		y := eval[float64](t, b, "(r => r.top + r.height/2)(document.getElementById('request-access').getBoundingClientRect())")
		f.click(t, x, y)
		eventually(t, "the access request", func() bool { return len(rec.accessReports()) > 0 })
		got := rec.accessReports()
		want := accessReport{tab: activeTab(b), host: deniedHost, url: u}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("AccessRequested calls %+v, want only %+v", got, want)
		}
		// The block page stays, and nothing went to the network.
		if s := b.State(); s.URL != u || text(t, b, "host") != deniedHost {
			t.Errorf("after the request: %+v", s)
		}
		if f.proxy.requested(specialHost+":443") || f.proxy.requested("evil.test:80") {
			f.proxy.mu.Lock()
			t.Errorf("a request for the special host reached the proxy: %v", f.proxy.seen)
			f.proxy.mu.Unlock()
		}
	})

	t.Run("PathRule", func(t *testing.T) {
		u := "http://" + siteHost + "/private/notes"
		if err := b.Navigate(testCtx(t), u); err != nil {
			t.Fatal(err)
		}
		waitBlockPage(t, b, u, siteHost, blockTitle)
		if got := text(t, b, "reason"); got != "path not allowed" {
			t.Errorf("reason %q", got)
		}
		if n := hits.count(siteHost + "/private"); n != 0 {
			t.Errorf("the private path was served %d times", n)
		}
		f.open(t, "/public")
	})

	t.Run("Frames", func(t *testing.T) {
		f.open(t, "/frames")
		// 20 frames of the site and one cross-site frame; every paused
		// request was answered.
		eventually(t, "the allowed frames", func() bool { return eval[int](t, b, "window.loaded.size") == 21 })
		eventually(t, "the images", func() bool {
			return eval[int](t, b, "[...document.images].filter(i => i.complete && i.naturalWidth == 1).length") == 20
		})
		if !f.proxy.requested(otherHost + ":80") {
			t.Error("the cross-site frame did not come through the proxy")
		}
		frame := "http://" + deniedHost + "/frame?i=denied"
		active := activeTab(b)
		eventually(t, "the report of the denied frame", func() bool {
			return slices.ContainsFunc(rec.blockedReports(), func(r blockedReport) bool { return r.url == frame && r.tab == active && r.d.Subframe })
		})
		// The cross-site frame runs in a process of its own; its next
		// navigation is checked too.
		again := "http://" + deniedHost + "/frame?i=again"
		eval[string](t, b, fmt.Sprintf("document.getElementById('other').src = %q; ''", again))
		eventually(t, "the report of the cross-site frame's navigation", func() bool {
			return slices.ContainsFunc(rec.blockedReports(), func(r blockedReport) bool { return r.url == again && r.d.Subframe })
		})
		if s := b.State(); s.URL != f.base+"/frames" || s.Title != "frames" {
			t.Errorf("a denied frame changed the page: %+v", s)
		}
	})

	t.Run("Redirect", func(t *testing.T) {
		if err := b.Navigate(testCtx(t), f.base+"/redirect"); err != nil {
			t.Fatal(err)
		}
		waitBlockPage(t, b, "http://"+deniedHost+"/redirected", deniedHost, blockTitle)
	})

	t.Run("Popup", func(t *testing.T) {
		f.open(t, "/popup?to="+url.QueryEscape("http://"+deniedHost+"/popup"))
		f.click(t, 50, 50)
		u := "http://" + deniedHost + "/popup"
		eventually(t, "the popup", func() bool { s := b.State(); return len(s.Tabs) == 2 && s.URL == u })
		waitBlockPage(t, b, u, deniedHost, blockTitle)
		popup := activeTab(b)
		if !slices.ContainsFunc(rec.blockedReports(), func(r blockedReport) bool { return r.url == u && r.tab == popup && !r.d.Subframe }) {
			t.Errorf("no report of the popup in tab %s: %+v", popup, rec.blockedReports())
		}
		if err := b.CloseTab(testCtx(t), popup); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the opener to be active again", func() bool {
			s := b.State()
			return len(s.Tabs) == 1 && s.Tabs[0].Active
		})
	})

	t.Run("CheckPanics", func(t *testing.T) {
		u := f.base + "/panic"
		if err := b.Navigate(testCtx(t), u); err != nil {
			t.Fatal(err)
		}
		waitBlockPage(t, b, u, siteHost, blockTitle)
		if n := hits.count(siteHost + "/panic"); n != 0 {
			t.Errorf("a page whose check panicked was served %d times", n)
		}
	})

	t.Run("LookalikeHost", func(t *testing.T) {
		// аpple.com with a Cyrillic а; the test proxy refuses it, and the
		// toolbar warns.
		u := "http://xn--pple-43d.com/"
		if err := b.Navigate(testCtx(t), u); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the lookalike page", func() bool { return b.State().URL == u })
		s := b.State()
		if s.Host != "xn--pple-43d.com" || s.HostUnicode != "аpple.com" || !strings.Contains(s.HostWarning, "Cyrillic") {
			t.Errorf("state %+v, want a warning about Cyrillic in аpple.com", s)
		}
		f.open(t, "/start")
		if s := b.State(); s.HostWarning != "" || s.HostUnicode != siteHost {
			t.Errorf("state of an ASCII host %+v", s)
		}
	})

	if n := hits.count(deniedHost); n != 0 {
		t.Errorf("the denied host was served %d times", n)
	}
	if f.proxy.requested(deniedHost + ":80") {
		t.Error("a request for the denied host reached the proxy")
	}
	rec.mu.Lock()
	navs := slices.Clone(rec.navs)
	rec.mu.Unlock()
	for _, n := range navs {
		if u, _ := url.Parse(n); u != nil && (u.Hostname() == deniedHost || strings.HasPrefix(u.Path, "/private/")) {
			t.Errorf("a block page was reported as a navigation: %s", n)
		}
	}
}

// activeTab returns the ID of the active tab.
func activeTab(b *browser) string {
	for _, tb := range b.State().Tabs {
		if tb.Active {
			return tb.ID
		}
	}
	return ""
}

// selfSignedServer starts a TLS server for host with a self-signed
// certificate that no browser trusts.
func selfSignedServer(t *testing.T, host string, h http.Handler) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	// The handshakes the browser fails are expected.
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestCertificateErrors(t *testing.T) {
	const badHost = "badcert.test"
	bad := &hitLog{}
	srv := selfSignedServer(t, badHost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad.add(r)
		fmt.Fprint(w, "<title>secret</title>the page behind the bad certificate")
	}))
	hits := &hitLog{}
	// No CheckURL: certificates are refused without it.
	f := launchFixtureWith(t, isolation.Viewport{Width: 800, Height: 600, DPR: 1}, "", fixtureSetup{
		site:  guardSite(hits),
		hosts: map[string]string{badHost + ":443": srv.Listener.Addr().String()},
	})
	b, rec := f.b, f.rec
	const certTitle = "証明書が無効です / Invalid certificate"
	certReports := func() int {
		n := 0
		for _, r := range rec.blockedReports() {
			if r.d.Rule == RuleInvalidCertificate && r.d.Host == badHost {
				n++
			}
		}
		return n
	}

	u := "https://" + badHost + "/secret"
	t.Run("BlockPage", func(t *testing.T) {
		if err := b.Navigate(testCtx(t), u); err != nil && !strings.Contains(err.Error(), "ERR_ABORTED") {
			t.Fatal(err)
		}
		waitBlockPage(t, b, u, badHost, certTitle)
		body := eval[string](t, b, "document.body.innerText")
		for _, want := range []string{"このサイトの証明書は無効です", "This site's certificate is invalid", "ERR_CERT_AUTHORITY_INVALID"} {
			if !strings.Contains(body, want) {
				t.Errorf("certificate page does not say %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "Request access") || eval[int](t, b, "document.links.length") != 0 {
			t.Error("certificate page offers a way on")
		}
		if n := certReports(); n != 1 {
			t.Errorf("%d certificate reports, want 1: %+v", n, rec.blockedReports())
		}
	})

	t.Run("NoClickThrough", func(t *testing.T) {
		// Chromium's own interstitial proceeds when this is typed on it.
		f.click(t, 400, 300)
		f.typeText(t, "thisisunsafe")
		if s := b.State(); s.URL != u || !strings.HasPrefix(s.Title, certTitle) || s.Secure {
			t.Errorf("after typing: %+v", s)
		}
		if text(t, b, "host") != badHost {
			t.Error("the certificate page is gone")
		}
		// A reload refuses again.
		n := certReports()
		if err := b.Reload(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the refusal of the reload", func() bool { return certReports() > n })
		waitBlockPage(t, b, u, badHost, certTitle)
	})

	t.Run("Popup", func(t *testing.T) {
		f.open(t, "/popup?to="+url.QueryEscape("https://"+badHost+"/popup"))
		f.click(t, 50, 50)
		pu := "https://" + badHost + "/popup"
		eventually(t, "the popup", func() bool { return len(b.State().Tabs) == 2 })
		waitBlockPage(t, b, pu, badHost, certTitle)
		if err := b.CloseTab(testCtx(t), activeTab(b)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the opener to be active again", func() bool {
			s := b.State()
			return len(s.Tabs) == 1 && s.Tabs[0].Active
		})
	})

	t.Run("Subresource", func(t *testing.T) {
		f.open(t, "/badimg")
		eventually(t, "the image to fail", func() bool {
			return eval[bool](t, b, "document.getElementById('img').complete && document.getElementById('img').naturalWidth == 0")
		})
		if s := b.State(); s.URL != f.base+"/badimg" {
			t.Errorf("a bad image moved the page: %+v", s)
		}
	})

	if n := bad.count(badHost); n != 0 {
		t.Errorf("the server behind the bad certificate served %d requests", n)
	}
}
