package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
)

const staffPassword = "a long staff password"

// guidelineSite is a site the policy does not allow at first, reachable by
// the remote browser as guidelines.test:PORT.
func guidelineSite(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Guidelines</title><h1 id="g">Sepsis guideline 2026</h1>`)
	}))
	t.Cleanup(ts.Close)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	return ts, port
}

// staffLogin logs a staff user into a viewer browser through the API and
// accepts the pledge in force (as the viewer's pledge step does), then opens
// path.
func staffLogin(t *testing.T, v *viewer, b *brokerUnderTest, user, path string) {
	t.Helper()
	staffLoginOnly(t, v, b, user)
	ok := eval[bool](v, `fetch('/api/session').then(r => r.json()).then(s => fetch('/api/pledge', {method: 'POST',
		headers: {'Content-Type': 'application/json'}, body: JSON.stringify({version: s.pledgeVersion})})).then(r => r.ok)`)
	if !ok {
		t.Fatalf("%s could not accept the pledge", user)
	}
	v.do(chromedp.Navigate(b.url + path))
}

// staffLoginOnly logs a staff user into a viewer browser through the API,
// without accepting the pledge.
func staffLoginOnly(t *testing.T, v *viewer, b *brokerUnderTest, user string) {
	t.Helper()
	v.do(chromedp.Navigate(b.url + "/"))
	ok := eval[bool](v, fmt.Sprintf(`fetch('/api/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({username: %q, password: %q})}).then(r => r.ok)`, user, staffPassword))
	if !ok {
		t.Fatalf("login of %s failed", user)
	}
}

// staffClient logs a staff user in through the API and accepts the pledge
// in force, as the viewer does after login: the client may then use the
// APIs of the user's role.
func staffClient(t *testing.T, b *brokerUnderTest, user string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Post(b.url+"/api/login", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+staffPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login of %s: %s", user, resp.Status)
	}
	resp, err = c.Get(b.url + "/api/session")
	if err != nil {
		t.Fatal(err)
	}
	var session struct {
		PledgeVersion string `json:"pledgeVersion"`
	}
	err = json.NewDecoder(resp.Body).Decode(&session)
	resp.Body.Close()
	if err != nil || session.PledgeVersion == "" {
		t.Fatalf("session of %s: %v, pledge version %q", user, err, session.PledgeVersion)
	}
	resp, err = c.Post(b.url+"/api/pledge", "application/json", strings.NewReader(`{"version":"`+session.PledgeVersion+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s accepts the pledge: %s", user, resp.Status)
	}
	return c
}

// putPolicy sets the whole policy document through the admin API.
func putPolicy(t *testing.T, b *brokerUnderTest, admin, doc string) {
	t.Helper()
	c := staffClient(t, b, admin)
	req, _ := http.NewRequest("PUT", b.url+"/api/admin/policy", strings.NewReader(doc))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", `"0"`)
	req.Header.Set("Origin", b.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put policy: %d %s", resp.StatusCode, body)
	}
}

// TestAdminRuleReachesRunningSession: an admin adds a rule in the admin page
// and the clinician's running session reaches the site without a restart
// or a new login.
func TestAdminRuleReachesRunningSession(t *testing.T) {
	site, port := guidelineSite(t)
	b := startBroker(t, func(c *broker.Config) {
		c.Egress.Hosts = map[string]string{"guidelines.test": "127.0.0.1"}
		c.Egress.AllowAddrs = []string{site.Listener.Addr().String()}
	})
	for _, u := range []string{"admin1"} {
		if err := b.srv.Auth().AddUser(u, auth.Admin, staffPassword); err != nil {
			t.Fatal(err)
		}
	}
	putPolicy(t, b, "admin1", `{"profiles":[{"name":"clinical","rules":[{"pattern":"www.pmda.go.jp"}]}],"default":"clinical"}`)

	clin := newViewer(t, 1024, 700)
	clin.login(b)
	target := "http://guidelines.test:" + port + "/"
	navigateURL(t, clin, b, target)
	waitRemote(t, b, "the block page", `document.body.innerText.includes('guidelines.test') && !document.getElementById('g')`)

	admin := newViewer(t, 1280, 800)
	staffLogin(t, admin, b, "admin1", "/admin#policy")
	admin.waitFor("the rule form", `!!document.querySelector('#rule-form input[name=pattern]') && document.querySelector('#rule-form').offsetParent !== null`)
	admin.do(
		chromedp.SendKeys(chromedp.CSS(`#rule-form input[name=pattern]`), "guidelines.test:"+port),
		chromedp.Click(chromedp.CSS(`#rule-form button[type=submit]`)),
	)
	admin.waitFor("the new rule in the table", fmt.Sprintf(`!!document.querySelector('#rules [data-pattern="guidelines.test:%s"]')`, port))

	// The clinician's session was not restarted: the same browser reloads.
	s, _ := b.srv.Sessions().Get(b.user)
	navigateURL(t, clin, b, target)
	waitRemote(t, b, "the allowed site", `!!document.getElementById('g')`)
	if s2, _ := b.srv.Sessions().Get(b.user); s2 != s {
		t.Error("the clinician's session was replaced")
	}
}

// TestSiteRequestApproved: a clinician on a block page asks for the site
// with a reason, an approver grants it, and the clinician's viewer shows it
// and the site works at once.
func TestSiteRequestApproved(t *testing.T) {
	site, port := guidelineSite(t)
	b := startBroker(t, func(c *broker.Config) {
		c.Egress.Hosts = map[string]string{"guidelines.test": "127.0.0.1"}
		c.Egress.AllowAddrs = []string{site.Listener.Addr().String()}
	})
	if err := b.srv.Auth().AddUser("admin1", auth.Admin, staffPassword); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Auth().AddUser("boss", auth.Approver, staffPassword); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, b, "admin1", `{"profiles":[{"name":"clinical","rules":[{"pattern":"www.pmda.go.jp"}]}],"default":"clinical"}`)

	clin := newViewer(t, 1024, 700)
	clin.login(b)
	navigateURL(t, clin, b, "http://guidelines.test:"+port+"/")
	waitRemote(t, b, "the block page", `!!document.getElementById('request-access')`)
	x, y := remoteCentre(t, b, "#request-access")
	clin.clickRemote(x, y)
	clin.waitFor("the access dialog", `document.getElementById('access-dialog').open`)
	clin.do(
		chromedp.SendKeys(chromedp.CSS(`#access-reason`), "new sepsis guideline for ward 3"),
		chromedp.Click(chromedp.CSS(`#access-send`)),
	)
	clin.waitFor("the dialog to close", `!document.getElementById('access-dialog').open`)

	appr := newViewer(t, 1280, 800)
	staffLogin(t, appr, b, "boss", "/approvals")
	appr.waitFor("the request in the queue", `!!document.querySelector('#requests [data-request-id] [data-approve]')`)
	appr.do(chromedp.Click(chromedp.CSS(`#requests [data-request-id] [data-approve]`)))
	appr.waitFor("the queue to empty", `!document.querySelector('#requests [data-request-id] [data-approve]')`)

	clin.waitFor("the outcome toast", `document.getElementById('toast').textContent.includes('guidelines.test')`)
	navigateURL(t, clin, b, "http://guidelines.test:"+port+"/")
	waitRemote(t, b, "the approved site", `!!document.getElementById('g')`)

	// The audit trail holds the refusal, the request, the decision and the
	// navigation, attributed to who did each, and the chain verifies.
	dir := filepath.Join(b.data, "audit")
	seen := map[audit.Type]string{}
	for e, err := range audit.Scan(dir, audit.Filter{Host: "guidelines.test"}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[e.Type] = e.User
	}
	for typ, user := range map[audit.Type]string{audit.TypeDeny: b.user, audit.TypeSiteRequest: b.user, audit.TypeSiteDecision: "boss", audit.TypeNavigation: b.user} {
		if seen[typ] != user {
			t.Errorf("audit: %s by %q, want by %q (seen %v)", typ, seen[typ], user, seen)
		}
	}
	if _, err := audit.Verify(dir); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

// navigateURL types url into the viewer's address bar.
func navigateURL(t *testing.T, v *viewer, b *brokerUnderTest, url string) {
	t.Helper()
	remote[bool](t, b, `window.shojiTestMarker = true`)
	v.do(
		chromedp.Evaluate[chromedp.Void](`(() => { const a = document.getElementById('address'); a.focus(); a.select(); })()`),
		chromedp.KeyEvent(url+"\r"),
	)
	waitRemote(t, b, url, `!window.shojiTestMarker && document.readyState === 'complete'`)
}
