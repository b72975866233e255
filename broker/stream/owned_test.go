package stream

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// stallingLauncher launches isolationtest browsers whose KeyFrame call
// waits until its context ends.
type stallingLauncher struct {
	isolationtest.Launcher
	// entered gets one value when a KeyFrame call starts waiting.
	entered chan struct{}
	// returned is closed when a KeyFrame call returns.
	returned chan struct{}
	// handlerDone is closed when the viewer's handler returned; release
	// is closed when the test ends.
	handlerDone, release chan struct{}
}

func (l *stallingLauncher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	b, err := l.Launcher.Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &stallingBrowser{Browser: b.(*isolationtest.Browser), l: l}, nil
}

type stallingBrowser struct {
	*isolationtest.Browser
	l *stallingLauncher
}

// KeyFrame waits for ctx to end. Then, should the handler return while
// the call is still running (nothing waits for it), the call stays until
// the test ends; a handler that waits for it gets it back at once, or
// after a grace period in which a handler that does not wait returns.
func (b *stallingBrowser) KeyFrame(ctx context.Context) error {
	defer close(b.l.returned)
	b.l.entered <- struct{}{}
	<-ctx.Done()
	select {
	case <-b.l.handlerDone:
		<-b.l.release
	case <-time.After(100 * time.Millisecond):
	}
	return ctx.Err()
}

// TestHandlerWaitsForItsGoroutines: a viewer's handler returns only after
// the browser calls its connection started have returned, so nothing the
// connection started outlives it.
func TestHandlerWaitsForItsGoroutines(t *testing.T) {
	l := &stallingLauncher{entered: make(chan struct{}, 1), returned: make(chan struct{}),
		handlerDone: make(chan struct{}), release: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Second, Logger: log}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(l.handlerDone)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(l.release)
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	hdr := http.Header{"X-Test-User": {"alice"}, "Origin": {"http://viewer.test"}}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), hdr)
	if err != nil {
		t.Fatal(err)
	}
	write(t, c, `{"type":"hello","version":1,"width":800,"height":600,"dpr":1}`)
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "ready" })
	<-l.entered // the connection's key frame call is under way
	c.Close()
	<-l.handlerDone
	select {
	case <-l.returned:
	default:
		t.Fatal("the handler returned while a browser call its connection started was still running")
	}
}
