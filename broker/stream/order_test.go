package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// overlapLauncher launches isolationtest browsers that count input calls
// made while another is still running.
type overlapLauncher struct {
	isolationtest.Launcher
	last atomic.Pointer[overlapBrowser]
}

func (l *overlapLauncher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	b, err := l.Launcher.Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	ob := &overlapBrowser{Browser: b.(*isolationtest.Browser)}
	l.last.Store(ob)
	return ob, nil
}

// overlapBrowser is an isolationtest.Browser whose input calls yield the
// processor while they run, so that calls made concurrently would overlap
// and be recorded out of order, and count when they did overlap.
type overlapBrowser struct {
	*isolationtest.Browser
	running, overlaps atomic.Int32
}

func (b *overlapBrowser) call(fn func() error) error {
	if b.running.Add(1) > 1 {
		b.overlaps.Add(1)
	}
	defer b.running.Add(-1)
	for range 3 {
		runtime.Gosched()
	}
	return fn()
}

func (b *overlapBrowser) Mouse(ctx context.Context, ev isolation.MouseEvent) error {
	return b.call(func() error { return b.Browser.Mouse(ctx, ev) })
}

func (b *overlapBrowser) Wheel(ctx context.Context, ev isolation.WheelEvent) error {
	return b.call(func() error { return b.Browser.Wheel(ctx, ev) })
}

func (b *overlapBrowser) Key(ctx context.Context, ev isolation.KeyEvent) error {
	return b.call(func() error { return b.Browser.Key(ctx, ev) })
}

func (b *overlapBrowser) InsertText(ctx context.Context, text string) error {
	return b.call(func() error { return b.Browser.InsertText(ctx, text) })
}

// TestInputKeepsTheViewersOrder sends many interleaved mouse, key, wheel
// and IME messages as fast as the socket takes them: they reach the
// browser in the order the viewer sent them, one call at a time.
func TestInputKeepsTheViewersOrder(t *testing.T) {
	l := &overlapLauncher{}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Second, Logger: log})
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	f := &fixture{srv: srv, m: m}
	c := f.connect(t, "alice")

	// Fewer than inputBacklog, so a slow run never fills the queue.
	const n = 200
	var want []isolationtest.Call
	var batch []string
	for i := range n {
		x, y := float64(i%800), float64(i%600)
		switch i % 5 {
		case 0:
			batch = append(batch, fmt.Sprintf(`{"type":"mouse","action":"move","x":%g,"y":%g,"button":"none"}`, x, y))
			want = append(want, isolationtest.Call{Method: "Mouse", Arg: isolation.MouseEvent{Action: "move", X: x, Y: y, Button: "none"}})
		case 1:
			batch = append(batch, fmt.Sprintf(`{"type":"key","action":"down","key":"a","code":"KeyA","keyCode":65,"mods":%d}`, i%16))
			want = append(want, isolationtest.Call{Method: "Key", Arg: isolation.KeyEvent{Action: "down", Key: "a", Code: "KeyA", KeyCode: 65, Modifiers: i % 16}})
		case 2:
			batch = append(batch, fmt.Sprintf(`{"type":"mouse","action":"down","x":%g,"y":%g,"button":"left","buttons":1,"clicks":1}`, x, y))
			want = append(want, isolationtest.Call{Method: "Mouse", Arg: isolation.MouseEvent{Action: "down", X: x, Y: y, Button: "left", Buttons: 1, ClickCount: 1}})
		case 3:
			batch = append(batch, fmt.Sprintf(`{"type":"wheel","x":%g,"y":%g,"dx":0,"dy":%d}`, x, y, i))
			want = append(want, isolationtest.Call{Method: "Wheel", Arg: isolation.WheelEvent{X: x, Y: y, DeltaY: float64(i)}})
		case 4:
			text := fmt.Sprintf("入力%d", i)
			batch = append(batch, fmt.Sprintf(`{"type":"ime","action":"commit","text":%q}`, text))
			want = append(want, isolationtest.Call{Method: "InsertText", Arg: text})
		}
	}
	for _, msg := range batch {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}

	b := l.last.Load()
	input := func() []isolationtest.Call {
		var got []isolationtest.Call
		for _, call := range b.Calls() {
			switch call.Method {
			case "Mouse", "Key", "Wheel", "InsertText":
				got = append(got, call)
			}
		}
		return got
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(input()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d input events reached the browser", len(input()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := cmp.Diff(want, input()); d != "" {
		t.Errorf("input reached the browser out of the viewer's order (-sent +received):\n%s", d)
	}
	if o := b.overlaps.Load(); o != 0 {
		t.Errorf("%d input calls were made while another was running, want one at a time", o)
	}
}
