package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// wirePage opens a WebSocket to its server, sends a string and 10 bytes,
// and draws once on a canvas in the document; its server sends "héllo" (6
// bytes of UTF-8) and 1000 bytes. protoOK holds whether the socket is a
// real WebSocket whose prototype has WebSocket's own properties, as noVNC
// checks.
const wirePage = `<!doctype html><html><body><canvas id="c" width="50" height="50"></canvas><script>
const ws = new WebSocket('ws://' + location.host + '/ws');
ws.binaryType = 'arraybuffer';
window.protoOK = ws instanceof WebSocket && Object.getOwnPropertyNames(Object.getPrototypeOf(ws)).includes('binaryType') &&
  WebSocket.OPEN === 1;
ws.onopen = () => { ws.send('ping'); ws.send(new Uint8Array(10)); };
document.getElementById('c').getContext('2d').fillRect(0, 0, 10, 10);
</script></body></html>`

// TestTerminalCountsWebSocket runs a terminal browser on wirePage and
// checks that wireJS counted the payloads both ways, the canvas update,
// and left the page a WebSocket noVNC accepts.
func TestTerminalCountsWebSocket(t *testing.T) {
	chromium := "/usr/lib/chromium/chromium"
	if p := os.Getenv("SHOJI_CHROMIUM"); p != "" {
		chromium = p
	}
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("Chromium not found at %s (SHOJI_REQUIRE_DEPS=1): %v", chromium, err)
		}
		t.Skipf("Chromium not found at %s", chromium)
	}
	got := make(chan int, 2) // sizes of what the server received
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			_, _ = w.Write([]byte(wirePage))
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("héllo"))
		_ = c.WriteMessage(websocket.BinaryMessage, make([]byte, 1000))
		for range 2 {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- len(b)
		}
		_, _, _ = c.ReadMessage() // until the browser goes
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	term, err := startTerminal(ctx, "test terminal", chromium, 400, 300)
	if err != nil {
		t.Fatal(err)
	}
	defer term.close()
	if err := term.do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("the server did not receive the page's two messages")
		}
	}
	if err := term.waitJS(ctx, "both messages and a canvas update", `window.__shojiWire.rxMsgs === 2 && window.__shojiWire.paints > 0`); err != nil {
		t.Fatal(err)
	}
	w, err := term.wire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.RX != 1006 || w.RXMsgs != 2 || w.TX != 14 || w.TXMsgs != 2 || w.Paints < 1 {
		t.Errorf("wire = %+v, want rx 1006 in 2 messages, tx 14 in 2, at least 1 paint", w)
	}
	if ok, err := evalIn[bool](ctx, term, `window.protoOK`); err != nil || !ok {
		t.Errorf("the page's socket is not a plain WebSocket (noVNC refuses it): %v, %v", ok, err)
	}
}
