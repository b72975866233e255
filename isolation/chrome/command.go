package chrome

import (
	"math"

	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

// Command is how Chromium is started on a prepared profile directory: its
// command line flags (without the program path), its whole environment,
// and whether its sandbox is on.
type Command struct {
	Flags []string
	Env   []string
	// Sandbox is whether the sandbox is on; when it is, whoever starts
	// Chromium through chromedp must keep chromedp from adding --no-sandbox
	// for root.
	Sandbox bool
}

// PrepareProfile writes what a browser of c launched with opts needs into
// the profile directory dir, which must exist and be empty (the
// preferences, and the trusted CAs in its NSS database), and returns the
// Command that starts Chromium on it. c must have passed
// CheckAndSetDefaults. Every browser a Launcher starts is prepared by it, so
// anything else that starts Chromium through it (such as shoji-bench's
// raw-CDP baseline) gets the flags and environment of shoji's browsers.
func (c Config) PrepareProfile(dir string, opts isolation.LaunchOptions) (Command, error) {
	if err := checkLaunchOptions(opts); err != nil {
		return Command{}, err
	}
	if err := writePreferences(dir); err != nil {
		return Command{}, err
	}
	if err := installTrustedCAs(dir, c.TrustedCAs); err != nil {
		return Command{}, err
	}
	return Command{
		Flags:   Flags(c, opts, dir),
		Env:     browserEnv(dir),
		Sandbox: *c.Sandbox,
	}, nil
}

// ScreencastParams returns the parameters of Page.startScreencast with
// which a browser of c starts the screencast of a tab of viewport v at JPEG
// quality q: its format, frame pacing and flow control. c must have passed
// CheckAndSetDefaults.
func (c Config) ScreencastParams(v isolation.Viewport, q int) page.StartScreencastParams {
	quality := int64(q)
	last := *c.SendLastFrame
	return page.StartScreencastParams{
		Format:        page.StartScreencastFormatJpeg,
		Quality:       &quality,
		EveryNthFrame: 1,
		// The canvas's size: frames of a viewport whose DPR is below the
		// real device scale factor are scaled down to it. Chromium never
		// scales up.
		MaxWidth:          int64(math.Round(float64(v.Width) * v.DPR)),
		MaxHeight:         int64(math.Round(float64(v.Height) * v.DPR)),
		MaxFramesInFlight: int64(c.MaxFramesInFlight),
		SendLastFrame:     &last,
	}
}
