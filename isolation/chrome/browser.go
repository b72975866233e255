package chrome

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/internal/cleanup"
	"github.com/shoji-rbi/shoji/isolation"
)

// Log attribute keys.
const (
	logSession = "session"
	logPID     = "pid"
	logTab     = "tab"
	logErr     = "err"
	logProfile = "profile"
)

// browser is one live Chromium. It implements isolation.Browser.
//
// It is made of parts, each a type of its own with its own state and locks
// and a doc comment that says what it owns: tabs (tabSet, tabs.go and
// events.go), the picture of the active tab (screen, screencast.go,
// sharpen.go and tap.go), input (inputs, input.go), navigation
// (navigator, nav.go), the navigation guard (guard, guard.go), downloads
// (downloads, downloads.go), file choosers and drops (uploads,
// uploads.go), Copy (clipboard, clipboard.go) and printing (printer,
// print.go). What they all share is core (core.go). The browser itself
// keeps the lifecycle (launch, start, monitor, teardown, Close), the
// Chromium process, and loop, which hands each queued event to the part it
// concerns; each isolation.Browser method hands the call to its part
// (roles.go).
//
// Locks, in the order they may be taken: clipboard.mu (Copy presses
// Ctrl+C through the input), screen.switchMu, tabSet.mu, then
// one of uploads.mu, screen.sharp.mu, downloads.mu and guard.mu, then
// core.spawnMu, and the queues' locks last. No part takes a lock earlier in
// this order while it holds a later one.
// The browser's own fields are written by launch, start and monitor, and
// done, err and closeErr are read only after done is closed.
//
// Goroutines: monitor (owner of the end, not in wg), loop (events and
// observer calls), the screen's frameLoop (frames) with its ackLoop (their
// acknowledgements to Chromium, off the delivery path), the guard's two
// readers of paused requests and certificate errors, and short workers
// started by spawn for DevTools calls that events ask for. All but monitor
// are in wg and end when life is canceled.
type browser struct {
	core

	// The parts.
	tabs   tabSet
	screen screen
	in     inputs
	nav    navigator
	guard  guard
	dl     downloads
	up     uploads
	clip   clipboard
	pr     printer

	// The process. profileDir, processGroup, bcancel and allocCancel are
	// set by launch, pid by start.
	profileDir   string
	processGroup func(pgid int) // LaunchOptions.ProcessGroup, or nil
	bcancel      context.CancelFunc
	allocCancel  context.CancelFunc
	pid          int

	closeOnce sync.Once
	closeReq  chan struct{}
	done      chan struct{}
	err       error // why the browser ended; valid after done is closed
	closeErr  error // what went wrong while cleaning up; valid after done
}

// launch starts a browser. See Launcher.Launch.
func launch(ctx context.Context, cfg Config, opts isolation.LaunchOptions, startURL string) (*browser, error) {
	dir, err := os.MkdirTemp(cfg.ProfileRoot, "s-"+safeName(opts.SessionID)+"-")
	if err != nil {
		return nil, fmt.Errorf("create profile dir: %w", err)
	}
	command, err := cfg.PrepareProfile(dir, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b := &browser{
		core: core{
			cfg: cfg,
			obs: fillObserver(opts.Observer),
			log: cfg.Logger.With(logSession, opts.SessionID),
		},
		profileDir: dir,
		tabs:       tabSet{viewport: opts.Viewport},
		closeReq:   make(chan struct{}),
		done:       make(chan struct{}),
		dl: downloads{
			dir:    opts.DownloadDir,
			max:    opts.MaxDownloadBytes,
			active: map[string]*download{},
		},
		pr: printer{binding: newPrintBinding()},
		up: uploads{open: map[string]*chooser{}},
	}
	// Each part points to the core and to the parts it uses.
	b.tabs.core, b.tabs.screen, b.tabs.up, b.tabs.pr, b.tabs.guard = &b.core, &b.screen, &b.up, &b.pr, &b.guard
	b.screen.core, b.screen.tabs = &b.core, &b.tabs
	b.in.tabs, b.in.scale = &b.tabs, deviceScaleFactor(cfg, opts)
	b.nav.tabs = &b.tabs
	b.guard.core, b.guard.tabs, b.guard.clip = &b.core, &b.tabs, &b.clip
	b.dl.core, b.dl.tabOf = &b.core, b.tabs.tabOfFrame
	b.up.core, b.up.tabs, b.up.input = &b.core, &b.tabs, b.in.input
	b.clip.core, b.clip.key = &b.core, b.in.Key
	b.pr.core, b.pr.tabs, b.pr.dl = &b.core, &b.tabs, &b.dl
	b.screen.quality.Store(int64(cfg.JPEGQuality))
	b.events.init()
	b.screen.frames.init()
	b.guard.init(opts.CheckURL)
	b.processGroup = opts.ProcessGroup
	b.life, b.lifeCancel = context.WithCancel(context.Background())

	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(cfg.ExecPath),
		chromedp.NoInheritEnv,
		chromedp.Env(command.Env...),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Its own session and so its own process group, so that every
			// helper process can be killed at once, and no process outside
			// it can join the group (setpgid works only within a session):
			// the egress proxy admits only this group (SetOwner). This
			// replaces chromedp's default, so the parent-death signal is set
			// here too.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
			prefixCommand(cmd, cfg.CommandPrefix, opts.SessionID)
			var t *tap
			err := errTapLeftOut
			if !cfg.withoutTap {
				t, err = attachTap(cmd, b.log, &b.screen.pace)
			}
			if err != nil {
				b.log.Warn("screencast frames go through chromedp", logErr, err)
				return
			}
			b.screen.tap = t
			// Once Chromium has its copies of the tap's child ends, the
			// broker's copies must go: a Chromium that exits at once then
			// ends the pipe, and the start fails at once instead of at the
			// launch timeout.
			if cmd.Stdin == nil {
				cmd.Stdin = &afterStart{fn: t.closeChild}
			}
		}),
	}
	for _, f := range command.Flags {
		allocOpts = append(allocOpts, chromedp.Flag(flagArgs(f)))
	}
	if command.Sandbox {
		// Present but false: chromedp adds --no-sandbox for root otherwise.
		allocOpts = append(allocOpts, chromedp.Flag("no-sandbox", false))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(b.life, allocOpts...)
	b.allocCancel = allocCancel
	b.bctx, b.bcancel = chromedp.NewContext(allocCtx,
		chromedp.WithLogf(b.chromedpLog("chromedp")),
		chromedp.WithErrorf(b.chromedpLog("chromedp error")),
	)

	// The launch context bounds the start, but the browser must not die
	// with it afterwards.
	stop := context.AfterFunc(ctx, b.lifeCancel)
	err = b.start(startURL)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		b.teardown()
		close(b.done)
		if ctx.Err() != nil {
			err = fmt.Errorf("launch chromium: %w (%w)", ctx.Err(), err)
		}
		return nil, err
	}
	go b.monitor(b.session.LostConnection)
	b.log.Info("browser started", logPID, b.pid, logProfile, dir)
	return b, nil
}

// start runs Chromium, attaches to its first tab, starts the browser's
// goroutines and opens startURL.
func (b *browser) start(startURL string) error {
	err := chromedp.Do(b.bctx)
	if b.screen.tap != nil {
		// The process has its own copies of the tap's ends now, or none.
		b.screen.tap.closeChild()
	}
	if err != nil {
		return fmt.Errorf("start chromium: %w", err)
	}
	c := chromedp.FromContext(b.bctx)
	b.session = c.Browser
	if p := c.Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	if b.processGroup != nil && b.pid > 0 {
		b.processGroup(b.pid)
	}
	first := b.tabs.newTab(c.Target.TargetID, "")
	first.sess = c.Target
	b.tabs.list = []*tab{first}
	ictx, icancel := context.WithTimeout(b.life, b.cfg.CallTimeout)
	info, err := cdp.Call(ictx, b.session, target.GetTargetInfo, target.GetTargetInfoParams{TargetID: first.id})
	icancel()
	if err != nil {
		return fmt.Errorf("first tab info: %w", err)
	}
	if info.TargetInfo == nil {
		return errors.New("first tab info: none")
	}
	b.tabs.defaultContext = info.TargetInfo.BrowserContextID

	if err := chromedp.Listen(b.bctx, b.tabs.tabListener(first)); err != nil {
		return fmt.Errorf("listen to first tab: %w", err)
	}
	if err := chromedp.ListenBrowser(b.bctx, b.tabs.browserListener); err != nil {
		return fmt.Errorf("listen to browser: %w", err)
	}
	b.screen.startSharpener()
	b.wg.Add(2)
	go b.loop()
	go b.screen.frameLoop()

	ctx, cancel := context.WithTimeout(b.life, b.cfg.CallTimeout)
	defer cancel()
	if err := b.dl.setBehavior(ctx); err != nil {
		return err
	}
	if err := b.guard.start(ctx); err != nil {
		return fmt.Errorf("navigation guard: %w", err)
	}
	if err := b.tabs.setupTab(ctx, first); err != nil {
		return fmt.Errorf("set up first tab: %w", err)
	}
	if err := b.tabs.activate(ctx, first); err != nil {
		return fmt.Errorf("activate first tab: %w", err)
	}
	if startURL != "about:blank" {
		if err := b.Navigate(ctx, startURL); err != nil {
			return fmt.Errorf("open start url: %w", err)
		}
	}
	return nil
}

// monitor waits for Close or for the browser's death, and ends the browser.
func (b *browser) monitor(lost <-chan struct{}) {
	var crashed error
	select {
	case <-lost:
		crashed = fmt.Errorf("chromium (pid %d) exited unexpectedly: %w", b.pid, isolation.ErrCrashed)
		b.log.Warn("browser crashed", logPID, b.pid)
		b.tabs.markClosing()
	case <-b.closeReq:
		b.tabs.markClosing()
		ctx, cancel := context.WithTimeout(b.bctx, b.cfg.CloseTimeout)
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			b.log.Debug("graceful close", logErr, err)
		}
		cancel()
	}
	b.teardown()
	b.err = crashed
	close(b.done)
	b.log.Info("browser ended", logPID, b.pid, logErr, crashed)
}

// teardown kills every process of the browser, waits for the browser's
// goroutines and removes the profile directory. It runs once, on every path
// by which a browser ends.
func (b *browser) teardown() {
	b.stopSpawning()
	b.tabs.stopDialogTimers()

	// The crash reporter is outside the group; kill it while its command
	// line still says whose it is.
	strays := killByProfile(b.profileDir)
	if b.pid > 0 {
		killGroup(b.pid)
	}
	b.screen.stopSharpener()
	b.lifeCancel()
	b.bcancel()
	b.allocCancel()
	var errs []error
	if b.pid > 0 {
		if err := waitGroupGone(b.pid, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := killStrays(b.profileDir, strays, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	if b.screen.tap != nil {
		b.screen.tap.close()
	}
	b.wg.Wait()
	b.dl.endAll()
	if err := cleanup.RemoveAll(b.profileDir, 5*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("remove profile dir: %w", err))
	}
	b.closeErr = errors.Join(errs...)
	if b.closeErr != nil {
		b.log.Warn("browser cleanup", logErr, b.closeErr)
	}
}

// Close ends the browser: a graceful close bounded by Config.CloseTimeout,
// then its process group is killed and its profile directory removed. It
// returns once that is done or ctx ends. It is safe to call more than once.
func (b *browser) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { close(b.closeReq) })
	select {
	case <-b.done:
		return b.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the browser has ended.
func (b *browser) Done() <-chan struct{} { return b.done }

// Err says why the browser ended: nil after Close, an error wrapping
// isolation.ErrCrashed when it died by itself, nil while it runs.
func (b *browser) Err() error {
	select {
	case <-b.done:
		return b.err
	default:
		return nil
	}
}

// PID returns the browser's main process ID, which is also the ID of its
// process group and session.
func (b *browser) PID() int { return b.pid }

// swappingMsg is how Chromium answers a command sent while a navigation
// swaps the page's renderer.
const swappingMsg = "Not attached to an active page"

// whileSwapping runs fn, and runs it again while it fails because a
// navigation is swapping the page's renderer (which lasts milliseconds), so
// a command sent at that moment is not lost. A command refused that way was
// not carried out, so running it again is safe.
func whileSwapping(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !strings.Contains(err.Error(), swappingMsg) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// chromedpLog adapts chromedp's printf logging to the browser's logger.
func (b *browser) chromedpLog(msg string) func(string, ...any) {
	return func(format string, args ...any) {
		b.log.Debug(msg, "detail", fmt.Sprintf(format, args...))
	}
}

// browserEnv is the browser's whole environment: the host's variables that
// may hold secrets are not passed on, HOME points into the profile so that
// nothing (NSS databases, caches) is shared between browsers, and MarkerEnv
// names the profile root, so that the next run finds a browser that this
// run left behind (ClearLeftovers).
func browserEnv(profileDir string) []string {
	env := []string{
		MarkerEnv + "=" + filepath.Dir(profileDir),
		"HOME=" + profileDir,
		"XDG_CONFIG_HOME=" + profileDir + "/.config",
		"XDG_CACHE_HOME=" + profileDir + "/.cache",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	for _, k := range []string{"LANG", "LANGUAGE", "LC_ALL", "TZ", "FONTCONFIG_PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// preferences are the profile preferences every browser starts with.
// Network prediction is off: Chromium would otherwise open connections
// (CONNECT through the proxy) to the hosts of links a page shows or a
// navigation starts, ahead of and beside the navigation checks, and each
// one to a refused host would be a refusal in the proxy's audit.
const preferences = `{"net":{"network_prediction_options":2}}`

// writePreferences writes the preferences into the profile directory dir.
func writePreferences(dir string) error {
	if err := os.Mkdir(filepath.Join(dir, "Default"), 0o700); err != nil {
		return fmt.Errorf("create profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(preferences), 0o600); err != nil {
		return fmt.Errorf("write profile preferences: %w", err)
	}
	return nil
}

// safeName keeps the letters, digits, '-' and '_' of a session ID, for a
// directory name.
func safeName(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if sb.Len() >= 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			sb.WriteRune(r)
		}
	}
	if sb.Len() == 0 {
		return "session"
	}
	return sb.String()
}

// fillObserver replaces the nil funcs of o with funcs that do nothing.
func fillObserver(o isolation.Observer) isolation.Observer {
	if o.Frame == nil {
		o.Frame = func(isolation.Frame) {}
	}
	if o.State == nil {
		o.State = func(isolation.State) {}
	}
	if o.Dialog == nil {
		o.Dialog = func(isolation.Dialog) {}
	}
	if o.DialogClosed == nil {
		o.DialogClosed = func(string) {}
	}
	if o.Navigated == nil {
		o.Navigated = func(string, string) {}
	}
	if o.Blocked == nil {
		o.Blocked = func(string, string, isolation.NavDecision) {}
	}
	if o.AccessRequested == nil {
		o.AccessRequested = func(string, string, string) {}
	}
	if o.Download == nil {
		o.Download = func(isolation.Download) {}
	}
	if o.FileChooser == nil {
		o.FileChooser = func(isolation.FileChooser) {}
	}
	return o
}

// queue is an unbounded FIFO with one consumer. push never blocks.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	// wake has room for one signal: a push while the consumer is busy
	// leaves one wake-up, which is all the consumer needs to drain.
	wake chan struct{}
}

func (q *queue[T]) init() { q.wake = make(chan struct{}, 1) }

// push appends v and wakes the consumer.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drain takes every queued item.
func (q *queue[T]) drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
