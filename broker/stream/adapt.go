package stream

import "time"

// A viewer on a slow link gets fewer, fresher frames, not a queue: the
// session's mailbox keeps only the newest, and the writer drops the rest.
// When most frames are dropped, the link (or the terminal) cannot carry
// the screencast at its quality, and lighter frames would let more of the
// motion through: the connection then lowers the browser's JPEG quality a
// step, and raises it again once frames have gone through without drops
// for a while. The sharp refresh sent when the page settles keeps its own
// quality, so a still page is sharp on any link.

// qualitySteps are the screencast qualities a connection steps through:
// 0 is the browser's configured quality.
var qualitySteps = []int{0, 50, 30}

const (
	// meterWindow is the span over which drops are counted.
	meterWindow = time.Second
	// minWindowFrames is the least frames (sent or dropped) in a window
	// for it to count: a page that barely moves says nothing of the link.
	minWindowFrames = 6
	// calmWindows is how many windows without drops it takes to try the
	// next better quality; it doubles (up to maxCalmWindows) each time
	// such a try had to be taken back at once, so a link at its limit does
	// not swing.
	calmWindows    = 5
	maxCalmWindows = 80
)

// linkMeter decides a connection's screencast quality from the frames it
// sent and dropped. Only the writer goroutine uses it.
type linkMeter struct {
	start         time.Time
	sent, dropped int
	step          int // index into qualitySteps
	calm          int // windows in a row without drops
	need          int // calm windows needed to step up
	raisedAt      int // window count when the quality was last raised
	windows       int
}

func newLinkMeter(now time.Time) *linkMeter {
	return &linkMeter{start: now, need: calmWindows, raisedAt: -1}
}

// quality is the quality to ask the browser for.
func (m *linkMeter) quality() int { return qualitySteps[m.step] }

// observe counts one flush: whether a frame was sent and how many were
// dropped before it. It reports whether the quality changed.
func (m *linkMeter) observe(now time.Time, sent bool, dropped int) bool {
	if sent {
		m.sent++
	}
	m.dropped += dropped
	if now.Sub(m.start) < meterWindow {
		return false
	}
	sentN, droppedN := m.sent, m.dropped
	m.start, m.sent, m.dropped = now, 0, 0
	if sentN+droppedN < minWindowFrames {
		return false
	}
	m.windows++
	switch {
	case droppedN*2 >= sentN+droppedN:
		// Half the frames or more never reached the viewer.
		m.calm = 0
		if m.step == len(qualitySteps)-1 {
			return false
		}
		if m.raisedAt >= 0 && m.windows-m.raisedAt <= 2 {
			// The last raise was too much for the link.
			m.need = min(2*m.need, maxCalmWindows)
		}
		m.step++
		return true
	case droppedN == 0:
		m.calm++
		if m.step == 0 || m.calm < m.need {
			return false
		}
		m.calm = 0
		m.step--
		m.raisedAt = m.windows
		return true
	default:
		m.calm = 0
		return false
	}
}
