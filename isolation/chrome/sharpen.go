package chrome

import (
	"bytes"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"

	"github.com/shoji-rbi/shoji/isolation"
)

// A screencast sends frames only while the page changes, at
// Config.JPEGQuality: a quality that keeps moving pages light on the
// network and quick to encode and decode, at the price of some blur at the
// edges of text. Once the page has settled (no frame for
// Config.SettleDelay), the browser sends one refresh of the same view at
// Config.SharpQuality, so the text a clinician reads is sharp. A page that
// moves again gets screencast frames at once; the next pause gets the next
// refresh.
//
// The refresh is a Page.captureScreenshot of the active tab. It is
// delivered only if no screencast frame was delivered since the capture
// began, so it never replaces a newer view; the next pause tries again.
// The capture makes the page composite once more, and the screencast sends
// that frame too: a frame byte for byte the same as the screencast's last
// is not delivered (it shows nothing new, and would undo the refresh) and
// does not count as a change, or every refresh would cause the next.

// sharpener is the state of the settle refresh; deliver and sharpen share
// it.
type sharpener struct {
	// mu is held while a frame is handed to the observer, so a refresh
	// and a screencast frame are delivered in the order they were checked.
	mu    sync.Mutex
	timer *time.Timer
	// seq counts the frames delivered; sharp is seq after the last
	// refresh.
	seq, sharp uint64
	// w and h are the size of the last screencast frame, last its image.
	w, h int
	last []byte
	// fresh makes the next screencast frame be delivered even if it is
	// the same as the last: a key frame asked for.
	fresh bool
	// refreshes counts the refreshes delivered, for tests.
	refreshes int
}

// startSharpener arms the settle refresh, unless Config turns it off.
func (b *browser) startSharpener() {
	if b.cfg.SharpQuality <= 0 {
		return
	}
	b.sharp.timer = time.AfterFunc(time.Hour, func() { b.spawn(b.sharpen) })
	b.sharp.timer.Stop()
}

// stopSharpener disarms the settle refresh.
func (b *browser) stopSharpener() {
	b.sharp.mu.Lock()
	defer b.sharp.mu.Unlock()
	if b.sharp.timer != nil {
		b.sharp.timer.Stop()
	}
}

// deliverFrame hands a screencast frame of the active tab to the observer
// and re-arms the settle refresh.
func (b *browser) deliverFrame(f isolation.Frame) {
	f.Quality = int(b.quality.Load())
	s := &b.sharp
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh && bytes.Equal(f.JPEG, s.last) {
		return
	}
	s.fresh = false
	s.seq++
	s.w, s.h, s.last = f.Width, f.Height, f.JPEG
	if s.timer != nil {
		s.timer.Reset(b.cfg.SettleDelay)
	}
	b.obs.Frame(f)
}

// wantFresh has the next screencast frame delivered even if nothing
// changed.
func (b *browser) wantFresh() {
	b.sharp.mu.Lock()
	b.sharp.fresh = true
	b.sharp.mu.Unlock()
}

// sharpen sends the refresh of a page that settled, if it has none yet.
func (b *browser) sharpen() {
	s := &b.sharp
	s.mu.Lock()
	seq, w, h := s.seq, s.w, s.h
	s.mu.Unlock()
	if seq == s.sharpSeq() {
		return
	}
	b.mu.Lock()
	t := b.active
	b.mu.Unlock()
	if t == nil || t.sess == nil {
		return
	}
	ctx, cancel := t.callCtx(b.cfg.CallTimeout)
	defer cancel()
	q := int64(b.cfg.SharpQuality)
	res, err := cdp.Call(ctx, t.sess, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:  page.CaptureScreenshotFormatJpeg,
		Quality: &q,
	})
	if err != nil {
		if b.life.Err() == nil {
			b.log.Debug("sharp refresh", logTab, t.id, logErr, err)
		}
		return
	}
	f := isolation.Frame{JPEG: res.Data, Time: time.Now(), Quality: b.cfg.SharpQuality}
	var ok bool
	if f.Width, f.Height, ok = jpegSize(f.JPEG); !ok || f.Width != w || f.Height != h {
		// A viewer whose DPR is below the browser's scale factor gets
		// scaled frames; a screenshot is not scaled. It keeps the
		// screencast's frames.
		b.log.Debug("sharp refresh skipped", logTab, t.id, "size", [2]int{f.Width, f.Height}, "frame", [2]int{w, h})
		s.mu.Lock()
		s.sharp = seq
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq != seq {
		return // the page moved: the next pause refreshes
	}
	s.seq++
	s.sharp = s.seq
	s.refreshes++
	b.obs.Frame(f)
}

// sharpSeq is seq after the last refresh.
func (s *sharpener) sharpSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sharp
}
