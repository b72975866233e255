// Package bench measures shoji the way a clinician feels it, against the
// physical limit of its design and against the virtual browser hospitals
// deploy instead. It is the engine of `shoji-bench` (docs/benchmarks.md).
//
// A run starts a broker as a child process ("shoji serve" on a fresh data
// directory, so that its CPU time and memory are its own), serves its own
// scenario pages on loopback and lets the broker's browsers open them, and
// measures each figure through up to four clients, interleaved in batches
// so that the machine's noise falls on all of them alike:
//
//   - raw CDP: a Chromium with the flags, viewport and screencast settings
//     of shoji's browsers, its screencast read straight over CDP — the
//     limit of a screencast design on this machine;
//   - the protocol client: Go speaking the viewer protocol to the broker,
//     timing the arrival of the first frame that shows an input's effect;
//   - the real viewer: shoji's viewer page in a second headless Chromium,
//     timing from the input event to the canvas paint that shows the
//     effect, in that browser's own clock;
//   - the VNC peer (Chromium under Xvfb, x11vnc, websockify and noVNC),
//     measured like the real viewer, when a PeerStarter is given.
//
// Every scenario has a time limit; one that fails is reported with its
// error and the others still run. Everything the run starts is stopped on
// every way out. The results go to bench.json, README.md (Markdown tables)
// and PNG plots in the output directory.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// Options configure a run. The zero value of each field but Out and
// Broker means its default.
type Options struct {
	// Out is the directory the results are written to. Required.
	Out string
	// Samples is the number of click samples per client; the key scenario
	// takes half as many and the IME scenario a quarter. Zero means 200,
	// or 20 with Quick.
	Samples int
	// Quick shortens every scenario, for a smoke run.
	Quick bool
	// Scenarios lists the scenarios to run (see ScenarioNames). Empty means
	// all.
	Scenarios []string
	// Chromium is the browser binary of every browser of the run. Empty
	// means chrome.DefaultExecPath.
	Chromium string
	// Broker is the command that runs shoji; the bench appends "serve
	// --config FILE …". Required unless Target is set.
	Broker []string
	// BrokerEnv is added to the broker's environment.
	BrokerEnv []string
	// Target, User and Password name a running broker to measure instead
	// of one the bench starts. Its policy must let its browsers open the
	// scenario pages (see PagesListen). Figures that need the broker's
	// process or more accounts are then not run.
	Target, User, Password string
	// PagesListen is the address the scenario pages are served on. Empty
	// means 127.0.0.1 and any free port.
	PagesListen string
	// Viewport is the remote viewport of every client. Zero means 1280×720
	// at DPR 1.
	Viewport isolation.Viewport
	// MaxSessions bounds the idle sessions of the capacity scenario. Zero
	// means 50, or 5 with Quick.
	MaxSessions int
	// Screencast is the screencast of the bench's brokers and of the
	// raw-CDP baseline alike. Zero means DefaultScreencast; the
	// bench's runs with other settings show what each does.
	Screencast Screencast
	// Peer starts the VNC peer. Nil reports the peer's figures as not run.
	Peer PeerStarter
	// Log receives the run's progress. Nil discards it.
	Log *slog.Logger
	// Command is the command line, as the report shows it.
	Command string
	// Version is shoji's version, for the report.
	Version string
}

// ScenarioNames are the scenarios in the order they run.
var ScenarioNames = []string{"click", "key", "ime", "animation", "scroll", "static", "bandwidth", "capture", "encoding", "memory", "login", "capacity"}

// checkAndSetDefaults validates o and fills in its defaults.
func (o *Options) checkAndSetDefaults() error {
	if o.Out == "" {
		return errors.New("bench: no output directory")
	}
	if o.Target == "" && len(o.Broker) == 0 {
		return errors.New("bench: no command to run shoji with, and no --target")
	}
	if o.Target != "" && (o.User == "" || o.Password == "") {
		return errors.New("bench: --target needs --user and a password")
	}
	if o.Samples < 0 {
		return fmt.Errorf("bench: samples %d: must be positive", o.Samples)
	}
	if o.Samples == 0 {
		o.Samples = 200
		if o.Quick {
			o.Samples = 20
		}
	}
	for _, s := range o.Scenarios {
		if !slices.Contains(ScenarioNames, s) {
			return fmt.Errorf("bench: unknown scenario %q (known: %s)", s, strings.Join(ScenarioNames, ", "))
		}
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = slices.Clone(ScenarioNames)
	}
	if o.Chromium == "" {
		o.Chromium = chrome.DefaultExecPath
	}
	if o.PagesListen == "" {
		o.PagesListen = "127.0.0.1:0"
	}
	if o.Viewport == (isolation.Viewport{}) {
		o.Viewport = isolation.Viewport{Width: 1280, Height: 720, DPR: 1}
	}
	if !o.Viewport.Valid() {
		return fmt.Errorf("bench: viewport %dx%d@%g is out of range", o.Viewport.Width, o.Viewport.Height, o.Viewport.DPR)
	}
	if o.MaxSessions < 0 {
		return fmt.Errorf("bench: max sessions %d: must be positive", o.MaxSessions)
	}
	if o.Screencast == (Screencast{}) {
		o.Screencast = DefaultScreencast()
	}
	if q := o.Screencast.Quality; q < 1 || q > 100 {
		return fmt.Errorf("bench: JPEG quality %d: must be between 1 and 100", q)
	}
	if n := o.Screencast.MaxFramesInFlight; n < 1 || n > 16 {
		return fmt.Errorf("bench: frames in flight %d: must be between 1 and 16", n)
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = 50
		if o.Quick {
			o.MaxSessions = 5
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// plan is how much a run measures.
type plan struct {
	clickN, keyN, imeN int
	batch              int
	window             time.Duration // one frame-rate window of one client
	rounds             int           // frame-rate windows per client
	loginN             int
	memorySessions     int
	capacityN          int
	levels             []int
}

func newPlan(o Options) plan {
	p := plan{clickN: o.Samples, keyN: max(o.Samples/2, 5), imeN: max(o.Samples/4, 3)}
	if o.Quick {
		p.batch, p.window, p.rounds, p.loginN, p.memorySessions, p.capacityN = 5, 2*time.Second, 1, 2, 2, 10
	} else {
		p.batch, p.window, p.rounds, p.loginN, p.memorySessions, p.capacityN = 10, 5*time.Second, 4, 10, 10, 60
	}
	for _, n := range []int{1, 5, 10, 20, 30, 40, 50, 60, 80, 100, 120, 160, 200} {
		if n <= o.MaxSessions {
			p.levels = append(p.levels, n)
		}
	}
	if len(p.levels) == 0 || p.levels[len(p.levels)-1] != o.MaxSessions {
		p.levels = append(p.levels, o.MaxSessions)
	}
	return p
}

// Run runs the scenarios of o and writes the results into o.Out. It
// returns the report; a scenario that failed is in it with its error, not
// an error of Run. Run fails only when it cannot start at all or cannot
// write the results.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: output directory: %w", err)
	}
	rep := &Report{Version: reportVersion, Command: o.Command, Started: time.Now(), Results: newResults()}
	o.Log.Info("describing the machine")
	rep.Machine = describeMachine(o.Chromium, o.Version)
	p := newPlan(o)
	sc := o.Screencast.params(o.Viewport)
	rep.Settings = Settings{
		Viewport: o.Viewport, JPEGQuality: int(*sc.Quality), MaxFramesInFlight: int(sc.MaxFramesInFlight),
		EveryNthFrame: int(sc.EveryNthFrame), SendLastFrame: *sc.SendLastFrame,
		ClickSamples: p.clickN, KeySamples: p.keyN, IMESamples: p.imeN, Batch: p.batch,
		WindowSeconds: (p.window * time.Duration(p.rounds)).Seconds(), Quick: o.Quick,
		Scenarios: o.Scenarios, MaxSessions: o.MaxSessions, Target: o.Target,
	}

	e, err := newEnv(o, p, rep.Results)
	if err != nil {
		return nil, err
	}
	status := map[string]ScenarioResult{}
	func() {
		defer e.close()
		for _, s := range scenarios {
			if !slices.Contains(o.Scenarios, s.name) {
				continue
			}
			r := e.runScenario(ctx, s)
			status[s.name] = r
			rep.Scenarios = append(rep.Scenarios, r)
		}
	}()
	rep.Finished = time.Now()
	rep.Machine.LoadEnd = loadAverage()
	finishResults(rep.Results)
	rep.Figures = buildFigures(rep.Results, status)
	rep.Capture = captureRows(rep.Results)
	rep.EncodingAdvice = encodingAdvice(rep.Results.Encoding)
	rep.Bandwidth = bandwidthFigures(rep.Results.Bandwidth)
	rep.Summaries = map[string]Summary{}
	for k, xs := range rep.Results.Latency {
		if len(xs) > 0 {
			rep.Summaries[k] = Summarize(xs)
		}
	}
	plots, err := writePlots(o.Out, rep)
	if err != nil {
		rep.Results.Notes = append(rep.Results.Notes, "plots: "+err.Error())
	}
	rep.Plots = plots
	if err := writeFile(filepath.Join(o.Out, "bench.json"), func(w io.Writer) error { return writeJSON(w, rep) }); err != nil {
		return rep, err
	}
	if err := writeFile(filepath.Join(o.Out, "README.md"), func(w io.Writer) error { return writeMarkdown(w, rep) }); err != nil {
		return rep, err
	}
	return rep, nil
}

// env holds what the scenarios share: the page server, the broker and the
// clients, each started on first use and stopped by close. A part that
// failed to start is not tried again; its error is given to every scenario
// that needs it.
type env struct {
	o        Options
	p        plan
	log      *slog.Logger
	vp       isolation.Viewport
	res      *Results
	pages    *pageServer
	password string
	users    []string

	failed map[string]error // parts that failed to start

	broker *brokerProc
	base   string // the broker's public URL

	raw      *rawBrowser
	rawC     *frameClient
	rawPage  string
	proto    *protoConn
	protoC   *frameClient
	protoPg  string
	view     *viewer
	viewPage string
	peer     *peer
	// capture is a raw-CDP browser without screencast, pictured on demand
	// by the capture and encoding scenarios.
	capture     *rawBrowser
	capturePage string

	localSeq int
}

// Bench accounts.
const (
	userProto  = "bench"
	userViewer = "viewer"
	userLogin  = "login"
)

func idleUser(i int) string { return fmt.Sprintf("idle%03d", i) }

func newEnv(o Options, p plan, res *Results) (*env, error) {
	pages, err := startPages(o.PagesListen)
	if err != nil {
		return nil, err
	}
	var b [18]byte
	_, _ = rand.Read(b[:])
	e := &env{o: o, p: p, log: o.Log, vp: o.Viewport, res: res, pages: pages, failed: map[string]error{},
		password: base64.RawURLEncoding.EncodeToString(b[:])}
	e.users = []string{userProto, userViewer, userLogin}
	for i := 1; i <= max(o.MaxSessions, p.memorySessions); i++ {
		e.users = append(e.users, idleUser(i))
	}
	return e, nil
}

// nextLocal returns a loopback source address not used before in this run:
// the broker limits logins per terminal address.
func (e *env) nextLocal() net.IP {
	if e.o.Target != "" {
		if u, err := url.Parse(e.o.Target); err != nil || !isLoopbackName(u.Hostname()) {
			return nil
		}
	}
	e.localSeq++
	return net.IPv4(127, 0, byte(1+e.localSeq/250), byte(1+e.localSeq%250))
}

// part runs start once per name; a failure is remembered.
func (e *env) part(name string, start func() error) error {
	if err, ok := e.failed[name]; ok {
		return err
	}
	if err := start(); err != nil {
		e.failed[name] = err
		return err
	}
	return nil
}

// brokerURL returns the URL of the broker under test, starting the bench's
// own on first use.
func (e *env) brokerURL(ctx context.Context) (string, error) {
	if e.o.Target != "" {
		e.base = strings.TrimSuffix(e.o.Target, "/")
		return e.base, nil
	}
	if e.broker != nil {
		return e.base, nil
	}
	err := e.part("broker", func() error {
		e.log.Info("starting the broker")
		b, err := e.startBroker(ctx, "broker", 0, e.users)
		if errors.Is(err, errNoPool) {
			b, err = e.startBroker(ctx, "broker", -1, e.users)
		}
		if err != nil {
			return err
		}
		e.broker, e.base = b, b.base
		return nil
	})
	return e.base, err
}

// startBroker starts a broker with pool browsers (-1: the pool key left
// out) and the given accounts.
func (e *env) startBroker(ctx context.Context, name string, pool int, users []string) (*brokerProc, error) {
	spec := brokerSpec{
		command: e.o.Broker, env: e.o.BrokerEnv, name: name, chromium: e.o.Chromium, pages: e.pages,
		maxSessions: e.o.MaxSessions + e.p.memorySessions + 10, users: users, password: e.password, logDir: e.o.Out,
		screencast: e.o.Screencast,
	}
	if pool >= 0 {
		spec.pool = &pool
	}
	return startBroker(ctx, spec)
}

// ownBroker returns the bench's own broker, or why there is none.
func (e *env) ownBroker(ctx context.Context) (*brokerProc, error) {
	if e.o.Target != "" {
		return nil, errors.New("needs the bench's own broker, not --target")
	}
	if _, err := e.brokerURL(ctx); err != nil {
		return nil, err
	}
	return e.broker, nil
}

// rawOn returns the raw baseline showing pg.
func (e *env) rawOn(ctx context.Context, pg webPage) (*frameClient, error) {
	err := e.part("raw", func() error {
		if e.raw != nil {
			return nil
		}
		e.log.Info("starting the raw CDP baseline")
		r, err := startRaw(ctx, e.o.Chromium, e.pages.Addr(), e.vp, e.o.Screencast)
		if err != nil {
			return err
		}
		e.raw, e.rawC = r, &frameClient{name: "raw CDP", vp: e.vp, q: r.q, drv: r}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.rawPage != pg.path {
		if err := e.rawC.open(ctx, e.pages.URL(pg), pg); err != nil {
			return nil, err
		}
		e.rawPage = pg.path
	}
	return e.rawC, nil
}

// protoOn returns the protocol client showing pg.
func (e *env) protoOn(ctx context.Context, pg webPage) (*frameClient, error) {
	err := e.part("protocol", func() error {
		if e.proto != nil {
			return nil
		}
		base, err := e.brokerURL(ctx)
		if err != nil {
			return err
		}
		user, pw := userProto, e.password
		if e.o.Target != "" {
			user, pw = e.o.User, e.o.Password
		}
		e.log.Info("connecting the protocol client")
		c, err := dialProto(ctx, base, user, pw, e.nextLocal(), e.vp)
		if err != nil {
			return fmt.Errorf("protocol client: %w", err)
		}
		e.proto, e.protoC = c, &frameClient{name: "protocol client", vp: e.vp, q: c.q, drv: c}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.protoPg != pg.path {
		if err := e.protoC.open(ctx, e.pages.URL(pg), pg); err != nil {
			return nil, err
		}
		e.protoPg = pg.path
	}
	return e.protoC, nil
}

// viewerOn returns the real viewer showing pg.
func (e *env) viewerOn(ctx context.Context, pg webPage) (*viewer, error) {
	err := e.part("viewer", func() error {
		if e.view != nil {
			return nil
		}
		if e.o.Target != "" {
			return errors.New("needs a second account: with --target the viewer would replace the protocol client's stream (one viewer per session)")
		}
		base, err := e.brokerURL(ctx)
		if err != nil {
			return err
		}
		e.log.Info("starting the real viewer")
		v, err := startViewer(ctx, e.o.Chromium, base, userViewer, e.password, e.vp)
		if err != nil {
			return err
		}
		e.view = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if e.viewPage != pg.path {
		if err := e.view.open(ctx, e.pages.URL(pg), pg); err != nil {
			return nil, err
		}
		e.viewPage = pg.path
	}
	return e.view, nil
}

// vncPeer returns the VNC peer showing the click page.
func (e *env) vncPeer(ctx context.Context) (*peer, error) {
	return e.vncPeerOn(ctx, pageClick)
}

// vncPeerOn returns the VNC peer showing pg. Its browser is in kiosk mode
// without an address bar, so a peer showing another page is stopped and
// started again on pg.
func (e *env) vncPeerOn(ctx context.Context, pg webPage) (*peer, error) {
	if e.peer != nil && e.peer.page != pg.path {
		e.log.Info("stopping the VNC peer", "page", e.peer.page)
		e.peer.close()
		e.peer = nil
	}
	err := e.part("vnc", func() error {
		if e.peer != nil {
			return nil
		}
		if e.o.Peer == nil {
			return errors.New("the VNC peer is off (shoji-bench --vnc=false)")
		}
		e.log.Info("starting the VNC peer", "page", pg.path)
		p, err := startPeer(ctx, e.o.Peer, PeerOptions{PageURL: e.pages.DirectURL(pg), Width: e.vp.Width, Height: e.vp.Height, Chromium: e.o.Chromium}, pg)
		if err != nil {
			return err
		}
		e.peer = p
		return nil
	})
	return e.peer, err
}

// keepOnly stops the clients that the next scenario does not need, so
// that they cost the machine nothing while it measures; a later scenario
// that needs one starts it again. Stopping the real viewer also ends its
// session.
func (e *env) keepOnly(ctx context.Context, parts ...string) {
	if e.view != nil && !slices.Contains(parts, "viewer") {
		e.log.Info("stopping the real viewer")
		e.view.close()
		e.view, e.viewPage = nil, ""
		if e.broker != nil {
			if c, err := newProtoConn(e.base, userViewer, e.password, e.nextLocal(), e.vp); err == nil {
				if c.login(ctx) == nil {
					_ = c.logout(ctx)
				}
				c.hc.CloseIdleConnections()
			}
		}
	}
	if e.peer != nil && !slices.Contains(parts, "vnc") {
		e.log.Info("stopping the VNC peer")
		e.peer.close()
		e.peer = nil
	}
	if e.capture != nil && !slices.Contains(parts, "capture") {
		e.log.Info("stopping the capture browser")
		e.capture.close()
		e.capture, e.capturePage = nil, ""
	}
	if e.raw != nil && !slices.Contains(parts, "raw") {
		e.log.Info("stopping the raw CDP baseline")
		e.raw.close()
		e.raw, e.rawC, e.rawPage = nil, nil, ""
	}
}

// close stops everything the run started.
func (e *env) close() {
	if e.view != nil {
		e.view.close()
	}
	if e.peer != nil {
		e.peer.close()
	}
	if e.raw != nil {
		e.raw.close()
	}
	if e.capture != nil {
		e.capture.close()
	}
	if e.proto != nil {
		e.proto.close()
	}
	if e.broker != nil {
		e.log.Info("stopping the broker")
		e.broker.stop()
	}
	_ = e.pages.Close()
}

// fail records why a series is missing.
func (e *env) fail(k string, err error) {
	e.res.Errors[k] = err.Error()
	e.log.Warn("series failed", "series", k, "err", err)
}
