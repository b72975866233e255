package chrome

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

// BenchmarkBrowser is how a Launcher with the default Config would start a
// browser: its command line flags (without the program path) and its
// environment. shoji bench starts the Chromium of its raw-CDP baseline with
// them, so that the baseline differs from shoji's browsers only in what
// drives it.
type BenchmarkBrowser struct {
	Flags []string
	Env   []string
	// Sandbox is whether the sandbox is on; when it is, the caller must keep
	// chromedp from adding --no-sandbox for root.
	Sandbox bool
}

// BenchmarkLaunch prepares the profile directory profileDir (which must
// exist and be empty) as Launch would, and returns the flags and
// environment of a browser whose traffic goes through the HTTP proxy at
// proxyAddr and whose first viewport is v.
func BenchmarkLaunch(profileDir, proxyAddr string, v isolation.Viewport) (BenchmarkBrowser, error) {
	if !v.Valid() {
		return BenchmarkBrowser{}, fmt.Errorf("%w: %dx%d@%v is out of range", ErrViewport, v.Width, v.Height, v.DPR)
	}
	cfg := Config{ProfileRoot: filepath.Dir(profileDir)}
	if err := cfg.CheckAndSetDefaults(); err != nil {
		return BenchmarkBrowser{}, err
	}
	if err := writePreferences(profileDir); err != nil {
		return BenchmarkBrowser{}, err
	}
	opts := isolation.LaunchOptions{ProxyAddr: proxyAddr, Viewport: v}
	return BenchmarkBrowser{
		Flags:   Flags(cfg, opts, profileDir),
		Env:     browserEnv(profileDir),
		Sandbox: *cfg.Sandbox,
	}, nil
}

// Screencast is how a browser's screencast is encoded and paced.
type Screencast struct {
	// Quality is the JPEG quality while the page moves.
	Quality int
	// MaxFramesInFlight is how many unacknowledged frames Chromium sends.
	MaxFramesInFlight int
	// SendLastFrame has Chromium keep the newest frame it could not send
	// while frames were in flight, and send it when one is acknowledged.
	SendLastFrame bool
}

// DefaultScreencast is the screencast of the default Config.
func DefaultScreencast() Screencast {
	return Screencast{Quality: DefaultJPEGQuality, MaxFramesInFlight: DefaultMaxFramesInFlight, SendLastFrame: true}
}

// BenchmarkScreencast returns the parameters of Page.startScreencast that a
// browser whose Config sets s uses for a tab of viewport v: the same
// format, quality, frame pacing and flow control as its own screencast.
func BenchmarkScreencast(v isolation.Viewport, s Screencast) page.StartScreencastParams {
	return screencastParams(v, s)
}

// screencastParams are the parameters of Page.startScreencast for a tab of
// viewport v.
func screencastParams(v isolation.Viewport, s Screencast) page.StartScreencastParams {
	q := int64(s.Quality)
	last := s.SendLastFrame
	return page.StartScreencastParams{
		Format:        page.StartScreencastFormatJpeg,
		Quality:       &q,
		EveryNthFrame: 1,
		// The canvas's size: frames of a viewport whose DPR is below the
		// real device scale factor are scaled down to it. Chromium never
		// scales up.
		MaxWidth:          int64(math.Round(float64(v.Width) * v.DPR)),
		MaxHeight:         int64(math.Round(float64(v.Height) * v.DPR)),
		MaxFramesInFlight: int64(s.MaxFramesInFlight),
		SendLastFrame:     &last,
	}
}
