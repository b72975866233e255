package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoji-rbi/shoji/broker/bench"
	"github.com/shoji-rbi/shoji/broker/bench/vnc"
	"github.com/shoji-rbi/shoji/internal/cli"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
)

const benchUsage = `Usage: shoji-bench [--out DIR] [--samples N] [--quick] [--scenarios a,b]
                   [--shoji PATH | --target URL --user U --password-stdin] [flags]

Measures shoji as a clinician feels it: click, key and IME latency, frame
rates, CPU and memory, login time and capacity, each beside a raw-CDP
screencast of an identical Chromium (the limit of the design) and, when it is
available, the VNC peer. It starts its own broker ("shoji serve" of the
shoji binary --shoji names, on a fresh data directory) and serves its own
scenario pages, and writes bench.json, README.md and PNG plots into --out.

Scenarios: ` + "click, key, ime, animation, scroll, static, bandwidth, capture, encoding, memory, login, capacity" + `

Flags:
`

// runBench parses the bench flags and runs the benchmark.
func runBench(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoji-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	out := fs.String("out", "bench-results", "output `directory`")
	samples := fs.Int("samples", 0, "click samples per client (default 200, 20 with --quick); key gets half, IME a quarter")
	quick := fs.Bool("quick", false, "a short run: fewer samples, shorter windows, fewer sessions")
	scenarios := fs.String("scenarios", "", "comma-separated `list` of scenarios to run (default all)")
	chromium := fs.String("chromium", "", "Chromium binary (default /usr/lib/chromium/chromium)")
	viewport := fs.String("viewport", "1280x720", "remote viewport `WxH`")
	maxSessions := fs.Int("max-sessions", 0, "most idle sessions the capacity scenario opens (default 50, 5 with --quick)")
	vnc := fs.Bool("vnc", true, "also measure the VNC peer (Xvfb, x11vnc, websockify, noVNC)")
	quality := fs.Int("jpeg-quality", chrome.DefaultJPEGQuality, "screencast JPEG quality of the brokers and the raw-CDP baseline")
	inFlight := fs.Int("frames-in-flight", chrome.DefaultMaxFramesInFlight, "screencast MaxFramesInFlight of the brokers and the raw-CDP baseline")
	sendLast := fs.Bool("send-last-frame", true, "screencast sendLastFrame of the brokers and the raw-CDP baseline")
	target := fs.String("target", "", "measure the running broker at this `URL` instead of starting one")
	user := fs.String("user", "", "clinician account on --target")
	pwStdin := fs.Bool("password-stdin", false, "read --user's password from the first line of standard input")
	pagesListen := fs.String("pages-listen", "", "address to serve the scenario pages on (default 127.0.0.1, any port)")
	shoji := fs.String("shoji", "", "the shoji `binary` that runs the broker (default: shoji beside this program, else shoji on PATH)")
	verbose := fs.Bool("v", false, "log progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	o := bench.Options{
		Out: *out, Samples: *samples, Quick: *quick, Chromium: *chromium, MaxSessions: *maxSessions,
		Target: *target, User: *user, PagesListen: *pagesListen, Version: version,
		Command:    strings.TrimSpace("shoji-bench " + strings.Join(args, " ")),
		Screencast: bench.Screencast{Quality: *quality, MaxFramesInFlight: *inFlight, SendLastFrame: *sendLast},
	}
	if *scenarios != "" {
		for s := range strings.SplitSeq(*scenarios, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.Scenarios = append(o.Scenarios, s)
			}
		}
	}
	vp, err := parseViewport(*viewport)
	if err != nil {
		return err
	}
	o.Viewport = vp
	if *target != "" {
		if *user == "" || !*pwStdin {
			return fmt.Errorf("bench: --target needs --user and --password-stdin")
		}
		if o.Password, err = cli.ReadPassword(stdin); err != nil {
			return err
		}
	} else {
		exe, err := shojiBinary(*shoji)
		if err != nil {
			return err
		}
		o.Broker = []string{exe}
		o.Version = brokerVersion(ctx, exe)
	}
	if *vnc {
		o.Peer = vncPeer
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(o.Out)
	failed := 0
	for _, s := range rep.Scenarios {
		if s.Status == "failed" {
			failed++
			fmt.Fprintf(stderr, "scenario %s failed: %s\n", s.Name, s.Error)
		}
	}
	fmt.Fprintf(stdout, "results: %s (bench.json, README.md, plots)\n", abs)
	if failed > 0 {
		return fmt.Errorf("bench: %d scenario(s) failed; see %s", failed, filepath.Join(abs, "README.md"))
	}
	return nil
}

// shojiBinary finds the shoji binary that runs the bench's broker: name if
// set, else shoji in the directory of this program (where make bench puts
// both), else shoji on PATH.
func shojiBinary(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("bench: --shoji %q: %w", name, err)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "shoji")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("shoji")
	if err != nil {
		return "", fmt.Errorf("bench: no shoji binary beside this program or on PATH to run the broker (build it with make build, or name it with --shoji): %w", err)
	}
	return p, nil
}

// brokerVersion is what "shoji version" of the binary exe prints, without
// the program's name, or this program's version when exe does not answer.
func brokerVersion(ctx context.Context, exe string) string {
	out, err := exec.CommandContext(ctx, exe, "version").Output()
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "shoji "); err == nil && ok && v != "" {
		return v
	}
	return version
}

// parseViewport parses "WxH".
func parseViewport(s string) (isolation.Viewport, error) {
	w, h, ok := strings.Cut(strings.ToLower(s), "x")
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	vp := isolation.Viewport{Width: wi, Height: hi, DPR: 1}
	if !ok || err1 != nil || err2 != nil || !vp.Valid() {
		return vp, fmt.Errorf("bench: --viewport %q: want WxH, each %d–%d", s, isolation.MinViewportSide, isolation.MaxViewportSide)
	}
	return vp, nil
}

// vncPeer starts the VNC peer for the bench.
func vncPeer(ctx context.Context, o bench.PeerOptions) (bench.StartedPeer, error) {
	p, err := vnc.Start(ctx, vnc.Options{PageURL: o.PageURL, Width: o.Width, Height: o.Height, Chromium: o.Chromium})
	if err != nil {
		return bench.StartedPeer{}, err
	}
	return bench.StartedPeer{URL: p.URL, PIDs: p.PIDs(), Stop: p.Close}, nil
}
