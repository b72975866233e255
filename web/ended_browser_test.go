package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// TestViewerSessionEnds runs the viewer page against a stand-in stream that
// ends the session for each reason (docs/protocol.md, How a session ends):
// after shutdown the viewer reconnects to a new browser; after replaced it
// offers to take the session back; after logout (and idle, lifetime, admin)
// it shows the login form with the reason.
func TestViewerSessionEnds(t *testing.T) {
	fs := newFakeStream(t, jpegFrame(t, colorOf(0), 900, 560))
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.Handle("/", Handler())
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"user": "dr.test", "role": "clinician", "pledgeAccepted": true})
	})
	mux.HandleFunc("GET /api/transfers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, []any{}) })
	mux.HandleFunc("GET /api/destinations", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, []any{}) })
	mux.Handle("/api/stream", fs)
	ts := httptest.NewServer(withCSP(mux))
	t.Cleanup(func() {
		close(fs.done)
		ts.Close()
		fs.wg.Wait()
	})
	ctx := newBrowser(t, 1000, 700)
	do(t, ctx, chromedp.Navigate(ts.URL+"/"))
	const live = `document.body.dataset.state === 'live' && !document.getElementById('viewer').hidden`
	waitJS(t, ctx, "a live session", live)
	isHello := func(m map[string]any) bool { return m["type"] == "hello" }
	end := func(reason string) {
		fs.drain()
		fs.write(wsMessage{websocket.TextMessage, []byte(`{"type":"status","state":"ended","reason":"` + reason + `","message":"server says ` + reason + `"}`)})
		fs.write(wsMessage{websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "session ended: "+reason)})
	}

	t.Run("shutdown reconnects", func(t *testing.T) {
		end("shutdown")
		fs.next("a new hello after the restart", isHello)
		waitJS(t, ctx, "the viewer live again", live)
		if txt := evalJS[string](t, ctx, `document.getElementById('toast').textContent`); txt == "" {
			t.Error("the viewer did not say that the service restarted")
		}
	})

	t.Run("replaced offers to take it back", func(t *testing.T) {
		end("replaced")
		waitJS(t, ctx, "the overlay", `!document.getElementById('overlay').hidden && document.body.dataset.state === 'ended'`)
		if got := evalJS[string](t, ctx, `document.getElementById('again').textContent`); got != "ここで再開 Start again here" {
			t.Errorf("the overlay's button says %q", got)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`#again`)))
		fs.next("a hello after Start again here", isHello)
		waitJS(t, ctx, "the viewer live again", live)
	})

	for _, tc := range []struct{ reason, says string }{
		{"logout", "logged out"},
		{"idle", "idle"},
		{"lifetime", "maximum duration"},
		{"admin", "administrator"},
	} {
		t.Run(tc.reason+" shows the login form", func(t *testing.T) {
			end(tc.reason)
			waitJS(t, ctx, "the login form", `document.querySelector('form#login').offsetParent !== null && document.body.dataset.state === 'ended'`)
			if txt := evalJS[string](t, ctx, `document.getElementById('login-error').textContent`); !strings.Contains(strings.ToLower(txt), tc.says) {
				t.Errorf("the login form says %q, want it to say %q", txt, tc.says)
			}
			// The stand-in's login never ends: reloading starts over.
			do(t, ctx, chromedp.Navigate(ts.URL+"/"))
			fs.next("a hello after the next login", isHello)
			waitJS(t, ctx, "the viewer live again", live)
		})
	}
}
