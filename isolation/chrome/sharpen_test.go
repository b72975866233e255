package chrome

import (
	"image"
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/isolation"
)

// lastFrame returns the last frame and how many arrived.
func (r *recorder) lastFrame() (isolation.Frame, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.frames
}

// TestSharpRefresh checks the refresh sent when a page settles: one, at
// the sharp quality, of the same size and content as the screencast's
// last frame, and one again after the page changed.
func TestSharpRefresh(t *testing.T) {
	quick := func(c *Config) { c.SettleDelay = 200 * time.Millisecond }
	f := launchFixture(t, isolation.Viewport{Width: 400, Height: 300, DPR: 1}, "http://"+siteHost+"/color", quick)
	b, rec := f.b, f.rec
	refreshes := func() int {
		b.screen.sharp.mu.Lock()
		defer b.screen.sharp.mu.Unlock()
		return b.screen.sharp.refreshes
	}

	eventually(t, "the first refresh", func() bool { return refreshes() == 1 })
	last, n := rec.lastFrame()
	if last.Quality != DefaultSharpQuality || last.Width != 400 || last.Height != 300 {
		t.Fatalf("refresh: quality %d, %dx%d; want %d, 400x300", last.Quality, last.Width, last.Height, DefaultSharpQuality)
	}
	waitFrame(t, rec, n-1, func(m image.Image) bool {
		return near(m.At(10, 10), color.RGBA{0, 0, 255, 255}) && near(m.At(200, 200), color.RGBA{255, 0, 0, 255})
	})
	// The capture makes no new frame, so the refresh is not repeated.
	time.Sleep(4 * b.cfg.SettleDelay)
	if _, m := rec.lastFrame(); m != n || refreshes() != 1 {
		t.Fatalf("a still page got %d more frames and %d refreshes after its refresh", m-n, refreshes())
	}

	// A key frame is delivered although nothing changed, then refreshed.
	if err := b.KeyFrame(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the key frame and its refresh", func() bool { _, m := rec.lastFrame(); return m >= n+2 && refreshes() == 2 })
	_, n = rec.lastFrame()

	// A change comes at the screencast's quality, then a refresh of it.
	eval[string](t, b, `document.body.style.background = 'rgb(0,255,0)'; 'ok'`)
	waitFrame(t, rec, n, func(m image.Image) bool { return near(m.At(200, 200), color.RGBA{0, 255, 0, 255}) })
	eventually(t, "the third refresh", func() bool { return refreshes() == 3 })
	last, n = rec.lastFrame()
	if last.Quality != DefaultSharpQuality {
		t.Errorf("last frame's quality is %d after the change settled, want %d", last.Quality, DefaultSharpQuality)
	}
	waitFrame(t, rec, n-1, func(m image.Image) bool { return near(m.At(200, 200), color.RGBA{0, 255, 0, 255}) })

	// The page settles while a tab switch, key frame or resize holds the
	// screencast: the refresh comes once it is done, though no frame
	// follows. (The state is as after a frame at the moving quality: the
	// timer fires sharpen, which finds the screencast busy.)
	b.screen.switchMu.Lock()
	b.screen.sharp.mu.Lock()
	b.screen.sharp.mode = sharpIdle
	b.screen.sharp.seq++
	b.screen.sharp.mu.Unlock()
	b.screen.sharpen()
	b.screen.switchMu.Unlock()
	eventually(t, "the refresh after the screencast was busy", func() bool { return refreshes() == 4 })
}

// TestSharpRefreshOff checks that a negative SharpQuality sends no
// refresh.
func TestSharpRefreshOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		vp   isolation.Viewport
	}{
		{"Off", func(c *Config) { c.SharpQuality = -1; c.SettleDelay = 100 * time.Millisecond }, isolation.Viewport{Width: 400, Height: 300, DPR: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := launchFixture(t, tc.vp, "http://"+siteHost+"/color", tc.edit)
			waitFrame(t, f.rec, 0, nil)
			time.Sleep(5 * f.b.cfg.SettleDelay)
			last, _ := f.rec.lastFrame()
			if last.Quality != f.b.cfg.JPEGQuality || last.Width != 400 {
				t.Errorf("last frame: quality %d, width %d; want the screencast's %d, 400", last.Quality, last.Width, f.b.cfg.JPEGQuality)
			}
		})
	}
}

// TestSetQuality checks that the screencast restarts at a new quality at
// once, and that a quality out of range is refused.
func TestSetQuality(t *testing.T) {
	f := launchFixture(t, isolation.Viewport{Width: 400, Height: 300, DPR: 1}, "http://"+siteHost+"/color",
		func(c *Config) { c.SharpQuality = -1 })
	waitFrame(t, f.rec, 0, nil)
	_, n := f.rec.lastFrame()
	if err := f.b.SetQuality(testCtx(t), 20); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, f.rec, n, nil)
	if last, _ := f.rec.lastFrame(); last.Quality != 20 {
		t.Errorf("frame after SetQuality(20) has quality %d", last.Quality)
	}
	for _, q := range []int{-1, 101} {
		if err := f.b.SetQuality(testCtx(t), q); err == nil || !strings.Contains(err.Error(), "quality") {
			t.Errorf("SetQuality(%d) = %v, want an error naming the quality", q, err)
		}
	}
	_, n = f.rec.lastFrame()
	if err := f.b.SetQuality(testCtx(t), 0); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, f.rec, n, nil)
	if last, _ := f.rec.lastFrame(); last.Quality != DefaultJPEGQuality {
		t.Errorf("frame after SetQuality(0) has quality %d, want the configured %d", last.Quality, DefaultJPEGQuality)
	}

	// A viewport already applied changes nothing and restarts nothing.
	v := isolation.Viewport{Width: 500, Height: 300, DPR: 1}
	_, n = f.rec.lastFrame()
	if err := f.b.SetViewport(testCtx(t), v); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, f.rec, n, func(m image.Image) bool { return m.Bounds().Dx() == 500 })
	time.Sleep(300 * time.Millisecond)
	_, n = f.rec.lastFrame()
	if err := f.b.SetViewport(testCtx(t), v); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, m := f.rec.lastFrame(); m != n {
		t.Errorf("setting the same viewport again sent %d frames", m-n)
	}
}
