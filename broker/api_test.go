package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

const testPassword = "correct horse battery staple"

type apiFixture struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
	l   *isolationtest.Launcher
	out *bytes.Buffer
}

// newAPI starts a broker with a fake browser launcher behind httptest.
func newAPI(t *testing.T, mod func(*Config)) *apiFixture {
	t.Helper()
	return newAPIWithClock(t, mod, nil)
}

// newAPIWithClock is newAPI with the accounts' clock set.
func newAPIWithClock(t *testing.T, mod func(*Config), now func() time.Time) *apiFixture {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	l := &isolationtest.Launcher{}
	out := &bytes.Buffer{}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: out, Launcher: l, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	srv.cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	srv.handler = srv.routes()
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return &apiFixture{t: t, srv: srv, ts: ts, l: l, out: out}
}

func (f *apiFixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func (f *apiFixture) do(c *http.Client, method, path, body string) (*http.Response, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp, m
}

func (f *apiFixture) addUser(name string, role auth.Role) {
	f.t.Helper()
	if err := f.srv.Auth().AddUser(name, role, testPassword); err != nil {
		f.t.Fatal(err)
	}
}

// login logs name in and accepts the pledge in force, as the viewer does
// after login: the client may use every API its role allows.
func (f *apiFixture) login(name string) *http.Client {
	f.t.Helper()
	c := f.loginOnly(name)
	f.acceptPledge(c)
	return c
}

// loginOnly logs name in without accepting the pledge.
func (f *apiFixture) loginOnly(name string) *http.Client {
	f.t.Helper()
	c := f.client()
	resp, m := f.do(c, "POST", "/api/login", `{"username":"`+name+`","password":"`+testPassword+`"}`)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("login %s: %d %v", name, resp.StatusCode, m)
	}
	return c
}

// acceptPledge accepts, for c's user, the pledge GET /api/session shows.
func (f *apiFixture) acceptPledge(c *http.Client) {
	f.t.Helper()
	resp, m := f.do(c, "GET", "/api/session", "")
	version, _ := m["pledgeVersion"].(string)
	if resp.StatusCode != http.StatusOK || version == "" {
		f.t.Fatalf("session before the pledge: %d %v", resp.StatusCode, m)
	}
	if resp, m := f.do(c, "POST", "/api/pledge", `{"version":"`+version+`"}`); resp.StatusCode != http.StatusOK {
		f.t.Fatalf("accept the pledge: %d %v", resp.StatusCode, m)
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	f := newAPI(t, nil)
	for _, path := range []string{"/", "/setup", "/api/banner", "/api/session", "/nope", "/healthz", "/static/viewer.js"} {
		resp, _ := f.do(f.client(), "GET", path, "")
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}

func TestFirstRunSetupToken(t *testing.T) {
	f := newAPI(t, nil)
	if err := f.srv.announce(); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\n    (\S+)\n`).FindStringSubmatch(f.out.String())
	if m == nil {
		t.Fatalf("no set-up token printed: %q", f.out.String())
	}
	token := m[1]
	c := f.client()
	body := func(tok, pw string) string {
		return `{"token":"` + tok + `","username":"root-admin","password":"` + pw + `"}`
	}
	if resp, _ := f.do(c, "POST", "/api/setup", body("wrong", testPassword)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp, m := f.do(c, "POST", "/api/setup", body(token, "short")); resp.StatusCode != http.StatusBadRequest || !strings.Contains(m["error"].(string), "password") {
		t.Errorf("weak password: %d %v", resp.StatusCode, m)
	}
	if resp, m := f.do(c, "POST", "/api/setup", body(token, testPassword)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("setup: %d %v", resp.StatusCode, m)
	}
	if resp, _ := f.do(c, "POST", "/api/setup", body(token, testPassword)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("token reused: %d, want 403", resp.StatusCode)
	}
	admin := f.login("root-admin")
	if resp, m := f.do(admin, "GET", "/api/session", ""); resp.StatusCode != 200 || m["role"] != "admin" {
		t.Errorf("session after setup: %d %v", resp.StatusCode, m)
	}
	f.out.Reset()
	if err := f.srv.announce(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.out.String(), "set-up token") {
		t.Error("set-up token printed although an admin exists")
	}
}

func TestLoginCookieAndLogout(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("alice", auth.Clinician)
	c := f.client()
	if resp, m := f.do(c, "POST", "/api/login", `{"username":"alice","password":"wrong password!"}`); resp.StatusCode != 401 || m["error"] == nil {
		t.Errorf("bad password: %d %v", resp.StatusCode, m)
	}
	resp, _ := f.do(c, "POST", "/api/login", `{"username":"alice","password":"`+testPassword+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.CookieName {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure without TLS", sc)
	}
	if resp, m := f.do(c, "GET", "/api/session", ""); resp.StatusCode != 200 || m["user"] != "alice" || m["pledgeAccepted"] != false {
		t.Errorf("session: %d %v", resp.StatusCode, m)
	}
	if resp, _ := f.do(c, "POST", "/api/pledge", `{}`); resp.StatusCode != 200 {
		t.Errorf("pledge: %d", resp.StatusCode)
	}
	if _, m := f.do(c, "GET", "/api/session", ""); m["pledgeAccepted"] != true {
		t.Errorf("pledge not recorded: %v", m)
	}

	// A browser session exists; logout ends it and revokes the cookie.
	if _, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "alice", Role: "clinician"}, testViewport); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(c, "POST", "/api/logout", `{}`); resp.StatusCode != 200 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if !f.l.Last().Closed() {
		t.Error("logout left the browser running")
	}
	// The old token is dead even if a copy was kept.
	stale := f.client()
	u := mustURL(t, f.ts.URL)
	stale.Jar.SetCookies(u, []*http.Cookie{{Name: api.CookieName, Value: sc.Value}})
	if resp, _ := f.do(stale, "GET", "/api/session", ""); resp.StatusCode != 401 {
		t.Errorf("revoked token: %d, want 401", resp.StatusCode)
	}
}

func TestLockoutViaAPI(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("bob", auth.Clinician)
	c := f.client()
	for i := range 5 {
		if resp, _ := f.do(c, "POST", "/api/login", `{"username":"bob","password":"not the password"}`); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	resp, m := f.do(c, "POST", "/api/login", `{"username":"bob","password":"`+testPassword+`"}`)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(m["error"].(string), "locked") {
		t.Errorf("after 5 failures the right password gave %d %v, want 429 locked", resp.StatusCode, m)
	}
}

func TestBadRequests(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("carol", auth.Clinician)
	c := f.client()
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		want              string
	}{
		{"unknown field", "application/json", `{"username":"carol","password":"x","otp":"1"}`, 400, "otp"},
		{"not json", "application/json", `username=carol`, 400, "bad JSON"},
		{"trailing", "application/json", `{"username":"carol","password":"x"} {}`, 400, "trailing"},
		{"form post", "application/x-www-form-urlencoded", `username=carol`, 415, "application/json"},
		{"huge", "application/json", `{"username":"` + strings.Repeat("a", 100<<10) + `"}`, 413, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.ts.URL+"/api/login", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&m)
			if resp.StatusCode != tc.status || !strings.Contains(m["error"], tc.want) {
				t.Errorf("%d %q, want %d naming %q", resp.StatusCode, m["error"], tc.status, tc.want)
			}
		})
	}
	// Cross-origin state changes are refused.
	req, _ := http.NewRequest("POST", f.ts.URL+"/api/login", strings.NewReader(`{"username":"carol","password":"`+testPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.test")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login: %d, want 403", resp.StatusCode)
	}
}

func TestRoles(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	f.addUser("nurse", auth.Clinician)
	nurse, admin := f.login("nurse"), f.login("admin1")
	if resp, _ := f.do(nurse, "GET", "/api/admin/settings", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("clinician reads settings: %d", resp.StatusCode)
	}
	if resp, _ := f.do(f.client(), "PUT", "/api/admin/settings", `{"banner":"x","pledge":"y"}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous writes settings: %d", resp.StatusCode)
	}
	if resp, m := f.do(admin, "PUT", "/api/admin/settings", `{"banner":"院内専用 / staff only","pledge":"I agree."}`); resp.StatusCode != 200 {
		t.Fatalf("admin writes settings: %d %v", resp.StatusCode, m)
	}
	f.acceptPledge(admin) // the admin, too, accepts the pledge they changed
	if _, m := f.do(f.client(), "GET", "/api/banner", ""); m["banner"] != "院内専用 / staff only" {
		t.Errorf("banner = %v", m)
	}
	if resp, m := f.do(admin, "PUT", "/api/admin/settings", `{"banner":"x","pledge":""}`); resp.StatusCode != 400 || !strings.Contains(m["error"].(string), "pledge") {
		t.Errorf("empty pledge: %d %v", resp.StatusCode, m)
	}
	// Admin ends a clinician's session.
	if _, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "nurse", Role: "clinician"}, testViewport); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(admin, "DELETE", "/api/admin/sessions/nurse", ""); resp.StatusCode != 200 {
		t.Errorf("end session: %d", resp.StatusCode)
	}
	if !f.l.Last().Closed() {
		t.Error("admin end left the browser running")
	}
}

func TestDisablingUserEndsBrowser(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("leaver", auth.Clinician)
	c := f.login("leaver")
	s, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "leaver", Role: "clinician"}, testViewport)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Auth().DisableUser("leaver"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("disabling the account did not end its session")
	}
	if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != 401 {
		t.Errorf("disabled user's cookie still works: %d", resp.StatusCode)
	}
}

// TestStreamRefusesForgedTokens checks the viewer WebSocket's door.
func TestStreamRefusesForgedTokens(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("dave", auth.Clinician)
	real := f.login("dave")
	var good string
	for _, ck := range real.Jar.Cookies(mustURL(t, f.ts.URL)) {
		if ck.Name == api.CookieName {
			good = ck.Value
		}
	}
	claims := jwt.MapClaims{
		"iss": auth.Issuer, "aud": auth.Audience, "sub": "dave", "role": "admin",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "sid": "x",
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	other.Header["kid"] = "forged"
	otherTok, _ := other.SignedString(otherKey)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "A." + parts[2]

	wsURL := "ws" + strings.TrimPrefix(f.ts.URL, "http") + "/api/stream"
	for _, tc := range []struct {
		name, cookie, origin string
		status               int
	}{
		{"no cookie", "", f.srv.cfg.Origin(), 401},
		{"alg none", none, f.srv.cfg.Origin(), 401},
		{"other key", otherTok, f.srv.cfg.Origin(), 401},
		{"tampered", tampered, f.srv.cfg.Origin(), 401},
		{"garbage", "not-a-jwt", f.srv.cfg.Origin(), 401},
		{"foreign origin", good, "http://evil.test", 403},
		{"no origin", good, "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.cookie != "" {
				h.Set("Cookie", api.CookieName+"="+tc.cookie)
			}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			_, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
			if err == nil {
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("got %v, want %d", resp, tc.status)
			}
			if tc.status == http.StatusUnauthorized {
				// The API's error shape, as for any refused request.
				var m map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m["error"] == nil {
					t.Errorf("401 body: %v, %v; want {\"error\": …}", m, err)
				}
			}
		})
	}
	if n := len(f.l.Browsers()); n != 0 {
		t.Errorf("refused upgrades started %d browsers", n)
	}
	// The real cookie with the right origin gets in.
	h := http.Header{"Cookie": {api.CookieName + "=" + good}, "Origin": {f.srv.cfg.Origin()}}
	c, _, err := websocket.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// dialStream opens the viewer WebSocket with c's session cookie and the
// broker's origin.
func (f *apiFixture) dialStream(c *http.Client) (*websocket.Conn, *http.Response, error) {
	f.t.Helper()
	h := http.Header{"Origin": {f.srv.cfg.Origin()}}
	for _, ck := range c.Jar.Cookies(mustURL(f.t, f.ts.URL)) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.ts.URL, "http")+"/api/stream", h)
}

// wantPledgeRefusal checks that an upgrade was refused with the pledge's 403
// and its JSON message.
func wantPledgeRefusal(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: the stream opened without the pledge", what)
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%s: upgrade answered %v, want 403", what, resp)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if m["pledgeRequired"] != true || !strings.Contains(fmt.Sprint(m["error"]), "pledge") {
		t.Errorf("%s: upgrade refused with %v, want the pledge message", what, m)
	}
}

// TestPledgeSkippedByRawClient: a client that logs in and never accepts the
// pledge gets nothing but its session, the pledge text, the pledge and
// logout. The stream is refused before any browser starts, and every other
// API, whatever the role, answers 403 with pledgeRequired (NOTICE-1).
func TestPledgeSkippedByRawClient(t *testing.T) {
	f := newAPI(t, nil)
	for name, role := range map[string]auth.Role{"nurse": auth.Clinician, "admin1": auth.Admin, "boss": auth.Approver, "eye": auth.Auditor} {
		f.addUser(name, role)
	}
	clients := map[string]*http.Client{}
	for _, name := range []string{"nurse", "admin1", "boss", "eye"} {
		clients[name] = f.loginOnly(name)
	}

	resp, err := func() (*http.Response, error) {
		_, resp, err := f.dialStream(clients["nurse"])
		return resp, err
	}()
	wantPledgeRefusal(t, "stream", resp, err)
	if n := len(f.l.Browsers()); n != 0 {
		t.Fatalf("a refused stream started %d browsers", n)
	}

	refused := []struct{ user, method, path, body string }{
		{"nurse", "POST", "/api/site-requests", `{"host":"example.jp","reason":"drug information"}`},
		{"nurse", "GET", "/api/site-requests/mine", ""},
		{"nurse", "GET", "/api/transfers", ""},
		{"nurse", "GET", "/api/transfers/x/file", ""},
		{"nurse", "POST", "/api/transfers/x/send", `{"destination":"ward"}`},
		{"nurse", "GET", "/api/destinations", ""},
		{"nurse", "POST", "/api/uploads/x", `{}`},
		{"admin1", "GET", "/api/admin/settings", ""},
		{"admin1", "PUT", "/api/admin/settings", `{"banner":"changed by a raw client","pledge":"nothing"}`},
		{"admin1", "GET", "/api/admin/policy", ""},
		{"admin1", "POST", "/api/admin/blocked", `{"host":"example.jp","reason":"raw client"}`},
		{"admin1", "GET", "/api/admin/sessions", ""},
		{"admin1", "GET", "/api/admin/destinations", ""},
		{"boss", "GET", "/api/approvals/transfers", ""},
		{"boss", "GET", "/api/site-requests", ""},
		{"eye", "GET", "/api/audit/events", ""},
		{"eye", "GET", "/api/audit/status", ""},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.user+" "+tc.method+" "+tc.path, func(t *testing.T) {
			resp, m := f.do(clients[tc.user], tc.method, tc.path, tc.body)
			if resp.StatusCode != http.StatusForbidden || m["pledgeRequired"] != true || !strings.Contains(fmt.Sprint(m["error"]), "pledge") {
				t.Errorf("%d %v, want 403 with pledgeRequired", resp.StatusCode, m)
			}
		})
	}

	// What a login may do before the pledge.
	resp, m := f.do(clients["nurse"], "GET", "/api/session", "")
	version, _ := m["pledgeVersion"].(string)
	if resp.StatusCode != http.StatusOK || m["pledgeAccepted"] != false || m["pledge"] != auth.DefaultPledge || version != auth.PledgeVersion(auth.DefaultPledge) {
		t.Fatalf("session before the pledge: %d %v", resp.StatusCode, m)
	}
	for _, path := range []string{"/api/banner", "/", "/admin", "/static/viewer.js"} {
		if resp, _ := f.do(clients["nurse"], "GET", path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s before the pledge: %d, want 200", path, resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"version":"` + strings.Repeat("0", 64) + `"}`, http.StatusConflict},
		{`{"version":"v1"}`, http.StatusBadRequest},
		{`{"version":"` + version + `","agreed":true}`, http.StatusBadRequest},
	} {
		if resp, m := f.do(clients["nurse"], "POST", "/api/pledge", tc.body); resp.StatusCode != tc.status {
			t.Errorf("pledge %s: %d %v, want %d", tc.body, resp.StatusCode, m, tc.status)
		}
	}
	if resp, m := f.do(clients["nurse"], "GET", "/api/transfers", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a refused acceptance opened the API: %d %v", resp.StatusCode, m)
	}

	// Accepted: the same requests pass the door, and nothing refused
	// earlier happened.
	for _, c := range clients {
		f.acceptPledge(c)
	}
	if resp, m := f.do(clients["nurse"], "GET", "/api/session", ""); resp.StatusCode != http.StatusOK || m["pledgeAccepted"] != true {
		t.Errorf("session after the pledge: %d %v", resp.StatusCode, m)
	}
	for _, tc := range []struct{ user, path string }{
		{"nurse", "/api/site-requests/mine"}, {"nurse", "/api/transfers"}, {"admin1", "/api/admin/settings"},
		{"boss", "/api/approvals/transfers"}, {"eye", "/api/audit/status"},
	} {
		if resp, m := f.do(clients[tc.user], "GET", tc.path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s GET %s after the pledge: %d %v", tc.user, tc.path, resp.StatusCode, m)
		}
	}
	if resp, m := f.do(clients["nurse"], "POST", "/api/site-requests", `{"host":"example.jp","reason":"drug information"}`); resp.StatusCode/100 != 2 {
		t.Errorf("site request after the pledge: %d %v", resp.StatusCode, m)
	}
	var mine []map[string]any
	resp, err = clients["nurse"].Get(f.ts.URL + "/api/site-requests/mine")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&mine)
	resp.Body.Close()
	if len(mine) != 1 {
		t.Errorf("site requests after one refused and one accepted: %v, want one", mine)
	}
	if _, m := f.do(f.client(), "GET", "/api/banner", ""); m["banner"] == "changed by a raw client" {
		t.Error("a refused settings change was applied")
	}
	ws, _, err := f.dialStream(clients["nurse"])
	if err != nil {
		t.Fatalf("stream after the pledge: %v", err)
	}
	ws.Close()

	// The acceptance is recorded with the version of the text.
	waitAudit(t, f, func(e audit.Event) bool {
		return e.Type == audit.TypeUserChange && e.What == "pledge" && e.Target == "nurse" && e.After == "accepted "+version
	})

	// Logging out needs no pledge either.
	fresh := f.loginOnly("nurse")
	if err := f.srv.store.UpdateUser("nurse", func(u *auth.User) error { u.PledgeVersion = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if resp, m := f.do(fresh, "POST", "/api/logout", `{}`); resp.StatusCode != http.StatusOK {
		t.Errorf("logout before the pledge: %d %v", resp.StatusCode, m)
	}
}

// TestSettingsRecordedBeforeSaved: the banner and the pledge change only
// after their record is durable; with the trail closed the change is
// refused and nothing changes.
func TestSettingsRecordedBeforeSaved(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	admin := f.login("admin1")
	_, was := f.do(f.client(), "GET", "/api/banner", "")
	if err := f.srv.audit.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, m := f.do(admin, "PUT", "/api/admin/settings", `{"banner":"unrecorded","pledge":"unrecorded"}`); resp.StatusCode == http.StatusOK {
		t.Errorf("settings changed with the trail closed: %d %v", resp.StatusCode, m)
	}
	if _, m := f.do(f.client(), "GET", "/api/banner", ""); m["banner"] != was["banner"] {
		t.Errorf("banner after a refused change = %v, want %v", m["banner"], was["banner"])
	}
	if text, ok, err := f.srv.store.Setting(auth.SettingPledge); err != nil || ok && text == "unrecorded" {
		t.Errorf("the pledge changed without its record: %q, %v, %v", text, ok, err)
	}
}

// TestPledgeChangeAsksAgain: when an admin changes the pledge text, every
// user must accept the new text at their next request, a running viewer is
// disconnected (its session and browser go on), and accepting the old text
// is refused with 409 (NOTICE-3).
func TestPledgeChangeAsksAgain(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("nurse", auth.Clinician)
	f.addUser("admin1", auth.Admin)
	nurse, admin := f.login("nurse"), f.login("admin1")
	_, m := f.do(nurse, "GET", "/api/session", "")
	oldVersion, _ := m["pledgeVersion"].(string)

	ws, _, err := f.dialStream(nurse)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)); err != nil {
		t.Fatal(err)
	}
	readStreamUntil(t, ws, func(m map[string]any) bool { return m["type"] == "ready" })

	const newPledge = "I will not enter patient identifiers into Internet sites. (2026 revision)"
	if resp, m := f.do(admin, "PUT", "/api/admin/settings", `{"banner":"","pledge":"`+newPledge+`"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("change the pledge: %d %v", resp.StatusCode, m)
	}
	// The running viewer is told to reconnect...
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
	}
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseTryAgainLater || !strings.Contains(ce.Text, "pledge") {
		t.Errorf("viewer after the pledge changed: %v, want close 1013 naming the pledge", err)
	}
	// ...and its session and browser go on.
	if s, ok := f.srv.Sessions().Get("nurse"); !ok {
		t.Error("the pledge change ended the session")
	} else if st, _ := s.State(); st != session.StateLive {
		t.Errorf("session state after the pledge changed: %s, want live", st)
	}

	// Everyone, the admin who changed it included, must accept the new text.
	for name, c := range map[string]*http.Client{"nurse": nurse, "admin1": admin} {
		if resp, m := f.do(c, "GET", "/api/transfers", ""); resp.StatusCode != http.StatusForbidden || m["pledgeRequired"] != true {
			t.Errorf("%s after the pledge changed: %d %v, want 403 pledgeRequired", name, resp.StatusCode, m)
		}
	}
	_, resp, err := f.dialStream(nurse)
	wantPledgeRefusal(t, "stream after the pledge changed", resp, err)
	_, m = f.do(nurse, "GET", "/api/session", "")
	newVersion, _ := m["pledgeVersion"].(string)
	if m["pledgeAccepted"] != false || m["pledge"] != newPledge || newVersion != auth.PledgeVersion(newPledge) || newVersion == oldVersion {
		t.Errorf("session after the pledge changed: %v", m)
	}
	// The text the viewer showed before is no longer the one in force.
	if resp, m := f.do(nurse, "POST", "/api/pledge", `{"version":"`+oldVersion+`"}`); resp.StatusCode != http.StatusConflict || !strings.Contains(fmt.Sprint(m["error"]), "changed") {
		t.Errorf("accepting the old text: %d %v, want 409", resp.StatusCode, m)
	}
	f.acceptPledge(nurse)
	if resp, m := f.do(nurse, "GET", "/api/transfers", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("after accepting the new text: %d %v", resp.StatusCode, m)
	}
	ws2, _, err := f.dialStream(nurse)
	if err != nil {
		t.Fatalf("stream after accepting the new text: %v", err)
	}
	ws2.Close()
	if n := len(f.l.Browsers()); n != 1 {
		t.Errorf("%d browsers were started, want the one session's", n)
	}
	if resp, _ := f.do(admin, "GET", "/api/admin/settings", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the admin who changed the pledge was not asked to accept it: %d", resp.StatusCode)
	}
}

// TestPledgeAcceptedBeforeVersions: an acceptance stored before pledge
// versions were recorded (a time and no version) must be renewed once.
func TestPledgeAcceptedBeforeVersions(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("veteran", auth.Clinician)
	if err := f.srv.store.UpdateUser("veteran", func(u *auth.User) error {
		u.PledgeAcceptedAt = time.Now().Add(-24 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := f.loginOnly("veteran")
	if resp, m := f.do(c, "GET", "/api/session", ""); resp.StatusCode != http.StatusOK || m["pledgeAccepted"] != false {
		t.Errorf("session of an unversioned acceptance: %d %v, want pledgeAccepted false", resp.StatusCode, m)
	}
	if resp, m := f.do(c, "GET", "/api/transfers", ""); resp.StatusCode != http.StatusForbidden || m["pledgeRequired"] != true {
		t.Errorf("API with an unversioned acceptance: %d %v, want 403", resp.StatusCode, m)
	}
	f.acceptPledge(c)
	if resp, m := f.do(c, "GET", "/api/transfers", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("after accepting again: %d %v", resp.StatusCode, m)
	}
}

// readStreamUntil reads the stream's text messages until match is true.
func readStreamUntil(t *testing.T, ws *websocket.Conn, match func(map[string]any) bool) {
	t.Helper()
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		var m map[string]any
		if typ == websocket.TextMessage && json.Unmarshal(data, &m) == nil && match(m) {
			return
		}
	}
}

// waitAudit polls the broker's audit trail until a record matches.
func waitAudit(t *testing.T, f *apiFixture, match func(audit.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for e, err := range audit.Scan(filepath.Join(f.srv.cfg.Data, "audit"), audit.Filter{}) {
			if err == nil && match(e) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no matching audit record")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExpiredCookie checks that a token past its expiry opens nothing, and
// that an active session renews its cookie before then.
func TestExpiredCookie(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := newAPIWithClock(t, nil, clock)
	f.addUser("erin", auth.Clinician)
	c := f.login("erin")
	cookie := func() string {
		for _, ck := range c.Jar.Cookies(mustURL(t, f.ts.URL)) {
			if ck.Name == api.CookieName {
				return ck.Value
			}
		}
		return ""
	}
	first := cookie()

	// Past half its life, an API call renews the cookie.
	advance(10 * time.Minute)
	if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != 200 {
		t.Fatalf("session at 10 min: %d", resp.StatusCode)
	}
	if cookie() == first {
		t.Error("cookie not renewed past half its life")
	}

	// The first token, now expired, is refused at the WebSocket door.
	advance(6 * time.Minute)
	h := http.Header{"Cookie": {api.CookieName + "=" + first}, "Origin": {f.srv.cfg.Origin()}}
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.ts.URL, "http")+"/api/stream", h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token at the stream: err %v, resp %v; want 401", err, resp)
	}
	// The renewed one still works.
	if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != 200 {
		t.Errorf("renewed cookie refused: %d", resp.StatusCode)
	}
	// Left alone for longer than a token lives, the session is over.
	advance(20 * time.Minute)
	if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("idle cookie after 20 min: %d, want 401", resp.StatusCode)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	f := newAPI(t, func(c *Config) { c.MaxSessions = 1 })
	if resp, _ := f.do(f.client(), "GET", "/readyz", ""); resp.StatusCode != 200 {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
	if _, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "u1", Role: "clinician"}, testViewport); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(f.client(), "GET", "/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz on a full node: %d", resp.StatusCode)
	}
	resp, err := http.Get(f.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "shoji_sessions_active 1") {
		t.Errorf("metrics:\n%s", body)
	}
}

func TestTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	cfg := DefaultConfig()
	cfg.Data = filepath.Join(dir, "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey = cert, key
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: io.Discard, Launcher: &isolationtest.Launcher{}})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dial := func(c *tls.Config) error {
		c.InsecureSkipVerify = true
		var conn *tls.Conn
		var err error
		for range 100 { // the server may still be starting
			conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr.String(), c)
			if err == nil || !strings.Contains(err.Error(), "refused") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3 refused: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Error("a CBC suite accepted on TLS 1.2")
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err != nil {
		t.Errorf("TLS 1.2 AEAD refused: %v", err)
	}
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoji.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"shoji.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

var testViewport = isolation.Viewport{Width: 800, Height: 600, DPR: 1}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
