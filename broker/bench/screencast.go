package bench

import (
	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// Screencast is how the screencast of the bench's brokers and of its
// raw-CDP baseline is encoded and paced.
type Screencast struct {
	// Quality is the JPEG quality while the page moves.
	Quality int
	// MaxFramesInFlight is how many unacknowledged frames Chromium sends.
	MaxFramesInFlight int
	// SendLastFrame has Chromium keep the newest frame it could not send
	// while frames were in flight, and send it when one is acknowledged.
	SendLastFrame bool
}

// DefaultScreencast is the screencast of shoji's default configuration.
func DefaultScreencast() Screencast {
	return Screencast{Quality: chrome.DefaultJPEGQuality, MaxFramesInFlight: chrome.DefaultMaxFramesInFlight, SendLastFrame: true}
}

// params returns the parameters of Page.startScreencast with which a
// browser of shoji configured with s starts the screencast of a tab of
// viewport v: shoji's own, so that the raw-CDP baseline differs from
// shoji's browsers only in what reads the frames.
func (s Screencast) params(v isolation.Viewport) page.StartScreencastParams {
	last := s.SendLastFrame
	cfg := chrome.Config{MaxFramesInFlight: s.MaxFramesInFlight, SendLastFrame: &last}
	return cfg.ScreencastParams(v, s.Quality)
}
