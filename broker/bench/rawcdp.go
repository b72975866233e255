package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	cdptarget "github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// rawBrowser is the baseline: a Chromium with the flags, viewport and
// screencast settings of shoji's browsers, whose screencast the bench reads
// straight over CDP with no broker, WebSocket or viewer in between. What it
// measures is the limit of a screencast design on this machine. It
// implements frameDriver.
//
// Frames are timestamped in chromedp's listener, as they arrive, and
// acknowledged at once by the ack goroutine, which ends with the browser.
type rawBrowser struct {
	dir      string
	ctx      context.Context // the tab's chromedp context; no deadline
	cancel   context.CancelFunc
	acancel  context.CancelFunc
	target   *chromedp.Target
	pid      int
	vp       isolation.Viewport
	sc       Screencast
	q        *frameQueue
	acks     chan int64
	ackDone  chan struct{}
	launched time.Duration // from the start of the process to its first tab
}

// ackBacklog bounds the frames awaiting their acknowledgement. Chromium
// sends at most MaxFramesInFlight unacknowledged frames, so it never fills.
const ackBacklog = 64

// rawMode is what a baseline browser is started for.
type rawMode struct {
	// screencast starts the screencast, as shoji does for a tab: the
	// baseline proper. Without it the browser sends no frames by itself and
	// is pictured on demand (Page.captureScreenshot).
	screencast bool
	// beginFrame adds --enable-begin-frame-control and drives a tab created
	// with Target.createTarget{enableBeginFrameControl: true}, whose frames
	// only HeadlessExperimental.beginFrame produces.
	beginFrame bool
	// settings are the screencast's.
	settings Screencast
}

// startRaw starts the baseline browser. Its traffic goes through proxyAddr
// (the page server); it opens nothing until open.
func startRaw(ctx context.Context, chromium, proxyAddr string, vp isolation.Viewport, sc Screencast) (*rawBrowser, error) {
	return startRawMode(ctx, chromium, proxyAddr, vp, rawMode{screencast: true, settings: sc})
}

// startRawMode starts a browser with the baseline's flags for m.
func startRawMode(ctx context.Context, chromium, proxyAddr string, vp isolation.Viewport, m rawMode) (*rawBrowser, error) {
	dir, err := os.MkdirTemp("", "shoji-bench-raw-")
	if err != nil {
		return nil, fmt.Errorf("raw baseline profile: %w", err)
	}
	cfg := chrome.Config{ProfileRoot: filepath.Dir(dir)}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("raw baseline flags: %w", err)
	}
	bb, err := cfg.PrepareProfile(dir, isolation.LaunchOptions{ProxyAddr: proxyAddr, Viewport: vp})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("raw baseline flags: %w", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.NoInheritEnv,
		chromedp.Env(bb.Env...),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own process group, as shoji's browsers, so that it can be
			// killed whole and measured whole.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
		}),
	}
	for _, f := range bb.Flags {
		opts = append(opts, chromedp.Flag(flagArgs(f)))
	}
	if m.beginFrame {
		opts = append(opts, chromedp.Flag("enable-begin-frame-control", true))
	}
	if bb.Sandbox {
		opts = append(opts, chromedp.Flag("no-sandbox", false))
	}
	r := &rawBrowser{dir: dir, vp: vp, sc: m.settings, q: newFrameQueue(), acks: make(chan int64, ackBacklog), ackDone: make(chan struct{})}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	r.ctx, r.cancel = chromedp.NewContext(actx)
	r.acancel = acancel
	// The start is bounded by ctx, but the browser must not die with it.
	stop := context.AfterFunc(ctx, r.cancel)
	t0 := time.Now()
	err = chromedp.Do(r.ctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		close(r.ackDone)
		r.close()
		return nil, fmt.Errorf("start the raw baseline's Chromium: %w", err)
	}
	r.launched = time.Since(t0)
	c := chromedp.FromContext(r.ctx)
	r.target = c.Target
	if p := c.Browser.Process(); p != nil {
		r.pid = p.Pid
	}
	if m.beginFrame {
		if err := r.beginFrameTab(ctx, c.Browser); err != nil {
			close(r.ackDone)
			r.close()
			return nil, err
		}
	}
	if err := chromedp.Listen(r.ctx, r.listen); err != nil {
		close(r.ackDone)
		r.close()
		return nil, fmt.Errorf("listen to the raw baseline: %w", err)
	}
	go r.ackLoop()
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	if err := r.setup(cctx, m.screencast); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// beginFrameTab opens a tab whose frames HeadlessExperimental.beginFrame
// drives and makes it the browser's tab.
func (r *rawBrowser) beginFrameTab(ctx context.Context, b *chromedp.Browser) error {
	cctx, cancel := r.callCtx(ctx)
	defer cancel()
	on := true
	res, err := cdp.Call(cctx, b, cdptarget.CreateTarget, cdptarget.CreateTargetParams{URL: "about:blank", EnableBeginFrameControl: &on})
	if err != nil {
		return fmt.Errorf("create a tab with begin-frame control: %w", err)
	}
	tctx, tcancel := chromedp.NewContext(r.ctx, chromedp.WithTargetID(res.TargetID))
	stop := context.AfterFunc(ctx, tcancel)
	err = chromedp.Do(tctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		tcancel()
		return fmt.Errorf("attach to the tab with begin-frame control: %w", err)
	}
	base := r.cancel
	r.ctx, r.cancel = tctx, func() { tcancel(); base() }
	r.target = chromedp.FromContext(tctx).Target
	return nil
}

// setup sizes the page and, with screencast, starts the screencast, as
// shoji does for a tab.
func (r *rawBrowser) setup(ctx context.Context, screencast bool) error {
	_, err := cdp.Call(ctx, r.target, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: int64(r.vp.Width), Height: int64(r.vp.Height), DeviceScaleFactor: r.vp.DPR,
		ScreenWidth: int64(r.vp.Width), ScreenHeight: int64(r.vp.Height),
	})
	if err != nil {
		return fmt.Errorf("raw baseline viewport: %w", err)
	}
	if !screencast {
		return nil
	}
	if _, err := cdp.Call(ctx, r.target, page.StartScreencast, r.sc.params(r.vp)); err != nil {
		return fmt.Errorf("raw baseline screencast: %w", err)
	}
	return nil
}

// listen runs in chromedp's reader: it must not block or call chromedp.
func (r *rawBrowser) listen(ev any) {
	f, ok := ev.(*page.EventScreencastFrame)
	if !ok {
		return
	}
	r.q.push(frame{at: time.Now(), data: f.Data})
	select {
	case r.acks <- f.SessionID:
	default:
	}
}

// ackLoop acknowledges frames so that Chromium sends the next ones.
func (r *rawBrowser) ackLoop() {
	defer close(r.ackDone)
	for {
		select {
		case <-r.ctx.Done():
			r.q.end(errors.New("the raw baseline's browser ended"))
			return
		case id := <-r.acks:
			ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
			_, _ = cdp.Call(ctx, r.target, page.ScreencastFrameAck, page.ScreencastFrameAckParams{SessionID: id})
			cancel()
		}
	}
}

// callCtx derives a context for one call from the browser's context, ending
// also when ctx does.
func (r *rawBrowser) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return derive(r.ctx, ctx)
}

// derive returns a context of base that also ends when ctx ends or reaches
// its deadline.
func derive(base, ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(base)
	stop := context.AfterFunc(ctx, cancel)
	if d, ok := ctx.Deadline(); ok {
		var dcancel context.CancelFunc
		c, dcancel = context.WithDeadline(c, d)
		return c, func() { dcancel(); stop(); cancel() }
	}
	return c, func() { stop(); cancel() }
}

func (r *rawBrowser) press(ctx context.Context, in gesture) error {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	switch in.kind {
	case inClick:
		_, err := cdp.Call(ctx, r.target, input.DispatchMouseEvent, mouseParams(input.DispatchMouseEventTypeMousePressed, in.x, in.y, 1))
		return err
	case inKey:
		_, err := cdp.Call(ctx, r.target, input.DispatchKeyEvent, keyParams(input.DispatchKeyEventTypeKeyDown, in.key))
		return err
	case inIME:
		_, err := cdp.Call(ctx, r.target, input.InsertText, input.InsertTextParams{Text: in.commit})
		return err
	}
	return fmt.Errorf("unknown input kind %d", in.kind)
}

func (r *rawBrowser) release(ctx context.Context, in gesture) error {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	switch in.kind {
	case inClick:
		_, err := cdp.Call(ctx, r.target, input.DispatchMouseEvent, mouseParams(input.DispatchMouseEventTypeMouseReleased, in.x, in.y, 0))
		return err
	case inKey:
		_, err := cdp.Call(ctx, r.target, input.DispatchKeyEvent, keyParams(input.DispatchKeyEventTypeKeyUp, in.key))
		return err
	}
	return nil
}

// mouseParams is a left-button event as shoji's browsers send it.
func mouseParams(typ input.DispatchMouseEventType, x, y float64, buttons int64) input.DispatchMouseEventParams {
	return input.DispatchMouseEventParams{
		Type: typ, X: x, Y: y, Button: input.MouseButtonLeft, Buttons: buttons, ClickCount: 1,
		PointerType: input.DispatchMouseEventPointerTypeMouse,
	}
}

// keyParams is a key event as shoji's browsers send it for a key that types
// its character.
func keyParams(typ input.DispatchKeyEventType, k keySpec) input.DispatchKeyEventParams {
	p := input.DispatchKeyEventParams{
		Type: typ, Key: k.key, Code: k.code,
		WindowsVirtualKeyCode: int64(k.keyCode), NativeVirtualKeyCode: int64(k.keyCode),
	}
	if typ == input.DispatchKeyEventTypeKeyDown {
		p.Text, p.UnmodifiedText = k.key, k.key
	}
	return p
}

func (r *rawBrowser) compose(ctx context.Context, text string) error {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	n := int64(len([]rune(text)))
	_, err := cdp.Call(ctx, r.target, input.ImeSetComposition, input.ImeSetCompositionParams{Text: text, SelectionStart: n, SelectionEnd: n})
	return err
}

func (r *rawBrowser) wheel(ctx context.Context, x, y, dy float64) error {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	// Chromium wants both deltas, and cdproto leaves out a zero one.
	p := map[string]any{"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": dy, "pointerType": "mouse"}
	return r.target.Call(ctx, input.DispatchMouseEvent.Method, p, nil)
}

func (r *rawBrowser) navigate(ctx context.Context, u string) error {
	ctx, cancel := r.callCtx(ctx)
	defer cancel()
	_, err := cdp.Call(ctx, r.target, page.Navigate, page.NavigateParams{URL: u})
	return err
}

// close ends the browser, kills what is left of its process group and
// removes its profile.
func (r *rawBrowser) close() {
	r.cancel()
	r.acancel()
	<-r.ackDone
	if r.pid > 0 {
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	}
	killProfile(r.dir)
	_ = os.RemoveAll(r.dir)
}

// flagArgs splits one "--name=value" or "--name" flag for chromedp.Flag.
func flagArgs(f string) (name string, value any) {
	name, v, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
	if !ok {
		return name, true
	}
	return name, v
}
