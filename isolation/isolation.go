// Package isolation defines what the broker needs from an isolated remote
// browser, and nothing Chromium-specific. The chromedp implementation lives in
// isolation/chrome; the egress proxy that is the browser's only way out lives
// in isolation/egress.
//
// The dependency direction is broker → isolation: this package never imports
// the broker. A browser reports what happens (frames, tab and navigation
// state, dialogs, its own end) through the Observer the broker supplies.
package isolation

import (
	"context"
	"errors"
	"strings"
	"time"
)

// BackgroundDomain is the name a browser's own background services are
// pointed at: the services no flag turns off (Chromium's account check and
// its on-demand component updates; isolation/chrome says which). It is under
// .invalid (RFC 6761), so it names no real host, and no page has a reason to
// use it. The egress proxy refuses every request to it or below it without
// asking the policy, and reports the refusal as the browser's own
// (egress.Event.Background), not as a refusal of something a page or a
// clinician tried; a page's request to the services' real hosts (such as
// accounts.google.com) stays an ordinary refusal.
const BackgroundDomain = "background.shoji.invalid"

// IsBackgroundHost reports whether host (normalised: lowercase, no trailing
// dot) is BackgroundDomain or a name below it.
func IsBackgroundHost(host string) bool {
	return host == BackgroundDomain || strings.HasSuffix(host, "."+BackgroundDomain)
}

// ErrClosed is returned by Browser methods once the browser has ended.
var ErrClosed = errors.New("browser closed")

// Launcher starts one isolated browser per clinician session.
type Launcher interface {
	// Launch starts a browser. The returned Browser is live until Close is
	// called or it ends by itself (Done is closed).
	Launch(ctx context.Context, opts LaunchOptions) (Browser, error)
}

// LaunchOptions describe one browser to start.
type LaunchOptions struct {
	// SessionID names the session for logs and for the profile directory.
	SessionID string
	// Viewport is the initial size of the visible page.
	Viewport Viewport
	// StartURL is opened in the first tab; empty means about:blank.
	StartURL string
	// ProxyAddr is the host:port of the egress proxy that is this browser's
	// only way out. Required.
	ProxyAddr string
	// Observer receives what the browser reports. Its funcs must not block.
	Observer Observer
	// CheckURL, if set, is asked about every page and frame navigation of
	// every tab, popups included, with the full URL, so path-prefix rules
	// apply. A denied top-level navigation shows a block page that names the
	// host and the reason and offers "request access"; a denied frame fails
	// quietly; both are reported to Observer.Blocked. This is a convenience
	// for clinicians, not the boundary: the egress proxy is. CheckURL is
	// called concurrently, must not block and must not call the Browser. Nil
	// allows every navigation (the proxy still decides).
	CheckURL func(url string) NavDecision
	// ProcessGroup, if set, is called once with the browser's process group
	// ID as soon as its process runs, before it loads any page, so that the
	// broker can make the session's egress listener accept this browser
	// only (egress.Listener.SetOwner). It must not block.
	ProcessGroup func(pgid int)
	// DownloadDir is the session's quarantine directory. Downloads of every
	// tab, popups included, land there under a name the browser picks (its
	// download GUID), never under the page's file name. Empty denies every
	// download.
	DownloadDir string
	// MaxDownloadBytes cancels a download that grows past it, or announces
	// a larger size; zero means no cap.
	MaxDownloadBytes int64
}

// NavDecision is the verdict of LaunchOptions.CheckURL on one navigation,
// and what Observer.Blocked reports.
type NavDecision struct {
	Allow bool `json:"allow"`
	// Host is the host the decision is about, shown on the block page.
	Host string `json:"host"`
	// Rule names the rule that decided.
	Rule string `json:"rule"`
	// Reason says why a navigation was denied, shown on the block page.
	Reason string `json:"reason"`
	// Trusted is true for an allowed host of the trusted medical sites tier
	// (ALLOW-4).
	Trusted bool `json:"trusted,omitempty"`
	// Subframe is set in what Observer.Blocked reports when the refused
	// document was a frame inside a page, not a tab's page; CheckURL
	// leaves it unset.
	Subframe bool `json:"subframe,omitempty"`
}

// Viewport is the size of the clinician's canvas in CSS pixels and the
// terminal's devicePixelRatio. Frames are Width*DPR by Height*DPR pixels.
type Viewport struct {
	Width  int     `json:"width"`
	Height int     `json:"height"`
	DPR    float64 `json:"dpr"`
}

// Limits on a viewport the broker accepts from a viewer.
const (
	MinViewportSide = 100
	MaxViewportSide = 4096
	MinDPR          = 0.5
	MaxDPR          = 4.0
)

// Valid reports whether v is within the accepted limits.
func (v Viewport) Valid() bool {
	return v.Width >= MinViewportSide && v.Width <= MaxViewportSide &&
		v.Height >= MinViewportSide && v.Height <= MaxViewportSide &&
		v.DPR >= MinDPR && v.DPR <= MaxDPR
}

// Frame is one rendered image of the active tab.
type Frame struct {
	// JPEG holds the encoded image. It is never modified after delivery.
	JPEG []byte
	// Width and Height are the image's size in device pixels, when known.
	Width, Height int
	// Time is when the browser produced the frame.
	Time time.Time
	// Quality is the JPEG quality it was encoded at, when known: the
	// screencast's while the page moves, higher for the one refresh sent
	// when it settles.
	Quality int
	// ScrollX and ScrollY are the page's scroll offset when the frame was
	// captured, in the frame's device pixels, when Scrolled says they are
	// known (the screencast's metadata gave a whole number of the frame's
	// pixels). Two frames of the same page whose offsets differ by
	// (dx, dy) show the scrolled content shifted by (-dx, -dy).
	ScrollX, ScrollY int
	Scrolled         bool
}

// ScrollStep is the step, in the frames' device pixels, that wheel
// scrolling moves a page by: the 16×16 blocks (MCUs) of Chromium's 4:2:0
// JPEG frames. Only a scroll by whole blocks lets the broker send it as a
// copy of the viewer's canvas plus the exposed strip (broker/tiles,
// DiffShifted), since blocks can be compared and cropped without loss only
// on their grid.
const ScrollStep = 16

// Tab is one page of the browser: the first tab, a popup, a target=_blank
// link or a window.open.
type Tab struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	URL    string `json:"url"`
	Active bool   `json:"active"`
}

// State is the browser's visible state, shown in the broker's toolbar.
type State struct {
	Tabs []Tab `json:"tabs"`
	// URL and Title are the active tab's.
	URL   string `json:"url"`
	Title string `json:"title"`
	// Host is the host of the committed URL of the active tab.
	Host string `json:"host"`
	// HostUnicode is Host in Unicode for display: 日本語.jp for
	// xn--wgv71a119e.jp; the same as Host for an ASCII host.
	HostUnicode string `json:"hostUnicode"`
	// HostWarning is set when Host is an internationalised name that can
	// pass for another (SITEID-3): its labels mix scripts, such as Latin
	// with Cyrillic, or consist of letters that look like ASCII ones. The
	// viewer shows it, and then shows Host rather than HostUnicode.
	HostWarning string `json:"hostWarning,omitempty"`
	// Secure is true when the active page was loaded over HTTPS with a
	// certificate the browser accepted. It is false on a block page.
	Secure       bool `json:"secure"`
	Loading      bool `json:"loading"`
	CanGoBack    bool `json:"canGoBack"`
	CanGoForward bool `json:"canGoForward"`
}

// DialogKind is the kind of JavaScript dialog a page opened.
type DialogKind string

// The JavaScript dialogs.
const (
	DialogAlert        DialogKind = "alert"
	DialogConfirm      DialogKind = "confirm"
	DialogPrompt       DialogKind = "prompt"
	DialogBeforeUnload DialogKind = "beforeunload"
)

// Dialog is a JavaScript dialog waiting for an answer. The page is stalled
// until AnswerDialog is called for it.
type Dialog struct {
	ID            string     `json:"id"`
	TabID         string     `json:"tab"`
	Kind          DialogKind `json:"kind"`
	Message       string     `json:"message"`
	DefaultPrompt string     `json:"default,omitempty"`
	URL           string     `json:"url"`
}

// Caret is where the focused editable element's caret is, in CSS pixels of
// the viewport, so the viewer can anchor the terminal's IME candidate window.
type Caret struct {
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Height float64 `json:"h"`
}

// Observer receives what a browser reports. Every func is optional and must
// return quickly without calling back into the Browser.
type Observer struct {
	Frame  func(Frame)
	State  func(State)
	Dialog func(Dialog)
	// DialogClosed reports that a dialog was answered or went away.
	DialogClosed func(id string)
	// Navigated reports a committed top-level navigation of any tab. A
	// navigation that was blocked (see Blocked) is not reported here,
	// although its block page commits at the refused URL.
	Navigated func(tabID, url string)
	// Blocked reports a navigation the browser refused: by
	// LaunchOptions.CheckURL, or because the site's certificate is invalid
	// (Rule "invalid-certificate"; there is no way to proceed). tabID is
	// empty when the frame's tab is not known.
	Blocked func(tabID, url string, d NavDecision)
	// AccessRequested reports that the clinician pressed "request access"
	// on the block page of host in tab tabID; url is the refused URL. The
	// page gets no privilege from it: the broker asks the clinician for a
	// reason in the viewer.
	AccessRequested func(tabID, host, url string)
	// Download reports each step of a download or print: started, progress
	// (at most a few times a second), then exactly one of done, canceled
	// or failed.
	Download func(Download)
	// FileChooser reports that a page opened a file chooser (an <input
	// type=file> was clicked). Nothing is chosen until SetFiles answers it.
	FileChooser func(FileChooser)
}

// DownloadState is the step a Download report describes.
type DownloadState string

// The download steps.
const (
	DownloadStarted  DownloadState = "started"
	DownloadProgress DownloadState = "progress"
	DownloadDone     DownloadState = "done"
	// DownloadCanceled: over MaxDownloadBytes, or CancelDownload.
	DownloadCanceled DownloadState = "canceled"
	DownloadFailed   DownloadState = "failed"
)

// Download is one report about a file the remote browser is saving into
// LaunchOptions.DownloadDir.
type Download struct {
	// ID identifies the download; it is a GUID and the file's name in
	// DownloadDir.
	ID    string        `json:"id"`
	TabID string        `json:"tab,omitempty"`
	State DownloadState `json:"state"`
	// URL is where the file came from (the page's URL for a print).
	URL string `json:"url"`
	// Name is the file name the page suggested. It is metadata only,
	// exactly as the page gave it: never use it as a path.
	Name string `json:"name"`
	// Received and Total are bytes so far and expected (0 if unknown).
	Received int64 `json:"received"`
	Total    int64 `json:"total"`
	// Path is the complete file, set when State is DownloadDone.
	Path string `json:"-"`
	// Reason says why a download was canceled or failed.
	Reason string `json:"reason,omitempty"`
	// Print is true for a PDF made by Print or the page's window.print().
	Print bool `json:"print,omitempty"`
}

// FileChooser is a page's request for local files.
type FileChooser struct {
	ID    string `json:"id"`
	TabID string `json:"tab,omitempty"`
	// URL is the URL of the document whose input opened the chooser: the
	// destination of an upload.
	URL string `json:"url"`
	// Multiple is true when the input accepts several files.
	Multiple bool `json:"multiple"`
	// Accept is the input's accept attribute, as a hint for the viewer.
	Accept string `json:"accept,omitempty"`
}

// MouseAction is what a mouse event does.
type MouseAction string

// The mouse actions.
const (
	MouseMove MouseAction = "move"
	MouseDown MouseAction = "down"
	MouseUp   MouseAction = "up"
)

// MouseButton names a button.
type MouseButton string

// The mouse buttons.
const (
	ButtonNone    MouseButton = "none"
	ButtonLeft    MouseButton = "left"
	ButtonMiddle  MouseButton = "middle"
	ButtonRight   MouseButton = "right"
	ButtonBack    MouseButton = "back"
	ButtonForward MouseButton = "forward"
)

// Modifier bits, as in the DevTools protocol.
const (
	ModAlt   = 1
	ModCtrl  = 2
	ModMeta  = 4
	ModShift = 8
)

// MouseEvent is a pointer event in CSS pixels of the viewport.
type MouseEvent struct {
	Action MouseAction
	X, Y   float64
	Button MouseButton
	// Buttons is the bitmask of pressed buttons (left 1, right 2, middle 4,
	// back 8, forward 16).
	Buttons    int
	ClickCount int
	Modifiers  int
}

// WheelEvent scrolls by DeltaX/DeltaY CSS pixels at X, Y.
type WheelEvent struct {
	X, Y           float64
	DeltaX, DeltaY float64
	Modifiers      int
}

// KeyAction is what a key event does.
type KeyAction string

// The key actions.
const (
	KeyDown KeyAction = "down"
	KeyUp   KeyAction = "up"
)

// KeyEvent is a keyboard event as a DOM KeyboardEvent describes it.
type KeyEvent struct {
	Action    KeyAction
	Key       string // KeyboardEvent.key, e.g. "a", "Enter", "ArrowLeft"
	Code      string // KeyboardEvent.code, e.g. "KeyA"
	KeyCode   int    // KeyboardEvent.keyCode (Windows virtual key code)
	Modifiers int
	Repeat    bool
	Location  int
}

// Browser is one live isolated browser. All methods are safe for concurrent
// use and return ErrClosed once the browser has ended.
//
// It is composed of role interfaces, each named by what it does, so that a
// consumer can declare the narrow one it needs (a transfer service takes a
// Transfers, not the whole browser).
//
// Input (Mouse, Wheel, Key, Compose, InsertText, DropFiles, Copy) reaches
// the page in the order of the calls, and a Browser does not order
// concurrent calls: a caller that needs an order makes its calls one after
// another. For a viewer that caller is broker/stream's input queue.
type Browser interface {
	Navigator
	Screen
	Input
	Tabs
	Transfers
	Clipboard
	Printer
	Lifecycle
}

// Navigator moves the active tab through the web.
type Navigator interface {
	// Navigate opens url in the active tab.
	Navigate(ctx context.Context, url string) error
	// Back, Forward, Reload and Stop act on the active tab.
	Back(ctx context.Context) error
	Forward(ctx context.Context) error
	Reload(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Screen is the picture of the active tab: its size and its frames, which
// come through Observer.Frame.
type Screen interface {
	// SetViewport resizes the page to the viewer's canvas.
	SetViewport(ctx context.Context, v Viewport) error
	// KeyFrame asks for a fresh frame of the active tab at once, even when
	// nothing changed (a viewer connected or reconnected).
	KeyFrame(ctx context.Context) error
	// SetQuality sets the JPEG quality of the frames sent while the page
	// moves, 1 to 100; 0 means the browser's configured quality. The
	// broker lowers it for a viewer whose link cannot keep up. The sharp
	// refresh sent when the page settles keeps its own quality.
	SetQuality(ctx context.Context, quality int) error
	// SetFramePace sets the least time between two frames the browser
	// sends: it holds back the next frame, and the work of encoding it,
	// until minInterval has passed since the previous one. The broker paces a page whose small changes nobody is
	// interacting with (a spinner) and lifts the pace at once when the
	// clinician acts. Zero, the initial pace, sends every frame as soon as
	// the page changes; a change to zero or to a shorter pace releases a
	// frame held back at once. A page that stops changing still gets its
	// last picture delivered, within one interval. It never blocks and
	// may be called from any goroutine; after the browser ended it does
	// nothing.
	SetFramePace(minInterval time.Duration)
}

// Input gives the clinician's mouse, wheel, keys and text to the active tab,
// in the order the calls were made.
type Input interface {
	Mouse(ctx context.Context, ev MouseEvent) error
	Wheel(ctx context.Context, ev WheelEvent) error
	Key(ctx context.Context, ev KeyEvent) error
	// Compose sets the IME composition text; selStart and selEnd are the
	// selection within it in UTF-16 code units. Empty text cancels.
	Compose(ctx context.Context, text string, selStart, selEnd int) (Caret, error)
	// InsertText commits text as an IME or paste would.
	InsertText(ctx context.Context, text string) error
}

// Tabs are the browser's open tabs and their JavaScript dialogs, and the
// visible state that follows from them.
type Tabs interface {
	SwitchTab(ctx context.Context, id string) error
	CloseTab(ctx context.Context, id string) error
	AnswerDialog(ctx context.Context, id string, accept bool, promptText string) error
	// State returns the current visible state.
	State() State
	// PendingDialogs returns the dialogs still waiting for an answer.
	PendingDialogs() []Dialog
}

// Transfers moves files between the broker's disk and the pages: downloads
// out, chosen and dropped files in.
type Transfers interface {
	// CancelDownload stops a download in progress and removes its file.
	CancelDownload(ctx context.Context, id string) error
	// SetFiles answers the file chooser id with files on the broker's
	// disk; no paths cancels it. It fails when the chooser has gone (its
	// page navigated or closed).
	SetFiles(ctx context.Context, chooserID string, paths []string) error
	// DropFiles drops files on the broker's disk onto the active tab at x,
	// y (CSS pixels of the viewport), as a drag from the terminal's desktop
	// would. It refuses when the active tab no longer shows pageURL, the
	// page the upload was checked for.
	DropFiles(ctx context.Context, pageURL string, x, y float64, paths []string) error
}

// Clipboard reads what the page copies.
type Clipboard interface {
	// Copy does what the clinician's copy shortcut does in the active tab
	// and returns the text that the copy put on the remote clipboard.
	Copy(ctx context.Context) (string, error)
}

// Printer prints pages into files.
type Printer interface {
	// Print renders the active tab as a PDF into DownloadDir, reported
	// through Observer.Download with Print set, as is the page's own
	// window.print().
	Print(ctx context.Context) error
}

// Lifecycle is a browser's end.
type Lifecycle interface {
	// Done is closed when the browser has ended, by Close or by itself.
	Done() <-chan struct{}
	// Err says why the browser ended: nil after Close, an error wrapping
	// ErrCrashed when it died by itself.
	Err() error
	// Close ends the browser: its whole process group is killed and its
	// profile directory removed. It is safe to call more than once.
	Close(ctx context.Context) error
}

// ErrCrashed is wrapped by Browser.Err when the browser died by itself.
var ErrCrashed = errors.New("browser crashed")

// UserError is an error whose Message may be shown to the clinician as it
// is, e.g. "file: addresses cannot be opened". Err is the logged cause.
type UserError struct {
	Message string
	Err     error
}

func (e *UserError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *UserError) Unwrap() error { return e.Err }
