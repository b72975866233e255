package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// wireJS counts, in every document of a terminal browser, the payload
// bytes and messages of every WebSocket the client page opens (received,
// and sent upstream), and the animation frames in which the page drew on
// a canvas that is in the document (the canvas updates the clinician
// sees). It runs before the page's own scripts (Page.addScriptToEvaluate
// OnNewDocument), so the client's WebSocket is the counting subclass.
// Payload bytes are what the messages carry: a string's UTF-8 bytes, a
// Blob's or an ArrayBuffer's size; WebSocket framing and TCP are not
// counted.
const wireJS = `(() => {
  if (window.__shojiWire || !window.WebSocket) return;
  const n = {rx: 0, rxMsgs: 0, tx: 0, txMsgs: 0, paints: 0};
  const enc = new TextEncoder();
  const size = (d) => typeof d === 'string' ? enc.encode(d).length : (d instanceof Blob ? d.size : (d && d.byteLength) || 0);
  const W = window.WebSocket;
  const send = W.prototype.send;
  W.prototype.send = function (d) { n.tx += size(d); n.txMsgs++; return send.call(this, d); };
  // A constructor that returns the real WebSocket, not a subclass: noVNC
  // checks that its socket's prototype has WebSocket's own properties.
  function CountingWebSocket(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', (e) => { n.rx += size(e.data); n.rxMsgs++; });
    return ws;
  }
  CountingWebSocket.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) CountingWebSocket[k] = W[k];
  window.WebSocket = CountingWebSocket;
  let drew = false;
  const C = window.CanvasRenderingContext2D && CanvasRenderingContext2D.prototype;
  for (const m of C ? ['drawImage', 'putImageData', 'fillRect'] : []) {
    const f = C[m];
    C[m] = function (...args) { if (this.canvas && this.canvas.isConnected) drew = true; return f.apply(this, args); };
  }
  const tick = () => { if (drew) { n.paints++; drew = false; } requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__shojiWire = n;
})()`

// wireCount is what wireJS has counted in a terminal page so far.
type wireCount struct {
	RX     int64 `json:"rx"`
	RXMsgs int64 `json:"rxMsgs"`
	TX     int64 `json:"tx"`
	TXMsgs int64 `json:"txMsgs"`
	Paints int64 `json:"paints"`
}

// sub returns what was counted between b and a (a later).
func (a wireCount) sub(b wireCount) wireCount {
	return wireCount{RX: a.RX - b.RX, RXMsgs: a.RXMsgs - b.RXMsgs, TX: a.TX - b.TX, TXMsgs: a.TXMsgs - b.TXMsgs, Paints: a.Paints - b.Paints}
}

// installWire makes wireJS run in every document t opens from now on.
func (t *terminal) installWire(ctx context.Context) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	_, err := cdp.Call(ctx, chromedp.FromContext(t.ctx).Target, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: wireJS})
	if err != nil {
		return fmt.Errorf("%s: install the WebSocket counter: %w", t.name, err)
	}
	return nil
}

// wire reads the counters of t's page.
func (t *terminal) wire(ctx context.Context) (wireCount, error) {
	w, err := evalIn[*wireCount](ctx, t, `window.__shojiWire ? Object.assign({}, window.__shojiWire) : null`)
	if err != nil {
		return wireCount{}, err
	}
	if w == nil {
		return wireCount{}, fmt.Errorf("%s: the page has no WebSocket counter", t.name)
	}
	return *w, nil
}

// wireQuiet waits until t has received nothing for quiet, at most limit.
func (t *terminal) wireQuiet(ctx context.Context, quiet, limit time.Duration) error {
	last, err := t.wire(ctx)
	if err != nil {
		return err
	}
	since, deadline := time.Now(), time.Now().Add(limit)
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still receiving after %s", t.name, limit)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
		cur, err := t.wire(ctx)
		if err != nil {
			return err
		}
		if cur.RX != last.RX {
			last, since = cur, time.Now()
		}
	}
	return nil
}

// clickCanvas clicks the remote screen at x, y (canvas CSS pixels, which
// are remote CSS pixels for both clients), untimed.
func (t *terminal) clickCanvas(ctx context.Context, x, y float64) error {
	ox, oy, _, _, err := t.canvasBox(ctx)
	if err != nil {
		return err
	}
	return t.clickAt(ctx, ox+x, oy+y)
}

// wheelCanvas turns the wheel by dy CSS pixels over the canvas's centre.
func (t *terminal) wheelCanvas(ctx context.Context, dy float64) error {
	ox, oy, w, h, err := t.canvasBox(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	// Chromium wants both deltas, and cdproto leaves out a zero one.
	p := map[string]any{"type": "mouseWheel", "x": ox + w/2, "y": oy + h/2, "deltaX": 0, "deltaY": dy, "pointerType": "mouse"}
	if err := chromedp.FromContext(t.ctx).Target.Call(ctx, input.DispatchMouseEvent.Method, p, nil); err != nil {
		return fmt.Errorf("%s: wheel: %w", t.name, err)
	}
	return nil
}

// typeKey presses and releases k.
func (t *terminal) typeKey(ctx context.Context, k keySpec) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	tgt := chromedp.FromContext(t.ctx).Target
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := cdp.Call(ctx, tgt, input.DispatchKeyEvent, keyParams(typ, k)); err != nil {
			return fmt.Errorf("%s: key %q: %w", t.name, k.key, err)
		}
	}
	return nil
}

// procKey names one process even after its PID is reused.
type procKey struct {
	pid   int
	start uint64
}

// treeCPU returns the CPU time (user+system) of the processes roots and
// their descendants in all, by process.
func treeCPU(all []procStat, roots []int) map[procKey]time.Duration {
	out := map[procKey]time.Duration{}
	byPID := map[int]procStat{}
	for _, p := range all {
		byPID[p.PID] = p
	}
	for _, r := range roots {
		if p, ok := byPID[r]; ok {
			out[procKey{p.PID, p.Start}] = p.CPU
		}
		for _, d := range descendants(all, r) {
			out[procKey{d.PID, d.Start}] = d.CPU
		}
	}
	return out
}

// cpuUsed returns the CPU time the processes used between the snapshots a
// and b: a process in both counts its growth, one started since counts
// all of its time. A process that ended in between is not in b and its
// last part is lost: /proc has no record of it.
func cpuUsed(a, b map[procKey]time.Duration) time.Duration {
	var d time.Duration
	for k, v := range b {
		if old, ok := a[k]; ok {
			if v > old {
				d += v - old
			}
			continue
		}
		d += v
	}
	return d
}

// Units of the bandwidth workloads' figures.
const (
	unitSecond    = "s"
	unitScroll    = "1000 px"
	unitCharacter = "character"
)

// bwWorkload is one workload of the bandwidth scenario.
type bwWorkload struct {
	name, title string
	page        webPage
	// unit is what bytes are counted per: a second, 1000 CSS pixels
	// scrolled, or a typed character.
	unit string
	// settle: the page stands still between windows; each window starts
	// once the client has received nothing for a while, and ends once it
	// has received the last of what the input caused.
	settle bool
	// drive sends the workload's input for a window (nil: it only waits
	// for the window) and returns the characters it typed.
	drive func(ctx context.Context, e *env, t *terminal, round int) (chars int, err error)
}

// bwWorkloads are the bandwidth scenario's workloads, in the order they
// run.
var bwWorkloads = []bwWorkload{
	{name: "still", title: "still page", page: pageStatic, unit: unitSecond, settle: true},
	{name: "scroll", title: "wheel scrolling a long article", page: pageScrollArticle, unit: unitScroll, settle: true, drive: driveScroll},
	{name: "typing", title: "typing into a text area, 10 characters/s", page: pageTyping, unit: unitCharacter, settle: true, drive: driveTyping},
	{name: "spinner", title: "100×100 spinner on a still page", page: pageSpinner, unit: unitSecond},
	{name: "full", title: "page-sized animation (canvas)", page: pageFullAnimation, unit: unitSecond},
	{name: "video", title: "640×360 video (WebM)", page: pageVideo, unit: unitSecond},
}

// bwStillWindow is one window of a workload without input, and bwChars
// the characters typed per window; bwWindow is the plan's scroll window.
func (e *env) bwStillWindow() time.Duration {
	if e.o.Quick {
		return 3 * time.Second
	}
	return 10 * time.Second
}

func (e *env) bwChars() int {
	if e.o.Quick {
		return 20
	}
	return 200
}

// typingInterval is the typing workload's pace: 10 characters a second.
const typingInterval = 100 * time.Millisecond

// driveScroll turns the wheel at 60 Hz for a window (down in even rounds,
// up in odd ones), as the scroll scenario does.
func driveScroll(ctx context.Context, e *env, t *terminal, round int) (int, error) {
	dy := float64(wheelStep)
	if round%2 == 1 {
		dy = -dy
	}
	until := time.Now().Add(e.p.window)
	tick := time.NewTicker(wheelInterval)
	defer tick.Stop()
	for time.Now().Before(until) {
		if err := t.wheelCanvas(ctx, dy); err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
	return 0, nil
}

// driveTyping types bwChars characters at 10 a second into the text area.
func driveTyping(ctx context.Context, e *env, t *terminal, _ int) (int, error) {
	text := typingText(e.bwChars())
	tick := time.NewTicker(typingInterval)
	defer tick.Stop()
	for i, r := range text {
		k, err := typingKey(r)
		if err != nil {
			return i, err
		}
		if err := t.typeKey(ctx, k); err != nil {
			return i, err
		}
		select {
		case <-ctx.Done():
			return i + 1, ctx.Err()
		case <-tick.C:
		}
	}
	return len(text), nil
}

// bwClient is a terminal of the bandwidth scenario and the processes on
// the node that serve it.
type bwClient struct {
	client string // clientViewer or clientVNC
	t      *terminal
	node   []int // roots of the node's processes of this session
}

func bandwidthLimit(e *env) time.Duration {
	per := 2*e.bwStillWindow() + e.p.window + time.Duration(e.bwChars())*typingInterval
	return 10*time.Minute + time.Duration(e.bwRounds()*len(bwWorkloads))*2*(per+2*time.Minute)
}

// bwRounds is how many windows each client gets per workload (typing
// gets one).
func (e *env) bwRounds() int {
	if e.o.Quick {
		return 1
	}
	return 2
}

// runBandwidth measures, at the terminal, what shoji's real viewer and the
// VNC peer receive and send over their WebSocket for each workload, and
// the node's CPU time for the session, interleaved: for each workload,
// shoji's window, the peer's, again.
func runBandwidth(ctx context.Context, e *env) error {
	b, err := e.ownBroker(ctx)
	if err != nil {
		return notRunError{err}
	}
	// The broker's processes are counted as the session's: only the real
	// viewer's session may run.
	e.dropProto(ctx)
	ran := 0
	for _, w := range bwWorkloads {
		var clients []bwClient
		if v, err := e.viewerOn(ctx, w.page); err != nil {
			e.fail(key(bwKey(w.name), clientViewer), err)
		} else {
			clients = append(clients, bwClient{clientViewer, v.terminal, []int{b.pid}})
		}
		if p, err := e.vncPeerOn(ctx, w.page); err != nil {
			e.fail(key(bwKey(w.name), clientVNC), err)
		} else {
			clients = append(clients, bwClient{clientVNC, p.terminal, p.pids})
		}
		if n := len(b.browsers()); n != 1 {
			e.res.Notes = append(e.res.Notes, fmt.Sprintf("bandwidth, %s: the broker ran %d browsers; its CPU figure counts them all", w.name, n))
		}
		rounds := e.bwRounds()
		if w.name == "typing" {
			rounds = 1
		}
		for _, c := range clients {
			if w.name == "typing" {
				// The text area takes the keys: a click into it focuses it
				// and, on the peer, noVNC's canvas.
				if err := c.t.clickCanvas(ctx, 400, 200); err != nil {
					e.fail(key(bwKey(w.name), c.client), err)
				}
			}
		}
		for round := range rounds {
			for _, c := range clients {
				k := key(bwKey(w.name), c.client)
				if _, failed := e.res.Errors[k]; failed {
					continue
				}
				s, err := e.bwWindow(ctx, w, c, round)
				if err != nil {
					if ctx.Err() != nil {
						return err
					}
					e.fail(k, err)
					continue
				}
				e.res.Bandwidth[k] = e.res.Bandwidth[k].add(s)
				ran++
			}
		}
	}
	if ran == 0 {
		return errors.New("no window of any workload could be measured; see the series' errors")
	}
	e.res.Notes = append(e.res.Notes, "Bandwidth: WebSocket payload bytes and messages counted in the terminal browser's page "+
		"(a WebSocket constructor installed before the client's scripts; framing and TCP not counted), for shoji's real viewer "+
		"and the VNC peer's noVNC, on the same pages. Canvas updates: the terminal's animation frames in which the client drew on its visible canvas. "+
		"Node CPU: utime+stime from /proc over the window, of the broker and its browser (shoji; one session) or of Xvfb, x11vnc, "+
		"websockify and the peer's Chromium with their descendants (the peer), divided by the window's wall time.")
	return nil
}

// bwKey is the scenario part of a bandwidth series' key:
// "bandwidth-typing/viewer".
func bwKey(workload string) string { return "bandwidth-" + workload }

// dropProto logs the protocol client out, so that the broker runs only
// the sessions a scenario measures; a later scenario connects it again.
func (e *env) dropProto(ctx context.Context) {
	if e.proto == nil {
		return
	}
	e.log.Info("logging the protocol client out")
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_ = e.proto.logout(lctx)
	cancel()
	e.proto.close()
	e.proto, e.protoC, e.protoPg = nil, nil, ""
	delete(e.failed, "protocol")
	if e.broker != nil {
		_ = waitBrowsers(ctx, e.broker, len(e.broker.browsers())-1, 30*time.Second)
	}
}

// bwWindow measures one window of w on c.
func (e *env) bwWindow(ctx context.Context, w bwWorkload, c bwClient, round int) (BandwidthSample, error) {
	if w.settle {
		if err := c.t.wireQuiet(ctx, time.Second, 60*time.Second); err != nil {
			return BandwidthSample{}, err
		}
	} else if err := sleep(ctx, time.Second); err != nil {
		return BandwidthSample{}, err
	}
	who := map[string]string{clientViewer: "shoji", clientVNC: "vnc"}[c.client]
	var px0 float64
	if w.unit == unitScroll {
		var err error
		if px0, err = e.pages.scrolled.settled(ctx, who, 700*time.Millisecond, 10*time.Second); err != nil {
			return BandwidthSample{}, err
		}
	}
	w0, err := c.t.wire(ctx)
	if err != nil {
		return BandwidthSample{}, err
	}
	all := listProcs()
	node0, term0 := treeCPU(all, c.node), treeCPU(all, []int{c.t.pid})
	t0 := time.Now()
	chars := 0
	if w.drive != nil {
		chars, err = w.drive(ctx, e, c.t, round)
	} else {
		err = sleep(ctx, e.bwStillWindow())
	}
	if err != nil {
		return BandwidthSample{}, err
	}
	wd, err := c.t.wire(ctx)
	if err != nil {
		return BandwidthSample{}, err
	}
	driven := time.Since(t0)
	if w.settle {
		// What the last input caused still arrives: on a busy machine the
		// browser may still be working through the wheel events.
		if err := c.t.wireQuiet(ctx, time.Second, 60*time.Second); err != nil {
			return BandwidthSample{}, err
		}
	}
	w1, err := c.t.wire(ctx)
	if err != nil {
		return BandwidthSample{}, err
	}
	all = listProcs()
	node1, term1 := treeCPU(all, c.node), treeCPU(all, []int{c.t.pid})
	wall := time.Since(t0)
	d := w1.sub(w0)
	s := BandwidthSample{
		Windows: 1, Seconds: wall.Seconds(), DriveSeconds: driven.Seconds(),
		RXBytes: d.RX, RXMessages: d.RXMsgs, TXBytes: d.TX, TXMessages: d.TXMsgs, CanvasUpdates: wd.sub(w0).Paints,
		NodeCPUSeconds: cpuUsed(node0, node1).Seconds(), TerminalCPUSeconds: cpuUsed(term0, term1).Seconds(),
	}
	switch w.unit {
	case unitSecond:
		s.Units = s.Seconds
	case unitCharacter:
		s.Units = float64(chars)
	case unitScroll:
		px1, err := e.pages.scrolled.settled(ctx, who, 700*time.Millisecond, 10*time.Second)
		if err != nil {
			return BandwidthSample{}, err
		}
		if px1 <= px0 {
			return BandwidthSample{}, fmt.Errorf("the article reported no scrolling (%.0f px before the window, %.0f after)", px0, px1)
		}
		s.Units = (px1 - px0) / 1000
	}
	return s, nil
}
