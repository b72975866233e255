package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// jpegOf is a stand-in for a screencast JPEG named name: a JPEG's first
// two bytes, then the name and padding to size bytes.
func jpegOf(name string, size int) []byte {
	b := append([]byte{0xFF, 0xD8}, name...)
	if len(b) < size {
		b = append(b, bytes.Repeat([]byte{'.'}, size-len(b))...)
	}
	return b
}

// nameOf is the name jpegOf put in a stand-in JPEG.
func nameOf(b []byte) string {
	return string(bytes.TrimRight(b[2:], "."))
}

// fakeDelta is a DeltaEncoder for tests: it records the pairs it compares,
// by name, and answers with answer; shifted comparisons are recorded as
// "prev⇒cur shift" and answered by shifted (nil: full).
type fakeDelta struct {
	mu      sync.Mutex
	calls   []string
	answer  func(prev, cur string) ([]protocol.Tile, bool, error)
	shifted func(prev, cur string, shift image.Point) ([]protocol.Tile, bool, error)
}

func (d *fakeDelta) DeltaShifted(prev, cur *isolation.Frame, shift image.Point, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	p, c := nameOf(prev.JPEG), nameOf(cur.JPEG)
	call := fmt.Sprintf("%s⇒%s %v", p, c, shift)
	if len(also) > 0 {
		call += fmt.Sprintf("+%v", also)
	}
	d.mu.Lock()
	d.calls = append(d.calls, call)
	d.mu.Unlock()
	if d.shifted == nil {
		return nil, true, nil
	}
	return d.shifted(p, c, shift)
}

func (d *fakeDelta) Delta(prev, cur *isolation.Frame, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	p, c := nameOf(prev.JPEG), nameOf(cur.JPEG)
	call := p + "→" + c
	if len(also) > 0 {
		call += fmt.Sprintf("+%v", also)
	}
	d.mu.Lock()
	d.calls = append(d.calls, call)
	d.mu.Unlock()
	return d.answer(p, c)
}

func (d *fakeDelta) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// oneTile answers with one 16×16 tile of 100 bytes at (16, 32), named
// after cur.
func oneTile(_, cur string) ([]protocol.Tile, bool, error) {
	return []protocol.Tile{{Rect: image.Rect(16, 32, 32, 48), JPEG: jpegOf("tile-"+cur, 100)}}, false, nil
}

// frameCounts counts what Metrics reports.
type frameCounts struct {
	sent, partial, bytes, saved, copied atomic.Int64
}

// newDeltaFixture is newFixture with the handler's DeltaEncoder and
// metrics.
func newDeltaFixture(t *testing.T, d DeltaEncoder, fc *frameCounts) *fixture {
	t.Helper()
	l := &isolationtest.Launcher{}
	log := slog.New(slog.DiscardHandler)
	m, err := session.NewManager(session.Config{Launcher: l, Egress: nopEgress{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// No pings: between frames the tests decode and compare pictures,
	// which on a loaded machine under -race can take longer than the
	// three ping intervals a silent viewer is allowed.
	h := &Handler{Sessions: m, Auth: headerAuth{}, Origin: "http://viewer.test", PingInterval: time.Hour, Logger: log, Delta: d}
	if fc != nil {
		h.Metrics = Metrics{
			FramesSent:    func(n int) { fc.sent.Add(int64(n)) },
			FramesPartial: func(n int) { fc.partial.Add(int64(n)) },
			BytesSent:     func(n int) { fc.bytes.Add(int64(n)) },
			BytesSaved:    func(n int) { fc.saved.Add(int64(n)) },
			FramesCopied:  func(n int) { fc.copied.Add(int64(n)) },
		}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		srv.Close()
	})
	return &fixture{srv: srv, l: l, m: m}
}

// connectVersion is fixture.connect with the protocol version the viewer
// names in hello.
func (f *fixture) connectVersion(t *testing.T, user string, version int) *websocket.Conn {
	t.Helper()
	c, _, err := f.dial(t, user, "http://viewer.test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	write(t, c, fmt.Sprintf(`{"type":"hello","version":%d,"width":800,"height":600,"dpr":1}`, version))
	readUntil(t, c, func(m map[string]any) bool { return m["type"] == "ready" })
	return c
}

// readFrame reads until a binary message and returns it.
func readFrame(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ == websocket.BinaryMessage {
			return data
		}
	}
}

// describe names a binary message for comparisons: "full X" for the
// stand-in JPEG X, "partial WxH: X@rect …" for a partial frame.
func describe(t *testing.T, msg []byte) string {
	t.Helper()
	if !protocol.IsPartial(msg) {
		return "full " + nameOf(msg)
	}
	p, err := protocol.DecodePartial(msg)
	if err != nil {
		t.Fatalf("the broker sent a partial frame that does not decode: %v", err)
	}
	s := fmt.Sprintf("partial %dx%d:", p.Width, p.Height)
	for _, c := range p.Copies {
		s += fmt.Sprintf(" copy %v→%v", c.Src, c.Dst)
	}
	for _, tile := range p.Tiles {
		s += fmt.Sprintf(" %s@%v", nameOf(tile.JPEG), tile.Rect)
	}
	return s
}

// frame is a stand-in screencast frame of 800×600 at quality 70.
func frame(name string) isolation.Frame {
	return isolation.Frame{JPEG: jpegOf(name, 4000), Width: 800, Height: 600, Quality: 70}
}

// TestPartialFrames proves what a viewer is sent: a full frame first, then
// the changed rectangles against the frame it has, and a full frame
// whenever a partial one would be wrong, not cheaper or out of bounds.
func TestPartialFrames(t *testing.T) {
	const tileB = "partial 800x600: tile-B@(16,32)-(32,48)"
	sharp := frame("B")
	sharp.Quality = 90
	resized := frame("B")
	resized.Width = 1600
	unknown := frame("B")
	unknown.Width, unknown.Height = 0, 0
	for _, tc := range []struct {
		name    string
		version int
		answer  func(prev, cur string) ([]protocol.Tile, bool, error)
		second  isolation.Frame
		want    string
		compare bool // whether the DeltaEncoder is asked
	}{
		{"changed rectangles", protocol.PartialFramesVersion, oneTile, frame("B"), tileB, true},
		{"old viewer", protocol.PartialFramesVersion - 1, oneTile, frame("B"), "full B", false},
		{"the encoder says whole", protocol.PartialFramesVersion, func(string, string) ([]protocol.Tile, bool, error) { return nil, true, nil }, frame("B"), "full B", true},
		{"the encoder fails", protocol.PartialFramesVersion, func(string, string) ([]protocol.Tile, bool, error) { return nil, false, errors.New("corrupt JPEG") }, frame("B"), "full B", true},
		{"not cheaper", protocol.PartialFramesVersion, func(_, cur string) ([]protocol.Tile, bool, error) {
			return []protocol.Tile{{Rect: image.Rect(0, 0, 16, 16), JPEG: jpegOf(cur, 4000)}}, false, nil
		}, frame("B"), "full B", true},
		{"rectangle outside the frame", protocol.PartialFramesVersion, func(_, cur string) ([]protocol.Tile, bool, error) {
			return []protocol.Tile{{Rect: image.Rect(792, 0, 808, 16), JPEG: jpegOf(cur, 100)}}, false, nil
		}, frame("B"), "full B", true},
		{"too many rectangles", protocol.PartialFramesVersion, func(_, cur string) ([]protocol.Tile, bool, error) {
			tiles := make([]protocol.Tile, protocol.MaxTiles+1)
			for i := range tiles {
				tiles[i] = protocol.Tile{Rect: image.Rect(0, 0, 1, 1), JPEG: []byte{0xFF, 0xD8}}
			}
			return tiles, false, nil
		}, isolation.Frame{JPEG: jpegOf("B", 40000), Width: 800, Height: 600, Quality: 70}, "full B", true},
		{"sharp refresh", protocol.PartialFramesVersion, oneTile, sharp, "full B", false},
		{"new size", protocol.PartialFramesVersion, oneTile, resized, "full B", false},
		{"size unknown", protocol.PartialFramesVersion, oneTile, unknown, "full B", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDelta{answer: tc.answer}
			f := newDeltaFixture(t, d, nil)
			c := f.connectVersion(t, "alice", tc.version)
			b := f.l.Last()
			b.EmitFrame(frame("A"))
			if got := describe(t, readFrame(t, c)); got != "full A" {
				t.Fatalf("first frame: %s, want full A", got)
			}
			b.EmitFrame(tc.second)
			if got := describe(t, readFrame(t, c)); got != tc.want {
				t.Errorf("second frame: %s, want %s", got, tc.want)
			}
			want := []string(nil)
			if tc.compare {
				want = []string{"A→B"}
			}
			if got := d.seen(); !slices.Equal(got, want) {
				t.Errorf("compared %v, want %v", got, want)
			}
		})
	}
}

// TestPartialAfterDrop proves that when latest-frame-wins replaces a frame
// the viewer never got, the next partial frame is computed against the
// frame the viewer has, not the one it missed.
func TestPartialAfterDrop(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	d := &fakeDelta{answer: func(prev, cur string) ([]protocol.Tile, bool, error) {
		if cur == "B" {
			close(entered)
			<-release // the writer is busy: C and D wait in the mailbox
		}
		return oneTile(prev, cur)
	}}
	f := newDeltaFixture(t, d, nil)
	c := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	b.EmitFrame(frame("A"))
	readFrame(t, c)
	b.EmitFrame(frame("B"))
	<-entered
	b.EmitFrame(frame("C"))
	b.EmitFrame(frame("D")) // replaces C before it is sent
	close(release)
	var got []string
	for range 2 {
		got = append(got, describe(t, readFrame(t, c)))
	}
	want := []string{"partial 800x600: tile-B@(16,32)-(32,48)", "partial 800x600: tile-D@(16,32)-(32,48)"}
	if !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
	if calls := d.seen(); !slices.Equal(calls, []string{"A→B", "B→D"}) {
		t.Errorf("compared %v, want A→B then B→D (what the viewer has, not the dropped C)", calls)
	}
}

// TestPartialUnchangedNotSent proves that a frame with no change costs
// nothing: the next change is compared with the frame before it.
func TestPartialUnchangedNotSent(t *testing.T) {
	d := &fakeDelta{answer: func(prev, cur string) ([]protocol.Tile, bool, error) {
		if cur == "A2" {
			return nil, false, nil
		}
		return oneTile(prev, cur)
	}}
	fc := &frameCounts{}
	f := newDeltaFixture(t, d, fc)
	c := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	b.EmitFrame(frame("A"))
	readFrame(t, c)
	b.EmitFrame(frame("A2"))
	b.EmitFrame(frame("B"))
	if got := describe(t, readFrame(t, c)); got != "partial 800x600: tile-B@(16,32)-(32,48)" {
		t.Errorf("after an unchanged frame: %s, want B's tile", got)
	}
	if calls := d.seen(); len(calls) == 0 || calls[len(calls)-1] != "A2→B" && calls[len(calls)-1] != "A→B" {
		t.Errorf("compared %v", calls)
	}
	// Metrics: two frames sent, one of them partial, saving the JPEG's
	// size less the partial frame's. The writer counts a frame after its
	// write returned, which may be after the viewer read it.
	partialBytes := int64(protocol.PartialHeaderBytes + protocol.TileHeaderBytes + 100)
	want := [4]int64{2, 1, 4000 + partialBytes, 4000 - partialBytes}
	var got [4]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		got = [4]int64{fc.sent.Load(), fc.partial.Load(), fc.bytes.Load(), fc.saved.Load()}
		if got == want || time.Now().After(deadline) {
			break
		}
	}
	if got != want {
		t.Errorf("metrics: sent, partial, bytes, saved = %v; want %v", got, want)
	}
}

// TestPartialKeyFrameAndReconnect proves that a viewer that asks for a key
// frame gets the frame it should have, whole, at once, and compares from
// it afterwards; and that a reconnected viewer starts with a full frame.
func TestPartialKeyFrameAndReconnect(t *testing.T) {
	d := &fakeDelta{answer: oneTile}
	f := newDeltaFixture(t, d, nil)
	c := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	b.EmitFrame(frame("A"))
	readFrame(t, c)
	b.EmitFrame(frame("B"))
	if got := describe(t, readFrame(t, c)); got == "full B" {
		t.Fatalf("second frame sent whole")
	}
	write(t, c, `{"type":"keyframe"}`)
	if got := describe(t, readFrame(t, c)); got != "full B" {
		t.Errorf("after keyframe: %s, want full B without a new frame of the browser", got)
	}
	b.EmitFrame(frame("C"))
	if got := describe(t, readFrame(t, c)); got != "partial 800x600: tile-C@(16,32)-(32,48)" {
		t.Errorf("after the key frame: %s, want C's tile", got)
	}
	c.Close()

	c2 := f.connectVersion(t, "alice", protocol.Version)
	if got := describe(t, readFrame(t, c2)); got != "full C" {
		t.Errorf("reconnected viewer's first frame: %s, want full C", got)
	}
	b.EmitFrame(frame("D"))
	if got := describe(t, readFrame(t, c2)); got != "partial 800x600: tile-D@(16,32)-(32,48)" {
		t.Errorf("reconnected viewer's second frame: %s, want D's tile", got)
	}
	if calls := d.seen(); !slices.Equal(calls, []string{"A→B", "B→C", "C→D"}) {
		t.Errorf("compared %v, want A→B, B→C, C→D", calls)
	}
}
