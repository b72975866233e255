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

// BenchmarkScreencast returns the parameters of Page.startScreencast that a
// browser of the default Config uses for a tab of viewport v: the same
// format, quality, frame pacing and flow control as startScreencast, which
// they must follow.
func BenchmarkScreencast(v isolation.Viewport) page.StartScreencastParams {
	q := int64(DefaultJPEGQuality)
	last := true
	return page.StartScreencastParams{
		Format:            page.StartScreencastFormatJpeg,
		Quality:           &q,
		EveryNthFrame:     1,
		MaxWidth:          int64(math.Round(float64(v.Width) * v.DPR)),
		MaxHeight:         int64(math.Round(float64(v.Height) * v.DPR)),
		MaxFramesInFlight: DefaultMaxFramesInFlight,
		SendLastFrame:     &last,
	}
}
