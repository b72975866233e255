package tiles

import (
	"fmt"
	"image"
	"sync"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// DefaultCacheFrames is how many parsed frames a Delta keeps when
// NewDelta is given no bound: enough for the frames a few viewers of one
// session compare against (each viewer's reference frames and the newest
// frame), small next to the frames themselves (a parsed 1280x800 frame
// holds a few hundred kilobytes of coefficients).
const DefaultCacheFrames = 16

// Delta is the stream's DeltaEncoder (broker/stream) on lossless JPEG
// crops: it parses each screencast frame once, compares two frames with
// Diff and cuts the rectangles that changed out of the newer one with
// Crop. It keeps the parsed frames it saw last, keyed by the frame's
// pointer (frames are immutable and shared by every viewer of a session),
// at most a fixed number of them. It is safe for several goroutines at
// once; a frame two goroutines ask for at the same time is parsed once.
type Delta struct {
	max int

	mu sync.Mutex
	// parsed holds the frames parsed or being parsed, order them oldest
	// first; the oldest goes when there are more than max.
	parsed map[*isolation.Frame]*parsedFrame
	order  []*isolation.Frame
}

// parsedFrame is one frame's parse, done once: done is closed when img
// or err is set.
type parsedFrame struct {
	done chan struct{}
	img  *Image
	err  error
}

// NewDelta returns a Delta that keeps at most frames parsed frames;
// frames < 1 means DefaultCacheFrames.
func NewDelta(frames int) *Delta {
	if frames < 1 {
		frames = DefaultCacheFrames
	}
	return &Delta{max: frames, parsed: make(map[*isolation.Frame]*parsedFrame)}
}

// parse returns f parsed, from the cache or parsed now (outside the lock,
// so that other frames are not held up).
func (d *Delta) parse(f *isolation.Frame) (*Image, error) {
	d.mu.Lock()
	p, ok := d.parsed[f]
	if !ok {
		p = &parsedFrame{done: make(chan struct{})}
		d.parsed[f] = p
		d.order = append(d.order, f)
		for len(d.order) > d.max {
			delete(d.parsed, d.order[0])
			d.order[0] = nil
			d.order = d.order[1:]
		}
	}
	d.mu.Unlock()
	if ok {
		<-p.done
		return p.img, p.err
	}
	p.img, p.err = Parse(f.JPEG)
	close(p.done)
	return p.img, p.err
}

// Cached reports how many frames d holds parsed, for tests.
func (d *Delta) Cached() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.parsed)
}

// Delta compares cur with prev and returns crops of cur for the MCUs that
// differ and for every MCU touching one of also (rectangles of cur in
// device pixels that must be sent whatever prev holds there, e.g. where
// the viewer's canvas shows another quality). It returns full true when
// cur differs from prev in size, sampling or quantization, when the
// rectangles cover the whole frame, or when the crops would not be
// smaller than cur's JPEG. The crops are compact tiles of a partial frame
// of cur.Quality (CropCompact). An error names a frame that does not
// parse.
func (d *Delta) Delta(prev, cur *isolation.Frame, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	return d.delta(prev, cur, func(pi, ci *Image) []image.Rectangle { return DiffCovering(pi, ci, also) })
}

// DeltaShifted is Delta against prev shifted by shift (device pixels,
// multiples of the MCU size): the crops of cur to draw once the viewer
// copied its canvas, prev's picture, by shift (DiffShifted). also is in
// the coordinates after the copy. A shift that is not a multiple of the
// MCU, or not smaller than the frame, makes cur full.
func (d *Delta) DeltaShifted(prev, cur *isolation.Frame, shift image.Point, also []image.Rectangle) ([]protocol.Tile, bool, error) {
	return d.delta(prev, cur, func(pi, ci *Image) []image.Rectangle { return DiffShifted(pi, ci, shift, also) })
}

// delta parses prev and cur, and crops the rectangles diff finds.
func (d *Delta) delta(prev, cur *isolation.Frame, diff func(pi, ci *Image) []image.Rectangle) ([]protocol.Tile, bool, error) {
	pi, err := d.parse(prev)
	if err != nil {
		return nil, false, fmt.Errorf("previous frame: %w", err)
	}
	ci, err := d.parse(cur)
	if err != nil {
		return nil, false, fmt.Errorf("new frame: %w", err)
	}
	rects := diff(pi, ci)
	if len(rects) == 0 {
		return nil, false, nil
	}
	if len(rects) == 1 && rects[0] == ci.Bounds() {
		return nil, true, nil
	}
	tiles := make([]protocol.Tile, 0, len(rects))
	size := 0
	for _, r := range rects {
		crop, err := ci.CropCompact(r, cur.Quality)
		if err != nil {
			return nil, false, fmt.Errorf("new frame: %w", err)
		}
		size += len(crop)
		if size >= len(cur.JPEG) {
			return nil, true, nil
		}
		tiles = append(tiles, protocol.Tile{Rect: r, JPEG: crop})
	}
	return tiles, false, nil
}
