package stream

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/tiles"
	"github.com/shoji-rbi/shoji/isolation"
)

// The tests in this file run the stream with the real tile engine
// (broker/tiles) on JPEGs encoded by image/jpeg at a moving and a sharp
// quality, as the browser's screencast does, and draw what the viewer gets
// on a canvas the way the viewer does: full frames replace it, partial
// frames' copies move its pixels and their rectangles are pasted.

const (
	movingQ = 70
	sharpQ  = 90
)

// page draws a 640x400 page of busy "text" with a caret at (320,192)
// when caretOn, and a small spinner whose arm points to spin (0-3), or no
// spinner when spin < 0.
func page(caretOn bool, spin int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 640, 400))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range 400 {
		for x := range 640 {
			v := uint8(255)
			if (y/12)%2 == 0 && rng.IntN(3) == 0 {
				v = uint8(rng.IntN(120))
			}
			img.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	if caretOn {
		for y := 192; y < 208; y++ {
			for x := 320; x < 322; x++ {
				img.SetRGBA(x, y, color.RGBA{0, 0, 0, 255})
			}
		}
	}
	if spin >= 0 {
		for y := 40; y < 72; y++ {
			for x := 40; x < 72; x++ {
				dx, dy := x-56, y-56
				arm := [4]bool{dx >= 0 && dy < 0, dx >= 0 && dy >= 0, dx < 0 && dy >= 0, dx < 0 && dy < 0}[spin%4]
				c := color.RGBA{220, 220, 255, 255}
				if arm {
					c = color.RGBA{20, 60, 200, 255}
				}
				img.SetRGBA(x, y, c)
			}
		}
	}
	return img
}

// shot encodes a page as a screencast frame at quality q.
func shot(t *testing.T, img *image.RGBA, q int) isolation.Frame {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return isolation.Frame{JPEG: b.Bytes(), Width: 640, Height: 400, Quality: q}
}

// canvas is the viewer's picture, as image/jpeg decodes what it gets.
type canvas struct {
	img *image.RGBA
}

// draw applies one binary message to the canvas and reports whether it
// was a partial frame.
func (c *canvas) draw(t *testing.T, msg []byte) bool {
	t.Helper()
	if !protocol.IsPartial(msg) {
		c.img = decodeRGBA(t, msg)
		return false
	}
	if c.img == nil {
		t.Fatal("a partial frame before any full frame")
	}
	p, err := protocol.DecodePartial(msg)
	if err != nil {
		t.Fatalf("partial frame: %v", err)
	}
	for _, cp := range p.Copies {
		// The viewer's drawImage of the canvas onto itself: the source
		// is read whole before the destination is drawn.
		src := image.NewRGBA(cp.Src)
		for y := cp.Src.Min.Y; y < cp.Src.Max.Y; y++ {
			for x := cp.Src.Min.X; x < cp.Src.Max.X; x++ {
				src.SetRGBA(x, y, c.img.RGBAAt(x, y))
			}
		}
		d := cp.Dst.Sub(cp.Src.Min)
		for y := cp.Src.Min.Y; y < cp.Src.Max.Y; y++ {
			for x := cp.Src.Min.X; x < cp.Src.Max.X; x++ {
				c.img.SetRGBA(x+d.X, y+d.Y, src.RGBAAt(x, y))
			}
		}
	}
	for _, tile := range p.Tiles {
		jpg, err := protocol.CompleteJPEG(tile.JPEG, p.Quality)
		if err != nil {
			t.Fatalf("tile %v: %v", tile.Rect, err)
		}
		m := decodeRGBA(t, jpg)
		if m.Bounds().Size() != tile.Rect.Size() {
			t.Fatalf("tile %v decodes to %v", tile.Rect, m.Bounds())
		}
		for y := range tile.Rect.Dy() {
			for x := range tile.Rect.Dx() {
				c.img.SetRGBA(tile.Rect.Min.X+x, tile.Rect.Min.Y+y, m.RGBAAt(x, y))
			}
		}
	}
	return true
}

func decodeRGBA(t *testing.T, data []byte) *image.RGBA {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	out := image.NewRGBA(m.Bounds())
	for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
		for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
			out.Set(x, y, m.At(x, y))
		}
	}
	return out
}

// tilePSNR returns the PSNR, in dB, of a and b over each 64x64 tile
// (+Inf where they are equal), tiles in raster order.
func tilePSNR(a, b *image.RGBA) []float64 {
	var out []float64
	r := a.Bounds()
	for ty := r.Min.Y; ty < r.Max.Y; ty += 64 {
		for tx := r.Min.X; tx < r.Max.X; tx += 64 {
			var se float64
			n := 0
			for y := ty; y < min(ty+64, r.Max.Y); y++ {
				for x := tx; x < min(tx+64, r.Max.X); x++ {
					p, q := a.RGBAAt(x, y), b.RGBAAt(x, y)
					for _, d := range []float64{float64(p.R) - float64(q.R), float64(p.G) - float64(q.G), float64(p.B) - float64(q.B)} {
						se += d * d
						n++
					}
				}
			}
			out = append(out, 10*math.Log10(255*255/(se/float64(n))))
		}
	}
	return out
}

// step is one frame of the browser and what the viewer must get.
type step struct {
	name    string
	page    *image.RGBA
	frame   isolation.Frame
	partial bool
}

// at is a step showing page at quality q.
func at(t *testing.T, name string, page *image.RGBA, q int, partial bool) step {
	return step{name: name, page: page, frame: shot(t, page, q), partial: partial}
}

// run emits each step's frame, reads what the viewer gets and checks it:
// whole or partial, and the canvas afterwards. After a sharp or a full
// frame the canvas must be that frame exactly. After a moving partial
// frame it keeps sharp pixels where the picture did not change, so it is
// compared with the page itself: in every 64x64 tile it must be as close
// to the page as the moving frame is, less 1 dB (a stale caret or a ghost
// of a spinner costs a tile 10 dB and more). It returns the bytes of the
// partial frames and of their full frames.
func (c *canvas) run(t *testing.T, b interface{ EmitFrame(isolation.Frame) }, ws *websocket.Conn, steps []step) (partialBytes, fullBytes int) {
	t.Helper()
	for _, s := range steps {
		b.EmitFrame(s.frame)
		msg := readFrame(t, ws)
		if got := c.draw(t, msg); got != s.partial {
			t.Errorf("%s: partial %v (%d bytes of %d), want %v", s.name, got, len(msg), len(s.frame.JPEG), s.partial)
		}
		if s.partial {
			partialBytes += len(msg)
			fullBytes += len(s.frame.JPEG)
		}
		c.check(t, s)
	}
	return partialBytes, fullBytes
}

// check compares the canvas with what s shows (see run).
func (c *canvas) check(t *testing.T, s step) {
	t.Helper()
	want := decodeRGBA(t, s.frame.JPEG)
	if s.frame.Quality == sharpQ || !s.partial {
		for i, p := range tilePSNR(c.img, want) {
			if !math.IsInf(p, 1) {
				t.Errorf("%s: the canvas is not the sharp frame in tile %d (%.1f dB)", s.name, i, p)
			}
		}
		return
	}
	frameQ := tilePSNR(want, s.page)
	for i, p := range tilePSNR(c.img, s.page) {
		if p < frameQ[i]-1 {
			t.Errorf("%s: tile %d of the canvas is %.1f dB from the page, the frame %.1f dB", s.name, i, p, frameQ[i])
		}
	}
}

// TestSharpRefreshPartial proves that on a settled page a blinking caret
// and a small spinner cost small partial frames both while they move and
// for the sharp refresh after, and that after each refresh the canvas is
// the sharp frame exactly: the region shown at the moving quality is sent
// sharp, and nothing else.
func TestSharpRefreshPartial(t *testing.T) {
	f := newDeltaFixture(t, tiles.NewDelta(0), nil)
	ws := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	cv := &canvas{}
	steps := []step{
		at(t, "first frame", page(true, -1), movingQ, false),
		at(t, "first refresh", page(true, -1), sharpQ, false),
	}
	for i := range 3 {
		on := i%2 == 1
		steps = append(steps,
			at(t, "caret blinks", page(on, -1), movingQ, true),
			at(t, "refresh after the blink", page(on, -1), sharpQ, true))
	}
	for i := range 3 {
		steps = append(steps,
			at(t, "spinner turns", page(true, i), movingQ, true),
			at(t, "refresh after the turn", page(true, i), sharpQ, true))
	}
	steps = append(steps,
		at(t, "spinner goes", page(true, -1), movingQ, true),
		at(t, "refresh after the spinner", page(true, -1), sharpQ, true),
		// The first frame after a settled page moves comes at the sharp
		// quality (isolation/chrome), then the moving quality again.
		at(t, "moves at the sharp quality", page(false, -1), sharpQ, true),
		at(t, "moves on", page(true, -1), movingQ, true),
		at(t, "settles", page(true, -1), sharpQ, true),
	)
	part, full := cv.run(t, b, ws, steps)
	t.Logf("partial frames: %d bytes for %d bytes of full frames (%.1f%%)", part, full, 100*float64(part)/float64(full))
	if part*10 > full {
		t.Errorf("partial frames took %d bytes of %d: not a small fraction", part, full)
	}
}

// gateDelta is the real engine, held before comparing with frame hold
// until release is closed, so that frames queue up behind it.
type gateDelta struct {
	engine           *tiles.Delta
	hold             []byte
	entered, release chan struct{}
}

func (g *gateDelta) Delta(prev, cur *isolation.Frame, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	if bytes.Equal(cur.JPEG, g.hold) {
		close(g.entered)
		<-g.release
	}
	return g.engine.Delta(prev, cur, also)
}

func (g *gateDelta) DeltaShifted(prev, cur *isolation.Frame, shift image.Point, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	return g.engine.DeltaShifted(prev, cur, shift, also)
}

// TestSharpRefreshAfterDropAndKeyFrame proves the regions' bookkeeping
// when latest-frame-wins drops a refresh the viewer never got (the next
// refresh still covers every rectangle shown at the moving quality), and
// after a key frame (the frame resent whole, then small partial frames
// again, the canvas the sharp frame exactly after each refresh).
func TestSharpRefreshAfterDropAndKeyFrame(t *testing.T) {
	blinkOff := at(t, "caret blinks", page(false, -1), movingQ, true)
	g := &gateDelta{engine: tiles.NewDelta(0), hold: blinkOff.frame.JPEG, entered: make(chan struct{}), release: make(chan struct{})}
	f := newDeltaFixture(t, g, nil)
	ws := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	cv := &canvas{}
	cv.run(t, b, ws, []step{
		at(t, "first frame", page(true, -1), movingQ, false),
		at(t, "first refresh", page(true, -1), sharpQ, false),
	})
	b.EmitFrame(blinkOff.frame)
	<-g.entered
	b.EmitFrame(shot(t, page(false, -1), sharpQ)) // dropped: replaced by the turn below
	turned := at(t, "spinner appears", page(false, 0), movingQ, true)
	b.EmitFrame(turned.frame)
	close(g.release)
	for _, s := range []step{blinkOff, turned} {
		if !cv.draw(t, readFrame(t, ws)) {
			t.Errorf("%s: a full frame, want a partial one", s.name)
		}
		cv.check(t, s)
	}
	cv.run(t, b, ws, []step{at(t, "refresh after both", page(false, 0), sharpQ, true)})

	write(t, ws, `{"type":"keyframe"}`)
	if cv.draw(t, readFrame(t, ws)) {
		t.Fatal("the key frame came as a partial frame")
	}
	cv.run(t, b, ws, []step{
		at(t, "spinner turns after the key frame", page(false, 1), movingQ, true),
		at(t, "refresh after the key frame", page(false, 1), sharpQ, true),
	})
}

// TestSharpRefreshQualitySteps proves the references through the link
// meter's quality steps: a frame of a new moving quality goes whole and
// becomes the moving reference, the refresh after it goes whole (the
// canvas is all at the moving quality), and partial frames follow at the
// new quality, the canvas the sharp frame exactly after each refresh. It
// also covers a viewer whose first frame is sharp (a settled page).
func TestSharpRefreshQualitySteps(t *testing.T) {
	f := newDeltaFixture(t, tiles.NewDelta(0), nil)
	ws := f.connectVersion(t, "alice", protocol.Version)
	b := f.l.Last()
	cv := &canvas{}
	part, full := cv.run(t, b, ws, []step{
		at(t, "first frame, sharp", page(true, -1), sharpQ, false),
		at(t, "caret blinks at the moving quality", page(false, -1), movingQ, false),
		at(t, "refresh", page(false, -1), sharpQ, false),
		at(t, "caret blinks", page(true, -1), movingQ, true),
		at(t, "refresh after the blink", page(true, -1), sharpQ, true),
		at(t, "the meter steps down", page(false, -1), 50, false),
		at(t, "refresh after the step", page(false, -1), sharpQ, false),
		at(t, "caret blinks at 50", page(true, -1), 50, true),
		at(t, "refresh after the blink at 50", page(true, -1), sharpQ, true),
		at(t, "the meter steps up", page(false, -1), movingQ, false),
		at(t, "refresh after the step up", page(false, -1), sharpQ, false),
		at(t, "caret blinks at 70 again", page(true, -1), movingQ, true),
		at(t, "refresh", page(true, -1), sharpQ, true),
	})
	if part*10 > full {
		t.Errorf("partial frames took %d bytes of %d: not a small fraction", part, full)
	}
}
