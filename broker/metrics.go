package broker

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/broker/session"
)

// metrics holds the broker's counters and gauges, written at /metrics in
// the Prometheus text format. Gauges computed on demand are registered as
// funcs.
type metrics struct {
	framesSent    atomic.Int64
	framesDropped atomic.Int64
	bytesSent     atomic.Int64
	viewers       atomic.Int64
	egressDenied  atomic.Int64
	egressAllowed atomic.Int64
	// egressBackground counts refused requests of the browsers' own
	// background services (egress.Event.Background), kept out of
	// egressDenied.
	egressBackground atomic.Int64
	crashes          atomic.Int64

	mu       sync.Mutex
	logins   map[string]int64 // by outcome
	ended    map[string]int64 // sessions ended, by reason
	started  int64
	sessions func() int
	// pool reads the warm pool's counters; nil writes none.
	pool func() session.PoolStats
	// starts reads the counts of browser starts; nil writes none.
	starts func() session.StartHealth
}

func newMetrics(sessions func() int) *metrics {
	return &metrics{logins: map[string]int64{}, ended: map[string]int64{}, sessions: sessions}
}

func (m *metrics) login(outcome string) {
	m.mu.Lock()
	m.logins[outcome]++
	m.mu.Unlock()
}

func (m *metrics) sessionStarted() {
	m.mu.Lock()
	m.started++
	m.mu.Unlock()
}

func (m *metrics) sessionEnded(reason string) {
	m.mu.Lock()
	m.ended[reason]++
	m.mu.Unlock()
}

func (m *metrics) write(w io.Writer) {
	p := func(name, help, typ string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	p("shoji_sessions_active", "Isolated browsers running on this node.", "gauge", int64(m.sessions()))
	p("shoji_viewers_connected", "Viewer WebSockets connected.", "gauge", m.viewers.Load())
	p("shoji_frames_sent_total", "Frames sent to viewers.", "counter", m.framesSent.Load())
	p("shoji_frames_dropped_total", "Frames replaced by a newer one before a slow viewer took them.", "counter", m.framesDropped.Load())
	p("shoji_frame_bytes_sent_total", "Bytes of frames sent to viewers.", "counter", m.bytesSent.Load())
	p("shoji_egress_requests_denied_total", "Egress requests refused.", "counter", m.egressDenied.Load())
	p("shoji_egress_requests_allowed_total", "Egress requests allowed.", "counter", m.egressAllowed.Load())
	p("shoji_egress_background_dropped_total", "Requests of the browsers' own background services (no page's) refused; not counted as denied.", "counter", m.egressBackground.Load())
	p("shoji_browser_crashes_total", "Browsers that died by themselves.", "counter", m.crashes.Load())
	if m.pool != nil {
		ps := m.pool()
		p("shoji_pool_ready", "Pooled browsers started and waiting for a user.", "gauge", int64(ps.Ready))
		p("shoji_pool_claimed_total", "Pooled browsers taken by a user at login.", "counter", int64(ps.Claimed))
		p("shoji_pool_recycled_total", "Pooled browsers closed unclaimed for their age or for room.", "counter", int64(ps.Recycled))
		p("shoji_pool_crashed_total", "Pooled browsers that died while waiting.", "counter", int64(ps.Crashed))
	}

	if m.starts != nil {
		st := m.starts()
		unix := func(t time.Time) int64 {
			if t.IsZero() {
				return 0
			}
			return t.Unix()
		}
		p("shoji_browser_starts_total", "Browser launches that succeeded (sessions, warm pool, readiness probes).", "counter", int64(st.Started))
		p("shoji_browser_start_failures_total", "Browser launches that failed; /readyz is 503 after one until a later start succeeds.", "counter", int64(st.Failed))
		p("shoji_browser_start_probes_total", "Throwaway browsers started by /readyz to check that a browser can start.", "counter", int64(st.Probes))
		p("shoji_browser_last_start_timestamp_seconds", "When a browser launch last succeeded (Unix time); 0 if none has since the broker started.", "gauge", unix(st.LastStart))
		p("shoji_browser_last_start_failure_timestamp_seconds", "When a browser launch last failed (Unix time); 0 if none has since the broker started.", "gauge", unix(st.LastFailure))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	p("shoji_sessions_started_total", "Sessions started.", "counter", m.started)
	labelled := func(name, help, label string, vals map[string]int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, vals[k])
		}
	}
	labelled("shoji_sessions_ended_total", "Sessions ended, by reason.", "reason", m.ended)
	labelled("shoji_logins_total", "Login attempts, by outcome.", "outcome", m.logins)
}
