package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shoji-rbi/shoji/broker/session"
)

// metrics holds the broker's counters and gauges in a registry of its own
// (never Prometheus' global one, so that two Servers in one process, as in
// the tests, do not share counts). The registry also has the Go runtime's
// and the process's collectors. Values that belong to the sessions, the
// warm pool and the browser starts are read from them at each scrape
// (liveCollector).
type metrics struct {
	reg *prometheus.Registry

	framesSent    prometheus.Counter
	framesDropped prometheus.Counter
	bytesSent     prometheus.Counter
	// framesPartial counts the frames of framesSent sent as partial
	// frames, bytesSaved the bytes they saved against full frames.
	framesPartial prometheus.Counter
	// framesCopied counts the partial frames that carry a copy (a scroll).
	framesCopied  prometheus.Counter
	bytesSaved    prometheus.Counter
	viewers       prometheus.Gauge
	egressDenied  prometheus.Counter
	egressAllowed prometheus.Counter
	// egressBackground counts refused requests of the browsers' own
	// background services (egress.Event.Background), kept out of
	// egressDenied.
	egressBackground prometheus.Counter
	crashes          prometheus.Counter
	started          prometheus.Counter
	ended            *prometheus.CounterVec // sessions ended, by reason
	logins           *prometheus.CounterVec // login attempts, by outcome
}

// loginOutcomes are the values of shoji_logins_total's outcome label. They
// are written as 0 before the first attempt, so that a rate over them is
// defined from the start.
var loginOutcomes = []string{"success", "locked", "rate_limited", "bad_credentials"}

// newMetrics builds the registry. live reads the sessions, the warm pool
// and the browser starts at each scrape.
func newMetrics(live liveStats) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg:              prometheus.NewRegistry(),
		framesSent:       counter("shoji_frames_sent_total", "Frames sent to viewers."),
		framesDropped:    counter("shoji_frames_dropped_total", "Frames replaced by a newer one before a slow viewer took them."),
		bytesSent:        counter("shoji_frame_bytes_sent_total", "Bytes of frames sent to viewers."),
		framesPartial:    counter("shoji_frames_partial_total", "Frames sent as partial frames (only the rectangles that changed), part of shoji_frames_sent_total."),
		framesCopied:     counter("shoji_frames_copied_total", "Partial frames that carry a copy of the viewer's canvas (a scroll), part of shoji_frames_partial_total."),
		bytesSaved:       counter("shoji_frame_bytes_saved_total", "Bytes that partial frames saved against sending the full frames."),
		viewers:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoji_viewers_connected", Help: "Viewer WebSockets connected."}),
		egressDenied:     counter("shoji_egress_requests_denied_total", "Egress requests refused."),
		egressAllowed:    counter("shoji_egress_requests_allowed_total", "Egress requests allowed."),
		egressBackground: counter("shoji_egress_background_dropped_total", "Requests of the browsers' own background services (no page's) refused; not counted as denied."),
		crashes:          counter("shoji_browser_crashes_total", "Browsers that died by themselves."),
		started:          counter("shoji_sessions_started_total", "Sessions started."),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoji_sessions_ended_total", Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoji_logins_total", Help: "Login attempts, by outcome.",
		}, []string{"outcome"}),
	}
	for _, o := range loginOutcomes {
		m.logins.WithLabelValues(o)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		liveCollector{live},
		m.framesSent, m.framesDropped, m.bytesSent, m.framesPartial, m.framesCopied, m.bytesSaved, m.viewers,
		m.egressDenied, m.egressAllowed, m.egressBackground, m.crashes,
		m.started, m.ended, m.logins,
	)
	return m
}

func (m *metrics) login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

func (m *metrics) sessionStarted() { m.started.Inc() }

func (m *metrics) sessionEnded(reason string) { m.ended.WithLabelValues(reason).Inc() }

// liveStats reads the state that the metrics of liveCollector report.
type liveStats struct {
	// sessions counts the isolated browsers running.
	sessions func() int
	// pool reads the warm pool's counters.
	pool func() session.PoolStats
	// starts reads the counts of browser starts.
	starts func() session.StartHealth
}

// liveCollector writes the metrics read from the session manager at each
// scrape: each source is read once, so the pool's (and the starts')
// numbers of one scrape belong together.
type liveCollector struct{ live liveStats }

var (
	descSessionsActive = prometheus.NewDesc("shoji_sessions_active", "Isolated browsers running on this node.", nil, nil)
	descPoolReady      = prometheus.NewDesc("shoji_pool_ready", "Pooled browsers started and waiting for a user.", nil, nil)
	descPoolClaimed    = prometheus.NewDesc("shoji_pool_claimed_total", "Pooled browsers taken by a user at login.", nil, nil)
	descPoolRecycled   = prometheus.NewDesc("shoji_pool_recycled_total", "Pooled browsers closed unclaimed for their age or for room.", nil, nil)
	descPoolCrashed    = prometheus.NewDesc("shoji_pool_crashed_total", "Pooled browsers that died while waiting.", nil, nil)
	descStarts         = prometheus.NewDesc("shoji_browser_starts_total", "Browser launches that succeeded (sessions, warm pool, readiness probes).", nil, nil)
	descStartFailures  = prometheus.NewDesc("shoji_browser_start_failures_total", "Browser launches that failed; /readyz is 503 after one until a later start succeeds.", nil, nil)
	descStartProbes    = prometheus.NewDesc("shoji_browser_start_probes_total", "Throwaway browsers started by /readyz to check that a browser can start.", nil, nil)
	descLastStart      = prometheus.NewDesc("shoji_browser_last_start_timestamp_seconds", "When a browser launch last succeeded (Unix time); 0 if none has since the broker started.", nil, nil)
	descLastFailure    = prometheus.NewDesc("shoji_browser_last_start_failure_timestamp_seconds", "When a browser launch last failed (Unix time); 0 if none has since the broker started.", nil, nil)
)

// Describe sends the descriptors of every metric Collect writes.
func (c liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessionsActive, descPoolReady, descPoolClaimed, descPoolRecycled,
		descPoolCrashed, descStarts, descStartFailures, descStartProbes, descLastStart, descLastFailure} {
		ch <- d
	}
}

// Collect reads the sessions, the pool and the starts and sends their
// metrics.
func (c liveCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}
	gauge(descSessionsActive, float64(c.live.sessions()))
	ps := c.live.pool()
	gauge(descPoolReady, float64(ps.Ready))
	counter(descPoolClaimed, float64(ps.Claimed))
	counter(descPoolRecycled, float64(ps.Recycled))
	counter(descPoolCrashed, float64(ps.Crashed))
	st := c.live.starts()
	counter(descStarts, float64(st.Started))
	counter(descStartFailures, float64(st.Failed))
	counter(descStartProbes, float64(st.Probes))
	gauge(descLastStart, unix(st.LastStart))
	gauge(descLastFailure, unix(st.LastFailure))
}
