package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

// viewerConn is a viewer's stream, driven as a raw WebSocket client.
type viewerConn struct {
	t  *testing.T
	ws *websocket.Conn
}

// cookieHeader is the session cookie c sends to the fixture's server.
func (f *apiFixture) cookieHeader(c *http.Client) string {
	f.t.Helper()
	for _, ck := range c.Jar.Cookies(mustURL(f.t, f.ts.URL)) {
		if ck.Name == api.CookieName {
			return ck.Name + "=" + ck.Value
		}
	}
	f.t.Fatal("the client has no session cookie")
	return ""
}

// dialStreamCookie opens the viewer stream with the session cookie; resp is the
// refused upgrade's response.
func (f *apiFixture) dialStreamCookie(cookie string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{"Origin": {f.srv.cfg.Origin()}, "Cookie": {cookie}}
	return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.ts.URL, "http")+"/api/stream", h)
}

// openViewer connects a viewer for the client's login and waits until its
// session is ready.
func (f *apiFixture) openViewer(c *http.Client) *viewerConn {
	f.t.Helper()
	ws, resp, err := f.dialStreamCookie(f.cookieHeader(c))
	if err != nil {
		f.t.Fatalf("open the stream: %v (%v)", err, resp)
	}
	f.t.Cleanup(func() { ws.Close() })
	v := &viewerConn{t: f.t, ws: ws}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "version": 1, "width": 800, "height": 600, "dpr": 1}); err != nil {
		f.t.Fatal(err)
	}
	v.waitFor("ready", func(map[string]any) bool { return true })
	return v
}

// waitFor reads messages until a JSON message of the type that ok accepts,
// and returns it. Frames and other messages are skipped.
func (v *viewerConn) waitFor(typ string, ok func(map[string]any) bool) map[string]any {
	v.t.Helper()
	_ = v.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		kind, data, err := v.ws.ReadMessage()
		if err != nil {
			v.t.Fatalf("waiting for a %s message: %v", typ, err)
		}
		if kind != websocket.TextMessage {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			v.t.Fatalf("bad JSON from the stream: %q", data)
		}
		if m["type"] == typ && ok(m) {
			return m
		}
	}
}

// waitEnded waits for the status that ends the viewer and returns its
// reason.
func (v *viewerConn) waitEnded() string {
	v.t.Helper()
	m := v.waitFor("status", func(m map[string]any) bool { return m["state"] == string(session.StateEnded) })
	r, _ := m["reason"].(string)
	return r
}

// auditEvents returns the trail's events that pass filter, after every
// record handed to the sink so far is on disk.
func (f *apiFixture) auditEvents(filter audit.Filter) []audit.Event {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The sink writes in order: once this is durable, so is everything
	// recorded before it.
	if _, err := f.srv.audit.Commit(ctx, audit.Maintenance(time.Now(), audit.Actor{User: "test"}, "barrier", "")); err != nil {
		f.t.Fatal(err)
	}
	var out []audit.Event
	for e, err := range audit.Scan(filepath.Join(f.srv.cfg.Data, "audit"), filter) {
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// loginIDs returns the IDs of the user's logins, from their login records.
func (f *apiFixture) loginIDs(user string) []string {
	var ids []string
	for _, e := range f.auditEvents(audit.Filter{User: user, Type: audit.TypeLogin}) {
		ids = append(ids, e.Session)
	}
	slices.Sort(ids)
	return ids
}

// TestSessionEndEndsEveryLogin: when a user's browser ends for logout,
// idle, lifetime or an administrator, every login of that user ends with
// it: the other terminal's viewer is told, its cookie opens neither the
// API nor the stream, and each login has one logout record with the cause.
func TestSessionEndEndsEveryLogin(t *testing.T) {
	for _, tc := range []struct {
		cause session.Reason
		mod   func(*Config)
		end   func(f *apiFixture, here *http.Client)
	}{
		{session.ReasonLogout, nil, func(f *apiFixture, here *http.Client) {
			if resp, m := f.do(here, "POST", "/api/logout", `{}`); resp.StatusCode != 200 {
				t.Fatalf("logout: %d %v", resp.StatusCode, m)
			}
		}},
		{session.ReasonIdle, func(c *Config) { c.IdleTimeout = Duration(300 * time.Millisecond) }, func(*apiFixture, *http.Client) {}},
		{session.ReasonLifetime, nil, func(f *apiFixture, _ *http.Client) {
			// The lifetime timer itself is broker/session's test.
			s, ok := f.srv.Sessions().Get("bob")
			if !ok {
				t.Fatal("bob has no session")
			}
			s.End(session.ReasonLifetime)
		}},
		{session.ReasonAdmin, nil, func(f *apiFixture, _ *http.Client) {
			if resp, m := f.do(f.login("boss"), "DELETE", "/api/admin/sessions/bob", ""); resp.StatusCode != 200 {
				t.Fatalf("admin ends the session: %d %v", resp.StatusCode, m)
			}
		}},
	} {
		t.Run(string(tc.cause), func(t *testing.T) {
			f := newAPI(t, tc.mod)
			f.addUser("bob", auth.Clinician)
			f.addUser("boss", auth.Admin)
			f.addUser("carol", auth.Clinician)
			here, there := f.login("bob"), f.login("bob") // two terminals
			carol := f.login("carol")
			for _, c := range []*http.Client{here, carol} {
				if resp, _ := f.do(c, "POST", "/api/pledge", `{}`); resp.StatusCode != 200 {
					t.Fatalf("pledge: %d", resp.StatusCode)
				}
			}
			thereCookie := f.cookieHeader(there)
			viewer := f.openViewer(there)

			tc.end(f, here)
			if got := viewer.waitEnded(); got != string(tc.cause) {
				t.Errorf("the other terminal's viewer was told %q, want %q", got, tc.cause)
			}
			for name, c := range map[string]*http.Client{"this terminal": here, "the other terminal": there} {
				if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("/api/session at %s: %d, want 401", name, resp.StatusCode)
				}
			}
			if _, resp, err := f.dialStreamCookie(thereCookie); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/api/stream with the other terminal's cookie: %v, %v; want 401", err, resp)
			}
			if resp, _ := f.do(carol, "GET", "/api/session", ""); resp.StatusCode != 200 {
				t.Errorf("another user's login ended: %d", resp.StatusCode)
			}

			logouts := f.auditEvents(audit.Filter{User: "bob", Type: audit.TypeLogout})
			var ended []string
			for _, e := range logouts {
				ended = append(ended, e.Session)
				if e.Reason != string(tc.cause) || e.Role != "clinician" || e.Terminal == "" {
					t.Errorf("logout record %+v: want reason %s, role and terminal", e, tc.cause)
				}
			}
			slices.Sort(ended)
			if want := f.loginIDs("bob"); !slices.Equal(ended, want) {
				t.Errorf("logout records for logins %v, want one for each of %v", ended, want)
			}
			ends := f.auditEvents(audit.Filter{User: "bob", Type: audit.TypeSessionEnd})
			if len(ends) != 1 || ends[0].Reason != string(tc.cause) {
				t.Errorf("session_end records %+v, want one with reason %s", ends, tc.cause)
			}
		})
	}
}

// TestShutdownKeepsLogins: a broker that stops tells the viewer `ended`
// with `shutdown` and ends no login; after the restart the same cookie
// gets a new browser.
func TestShutdownKeepsLogins(t *testing.T) {
	dir := t.TempDir()
	first := newAPI(t, func(c *Config) { c.Data = dir })
	first.addUser("bob", auth.Clinician)
	c := first.login("bob")
	if resp, _ := first.do(c, "POST", "/api/pledge", `{}`); resp.StatusCode != 200 {
		t.Fatalf("pledge: %d", resp.StatusCode)
	}
	cookie := first.cookieHeader(c)
	v := first.openViewer(c)
	old := first.l.Last()

	first.ts.Close()
	if err := first.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := v.waitEnded(); got != string(session.ReasonShutdown) {
		t.Errorf("viewer told %q, want shutdown", got)
	}
	if !old.Closed() {
		t.Error("the browser outlived the broker")
	}

	second := newAPI(t, func(c *Config) { c.Data = dir })
	again := second.client()
	again.Jar.SetCookies(mustURL(t, second.ts.URL), []*http.Cookie{{Name: api.CookieName, Value: strings.TrimPrefix(cookie, api.CookieName+"=")}})
	if resp, m := second.do(again, "GET", "/api/session", ""); resp.StatusCode != 200 || m["user"] != "bob" {
		t.Fatalf("the login after a restart: %d %v, want 200", resp.StatusCode, m)
	}
	second.openViewer(again)
	if n := len(second.l.Browsers()); n != 1 {
		t.Errorf("%d browsers after the reconnect, want a new one", n)
	}
	if logouts := second.auditEvents(audit.Filter{Type: audit.TypeLogout}); len(logouts) != 0 {
		t.Errorf("a shutdown recorded logouts: %+v", logouts)
	}
}

// TestReplacedViewerKeepsLogin: a second viewer of the same user ends
// only the first viewer; the session and both logins go on.
func TestReplacedViewerKeepsLogin(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("bob", auth.Clinician)
	here, there := f.login("bob"), f.login("bob")
	if resp, _ := f.do(here, "POST", "/api/pledge", `{}`); resp.StatusCode != 200 {
		t.Fatalf("pledge: %d", resp.StatusCode)
	}
	first := f.openViewer(here)
	f.openViewer(there)
	if got := first.waitEnded(); got != string(session.ReasonReplaced) {
		t.Errorf("first viewer told %q, want replaced", got)
	}
	for _, c := range []*http.Client{here, there} {
		if resp, _ := f.do(c, "GET", "/api/session", ""); resp.StatusCode != 200 {
			t.Errorf("a replaced viewer ended a login: %d", resp.StatusCode)
		}
	}
	if n := len(f.l.Browsers()); n != 1 || f.l.Last().Closed() {
		t.Errorf("%d browsers, last closed %v; want the one browser running", n, f.l.Last().Closed())
	}
}

// TestStreamRefusesLoginEndedWhileConnecting: a viewer whose login ends
// after its upgrade and before its hello gets no browser: the stream closes
// asking for a new login.
func TestStreamRefusesLoginEndedWhileConnecting(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("bob", auth.Clinician)
	c := f.login("bob")
	if resp, _ := f.do(c, "POST", "/api/pledge", `{}`); resp.StatusCode != 200 {
		t.Fatalf("pledge: %d", resp.StatusCode)
	}
	ws, resp, err := f.dialStreamCookie(f.cookieHeader(c))
	if err != nil {
		t.Fatalf("open the stream: %v (%v)", err, resp)
	}
	defer ws.Close()
	if _, err := f.srv.Auth().EndLogins("bob", auth.EndAdmin); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "version": 1, "width": 800, "height": 600, "dpr": 1}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || !strings.Contains(ce.Text, "log in again") {
			t.Errorf("stream ended with %v, want a close asking to log in again", err)
		}
		break
	}
	if n := len(f.l.Browsers()); n != 0 {
		t.Errorf("%d browsers started for an ended login", n)
	}
}
