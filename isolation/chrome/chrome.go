// Package chrome implements isolation.Launcher and isolation.Browser with one
// headless Chromium per session, driven over the DevTools protocol by
// chromedp.
//
// Each browser starts from /usr/lib/chromium/chromium (not Debian's wrapper
// script) with a flag list built here (see Flags), in its own session and
// process group (reported to LaunchOptions.ProcessGroup, so that the egress
// proxy serves this browser only), with a fresh profile directory and an
// environment of its own. Every way a browser ends (Close, a crash, a failed
// launch) kills the whole process group and removes the profile directory.
//
// Every document request of every tab, popup and frame is paused on the
// browser-wide DevTools session (Fetch) until it is answered: a navigation
// that LaunchOptions.CheckURL denies gets a block page in Japanese and
// English with a "request access" button (a page frame fails quietly).
// Certificate errors are refused with no way to proceed: Chromium's own
// interstitial, which "thisisunsafe" typed on the page would pass, never
// shows; the page shows a certificate block page instead. Both are
// conveniences for the clinician: the egress proxy is the boundary.
//
// Only the active tab is screencast. Frames are JPEG images exactly as
// Chromium encoded them, at the viewport's CSS size times its
// devicePixelRatio (bounded by Config.DeviceScaleFactor), and arrive only
// when the page changes. Popups, target=_blank links and window.open become
// tabs; a new popup becomes the active tab. JavaScript dialogs wait for
// Browser.AnswerDialog, or are dismissed after Config.DialogTimeout. A tab
// whose renderer crashes is reloaded once; if it crashes again within
// seconds it is left as it is until the clinician navigates.
//
// Downloads of every tab land in LaunchOptions.DownloadDir under their
// GUID, never under the page's name, and are canceled past
// LaunchOptions.MaxDownloadBytes; without a DownloadDir they are denied.
// File choosers are reported and answered with Browser.SetFiles; Copy
// presses Ctrl+C and reads the clipboard through a hidden page of its own
// (see clipboard.go); Print and the page's window.print() save an A4 PDF as
// a download.
package chrome

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// DefaultExecPath is where Debian's chromium package installs the browser
// binary itself.
const DefaultExecPath = "/usr/lib/chromium/chromium"

// Defaults of Config.
const (
	DefaultJPEGQuality       = 70
	DefaultSharpQuality      = 90
	DefaultSettleDelay       = 300 * time.Millisecond
	DefaultMaxFramesInFlight = 1
	DefaultDialogTimeout     = 2 * time.Minute
	DefaultCallTimeout       = 10 * time.Second
	DefaultCloseTimeout      = 3 * time.Second
)

// Errors of this package. Browser methods also return isolation.ErrClosed.
var (
	// ErrConfig is wrapped by CheckAndSetDefaults for a bad field.
	ErrConfig = errors.New("bad chrome config")
	// ErrLaunchOptions is wrapped by Launch for bad LaunchOptions.
	ErrLaunchOptions = errors.New("bad launch options")
	// ErrScheme is wrapped when a URL's scheme is not http or https.
	ErrScheme = errors.New("scheme not allowed")
	// ErrURL is wrapped when a URL cannot be opened at all.
	ErrURL = errors.New("bad url")
	// ErrNoTab is wrapped when a tab ID names no open tab.
	ErrNoTab = errors.New("no such tab")
	// ErrNoDialog is wrapped when a dialog ID names no pending dialog.
	ErrNoDialog = errors.New("no such dialog")
	// ErrInput is wrapped when an input event has a bad field; it is
	// isolation.ErrBadInput, which the events' Validate errors are.
	ErrInput = isolation.ErrBadInput
	// ErrViewport is wrapped when a viewport is out of range.
	ErrViewport = errors.New("bad viewport")
)

// Config configures a Launcher. The zero value of each field but ProfileRoot
// means its default.
type Config struct {
	// ExecPath is the Chromium binary. Empty means DefaultExecPath.
	ExecPath string
	// ProfileRoot is the directory under which each browser gets a fresh
	// profile directory (mode 0700), removed when the browser ends. Required;
	// it is created (mode 0700) if missing.
	ProfileRoot string
	// Sandbox turns Chromium's sandbox on or off. Nil means on, unless the
	// process runs as root, where Chromium cannot run sandboxed and
	// --no-sandbox is passed. Asking for the sandbox as root is an error.
	Sandbox *bool
	// DeviceScaleFactor is the browser's real device scale factor, fixed
	// for its life. It bounds the frames' resolution: Chromium renders the
	// page at the viewport's DPR but composes it at this factor, so a frame
	// is Width*min(DPR, DeviceScaleFactor) pixels wide. A viewport with a
	// lower DPR gets downscaled frames of the exact size; one with a higher
	// DPR gets frames of this factor, which the viewer scales up. Zero means
	// the DPR of the viewport given to Launch. A warm pool that launches
	// before it knows the viewer should set the highest DPR it expects.
	DeviceScaleFactor float64
	// JPEGQuality is the screencast's JPEG quality, 1 to 100. Zero means
	// DefaultJPEGQuality.
	JPEGQuality int
	// SharpQuality is the JPEG quality of the one refresh sent when the
	// page has settled, so text is sharp (sharpen.go). Zero means
	// DefaultSharpQuality; a negative value sends no refresh.
	SharpQuality int
	// SettleDelay is how long a page shows no change before it counts as
	// settled and gets its sharp refresh. Zero means DefaultSettleDelay.
	SettleDelay time.Duration
	// MaxFramesInFlight is how many frames Chromium sends before it waits
	// for their acknowledgement. Zero means DefaultMaxFramesInFlight.
	MaxFramesInFlight int
	// SendLastFrame has Chromium keep the newest frame it could not send
	// while MaxFramesInFlight were unacknowledged, so the last change of a
	// page that then stands still is not lost. Nil means true.
	SendLastFrame *bool
	// DialogTimeout is how long a JavaScript dialog waits for an answer
	// before it is dismissed, so a page never stalls for ever. Zero means
	// DefaultDialogTimeout.
	DialogTimeout time.Duration
	// CallTimeout bounds one DevTools call when the caller's context has no
	// deadline. Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// CloseTimeout bounds the graceful close before the process group is
	// killed. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// ExtraFlags are added to the flag list, each "--name" or "--name=value".
	// A flag that this package owns or that weakens isolation is refused;
	// --disable-features is merged into the package's own list.
	ExtraFlags []string
	// NoSubreaper keeps New from making this process a child subreaper. By
	// default it becomes one, so that a browser's helper processes, which
	// are orphaned when the browser is killed, are reaped here instead of
	// staying zombies under an init that does not reap.
	NoSubreaper bool
	// TrustedCAs are certificate authorities the browsers trust to
	// identify web sites in addition to the system's roots, such as the
	// hospital's own CA for an intranet server an admin allowed. Each
	// browser gets them in the NSS database of its profile, written with
	// CertutilPath. Use ParseTrustedCAs.
	TrustedCAs []*x509.Certificate
	// Logger receives the package's logs. Nil means slog.Default().
	Logger *slog.Logger
	// CommandPrefix, if set, is asked at each launch for a command that
	// Chromium is started through, such as `ip netns exec NAME`, which puts
	// the browser in the session's own network namespace (isolation/netns);
	// Chromium's path and flags follow it. The process started is still the
	// browser's, in its own session. Nil, or an empty result, starts
	// Chromium directly.
	CommandPrefix func(sessionID string) []string

	// withoutTap, for the package's tests only, leaves the tap out, so
	// that the frames take chromedp's path, as they do when chromedp's
	// DevTools pipe layout is not the one the tap expects (tap.go).
	withoutTap bool
}

// CheckAndSetDefaults validates c and fills in the defaults of zero fields.
func (c *Config) CheckAndSetDefaults() error {
	if c.ExecPath == "" {
		c.ExecPath = DefaultExecPath
	}
	if c.ProfileRoot == "" {
		return fmt.Errorf("%w: ProfileRoot is required", ErrConfig)
	}
	if !filepath.IsAbs(c.ProfileRoot) {
		return fmt.Errorf("%w: ProfileRoot %q is not an absolute path", ErrConfig, c.ProfileRoot)
	}
	c.ProfileRoot = filepath.Clean(c.ProfileRoot)
	root := os.Geteuid() == 0
	if c.Sandbox == nil {
		on := !root
		c.Sandbox = &on
	} else if *c.Sandbox && root {
		return fmt.Errorf("%w: Sandbox: Chromium cannot run sandboxed as root", ErrConfig)
	}
	if c.DeviceScaleFactor != 0 && (c.DeviceScaleFactor < isolation.MinDPR || c.DeviceScaleFactor > isolation.MaxDPR) {
		return fmt.Errorf("%w: DeviceScaleFactor %v is not within %v..%v", ErrConfig, c.DeviceScaleFactor, isolation.MinDPR, isolation.MaxDPR)
	}
	if c.JPEGQuality == 0 {
		c.JPEGQuality = DefaultJPEGQuality
	}
	if c.JPEGQuality < 1 || c.JPEGQuality > 100 {
		return fmt.Errorf("%w: JPEGQuality %d is not within 1..100", ErrConfig, c.JPEGQuality)
	}
	if c.SharpQuality == 0 {
		c.SharpQuality = DefaultSharpQuality
	}
	if c.SharpQuality > 100 {
		return fmt.Errorf("%w: SharpQuality %d is not within 1..100 (or negative for no refresh)", ErrConfig, c.SharpQuality)
	}
	if c.MaxFramesInFlight == 0 {
		c.MaxFramesInFlight = DefaultMaxFramesInFlight
	}
	if c.SendLastFrame == nil {
		on := true
		c.SendLastFrame = &on
	}
	if c.MaxFramesInFlight < 1 {
		return fmt.Errorf("%w: MaxFramesInFlight %d is not positive", ErrConfig, c.MaxFramesInFlight)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialogTimeout", &c.DialogTimeout, DefaultDialogTimeout},
		{"CallTimeout", &c.CallTimeout, DefaultCallTimeout},
		{"CloseTimeout", &c.CloseTimeout, DefaultCloseTimeout},
		{"SettleDelay", &c.SettleDelay, DefaultSettleDelay},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrConfig, d.name, *d.v)
		}
	}
	if err := checkExtraFlags(c.ExtraFlags); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Launcher starts isolated Chromium browsers. It is safe for concurrent use.
type Launcher struct {
	cfg Config
}

var _ isolation.Launcher = (*Launcher)(nil)

// New checks cfg, creates its ProfileRoot and returns a Launcher.
func New(cfg Config) (*Launcher, error) {
	cfg.ExtraFlags = append([]string(nil), cfg.ExtraFlags...)
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.ProfileRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create ProfileRoot: %w", err)
	}
	if _, err := os.Stat(cfg.ExecPath); err != nil {
		return nil, fmt.Errorf("%w: ExecPath: %w", ErrConfig, err)
	}
	if len(cfg.TrustedCAs) > 0 {
		if _, err := os.Stat(CertutilPath); err != nil {
			return nil, fmt.Errorf("%w: TrustedCAs need %s (Debian: apt-get install libnss3-tools): %w", ErrConfig, CertutilPath, err)
		}
	}
	if !cfg.NoSubreaper {
		if err := becomeSubreaper(); err != nil {
			cfg.Logger.Warn("orphaned browser helpers will not be reaped", logErr, err)
		}
	}
	return &Launcher{cfg: cfg}, nil
}

// Launch starts a browser, opens opts.StartURL in its first tab and returns
// once the tab is live. ctx bounds the start only: the browser lives until
// Close or until it ends by itself.
func (l *Launcher) Launch(ctx context.Context, opts isolation.LaunchOptions) (isolation.Browser, error) {
	if err := checkLaunchOptions(opts); err != nil {
		return nil, err
	}
	start := "about:blank"
	if opts.StartURL != "" {
		u, err := NormalizeURL(opts.StartURL)
		if err != nil {
			return nil, fmt.Errorf("%w: StartURL: %w", ErrLaunchOptions, err)
		}
		start = u
	}
	return launch(ctx, l.cfg, opts, start)
}

// checkLaunchOptions validates the fields of opts that Launch needs.
func checkLaunchOptions(opts isolation.LaunchOptions) error {
	if !opts.Viewport.Valid() {
		return fmt.Errorf("%w: Viewport %dx%d@%v is out of range", ErrLaunchOptions,
			opts.Viewport.Width, opts.Viewport.Height, opts.Viewport.DPR)
	}
	host, port, err := net.SplitHostPort(opts.ProxyAddr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: ProxyAddr %q is not host:port", ErrLaunchOptions, opts.ProxyAddr)
	}
	if opts.MaxDownloadBytes < 0 {
		return fmt.Errorf("%w: MaxDownloadBytes %d is negative", ErrLaunchOptions, opts.MaxDownloadBytes)
	}
	if d := opts.DownloadDir; d != "" {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("%w: DownloadDir %q is not an absolute path", ErrLaunchOptions, d)
		}
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("%w: DownloadDir: %w", ErrLaunchOptions, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: DownloadDir %q is not a directory", ErrLaunchOptions, d)
		}
	}
	return nil
}
