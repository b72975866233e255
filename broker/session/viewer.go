package session

import (
	"sync"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/isolation"
)

// refusedMessage tells the clinician that a page was refused, and why.
func refusedMessage(d isolation.NavDecision) string {
	reason := d.Reason
	if reason == "" {
		reason = "not allowed"
	}
	if d.Host == "" {
		return "navigation refused: " + reason
	}
	return "navigation to " + d.Host + " refused: " + reason
}

// viewerQueue is how many control events a viewer may fall behind by before
// it is dropped as too slow.
const viewerQueue = 64

// Viewer is one connected viewer tab's mailbox. Frames are latest-wins: it
// holds at most one pending frame, and a newer frame replaces an unsent one.
// Control events queue up to viewerQueue; a viewer that falls further behind
// is closed (it reconnects and gets a fresh state).
type Viewer struct {
	mu     sync.Mutex
	frame  *isolation.Frame // the one pending frame, or nil
	events []protocol.Message
	closed bool
	reason Reason

	// wake has capacity 1: a pending wake-up covers any number of new
	// frames and events, so senders never block.
	wake chan struct{}
	done chan struct{}

	// Dropped counts frames replaced before they were sent.
	dropped uint64
}

func newViewer() *Viewer {
	return &Viewer{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// Wake is signalled when a frame or an event is pending.
func (v *Viewer) Wake() <-chan struct{} { return v.wake }

// Done is closed when the viewer was closed by the session.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Reason says why the session closed the viewer.
func (v *Viewer) Reason() Reason {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reason
}

// Take returns and clears the pending events and frame. The events come
// first: they may describe the page the frame shows.
func (v *Viewer) Take() (events []protocol.Message, frame *isolation.Frame, dropped uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	events, frame, dropped = v.events, v.frame, v.dropped
	v.events, v.frame, v.dropped = nil, nil, 0
	return events, frame, dropped
}

func (v *Viewer) putFrame(f *isolation.Frame) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if v.frame != nil {
		v.dropped++
	}
	v.frame = f
	v.mu.Unlock()
	v.signal()
}

// Send queues a control event. It reports false when the viewer is closed or
// fell too far behind (and was closed).
func (v *Viewer) Send(ev protocol.Message) bool {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return false
	}
	if len(v.events) >= viewerQueue {
		v.mu.Unlock()
		v.close("")
		return false
	}
	v.events = append(v.events, ev)
	v.mu.Unlock()
	v.signal()
	return true
}

func (v *Viewer) signal() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *Viewer) close(reason Reason) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed, v.reason = true, reason
	close(v.done)
}

// AddViewer connects a viewer to the session. Any earlier viewer of the
// session is closed with ReasonReplaced: one clinician, one viewer tab. The
// new viewer gets the current state, pending dialogs and status queued, and a
// key frame is requested from the browser.
func (s *Session) AddViewer() (*Viewer, error) {
	v := newViewer()
	s.mu.Lock()
	if s.state == StateEnded {
		s.mu.Unlock()
		return nil, ErrEnded
	}
	old := make([]*Viewer, 0, len(s.viewers))
	for o := range s.viewers {
		old = append(old, o)
	}
	clear(s.viewers)
	s.viewers[v] = struct{}{}
	state, st, b, last := s.state, s.lastState, s.browser, s.lastFrame
	s.mu.Unlock()

	for _, o := range old {
		o.close(ReasonReplaced)
	}
	if last != nil && state == StateLive {
		// The newest frame at once: the key frame the stream asks for
		// takes a DevTools round trip and a paint.
		v.putFrame(last)
	}
	v.Send(protocol.Status{State: string(state)})
	if state == StateLive {
		v.Send(s.statePayload(st))
		for _, d := range b.PendingDialogs() {
			v.Send(protocol.Dialog{Dialog: d})
		}
	}
	return v, nil
}

// RemoveViewer disconnects v; the session goes on without it.
func (s *Session) RemoveViewer(v *Viewer) {
	s.mu.Lock()
	delete(s.viewers, v)
	s.mu.Unlock()
	v.close("")
}

// DisconnectViewers closes the session's viewers with reason and keeps the
// session and its browser: a viewer may reconnect (e.g. after its user
// accepted a changed pledge, ReasonPledge).
func (s *Session) DisconnectViewers(reason Reason) { s.closeViewers(reason) }

// statePayload is the toolbar state with what the session knows beside the
// browser: whether the active host is a trusted medical site (ALLOW-4).
func (s *Session) statePayload(st isolation.State) protocol.State {
	s.mu.Lock()
	eg := s.egress
	s.mu.Unlock()
	out := protocol.State{State: st}
	if nc, ok := eg.(NavChecker); ok && st.URL != "" {
		out.Trusted = nc.CheckURL(st.URL).Trusted
	}
	return out
}

// LastFrame returns the newest frame the browser produced, if any.
func (s *Session) LastFrame() *isolation.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastFrame
}

func (s *Session) eachViewer(fn func(*Viewer)) {
	s.mu.Lock()
	vs := make([]*Viewer, 0, len(s.viewers))
	for v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	for _, v := range vs {
		fn(v)
	}
}

// Notify sends a control event to the session's viewers (e.g. the outcome
// of a site request).
func (s *Session) Notify(ev protocol.Message) { s.broadcast(ev) }

func (s *Session) broadcast(ev protocol.Message) {
	s.eachViewer(func(v *Viewer) { v.Send(ev) })
}

func (s *Session) broadcastStatus(state State, reason Reason, msg string) {
	s.broadcast(protocol.Status{State: string(state), Reason: string(reason), Message: msg})
}

func (s *Session) closeViewers(reason Reason) {
	s.mu.Lock()
	vs := make([]*Viewer, 0, len(s.viewers))
	for v := range s.viewers {
		vs = append(vs, v)
	}
	clear(s.viewers)
	s.mu.Unlock()
	for _, v := range vs {
		v.close(reason)
	}
}

// observer returns the callbacks for browser generation gen. Events of an
// older browser (before a restart) are ignored.
func (s *Session) observer(gen int) isolation.Observer {
	current := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.generation == gen && s.state != StateEnded
	}
	return isolation.Observer{
		Frame: func(f isolation.Frame) {
			if !current() {
				return
			}
			fp := &f
			s.mu.Lock()
			s.lastFrame = fp
			s.mu.Unlock()
			s.eachViewer(func(v *Viewer) { v.putFrame(fp) })
		},
		State: func(st isolation.State) {
			if !current() {
				return
			}
			s.mu.Lock()
			s.lastState = st
			s.mu.Unlock()
			s.broadcast(s.statePayload(st))
		},
		Blocked: func(tabID, url string, d isolation.NavDecision) {
			if !current() {
				return
			}
			s.m.cfg.Logger.Warn("navigation blocked", "event", "block", "session", s.ID, "user", s.User,
				"tab", tabID, "url", url, "host", d.Host, "rule", d.Rule, "reason", d.Reason)
			if f := s.m.cfg.OnBlock; f != nil {
				f(s.Info(), url, d)
			}
			if !d.Subframe {
				// The block page says it too; the viewer shows it beside
				// the page (a refused popup may not be the tab in view).
				s.broadcast(protocol.Error{Message: refusedMessage(d)})
			}
		},
		AccessRequested: func(tabID, host, url string) {
			if current() {
				s.broadcast(protocol.AccessRequest{Host: host, URL: url})
			}
		},
		Dialog: func(d isolation.Dialog) {
			if current() {
				s.broadcast(protocol.Dialog{Dialog: d})
			}
		},
		DialogClosed: func(id string) {
			if current() {
				s.broadcast(protocol.DialogClosed{ID: id})
			}
		},
		Download: func(d isolation.Download) {
			if t := s.m.cfg.Transfers; t != nil && current() {
				t.Download(s, d)
			}
		},
		FileChooser: func(c isolation.FileChooser) {
			if t := s.m.cfg.Transfers; t != nil && current() {
				t.FileChooser(s, c)
			}
		},
		Navigated: func(tabID, url string) {
			if current() {
				s.m.cfg.Logger.Info("navigation", "session", s.ID, "user", s.User, "tab", tabID, "url", url)
				if f := s.m.cfg.OnNavigate; f != nil {
					f(s.Info(), url)
				}
			}
		},
	}
}
