package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/auth"
)

// skipPledge logs a clinician in with a raw HTTP client that never accepts
// the usage pledge, as a script that skips the viewer would, and tries the
// stream and a site request: the broker refuses both with the pledge's 403
// and starts no browser. Once the same client accepts the pledge, the
// stream opens: the refusals were the pledge's, nothing else (issue 9).
func skipPledge(t *testing.T, b *brokerUnderTest) {
	t.Helper()
	const user = "pledge-skipper"
	if err := b.srv.Auth().AddUser(user, auth.Clinician, staffPassword); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Post(b.url+"/api/login", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+staffPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", resp.Status)
	}
	dial := func() (*websocket.Conn, *http.Response, error) {
		h := http.Header{"Origin": {b.url}}
		for _, ck := range jar.Cookies(resp.Request.URL) {
			h.Add("Cookie", ck.Name+"="+ck.Value)
		}
		return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(b.url, "http")+"/api/stream", h)
	}
	wantPledge := func(what string, resp *http.Response) {
		t.Helper()
		if resp == nil {
			t.Fatalf("%s: no answer", what)
		}
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		if resp.StatusCode != http.StatusForbidden || m["pledgeRequired"] != true {
			t.Errorf("%s without the pledge: %d %s; want 403 pledgeRequired", what, resp.StatusCode, raw)
		}
	}

	ws, wsResp, err := dial()
	if err == nil {
		ws.Close()
		t.Fatal("the stream opened without the pledge")
	}
	wantPledge("the stream", wsResp)
	req, _ := http.NewRequest("POST", b.url+"/api/site-requests", strings.NewReader(`{"url":"https://guidelines.example.jp/","reason":"guideline","pledgeAccepted":false}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.url)
	sr, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantPledge("a site request", sr)
	sr.Body.Close()
	if _, ok := b.srv.Sessions().Get(user); ok {
		t.Error("a browser was started for a login that never accepted the pledge")
	}

	accept, err := c.Post(b.url+"/api/pledge", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	accept.Body.Close()
	if accept.StatusCode != http.StatusOK {
		t.Fatalf("accept the pledge: %s", accept.Status)
	}
	ws, wsResp, err = dial()
	if err != nil {
		t.Fatalf("the stream after the pledge: %v (%v)", err, wsResp)
	}
	ws.Close()
}
