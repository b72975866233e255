package vnc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// x11vncAttempts is how often Start tries a new port when x11vnc ends during
// start: the port is free when chosen, but another process may take it
// before x11vnc binds it.
const x11vncAttempts = 3

// startXvfb starts the X server on the first free display and waits until it
// accepts connections.
func (p *Peer) startXvfb(ctx context.Context, opts Options) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("vnc: xvfb display pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(XvfbPath,
		// Xvfb picks the first free display itself and writes its number to
		// fd 3 once it accepts connections.
		"-displayfd", "3",
		"-screen", "0", fmt.Sprintf("%dx%dx24", opts.Width, opts.Height),
		"-nolisten", "tcp",
		// The server stays as it is when its last client disconnects.
		"-noreset",
	)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = baseEnv()
	pr, err := startProc(p.dir, "xvfb", cmd)
	w.Close()
	if err != nil {
		return err
	}
	p.procs = append(p.procs, pr)

	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1) // buffered: the reader never blocks on a Start that gave up
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && line == "" {
			got <- result{-1, fmt.Errorf("read display number: %w", err)}
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(line))
		got <- result{n, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		res.err = ctx.Err()
	}
	if res.err != nil {
		// Wait for the reader, so that r is closed after it.
		_ = r.SetReadDeadline(time.Now())
		<-got
		return fmt.Errorf("vnc: xvfb display: %w\n%s", res.err, pr.describe())
	}
	p.display = res.n
	sock := "/tmp/.X11-unix/X" + strconv.Itoa(res.n)
	return waitReady(ctx, pr, "xvfb", func() error {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// chromiumFlags are the flags of the peer's Chromium, without the page.
// They are shoji's flags (isolation/chrome) where those apply to a visible
// browser: no traffic of the browser's own, nothing from the host's keyring,
// no prompts, software compositing.
//
// The window has no tab strip, address bar or frame (kiosk mode) and covers
// the screen. Without a window manager kiosk mode cannot make the window
// fullscreen, and Chromium shrinks a window the size of the screen by one
// pixel each way, so the window is one pixel larger than the screen: the
// page's last column and row are off the screen.
func chromiumFlags(opts Options, profile string) []string {
	flags := []string{
		"--user-data-dir=" + profile,
		"--ozone-platform=x11",
		"--kiosk",
		"--window-position=0,0",
		"--window-size=" + strconv.Itoa(opts.Width+1) + "," + strconv.Itoa(opts.Height+1),
		"--force-device-scale-factor=1",
	}
	flags = append(flags, chrome.QuietFlags()...)
	flags = append(flags,
		"--deny-permission-prompts",
		"--mute-audio",
		"--disable-gpu",
		"--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,DialMediaRouteProvider,Translate,NetworkTimeServiceQuerying,InterestFeedContentSuggestions,PrivacySandboxSettings4",
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox. Kiosk mode
		// shows no warning bar for it.
		flags = append(flags, "--no-sandbox")
	}
	return flags
}

// startChromium starts Chromium on the X display at the page.
func (p *Peer) startChromium(ctx context.Context, opts Options) error {
	home := filepath.Join(p.dir, "home")
	profile := filepath.Join(p.dir, "profile")
	for _, d := range []string{home, profile} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("vnc: chromium directory: %w", err)
		}
	}
	args := append(chromiumFlags(opts, profile), opts.PageURL)
	cmd := exec.Command(opts.Chromium, args...)
	cmd.Env = append(baseEnv(),
		"DISPLAY=:"+strconv.Itoa(p.display),
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
	)
	pr, err := startProc(p.dir, "chromium", cmd)
	if err != nil {
		return err
	}
	// There is no D-Bus, and Chromium says so many times.
	pr.noise = []string{"ERROR:dbus/"}
	p.procs = append(p.procs, pr)
	if ctx.Err() != nil {
		return fmt.Errorf("vnc: start chromium: %w", ctx.Err())
	}
	return nil
}

// x11vncFlags are the flags of the VNC server of display on port. Beside the
// loopback-only, passwordless, many-viewer setup, they are the tuning a
// deployment applies for responsiveness.
func x11vncFlags(display, port int) []string {
	return []string{
		"-display", ":" + strconv.Itoa(display),
		"-rfbport", strconv.Itoa(port),
		// 127.0.0.1 only, and no IPv6 listener, whose port was not checked.
		"-localhost", "-no6",
		"-nopw", "-forever", "-shared",
		// No ~/.x11vncrc.
		"-norc",
		// No client-side pixel cache: noVNC would show the cache below the
		// screen, and it only helps when switching between windows.
		"-ncache", "0",
		// Poll the screen and send updates every 10 ms instead of 20 (the
		// poll interval is halved again right after input, -wait_ui).
		// XDAMAGE (the default) tells x11vnc where Chromium drew, which is
		// reliable on Xvfb, where there is no compositor.
		"-wait", "10", "-defer", "10",
		// No naps when the screen has been still: the first change after a
		// pause would wait for the nap to end.
		"-nonap", "-sb", "0",
		// A thread of its own reads each viewer's input and another sends
		// its updates, so input is not held up behind a screen poll.
		"-threads",
	}
}

// startX11VNC starts the VNC server on a free port and waits until it
// greets a client. It returns the port.
func (p *Peer) startX11VNC(ctx context.Context) (int, error) {
	var errs []error
	for attempt := 1; attempt <= x11vncAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		cmd := exec.Command(X11VNCPath, x11vncFlags(p.display, port)...)
		cmd.Env = baseEnv()
		pr, err := startProc(p.dir, "x11vnc-"+strconv.Itoa(attempt), cmd)
		if err != nil {
			return 0, err
		}
		p.procs = append(p.procs, pr)
		err = waitReady(ctx, pr, "x11vnc", func() error { return rfbGreets(port) })
		if err == nil {
			return port, nil
		}
		errs = append(errs, err)
		if !pr.exited() {
			return 0, errors.Join(errs...)
		}
		// It ended by itself and has no children: forget it, so that its
		// process group is not signalled once its id may be reused.
		p.procs = p.procs[:len(p.procs)-1]
	}
	return 0, errors.Join(errs...)
}

// rfbGreets connects to the VNC server on port and reads its greeting.
func rfbGreets(port int) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 12)
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("read RFB greeting: %w", err)
	}
	if !strings.HasPrefix(string(buf), "RFB ") {
		return fmt.Errorf("not an RFB greeting: %q", buf)
	}
	return nil
}

// startWebsockify starts websockify, which serves noVNC and carries its
// WebSocket to the VNC server on vncPort, and waits until it serves noVNC's
// page. It returns websockify's port.
func (p *Peer) startWebsockify(ctx context.Context, vncPort int) (int, error) {
	// websockify takes the listening socket on its standard input, so no
	// other process can take the port between choosing and binding it.
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("vnc: websockify listener: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f, err := ln.File()
	if err != nil {
		return 0, fmt.Errorf("vnc: websockify listener: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(WebsockifyPath,
		"--inetd",
		"--web", NoVNCDir,
		net.JoinHostPort("127.0.0.1", strconv.Itoa(vncPort)),
	)
	cmd.Stdin = f
	cmd.Env = baseEnv()
	pr, err := startProc(p.dir, "websockify", cmd)
	if err != nil {
		return 0, err
	}
	p.procs = append(p.procs, pr)
	page := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/vnc.html"
	client := &http.Client{Timeout: 2 * time.Second}
	err = waitReady(ctx, pr, "websockify", func() error {
		resp, err := client.Get(page)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", page, resp.Status)
		}
		return nil
	})
	client.CloseIdleConnections()
	if err != nil {
		return 0, err
	}
	return port, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("vnc: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// baseEnv is the environment every process starts with: none of this
// process's, but for the locale and time zone.
func baseEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	for _, k := range []string{"LANG", "LANGUAGE", "LC_ALL", "TZ", "FONTCONFIG_PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
