package stream

import (
	"context"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// Frames out: full frames and partial frames (docs/protocol.md, "Partial
// frames").
//
// The writer goroutine remembers the frame the viewer shows (has): the
// last frame it wrote, whole or as the rectangles that changed, for after
// a partial frame the viewer's canvas is that frame. Each frame it takes
// from the mailbox is compared with has, not with the frame before it:
// latest-frame-wins may have replaced frames the viewer never got, and the
// rectangles must bring the viewer's canvas, not the browser's previous
// frame, up to date. A full frame is sent instead when:
//
//   - the viewer has nothing yet (it connected or reconnected), or asked
//     for a key frame (keyframe: it dropped a partial frame it could not
//     draw, so its canvas is not has);
//   - the viewer speaks a protocol version without partial frames, or the
//     Handler has no DeltaEncoder;
//   - the frame's size or JPEG quality differs from has's: a resize, the
//     sharp refresh of a settled page, a quality step of the link meter.
//     A new quality changes every block, so the rectangles would be the
//     whole screen in pieces, and the settled page must be the sharp
//     picture everywhere, with no block left at the moving page's quality;
//   - the DeltaEncoder says so or fails, or the partial frame would break
//     the protocol's bounds (protocol.EncodePartial refuses it);
//   - the partial frame is not smaller than the JPEG.
//
// A frame with no change at all is not sent.

// DeltaEncoder finds what changed between the frame a viewer shows and a
// new one. The broker's wiring supplies it (the JPEG tile engine,
// broker/tiles); it is called by one writer goroutine per viewer, possibly
// several at once.
//
// Frames are immutable and shared by pointer (isolation.Frame), and a
// viewer's prev is the cur of its previous call, so an implementation may
// keep what it parsed of a frame, keyed by the pointer, for the next call.
type DeltaEncoder interface {
	// Delta compares cur with prev, both frames of a screencast (JPEGs of
	// the same size and quality: the stream sends other pairs whole without
	// asking). It returns full true when cur must be sent whole (they
	// differ in encoding, or comparing is not worth it), else the
	// rectangles of cur, in device pixels, that differ from prev, each
	// with a JPEG of exactly that rectangle of cur. No tiles and full
	// false means the pictures are the same.
	Delta(prev, cur *isolation.Frame) (tiles []protocol.Tile, full bool, err error)
}

// outFrame is one binary message for the viewer.
type outFrame struct {
	msg []byte
	// partial is set for a partial frame; saved is how many bytes fewer
	// than the full JPEG it takes.
	partial bool
	saved   int
}

// encodeFrame decides how f goes to the viewer: as its JPEG, as a partial
// frame against what the viewer has, or (ok false) not at all, when
// nothing changed. Only the writer goroutine calls it.
func (c *conn_) encodeFrame(f *isolation.Frame) (out outFrame, ok bool) {
	full := outFrame{msg: f.JPEG}
	prev := c.has
	if c.needFull.Swap(false) || prev == nil || c.h.Delta == nil || c.version < protocol.PartialFramesVersion ||
		f.Width <= 0 || f.Height <= 0 || f.Width != prev.Width || f.Height != prev.Height || f.Quality != prev.Quality {
		return full, true
	}
	tiles, whole, err := c.h.Delta.Delta(prev, f)
	if err != nil {
		c.log.Debug("stream: partial frame not computed, sending the full frame", "err", err)
		return full, true
	}
	if whole {
		return full, true
	}
	if len(tiles) == 0 {
		return outFrame{}, false
	}
	if protocol.PartialSize(tiles) >= len(f.JPEG) {
		return full, true
	}
	msg, err := protocol.EncodePartial(protocol.Partial{Width: f.Width, Height: f.Height, Tiles: tiles})
	if err != nil {
		c.log.Warn("stream: partial frame refused, sending the full frame", "err", err)
		return full, true
	}
	return outFrame{msg: msg, partial: true, saved: len(f.JPEG) - len(msg)}, true
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
