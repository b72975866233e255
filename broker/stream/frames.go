package stream

import (
	"context"
	"image"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// Frames out: full frames and partial frames (docs/protocol.md, "Partial
// frames").
//
// The writer goroutine remembers the frame the viewer shows (has): the
// last frame it wrote, whole or as the rectangles that changed, for after
// a partial frame the viewer's canvas is that frame's picture. Latest-
// frame-wins may replace frames the viewer never got, so every comparison
// is with frames the viewer was sent, never with the browser's previous
// frame.
//
// Frames come at two JPEG qualities (isolation/chrome, sharpen.go): the
// moving quality while the page changes, and the sharp quality of the
// refresh sent once the page settles (and of the first frame after it
// moves again). Frames of different qualities have different quantization
// tables, so their coefficients cannot be compared. The writer keeps one
// reference frame per quality, each with a region (frameRefs):
//
//   - moving: the last frame sent at the moving quality, whose picture the
//     canvas shows except in stale, the rectangles sent at the sharp
//     quality since (they may show a newer picture). The next moving
//     frame is compared with it, and stale is sent with the change;
//   - sharp: the last frame sent at the sharp quality, whose pixels the
//     canvas shows except in low, the rectangles sent at the moving
//     quality since (the whole screen after a full moving frame). The
//     sharp refresh is compared with it, and low is sent with the change:
//     a blinking caret or a small spinner on a settled page costs its own
//     rectangles twice (moving, then sharp), not two full frames, and the
//     settled page is the sharp picture everywhere.
//
// The lower of the two qualities is the moving one; a frame of a third
// quality (a quality step of the link meter) is sent whole and takes the
// slot its quality falls in. After a full frame the canvas is that frame:
// its slot's region is emptied; a full moving frame makes the sharp
// slot's low the whole screen. A sharp frame that follows a moving one is
// taken to be the refresh of the picture the canvas shows (the browser
// restarts its screencast at the sharp quality only after the page stood
// still for the settle delay), so the moving slot's stale is kept; so is
// it for a full sharp frame sent because there was nothing sharp to
// compare with, or because low was the whole screen. The rectangles of
// any other sharp frame are added to stale, and a full sharp frame sent
// because the page changed too much makes stale the whole screen. The
// limit of this assumption: when the page changes between its last moving
// frame and the capture of the refresh, and changes back exactly in the
// next moving frame, that region keeps the refresh's picture until it
// changes again.
//
// A scroll goes as a copy (docs/protocol.md, "Scrolling"): when the viewer
// takes copies (protocol.CopiesVersion) and f and its reference both carry
// a scroll offset, differing by a multiple of scrollStep in each axis and
// by less than the frame, f is also compared with the reference shifted by
// the scroll (DeltaEncoder.DeltaShifted, with the slot's region moved by
// the shift, since the copy moves it on the canvas too), and the smaller
// of the two partial frames goes. After a copy the canvas is f wherever
// the copy landed and the tiles were drawn, and f everywhere else too
// (what the copy left uncovered is among the tiles): the slot used holds f
// with an empty region. The other slot's frame no longer lines up with the
// canvas, so its region becomes the whole screen (simplest correct
// choice): after a scroll the settle refresh goes whole.
//
// A full frame is sent when:
//
//   - the viewer has nothing yet (it connected or reconnected): the
//     references start again from the frame; or it asked for a key frame
//     (keyframe: it dropped a partial frame it could not draw, so its
//     canvas is not has): has goes whole again, and the references keep
//     what they know of the picture, for has is one of them;
//   - the viewer speaks a protocol version without partial frames, or the
//     Handler has no DeltaEncoder;
//   - the frame's size differs from has's (a resize), or its quality is
//     neither reference's (a quality step of the link meter), or there is
//     no reference of its quality yet (the first sharp refresh);
//   - the DeltaEncoder says so (the change and the region cover the
//     whole frame, or its crops are not smaller) or fails, or the partial
//     frame would break the protocol's bounds (protocol.EncodePartial
//     refuses it);
//   - the partial frame is not smaller than the JPEG.
//
// A frame with no change at all, and no region to send, is not sent.

// DeltaEncoder finds what changed between the frame a viewer shows and a
// new one. The broker's wiring supplies it (the JPEG tile engine,
// broker/tiles); it is called by one writer goroutine per viewer, possibly
// several at once.
//
// Frames are immutable and shared by pointer (isolation.Frame), and a
// viewer's prev is the cur of an earlier call, so an implementation may
// keep what it parsed of a frame, keyed by the pointer, for the next call.
type DeltaEncoder interface {
	// Delta compares cur with prev, both frames of a screencast (JPEGs of
	// the same size and quality: the stream sends other pairs whole without
	// asking). It returns full true when cur must be sent whole (they
	// differ in encoding, or comparing is not worth it), else the
	// rectangles of cur, in device pixels, that differ from prev or
	// touch one of also (rectangles the viewer must get again whatever
	// prev holds there), each with a JPEG of exactly that rectangle of
	// cur. No tiles and full false means the pictures are the same and
	// also is empty.
	Delta(prev, cur *isolation.Frame, also []image.Rectangle) (tiles []protocol.Tile, full bool, err error)
	// DeltaShifted is Delta against prev's picture shifted by shift
	// (device pixels, multiples of scrollStep): the tiles of cur to draw
	// once the viewer copied its canvas by shift (a scroll), covering the
	// exposed strip, what else changed, and also (in the coordinates after
	// the copy). Full true when the copy does not help or the shift cannot
	// be compared exactly (not on the encoding's block grid).
	DeltaShifted(prev, cur *isolation.Frame, shift image.Point, also []image.Rectangle) (tiles []protocol.Tile, full bool, err error)
}

// scrollStep is the grid, in device pixels, of the scroll shifts the
// stream sends as copies (isolation.ScrollStep, the grid wheel scrolling
// keeps to).
const scrollStep = isolation.ScrollStep

// outFrame is one binary message for the viewer.
type outFrame struct {
	msg []byte
	// partial is set for a partial frame; saved is how many bytes fewer
	// than the full JPEG it takes; copied is set when it carries a copy.
	partial bool
	saved   int
	copied  bool
}

// maxRegionRects bounds the rectangles a region lists; past it the
// region becomes their bounding box.
const maxRegionRects = 256

// region is a set of rectangles of the screen, or all of it.
type region struct {
	all   bool
	rects []image.Rectangle
}

// add adds r to the region.
func (g *region) add(rs ...image.Rectangle) {
	if g.all {
		return
	}
	g.rects = append(g.rects, rs...)
	if len(g.rects) > maxRegionRects {
		b := g.rects[0]
		for _, r := range g.rects[1:] {
			b = b.Union(r)
		}
		g.rects = append(g.rects[:0], b)
	}
}

// list returns the region's rectangles in a w×h screen.
func (g *region) list(w, h int) []image.Rectangle {
	if g.all {
		return []image.Rectangle{image.Rect(0, 0, w, h)}
	}
	return g.rects
}

// frameRefs is what the writer knows of the viewer's canvas (see above).
// Only the writer goroutine uses it.
type frameRefs struct {
	// moving is the reference at the moving quality; stale where the
	// canvas may show another picture than it.
	moving *isolation.Frame
	stale  region
	// sharp is the reference at the sharp quality; low where the canvas
	// shows pixels other than its (at the moving quality).
	sharp *isolation.Frame
	low   region
}

// reset forgets both references: the canvas will be f, whole.
func (r *frameRefs) reset() { *r = frameRefs{} }

// resent records that f went whole for a viewer that asked for a key
// frame. When f is a reference, the canvas is now what the references
// assumed it was, with f's pixels everywhere; another frame is a new
// picture.
func (r *frameRefs) resent(f *isolation.Frame) {
	switch f {
	case r.moving:
		r.stale = region{}
		r.low = region{all: true}
	case r.sharp:
		r.low = region{}
	default:
		r.sentWhole(f, false)
	}
}

// sentWhole records that f went whole: it becomes the reference of its
// quality's slot. A frame of the moving quality, or of a quality below the
// sharp one (the link meter stepped), is the moving reference; a frame
// above the moving quality, with no sharp reference or above it, the
// sharp one. A first frame that turns out sharper than the next one moves
// to the sharp slot. refresh says a sharp f is taken to show the canvas's
// picture (see above).
func (r *frameRefs) sentWhole(f *isolation.Frame, refresh bool) {
	q := f.Quality
	switch {
	case r.moving == nil:
		r.moving, r.stale = f, region{}
	case q <= r.moving.Quality && r.sharp == nil && q != r.moving.Quality:
		r.sharp, r.low = r.moving, region{all: true}
		r.moving, r.stale = f, region{}
	case q <= r.moving.Quality || (r.sharp != nil && q < r.sharp.Quality):
		r.moving, r.stale = f, region{}
		r.low = region{all: true}
	default:
		r.sharp, r.low = f, region{}
		if !refresh {
			r.stale = region{all: true}
		}
	}
}

// encodeFrame decides how f goes to the viewer: as its JPEG, as a partial
// frame against what the viewer has, or (ok false) not at all, when
// nothing changed. Only the writer goroutine calls it, and it updates the
// references as if the message were written.
func (c *conn_) encodeFrame(f *isolation.Frame) (out outFrame, ok bool) {
	full := outFrame{msg: f.JPEG}
	prev := c.has
	r := &c.refs
	keyFrame := c.needFull.Swap(false)
	switch {
	case c.h.Delta == nil || c.version < protocol.PartialFramesVersion:
		return full, true
	case prev == nil || f.Width <= 0 || f.Height <= 0 || f.Width != prev.Width || f.Height != prev.Height:
		r.reset()
		return c.whole(f, true, "first frame or new size")
	case keyFrame:
		r.resent(f)
		c.log.Debug("stream: full frame", "quality", f.Quality, "why", "key frame")
		return full, true
	}
	var base *isolation.Frame
	var also *region
	switch {
	case r.moving != nil && f.Quality == r.moving.Quality:
		base, also = r.moving, &r.stale
	case r.sharp != nil && f.Quality == r.sharp.Quality:
		base, also = r.sharp, &r.low
	default:
		// No reference of this quality: the first sharp refresh, or a
		// quality step.
		return c.whole(f, true, "no reference of its quality")
	}
	if also.all {
		return c.whole(f, true, "the region to send is the whole screen")
	}
	shift, scrolled := c.scrollShift(base, f)
	var shifted []protocol.Tile
	if scrolled {
		var whole bool
		var err error
		shifted, whole, err = c.h.Delta.DeltaShifted(base, f, shift, shiftRects(also.list(f.Width, f.Height), shift))
		if err != nil {
			c.log.Debug("stream: scroll copy not computed", "err", err)
		}
		scrolled = err == nil && !whole
	}
	tiles, whole, err := c.h.Delta.Delta(base, f, also.list(f.Width, f.Height))
	if err != nil {
		c.log.Debug("stream: partial frame not computed, sending the full frame", "err", err)
		return c.whole(f, false, "no partial frame")
	}
	if !whole && len(tiles) == 0 {
		// The same pixels as its reference: f stands for it, so that a
		// key frame resends a reference.
		if base == r.moving {
			r.moving = f
		} else {
			r.sharp = f
		}
		return outFrame{}, false
	}
	if scrolled && (whole || protocol.PartialSizeCopies(1, shifted) < protocol.PartialSize(tiles)) {
		return c.copyFrame(f, base, shift, shifted)
	}
	if whole {
		return c.whole(f, false, "the change is the whole screen or not smaller")
	}
	if protocol.PartialSize(tiles) >= len(f.JPEG) {
		return c.whole(f, false, "not smaller")
	}
	msg, err := protocol.EncodePartial(protocol.Partial{Width: f.Width, Height: f.Height, Quality: partialQuality(f), Tiles: tiles})
	if err != nil {
		c.log.Warn("stream: partial frame refused, sending the full frame", "err", err)
		return c.whole(f, false, "partial frame refused")
	}
	rects := make([]image.Rectangle, len(tiles))
	area := 0
	for i, t := range tiles {
		rects[i] = t.Rect
		area += t.Rect.Dx() * t.Rect.Dy()
	}
	c.log.Debug("stream: partial frame", "quality", f.Quality, "rects", len(rects), "pixels", area, "bytes", len(msg), "of", len(f.JPEG))
	if base == r.moving {
		r.moving, r.stale = f, region{}
		if r.sharp != nil {
			r.low.add(rects...)
		}
	} else {
		// A sharp frame that follows a moving one is the settle refresh
		// (the browser sends the first frame of a moving page at the
		// sharp quality only after a refresh): it shows the picture the
		// canvas has, and the moving reference still holds. Another may
		// show a newer picture where it was sent.
		if c.has == nil || r.moving == nil || c.has.Quality != r.moving.Quality {
			r.stale.add(rects...)
		}
		r.sharp, r.low = f, region{}
	}
	return outFrame{msg: msg, partial: true, saved: len(f.JPEG) - len(msg)}, true
}

// scrollShift returns how far f's content moved on screen against base's,
// (base's scroll offset − f's), when the viewer takes copies and both
// offsets are known, differ, are on the scrollStep grid and the shift is
// smaller than the frame.
func (c *conn_) scrollShift(base, f *isolation.Frame) (image.Point, bool) {
	if c.version < protocol.CopiesVersion || !base.Scrolled || !f.Scrolled {
		return image.Point{}, false
	}
	d := image.Pt(base.ScrollX-f.ScrollX, base.ScrollY-f.ScrollY)
	if d == (image.Point{}) || d.X%scrollStep != 0 || d.Y%scrollStep != 0 ||
		d.X <= -f.Width || d.X >= f.Width || d.Y <= -f.Height || d.Y >= f.Height {
		return image.Point{}, false
	}
	return d, true
}

// scrollCopy is the copy that moves a w×h canvas's picture by shift: all
// of it that stays on screen.
func scrollCopy(w, h int, shift image.Point) protocol.Copy {
	frame := image.Rect(0, 0, w, h)
	src := frame.Intersect(frame.Sub(shift))
	return protocol.Copy{Src: src, Dst: src.Min.Add(shift)}
}

// shiftRects returns rs moved by d: a region of the canvas after a copy by
// d (what lies outside the copy's destination is sent anyway).
func shiftRects(rs []image.Rectangle, d image.Point) []image.Rectangle {
	out := make([]image.Rectangle, len(rs))
	for i, r := range rs {
		out[i] = r.Add(d)
	}
	return out
}

// copyFrame sends f as a copy of the viewer's canvas by shift and tiles,
// or whole when that is not smaller or breaks the bounds. After the copy
// the canvas is f wherever the copy landed and the tiles were drawn, so
// base's slot becomes f with an empty region; the other slot's reference
// no longer lines up with the canvas anywhere, so its region becomes the
// whole screen.
func (c *conn_) copyFrame(f, base *isolation.Frame, shift image.Point, tiles []protocol.Tile) (outFrame, bool) {
	cp := scrollCopy(f.Width, f.Height, shift)
	if protocol.PartialSizeCopies(1, tiles) >= len(f.JPEG) {
		return c.whole(f, false, "not smaller")
	}
	msg, err := protocol.EncodePartial(protocol.Partial{Width: f.Width, Height: f.Height, Quality: partialQuality(f), Copies: []protocol.Copy{cp}, Tiles: tiles})
	if err != nil {
		c.log.Warn("stream: partial frame with a copy refused, sending the full frame", "err", err)
		return c.whole(f, false, "partial frame refused")
	}
	r := &c.refs
	if base == r.moving {
		r.moving, r.stale = f, region{}
		if r.sharp != nil {
			r.low = region{all: true}
		}
	} else {
		r.sharp, r.low = f, region{}
		if r.moving != nil {
			r.stale = region{all: true}
		}
	}
	c.log.Debug("stream: partial frame with a copy", "quality", f.Quality, "shift", shift, "rects", len(tiles), "bytes", len(msg), "of", len(f.JPEG))
	return outFrame{msg: msg, partial: true, copied: true, saved: len(f.JPEG) - len(msg)}, true
}

// partialQuality is the quality a partial frame of f names: f's, when it
// is a JPEG quality, else 0 (its tiles then keep their tables).
func partialQuality(f *isolation.Frame) int {
	if f.Quality < 1 || f.Quality > 100 {
		return 0
	}
	return f.Quality
}

// whole sends f whole and records it in the references (sentWhole).
func (c *conn_) whole(f *isolation.Frame, refresh bool, why string) (outFrame, bool) {
	c.refs.sentWhole(f, refresh)
	c.log.Debug("stream: full frame", "quality", f.Quality, "bytes", len(f.JPEG), "why", why)
	return outFrame{msg: f.JPEG}, true
}

// onKeyFrame takes a viewer's keyframe message: it dropped a partial frame
// it could not draw, so its canvas is not the frame the writer thinks it
// has. The next frame goes whole, and the writer is woken to send the
// frame the viewer should have at once, without waiting for the page to
// change.
func (c *conn_) onKeyFrame(context.Context, *emptyMsg) error {
	c.needFull.Store(true)
	select {
	case c.resend <- struct{}{}:
	default:
	}
	return nil
}
