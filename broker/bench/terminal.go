package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// terminal is a headless Chromium that plays the clinician's terminal: it
// shows a client page with a canvas (shoji's viewer, or the VNC peer's
// noVNC page) and the bench drives it through CDP as a mouse and keyboard
// would. Latencies are measured inside it, in its own clock: from the
// input event's timestamp to the first canvas paint that shows the change,
// seen by probeJS.
type terminal struct {
	name    string
	dir     string
	ctx     context.Context // the tab; no deadline
	cancel  context.CancelFunc
	acancel context.CancelFunc
	pid     int
	// canvas is the CSS selector of the client's canvas.
	canvas string
	// unstamped counts the samples whose input event the probe did not
	// see, timed from the probe's arming instead.
	unstamped int
}

// startTerminal starts a terminal browser with a window of w×h CSS pixels.
func startTerminal(ctx context.Context, name, chromium string, w, h int) (*terminal, error) {
	dir, err := os.MkdirTemp("", "shoji-bench-term-")
	if err != nil {
		return nil, fmt.Errorf("%s: profile: %w", name, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(w, h),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
		}),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	t := &terminal{name: name, dir: dir}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.ctx, t.cancel = chromedp.NewContext(actx)
	t.acancel = acancel
	stop := context.AfterFunc(ctx, t.cancel)
	err = chromedp.Do(t.ctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		t.close()
		return nil, fmt.Errorf("%s: start Chromium: %w", name, err)
	}
	if p := chromedp.FromContext(t.ctx).Browser.Process(); p != nil {
		t.pid = p.Pid
	}
	if err := t.installWire(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// do runs actions on the terminal's page.
func (t *terminal) do(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return nil
}

// evalIn evaluates expr in t's page, awaiting a promise.
func evalIn[T any](ctx context.Context, t *terminal, expr string) (T, error) {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("%s: evaluate: %w", t.name, err)
	}
	return v, nil
}

// waitJS polls a JavaScript condition in t's page.
func (t *terminal) waitJS(ctx context.Context, what, cond string) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		return fmt.Errorf("%s: waiting for %s: %w", t.name, what, err)
	}
	return nil
}

// close ends the browser and removes its profile.
func (t *terminal) close() {
	t.cancel()
	t.acancel()
	if t.pid > 0 {
		_ = syscall.Kill(-t.pid, syscall.SIGKILL)
	}
	killProfile(t.dir)
	_ = os.RemoveAll(t.dir)
}

// probeJS installs window.__shojiBench in a client page. A
// requestAnimationFrame loop queues a check after each frame's rendering
// (a task queued from a frame callback runs once that frame's callbacks,
// the client's drawing among them, and its paint are done); while a
// measurement is armed, the check compares the canvas's pixels in the
// measured rectangle with the reference taken when it was armed, by the
// rule of Change. The input's time is the timeStamp of its DOM event,
// caught first in the capture phase on window. Both times are the page's
// performance.now() clock.
const probeJS = `(() => {
  if (window.__shojiBench) return true;
  const P = {armed: null, watch: null};
  for (const type of ['mousedown', 'keydown', 'compositionend']) {
    window.addEventListener(type, (e) => {
      const a = P.armed;
      if (a && a.event === type && a.input === null) a.input = e.timeStamp;
    }, true);
  }
  function grab(o) {
    const c = document.querySelector(o.sel);
    if (!c || !c.width || !c.height) return null;
    const b = c.getBoundingClientRect();
    if (!b.width) return null;
    const s = c.width / b.width;
    const x = Math.max(0, Math.round(o.rect.x * s)), y = Math.max(0, Math.round(o.rect.y * s));
    const w = Math.min(c.width - x, Math.round(o.rect.w * s)), h = Math.min(c.height - y, Math.round(o.rect.h * s));
    if (w <= 0 || h <= 0) return null;
    return c.getContext('2d').getImageData(x, y, w, h);
  }
  function count(ref, cur, step, delta) {
    if (!ref || !cur) return 0;
    if (ref.width !== cur.width || ref.height !== cur.height) return Infinity;
    let n = 0;
    const d = cur.data, r = ref.data;
    for (let y = 0; y < cur.height; y += step) {
      for (let x = 0; x < cur.width; x += step) {
        const i = (y * cur.width + x) * 4;
        if (Math.abs(d[i] - r[i]) > delta || Math.abs(d[i+1] - r[i+1]) > delta || Math.abs(d[i+2] - r[i+2]) > delta) n++;
      }
    }
    return n;
  }
  function result(a) { return {armedAt: a.armedAt, input: a.input, paint: a.paint}; }
  P.arm = (o) => {
    P.armed = Object.assign({}, o, {ref: grab(o), armedAt: performance.now(), input: null, paint: null, done: null});
    return P.armed.ref !== null;
  };
  P.wait = (ms) => new Promise((resolve) => {
    const a = P.armed;
    if (!a) return resolve(null);
    if (a.paint !== null) return resolve(result(a));
    const timer = setTimeout(() => { a.done = null; resolve(null); }, ms);
    a.done = () => { clearTimeout(timer); resolve(result(a)); };
  });
  P.settle = (o, quiet, ms) => new Promise((resolve) => {
    const now = performance.now();
    P.watch = {o: o, last: grab(o), since: now, quiet: quiet, until: now + ms, resolve: resolve};
  });
  function check() {
    const now = performance.now();
    const a = P.armed;
    if (a && a.paint === null && count(a.ref, grab(a), a.step, a.delta) >= a.min) {
      a.paint = now;
      if (a.done) a.done();
    }
    const w = P.watch;
    if (w) {
      const cur = grab(w.o);
      if (cur === null || w.last === null || count(w.last, cur, w.o.step, 8) > 0) { w.last = cur; w.since = now; }
      else if (now - w.since >= w.quiet) { P.watch = null; w.resolve(true); return; }
      if (now > w.until) { P.watch = null; w.resolve(false); }
    }
  }
  function tick() { requestAnimationFrame(tick); setTimeout(check, 0); }
  requestAnimationFrame(tick);
  window.__shojiBench = P;
  return true;
})()`

// probeResult is what __shojiBench.wait returns, in milliseconds of the
// page's clock.
type probeResult struct {
	ArmedAt float64  `json:"armedAt"`
	Input   *float64 `json:"input"`
	Paint   float64  `json:"paint"`
}

// probeArgs are the arguments of __shojiBench.arm and settle.
type probeArgs struct {
	Sel   string   `json:"sel"`
	Rect  jsonRect `json:"rect"`
	Event string   `json:"event"`
	Step  int      `json:"step"`
	Delta int      `json:"delta"`
	Min   int      `json:"min"`
}

type jsonRect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

func (t *terminal) probeArgs(ch Change, event string) string {
	b, _ := json.Marshal(probeArgs{
		Sel: t.canvas, Rect: jsonRect(ch.Rect), Event: event,
		Step: max(ch.Step, 1), Delta: ch.Delta, Min: max(ch.MinPixels, 1),
	})
	return string(b)
}

// installProbe installs probeJS in the current page.
func (t *terminal) installProbe(ctx context.Context) error {
	_, err := evalIn[bool](ctx, t, probeJS)
	return err
}

// settle waits until the canvas's pixels in ch's rectangle stand still.
func (t *terminal) settle(ctx context.Context, ch Change) error {
	ok, err := evalIn[bool](ctx, t, fmt.Sprintf(`window.__shojiBench.settle(%s, %d, %d)`,
		t.probeArgs(ch, ""), quietTime.Milliseconds(), (10*time.Second).Milliseconds()))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: the canvas never stood still", t.name)
	}
	return nil
}

// canvasBox returns the canvas's top-left corner in the page and its CSS
// size.
func (t *terminal) canvasBox(ctx context.Context) (x, y, w, h float64, err error) {
	r, err := evalIn[[]float64](ctx, t, fmt.Sprintf(`(() => { const c = document.querySelector(%q); if (!c) return [0,0,0,0];
		const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`, t.canvas))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if len(r) != 4 || r[2] == 0 {
		return 0, 0, 0, 0, fmt.Errorf("%s: no canvas %s on the page", t.name, t.canvas)
	}
	return r[0], r[1], r[2], r[3], nil
}

// measure sends in to the client page (a click at x, y of the canvas in
// CSS pixels, a key, or an IME commit into the focused element) and returns
// the time from the input event to the first paint of the canvas that
// shows ch (canvas CSS pixels).
func (t *terminal) measure(ctx context.Context, in gesture, ch Change) (time.Duration, error) {
	if in.kind == inIME {
		for _, s := range in.compose {
			if err := t.ime(ctx, s); err != nil {
				return 0, err
			}
		}
	}
	if err := t.settle(ctx, ch); err != nil {
		return 0, err
	}
	var cx, cy float64
	if in.kind == inClick {
		ox, oy, _, _, err := t.canvasBox(ctx)
		if err != nil {
			return 0, err
		}
		cx, cy = ox+in.x, oy+in.y
	}
	event := map[inputKind]string{inClick: "mousedown", inKey: "keydown", inIME: "compositionend"}[in.kind]
	armed, err := evalIn[bool](ctx, t, fmt.Sprintf(`window.__shojiBench.arm(%s)`, t.probeArgs(ch, event)))
	if err != nil {
		return 0, err
	}
	if !armed {
		return 0, fmt.Errorf("%s: the canvas %s has nothing to compare", t.name, t.canvas)
	}
	if err := t.press(ctx, in, cx, cy); err != nil {
		return 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = t.release(rctx, in, cx, cy)
		cancel()
	}()
	res, err := evalIn[*probeResult](ctx, t, fmt.Sprintf(`window.__shojiBench.wait(%d)`, sampleTimeout.Milliseconds()))
	if err != nil {
		return 0, err
	}
	if res == nil {
		return 0, errNoChange
	}
	from := res.ArmedAt
	if res.Input != nil {
		from = *res.Input
	} else {
		t.unstamped++
	}
	return time.Duration((res.Paint - from) * float64(time.Millisecond)), nil
}

// press dispatches the timed input into the terminal page: the mouse
// button or key goes down, or an IME commit is inserted.
func (t *terminal) press(ctx context.Context, in gesture, x, y float64) error {
	if err := t.dispatch(ctx, in, x, y, true); err != nil {
		return fmt.Errorf("%s: input: %w", t.name, err)
	}
	return nil
}

// release lets go of what press pressed (nothing for an IME commit).
func (t *terminal) release(ctx context.Context, in gesture, x, y float64) error {
	return t.dispatch(ctx, in, x, y, false)
}

// dispatch sends the down (press) or up (release) half of the gesture.
func (t *terminal) dispatch(ctx context.Context, in gesture, x, y float64, down bool) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	tgt := chromedp.FromContext(t.ctx).Target
	mouse, buttons, key := input.DispatchMouseEventTypeMouseReleased, int64(0), input.DispatchKeyEventTypeKeyUp
	if down {
		mouse, buttons, key = input.DispatchMouseEventTypeMousePressed, 1, input.DispatchKeyEventTypeKeyDown
	}
	var err error
	switch {
	case in.kind == inClick:
		_, err = cdp.Call(ctx, tgt, input.DispatchMouseEvent, mouseParams(mouse, x, y, buttons))
	case in.kind == inKey:
		_, err = cdp.Call(ctx, tgt, input.DispatchKeyEvent, keyParams(key, in.key))
	case in.kind == inIME && down:
		_, err = cdp.Call(ctx, tgt, input.InsertText, input.InsertTextParams{Text: in.commit})
	}
	return err
}

// ime sets the terminal's IME composition, as a Japanese IME does while
// the clinician types.
func (t *terminal) ime(ctx context.Context, text string) error {
	ctx, cancel := derive(t.ctx, ctx)
	defer cancel()
	n := int64(len([]rune(text)))
	_, err := cdp.Call(ctx, chromedp.FromContext(t.ctx).Target, input.ImeSetComposition, input.ImeSetCompositionParams{Text: text, SelectionStart: n, SelectionEnd: n})
	if err != nil {
		return fmt.Errorf("%s: compose %q: %w", t.name, text, err)
	}
	return nil
}

// clickAt clicks the terminal page at x, y (page CSS pixels), untimed.
func (t *terminal) clickAt(ctx context.Context, x, y float64) error {
	return t.do(ctx, chromedp.MouseClickXY(x, y))
}
