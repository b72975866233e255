// Package vnc runs the virtual browser that hospitals deploy instead of
// remote browser isolation, so that shoji can be measured against it:
// Chromium on an Xvfb screen, shared by x11vnc, and shown by noVNC in the
// clinician's browser through websockify. Every part comes from Debian's
// packages xvfb, x11vnc, novnc and websockify, with the settings a
// deployment tuned for responsiveness would use.
//
// Everything listens on loopback only, and the VNC server has no password:
// a Peer is a benchmark opponent, not a deployment.
package vnc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/internal/cleanup"
)

// Paths of the programs and files from Debian's packages.
const (
	// DefaultChromium is Options.Chromium when it is empty.
	DefaultChromium = "/usr/lib/chromium/chromium"
	// XvfbPath is the virtual X server, from the package xvfb.
	XvfbPath = "/usr/bin/Xvfb"
	// X11VNCPath is the VNC server, from the package x11vnc.
	X11VNCPath = "/usr/bin/x11vnc"
	// WebsockifyPath is the WebSocket to TCP proxy, from the package
	// websockify.
	WebsockifyPath = "/usr/bin/websockify"
	// NoVNCDir holds noVNC's web client, from the package novnc.
	NoVNCDir = "/usr/share/novnc"
)

// The noVNC settings of Peer.URL. noVNC asks x11vnc for Tight encoding, with
// JPEG for rectangles of many colours.
const (
	// Quality is noVNC's JPEG quality level, 0 to 9. 6 is noVNC's default,
	// which keeps text legible; over loopback bandwidth is no constraint,
	// and any level has the same asynchronous image decode in noVNC.
	Quality = 6
	// Compression is noVNC's zlib compression level, 0 to 9. 0 spends the
	// least CPU time on both ends: the link is loopback, the CPU is the
	// bottleneck.
	Compression = 0
)

// startTimeout bounds Start when its context has no earlier deadline.
const startTimeout = 60 * time.Second

// Options configure a Peer.
type Options struct {
	// PageURL is the page the peer's Chromium shows.
	PageURL string
	// Width and Height are the size of the remote screen in pixels, and so
	// of Chromium's window and of noVNC's canvas.
	Width, Height int
	// Chromium is the Chromium binary. Empty means DefaultChromium.
	Chromium string
}

// Validate reports the first field of o that is not usable.
func (o Options) Validate() error {
	u, err := url.Parse(o.PageURL)
	switch {
	case o.PageURL == "":
		return errors.New("vnc: PageURL is empty")
	case err != nil:
		return fmt.Errorf("vnc: PageURL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "data" && u.Scheme != "file":
		return fmt.Errorf("vnc: PageURL %q: scheme must be http, https, data or file", o.PageURL)
	}
	if o.Width < 64 || o.Height < 64 || o.Width > 8192 || o.Height > 8192 {
		return fmt.Errorf("vnc: screen %dx%d: Width and Height must be 64 to 8192", o.Width, o.Height)
	}
	return nil
}

// Peer is a running virtual browser. Close it.
type Peer struct {
	// URL is noVNC's page on loopback. It connects to the VNC server as it
	// loads and shows the remote screen at 1:1 on a canvas whose pixel
	// (x, y) is the screen's pixel (x, y).
	URL string

	dir     string // temporary directory: Chromium's profile and HOME
	display int    // X display number
	procs   []*proc
	stop    func() bool // undoes the context.AfterFunc that closes the peer

	closeOnce sync.Once
	closeErr  error
}

// Start starts Xvfb, Chromium at opts.PageURL, x11vnc and websockify, and
// returns once each of the servers accepts connections and Chromium runs.
// Chromium may still be loading the page: wait for it on noVNC's canvas.
// Everything started is stopped by Close or when ctx ends, whichever comes
// first.
func Start(ctx context.Context, opts Options) (*Peer, error) {
	if opts.Chromium == "" {
		opts.Chromium = DefaultChromium
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := Missing(opts.Chromium); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "shoji-vnc-")
	if err != nil {
		return nil, fmt.Errorf("vnc: create temporary directory: %w", err)
	}
	p := &Peer{dir: dir, display: -1}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := p.start(sctx, opts); err != nil {
		if cerr := p.cleanup(); cerr != nil {
			err = fmt.Errorf("%w; cleanup: %w", err, cerr)
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, err
	}
	p.stop = context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// start starts the processes in order, each once the one it needs is ready.
func (p *Peer) start(ctx context.Context, opts Options) error {
	if err := p.startXvfb(ctx, opts); err != nil {
		return err
	}
	if err := p.startChromium(ctx, opts); err != nil {
		return err
	}
	vncPort, err := p.startX11VNC(ctx)
	if err != nil {
		return err
	}
	webPort, err := p.startWebsockify(ctx, vncPort)
	if err != nil {
		return err
	}
	for _, pr := range p.procs {
		if pr.name == "chromium" && pr.exited() {
			return fmt.Errorf("vnc: chromium ended during start\n%s", pr.describe())
		}
	}
	p.URL = noVNCURL(webPort)
	return nil
}

// noVNCURL is the address of noVNC's page served by websockify on port.
func noVNCURL(port int) string {
	host := "127.0.0.1"
	q := url.Values{}
	q.Set("host", host)
	q.Set("port", strconv.Itoa(port))
	q.Set("path", "websockify")
	q.Set("encrypt", "0")
	q.Set("autoconnect", "1")
	// No reconnection: a lost connection is a failure to see.
	q.Set("reconnect", "0")
	// 1:1: neither scaled to the window nor the remote screen resized.
	q.Set("resize", "off")
	q.Set("view_clip", "0")
	q.Set("quality", strconv.Itoa(Quality))
	q.Set("compression", strconv.Itoa(Compression))
	q.Set("view_only", "0")
	q.Set("shared", "1")
	q.Set("show_dot", "0")
	q.Set("logging", "warn")
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/vnc.html?" + q.Encode()
}

// Logs returns the end of what every process wrote to its standard output
// and error, for a report of what went wrong. The logs are gone once Close
// returns.
func (p *Peer) Logs() string {
	var s string
	for _, pr := range p.procs {
		s += pr.describe()
	}
	return s
}

// PIDs returns the process ids of the peer's servers and browser that are
// still running (Xvfb, Chromium, x11vnc, websockify), each the leader of its
// own process group; their descendants are the rest of the peer. The bench
// reads their CPU time from /proc.
func (p *Peer) PIDs() []int {
	var pids []int
	for _, pr := range p.procs {
		if !pr.exited() {
			pids = append(pids, pr.pid())
		}
	}
	return pids
}

// Close stops every process the peer started, with the processes they
// started, and removes its temporary files. It is safe to call more than
// once; later calls return the first call's result.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		if p.stop != nil {
			p.stop()
		}
		p.closeErr = p.cleanup()
	})
	return p.closeErr
}

// cleanup stops the processes and removes the temporary directory.
func (p *Peer) cleanup() error {
	var errs []error
	if err := stopAll(p.procs, p.dir); err != nil {
		errs = append(errs, err)
	}
	removeXLock(p.display, p.procs)
	if err := cleanup.RemoveAll(p.dir, 5*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("vnc: remove %s: %w", p.dir, err))
	}
	return errors.Join(errs...)
}

// Missing reports the first program or file of the virtual browser that is
// not installed, with the Debian package that has it; nil when all are.
// chromium is the Chromium binary, empty for DefaultChromium.
func Missing(chromium string) error {
	if chromium == "" {
		chromium = DefaultChromium
	}
	for _, need := range []struct{ path, pkg string }{
		{XvfbPath, "xvfb"},
		{X11VNCPath, "x11vnc"},
		{WebsockifyPath, "websockify"},
		{filepath.Join(NoVNCDir, "vnc.html"), "novnc"},
		{chromium, "chromium"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			return fmt.Errorf("vnc: %s not found (Debian package %s): %w", need.path, need.pkg, err)
		}
	}
	return nil
}
