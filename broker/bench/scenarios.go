package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// scenario is one part of a run.
type scenario struct {
	name string
	// parts are the clients it uses; the others are stopped before it
	// runs (see env.keepOnly).
	parts []string
	// limit is the scenario's time limit for a plan.
	limit func(e *env) time.Duration
	run   func(ctx context.Context, e *env) error
}

// scenarios in the order they run: the latency scenarios first, while the
// machine has only the clients running, the capacity scenario last.
var scenarios = []scenario{
	{"click", []string{"raw", "viewer", "vnc"}, func(e *env) time.Duration { return 5*time.Minute + time.Duration(e.p.clickN)*4*1500*time.Millisecond }, runClick},
	{"key", []string{"raw", "viewer"}, func(e *env) time.Duration { return 5*time.Minute + time.Duration(e.p.keyN)*3*2*time.Second }, runKey},
	{"ime", []string{"raw", "viewer"}, func(e *env) time.Duration { return 5*time.Minute + time.Duration(e.p.imeN)*3*4*time.Second }, runIME},
	{"animation", []string{"raw"}, rateLimit, runAnimation},
	{"scroll", []string{"raw"}, rateLimit, runScroll},
	{"static", []string{"raw"}, rateLimit, runStatic},
	{"bandwidth", []string{"viewer", "vnc"}, bandwidthLimit, runBandwidth},
	{"capture", []string{"raw", "capture"}, captureLimit, runCapture},
	{"encoding", []string{"capture"}, func(e *env) time.Duration {
		return 5*time.Minute + time.Duration(len(encodingPages)*len(encodings)*e.encodeRounds())*2*time.Second
	}, runEncoding},
	{"memory", []string{"raw"}, func(e *env) time.Duration { return 5*time.Minute + time.Duration(e.p.memorySessions)*20*time.Second }, runMemory},
	{"login", nil, func(e *env) time.Duration { return 5*time.Minute + time.Duration(e.p.loginN)*90*time.Second }, runLogin},
	{"capacity", nil, func(e *env) time.Duration {
		return 10*time.Minute + time.Duration(e.o.MaxSessions)*30*time.Second + time.Duration(len(e.p.levels)*e.p.capacityN)*2*time.Second
	}, runCapacity},
}

func rateLimit(e *env) time.Duration {
	return 5*time.Minute + time.Duration(e.p.rounds)*2*(e.p.window+10*time.Second)
}

func captureLimit(e *env) time.Duration {
	n := time.Duration(len(captureMethods))
	return 5*time.Minute + time.Duration(e.p.clickN)*n*1500*time.Millisecond + time.Duration(e.p.rounds)*n*(e.p.window+10*time.Second)
}

// notRunError marks a scenario that cannot run in this configuration.
type notRunError struct{ err error }

func (e notRunError) Error() string { return e.err.Error() }
func (e notRunError) Unwrap() error { return e.err }

// runScenario runs s within its time limit and reports how it went.
func (e *env) runScenario(ctx context.Context, s scenario) ScenarioResult {
	start := time.Now()
	e.log.Info("scenario", "name", s.name)
	e.keepOnly(ctx, s.parts...)
	sctx, cancel := context.WithTimeout(ctx, s.limit(e))
	defer cancel()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return s.run(sctx, e)
	}()
	r := ScenarioResult{Name: s.name, Status: statusOK, Seconds: time.Since(start).Seconds()}
	var nr notRunError
	switch {
	case errors.As(err, &nr):
		r.Status, r.Error = statusNotRun, nr.Error()
	case err != nil:
		if sctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("time limit of %s reached: %w", s.limit(e).Round(time.Second), err)
		}
		r.Status, r.Error = statusFailed, err.Error()
	}
	e.log.Info("scenario done", "name", s.name, "status", r.Status, "err", r.Error, "seconds", int(r.Seconds))
	return r
}

// sampler takes one latency sample of one client.
type sampler struct {
	client  string
	measure func(ctx context.Context) (time.Duration, error)
}

// interleave takes n samples of each sampler, batch at a time, in turn: A
// B C A B C … so that the machine's noise falls on all alike. A sampler
// that fails, or whose samples too often show no change, stops; the others
// go on.
func (e *env) interleave(ctx context.Context, scenario string, ss []sampler, n, batch int) error {
	done := make([]int, len(ss))
	dead := make([]bool, len(ss))
	maxTimeouts := max(5, n/5)
	for {
		progress := false
		for i, s := range ss {
			if dead[i] || done[i] >= n {
				continue
			}
			progress = true
			k := key(scenario, s.client)
			for j := 0; j < batch && done[i] < n && !dead[i]; j++ {
				// A random pause keeps the inputs from locking to the
				// browsers' frame clocks.
				if err := sleep(ctx, time.Duration(20+rand.IntN(60))*time.Millisecond); err != nil {
					return fmt.Errorf("%s after %d of %d samples: %w", k, done[i], n, err)
				}
				d, err := s.measure(ctx)
				switch {
				case err == nil:
					e.res.Latency[k] = append(e.res.Latency[k], float64(d)/float64(time.Millisecond))
					done[i]++
				case ctx.Err() != nil:
					return fmt.Errorf("%s after %d of %d samples: %w", k, done[i], n, err)
				case errors.Is(err, errNoChange):
					e.res.Timeouts[k]++
					if e.res.Timeouts[k] > maxTimeouts {
						dead[i] = true
						e.fail(k, fmt.Errorf("%d samples showed no change within %s", e.res.Timeouts[k], sampleTimeout))
					}
				default:
					dead[i] = true
					e.fail(k, err)
				}
			}
		}
		if !progress {
			return nil
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// latencySamplers returns a sampler for each client that can show pg. For
// a client that cannot, the series' error is recorded. prep runs once per
// client after it shows pg (e.g. to focus a field).
func (e *env) latencySamplers(ctx context.Context, scenario string, pg webPage, in gesture, ch Change, withPeer bool,
	prep func(ctx context.Context, click func(context.Context, float64, float64) error) error) []sampler {
	var ss []sampler
	noPrep := func(context.Context, func(context.Context, float64, float64) error) error { return nil }
	if prep == nil {
		prep = noPrep
	}
	if c, err := e.rawOn(ctx, pg); err != nil {
		e.fail(key(scenario, clientRaw), err)
	} else if err := prep(ctx, c.click); err != nil {
		e.fail(key(scenario, clientRaw), err)
	} else {
		ss = append(ss, sampler{clientRaw, func(ctx context.Context) (time.Duration, error) { return c.measure(ctx, in, ch) }})
	}
	if c, err := e.protoOn(ctx, pg); err != nil {
		e.fail(key(scenario, clientProtocol), err)
	} else if err := prep(ctx, c.click); err != nil {
		e.fail(key(scenario, clientProtocol), err)
	} else {
		ss = append(ss, sampler{clientProtocol, func(ctx context.Context) (time.Duration, error) { return c.measure(ctx, in, ch) }})
	}
	if v, err := e.viewerOn(ctx, pg); err != nil {
		e.fail(key(scenario, clientViewer), err)
	} else if err := prep(ctx, v.clickRemote); err != nil {
		e.fail(key(scenario, clientViewer), err)
	} else {
		ss = append(ss, sampler{clientViewer, func(ctx context.Context) (time.Duration, error) { return v.measure(ctx, in, ch) }})
	}
	if withPeer {
		if p, err := e.vncPeer(ctx); err != nil {
			e.fail(key(scenario, clientVNC), err)
		} else if x, y, err := p.centre(ctx); err != nil {
			e.fail(key(scenario, clientVNC), err)
		} else {
			pin := gesture{kind: inClick, x: x, y: y}
			pch := change(Rect{X: int(x) - 80, Y: int(y) - 80, W: 160, H: 160})
			ss = append(ss, sampler{clientVNC, func(ctx context.Context) (time.Duration, error) { return p.measure(ctx, pin, pch) }})
		}
	}
	return ss
}

// probeNotes notes how many samples of the terminals' probes were timed
// from the probe's arming because the input event was not seen.
func (e *env) probeNotes(scenario string) {
	for _, t := range []*terminal{e.viewTerminal(), e.peerTerminal()} {
		if t != nil && t.unstamped > 0 {
			e.res.Notes = append(e.res.Notes, fmt.Sprintf("%s, %s: %d samples were timed from just before the input was sent, "+
				"the input event not being seen", scenario, t.name, t.unstamped))
			t.unstamped = 0
		}
	}
}

func (e *env) viewTerminal() *terminal {
	if e.view == nil {
		return nil
	}
	return e.view.terminal
}

func (e *env) peerTerminal() *terminal {
	if e.peer == nil {
		return nil
	}
	return e.peer.terminal
}

// noClients is the error of a latency scenario none of whose clients ran.
func (e *env) noClients(scenario string) error {
	var why []string
	for _, c := range []string{clientRaw, clientProtocol, clientViewer} {
		if err, ok := e.res.Errors[key(scenario, c)]; ok {
			why = append(why, c+": "+err)
		}
	}
	return fmt.Errorf("no client could run: %s", strings.Join(why, "; "))
}

// runClick: a mousedown at the centre switches the whole page's colour;
// each client times it to the first frame (or paint) that shows the new
// colour in the centre.
func runClick(ctx context.Context, e *env) error {
	x, y := float64(e.vp.Width/2), float64(e.vp.Height/2)
	in := gesture{kind: inClick, x: x, y: y}
	ch := change(Rect{X: int(x) - 80, Y: int(y) - 80, W: 160, H: 160})
	ss := e.latencySamplers(ctx, "click", pageClick, in, ch, true, nil)
	if len(ss) == 0 {
		return e.noClients("click")
	}
	defer e.probeNotes("click")
	return e.interleave(ctx, "click", ss, e.p.clickN, e.p.batch)
}

// textField is the text page's field in CSS pixels.
var textField = Rect{X: 40, Y: 60, W: 900, H: 360}

// focusText clicks into the text page's field.
func focusText(ctx context.Context, click func(context.Context, float64, float64) error) error {
	return click(ctx, float64(textField.X+textField.W/2), float64(textField.Y+textField.H/2))
}

// runKey: "x" typed into a field of 96-pixel letters; timed to the first
// frame (or paint) that shows the letter.
func runKey(ctx context.Context, e *env) error {
	ss := e.latencySamplers(ctx, "key", pageText, gesture{kind: inKey, key: keyX}, change(textField), false, focusText)
	if len(ss) == 0 {
		return e.noClients("key")
	}
	defer e.probeNotes("key")
	return e.interleave(ctx, "key", ss, e.p.keyN, e.p.batch)
}

// runIME: にほんご composed, then 日本語 committed; timed from the commit
// to the first frame (or paint) that shows the committed text.
func runIME(ctx context.Context, e *env) error {
	ss := e.latencySamplers(ctx, "ime", pageText, imeInput, change(textField), false, focusText)
	if len(ss) == 0 {
		return e.noClients("ime")
	}
	defer e.probeNotes("ime")
	return e.interleave(ctx, "ime", ss, e.p.imeN, e.p.batch)
}

// rateClient is a client of a frame-rate scenario.
type rateClient struct {
	client string
	c      *frameClient
}

// rateClients returns the raw baseline and the protocol client showing pg.
func (e *env) rateClients(ctx context.Context, scenario string, pg webPage) ([]rateClient, error) {
	var out []rateClient
	if c, err := e.rawOn(ctx, pg); err != nil {
		e.fail(key(scenario, clientRaw), err)
	} else {
		out = append(out, rateClient{clientRaw, c})
	}
	if c, err := e.protoOn(ctx, pg); err != nil {
		e.fail(key(scenario, clientProtocol), err)
	} else {
		out = append(out, rateClient{clientProtocol, c})
	}
	if len(out) == 0 {
		return nil, e.noClients(scenario)
	}
	return out, nil
}

// window counts the frames and bytes c receives while drive runs for d
// (or, with no drive, during d).
func window(ctx context.Context, c *frameClient, d time.Duration, drive func(ctx context.Context, until time.Time) error) (Rate, error) {
	f0, b0 := c.q.counts()
	t0 := time.Now()
	var err error
	if drive != nil {
		err = drive(ctx, t0.Add(d))
	} else {
		err = sleep(ctx, d)
	}
	f1, b1 := c.q.counts()
	r := Rate{Seconds: time.Since(t0).Seconds(), Frames: f1 - f0, Bytes: b1 - b0}
	return Rate{}.add(r), err
}

// runRates runs the windows of a frame-rate scenario, A B A B. before and
// after run around each window (untimed); measure wraps the window of the
// protocol client (the broker's CPU time).
func (e *env) runRates(ctx context.Context, scenario string, pg webPage,
	before, after func(ctx context.Context, c *frameClient, round int) error,
	drive func(c *frameClient, round int) func(ctx context.Context, until time.Time) error) error {
	clients, err := e.rateClients(ctx, scenario, pg)
	if err != nil {
		return err
	}
	var cpu, idleCPU time.Duration
	var cpuFrames int64
	var cpuSeconds, idleSeconds float64
	for round := range e.p.rounds {
		for _, rc := range clients {
			k := key(scenario, rc.client)
			if _, failed := e.res.Errors[k]; failed {
				continue
			}
			if err := rc.c.q.quiet(ctx, 500*time.Millisecond); err != nil {
				e.fail(k, err)
				continue
			}
			if before != nil {
				if err := before(ctx, rc.c, round); err != nil {
					e.fail(k, err)
					continue
				}
			}
			var cpu0 cpuSample
			measureCPU := (scenario == "animation" || scenario == "static") && rc.client == clientProtocol && e.broker != nil
			if measureCPU {
				cpu0, _ = sampleCPU(e.broker.pid)
			}
			var dr func(ctx context.Context, until time.Time) error
			if drive != nil {
				dr = drive(rc.c, round)
			}
			r, err := window(ctx, rc.c, e.p.window, dr)
			if measureCPU {
				if cpu1, err := sampleCPU(e.broker.pid); err == nil && cpu0.ticks > 0 {
					if scenario == "static" {
						idleCPU += cpuBetween(cpu0, cpu1)
						idleSeconds += r.Seconds
					} else {
						cpu += cpuBetween(cpu0, cpu1)
						cpuFrames += r.Frames
						cpuSeconds += r.Seconds
					}
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				e.fail(k, err)
				continue
			}
			e.res.Rates[k] = e.res.Rates[k].add(r)
			if after != nil {
				if err := after(ctx, rc.c, round); err != nil {
					e.fail(k, err)
				}
			}
		}
	}
	if scenario == "static" && idleSeconds > 0 {
		v := float64(idleCPU) / float64(time.Millisecond) / idleSeconds
		e.res.BrokerIdleCPUMSPerSec = &v
	}
	if scenario == "animation" {
		switch {
		case e.broker == nil:
			e.fail(keyBrokerCPU, errors.New("needs the bench's own broker, not --target"))
		case cpuFrames == 0:
			e.fail(keyBrokerCPU, errors.New("the protocol client received no frames"))
		default:
			v := float64(cpu) / float64(time.Millisecond) / float64(cpuFrames)
			e.res.BrokerCPUPerFrameMS = &v
			e.res.BrokerCPUFrames = cpuFrames
			e.res.BrokerCPUSeconds = cpuSeconds
			e.res.Notes = append(e.res.Notes, fmt.Sprintf("Broker CPU per frame: the broker process's CPU time (user+system, all its threads; "+
				"its browsers are other processes) while it relayed %d animation frames to the protocol client, divided by those frames. "+
				"Nothing is subtracted: the broker's idle work in that time counts too.", cpuFrames))
		}
	}
	return nil
}

// runAnimation: a CSS animation (transform, composited) runs during each
// window; a mousedown starts it and the next stops it.
func runAnimation(ctx context.Context, e *env) error {
	toggle := func(ctx context.Context, c *frameClient, _ int) error {
		if err := c.click(ctx, 20, float64(e.vp.Height-20)); err != nil {
			return err
		}
		return sleep(ctx, 300*time.Millisecond) // past the start
	}
	stop := func(ctx context.Context, c *frameClient, _ int) error {
		return c.click(ctx, 20, float64(e.vp.Height-20))
	}
	return e.runRates(ctx, "animation", pageAnimation, toggle, stop, nil)
}

// wheelStep is one wheel event's scroll in CSS pixels; wheelInterval is
// how often one is sent, as a wheel turned continuously.
const (
	wheelStep     = 50
	wheelInterval = time.Second / 60
)

// runScroll: wheel events at 60 Hz over a long article, down in even
// rounds and up in odd ones.
func runScroll(ctx context.Context, e *env) error {
	drive := func(c *frameClient, round int) func(ctx context.Context, until time.Time) error {
		dy := float64(wheelStep)
		if round%2 == 1 {
			dy = -dy
		}
		return func(ctx context.Context, until time.Time) error {
			tick := time.NewTicker(wheelInterval)
			defer tick.Stop()
			x, y := float64(e.vp.Width/2), float64(e.vp.Height/2)
			for time.Now().Before(until) {
				if err := c.drv.wheel(ctx, x, y, dy); err != nil {
					return fmt.Errorf("wheel: %w", err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-tick.C:
				}
			}
			return nil
		}
	}
	return e.runRates(ctx, "scroll", pageArticle, nil, nil, drive)
}

// runStatic: a static page, left alone after it has settled.
func runStatic(ctx context.Context, e *env) error {
	settle := func(ctx context.Context, c *frameClient, _ int) error {
		return c.q.quiet(ctx, 2*time.Second)
	}
	return e.runRates(ctx, "static", pageStatic, settle, nil, nil)
}

const mib = 1 << 20

// runMemory opens idle sessions and measures how the broker's resident
// memory grows per session, and the PSS of each session's browser.
func runMemory(ctx context.Context, e *env) error {
	b, err := e.ownBroker(ctx)
	if err != nil {
		return notRunError{err}
	}
	if raw, err := e.rawOn(ctx, pageIdle); err != nil {
		e.fail(keyRawPSS, err)
	} else if err := raw.q.quiet(ctx, time.Second); err != nil {
		e.fail(keyRawPSS, err)
	} else {
		v := float64(sumPSS(browserGroups(listProcs(), os.Getpid())[e.raw.pid])) / mib
		e.res.RawChromiumPSSMiB = &v
	}

	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	before := b.browsers()
	rss0, err := rss(b.pid)
	if err != nil {
		return err
	}
	n := e.p.memorySessions
	conns := make([]*protoConn, 0, n)
	defer func() {
		for _, c := range conns {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = c.logout(lctx)
			cancel()
			c.close()
		}
	}()
	for i := 1; i <= n; i++ {
		c, err := dialProto(ctx, e.base, idleUser(i), e.password, e.nextLocal(), e.vp)
		if err != nil {
			return fmt.Errorf("open idle session %d: %w", i, err)
		}
		conns = append(conns, c)
		fc := &frameClient{name: idleUser(i), vp: e.vp, q: c.q, drv: c}
		if _, err := fc.waitPage(ctx, pageIdle); err != nil {
			return fmt.Errorf("idle session %d: %w", i, err)
		}
	}
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	rss1, err := rss(b.pid)
	if err != nil {
		return err
	}
	per := float64(rss1-rss0) / float64(n) / mib
	e.res.BrokerRSSPerSessionMiB = &per
	var total int64
	groups := 0
	for pid, procs := range b.browsers() {
		if _, old := before[pid]; old {
			continue
		}
		total += sumPSS(procs)
		groups++
	}
	if groups != n {
		e.res.Notes = append(e.res.Notes, fmt.Sprintf("memory: %d idle sessions opened, %d new browsers found", n, groups))
	}
	if groups > 0 {
		v := float64(total) / float64(groups) / mib
		e.res.ChromiumPSSPerSessionMiB = &v
	}
	e.res.Notes = append(e.res.Notes, fmt.Sprintf("Broker memory per session: growth of the broker process's RSS (%.1f → %.1f MiB) "+
		"over %d idle sessions with a connected viewer each, divided by %d; its browsers are other processes. "+
		"Chromium memory per session: PSS (/proc/PID/smaps_rollup) summed over each new session's browser processes "+
		"(the main process, its descendants and its crash handlers), averaged.",
		float64(rss0)/mib, float64(rss1)/mib, n, n))
	return nil
}

// runLogin measures login → the first frame of the start page: cold (the
// broker starts a browser), interleaved with the raw baseline's start of a
// browser to its first frame; then warm, from a broker with a pool.
func runLogin(ctx context.Context, e *env) error {
	b, err := e.ownBroker(ctx)
	if err != nil {
		return notRunError{err}
	}
	for i := range e.p.loginN {
		d, err := e.loginOnce(ctx, b)
		if err != nil {
			return fmt.Errorf("cold login %d: %w", i+1, err)
		}
		e.res.Latency[keyLoginCold] = append(e.res.Latency[keyLoginCold], float64(d)/float64(time.Millisecond))
		d, err = e.rawStartOnce(ctx)
		if err != nil {
			e.fail(keyLoginColdRaw, err)
		} else if _, failed := e.res.Errors[keyLoginColdRaw]; !failed {
			e.res.Latency[keyLoginColdRaw] = append(e.res.Latency[keyLoginColdRaw], float64(d)/float64(time.Millisecond))
		}
	}

	e.log.Info("starting a broker with a warm pool")
	wb, err := e.startBroker(ctx, "broker-pool", warmPool, []string{userLogin})
	if err != nil {
		e.fail(keyLoginWarm, fmt.Errorf("not measured: %w", err))
		return nil
	}
	defer wb.stop()
	if err := waitBrowsers(ctx, wb, warmPool, 60*time.Second); err != nil {
		e.fail(keyLoginWarm, err)
		return nil
	}
	for i := range e.p.loginN {
		if err := sleep(ctx, 2*time.Second); err != nil { // the pool's browsers finish starting
			return err
		}
		d, err := e.loginOnce(ctx, wb)
		if err != nil {
			e.fail(keyLoginWarm, fmt.Errorf("warm login %d: %w", i+1, err))
			return nil
		}
		e.res.Latency[keyLoginWarm] = append(e.res.Latency[keyLoginWarm], float64(d)/float64(time.Millisecond))
	}
	return nil
}

// warmPool is the pool size of the warm-login broker.
const warmPool = 2

// loginOnce logs in to b as the login user, connects, and returns the time
// to the first frame of the start page; then it logs out and waits until
// b runs as many browsers as before.
func (e *env) loginOnce(ctx context.Context, b *brokerProc) (time.Duration, error) {
	before := len(b.browsers())
	c, err := newProtoConn(b.base, userLogin, e.password, e.nextLocal(), e.vp)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := c.login(ctx); err != nil {
		return 0, err
	}
	if err := c.connect(ctx); err != nil {
		return 0, err
	}
	fc := &frameClient{name: "login", vp: e.vp, q: c.q, drv: c}
	at, err := fc.waitPage(ctx, pageIdle)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_ = c.logout(lctx)
	cancel()
	c.close()
	if err != nil {
		return 0, err
	}
	if err := waitBrowsers(ctx, b, before, 30*time.Second); err != nil {
		return 0, err
	}
	return at.Sub(t0), nil
}

// waitBrowsers waits until b runs n browsers.
func waitBrowsers(ctx context.Context, b *brokerProc, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got := len(b.browsers())
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s runs %d browsers after %s, want %d", b.name, got, limit, n)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// rawStartOnce starts a baseline browser and returns the time to the first
// frame of the idle page.
func (e *env) rawStartOnce(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	r, err := startRaw(ctx, e.o.Chromium, e.pages.Addr(), e.vp, e.o.Screencast)
	if err != nil {
		return 0, err
	}
	defer r.close()
	c := &frameClient{name: "raw CDP start", vp: e.vp, q: r.q, drv: r}
	if err := r.navigate(ctx, e.pages.URL(pageIdle)); err != nil {
		return 0, err
	}
	at, err := c.waitPage(ctx, pageIdle)
	if err != nil {
		return 0, err
	}
	return at.Sub(t0), nil
}

// runCapacity adds idle sessions step by step and measures the active
// session's click latency and the node's memory at each step, until the
// node refuses a session or MaxSessions is reached.
func runCapacity(ctx context.Context, e *env) error {
	b, err := e.ownBroker(ctx)
	if err != nil {
		return notRunError{err}
	}
	c, err := e.protoOn(ctx, pageClick)
	if err != nil {
		return err
	}
	x, y := float64(e.vp.Width/2), float64(e.vp.Height/2)
	in := gesture{kind: inClick, x: x, y: y}
	ch := change(Rect{X: int(x) - 80, Y: int(y) - 80, W: 160, H: 160})
	point := func(n int) error {
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
		var xs []float64
		timeouts := 0
		for len(xs) < e.p.capacityN {
			if err := sleep(ctx, time.Duration(20+rand.IntN(60))*time.Millisecond); err != nil {
				return err
			}
			d, err := c.measure(ctx, in, ch)
			switch {
			case err == nil:
				xs = append(xs, float64(d)/float64(time.Millisecond))
			case errors.Is(err, errNoChange) && ctx.Err() == nil:
				if timeouts++; timeouts > e.p.capacityN/4 {
					return fmt.Errorf("with %d idle sessions, %d clicks showed no change", n, timeouts)
				}
			default:
				return fmt.Errorf("with %d idle sessions: %w", n, err)
			}
		}
		p := CapacityPoint{Sessions: n, Click: Summarize(xs)}
		if used, _, err := nodeMemory(); err == nil {
			p.NodeMemoryMiB = float64(used) / mib
		}
		if v, err := rss(b.pid); err == nil {
			p.BrokerRSSMiB = float64(v) / mib
		}
		var pssTotal int64
		for _, procs := range b.browsers() {
			pssTotal += sumPSS(procs)
		}
		p.ChromiumPSSMiB = float64(pssTotal) / mib
		e.res.Capacity = append(e.res.Capacity, p)
		e.log.Info("capacity", "idle_sessions", n, "click_p95_ms", p.Click.P95, "node_memory_mib", int(p.NodeMemoryMiB))
		return nil
	}
	if err := point(0); err != nil {
		return err
	}
	var conns []*protoConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for _, level := range e.p.levels {
		for len(conns) < level {
			i := len(conns) + 1
			cc, err := dialProto(ctx, e.base, idleUser(i), e.password, e.nextLocal(), e.vp)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				msg := err.Error()
				if strings.Contains(msg, "1013") || strings.Contains(msg, "full") {
					e.res.CapacityEnd = fmt.Sprintf("the node refused idle session %d: %s", i, msg)
				} else {
					e.res.CapacityEnd = fmt.Sprintf("idle session %d failed: %s", i, msg)
				}
				return nil
			}
			conns = append(conns, cc)
		}
		if err := point(level); err != nil {
			return err
		}
	}
	e.res.CapacityEnd = fmt.Sprintf("stopped at --max-sessions %d; the node had not refused a session", e.o.MaxSessions)
	return nil
}
