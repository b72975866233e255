package tiles

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// updateFrames rewrites testdata/*.jpg from a live Chromium:
//
//	go test -run TestChromiumScreencast -update-frames ./broker/tiles/
var updateFrames = flag.Bool("update-frames", false, "rewrite testdata/*.jpg from Chromium's screencast")

// chromiumPath is Debian's Chromium, the browser shoji drives.
const chromiumPath = "/usr/lib/chromium/chromium"

// screencastQuality is shoji's default screencast quality
// (isolation/chrome.DefaultJPEGQuality).
const screencastQuality = 70

// testPage is a still page with text, a text area and a small box that the
// test moves: what a clinician's form looks like to the screencast. The
// caret is transparent and nothing animates, so Chromium paints, and sends a
// frame, only when the test changes something.
const testPage = `<!doctype html><html><head><style>
body{margin:24px;font:16px sans-serif;background:#fff;color:#222}
textarea{width:600px;height:120px;font:18px monospace;caret-color:transparent;outline:none}
#box{position:absolute;left:900px;top:300px;width:48px;height:48px;background:#36c;border-radius:24px}
h1{color:#a22}
</style></head><body>
<h1>Ward 7 &mdash; medication search</h1>
<p>Search the formulary by name or code. Results are shown below the search field;
the list updates as you type. Lorem ipsum dolor sit amet, consectetur adipiscing elit,
sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>
<textarea id="q" autofocus></textarea>
<div id="box"></div>
<ul><li>Paracetamol 500 mg tablets</li><li>Ibuprofen 400 mg tablets</li><li>Amoxicillin 250 mg capsules</li></ul>
</body></html>`

// densePage replaces testPage's content with a text area and a screenful
// of small text in many colours, then waits for two animation frames.
const densePage = `(() => {
  const words = 'patient ward dose mg tablet infusion allergy history chart nurse oncology cardiology renal hepatic paediatric admission discharge'.split(' ');
  let h = '<textarea id="q2" style="width:500px;height:40px;font:16px monospace;caret-color:transparent;outline:none"></textarea>';
  for (let i = 0; i < 14; i++) {
    let p = '';
    for (let j = 0; j < 22; j++) p += words[(i * 7 + j * 13) % words.length] + ' ';
    h += '<p style="margin:2px 0;font:14px sans-serif;color:' + (i % 4 ? '#222' : 'hsl(' + (i * 37 % 360) + ',60%,35%)') + '">' + i + ' ' + p + '</p>';
  }
  document.body.innerHTML = h;
  document.getElementById('q2').focus();
  return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
})()`

// screencastFrames are frames of testPage as Chromium's screencast sends
// them at 1280x800.
type screencastFrames struct {
	still, typed, moved []byte
	// denseStill and denseTyped are a page of small coloured text, whose
	// frames weigh what the real pages do (about 100 kB).
	denseStill, denseTyped []byte
}

// requireChromium skips the test when Chromium is missing, or fails it when
// SHOJI_REQUIRE_DEPS=1.
func requireChromium(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("chromium is required: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
}

// captureScreencast starts a headless Chromium, loads testPage at
// 1280x800 and returns its first screencast frame, the frame after one typed
// character and the frame after the box moved.
func captureScreencast(t *testing.T) screencastFrames {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	target := chromedp.FromContext(ctx).Target

	frames := make(chan *page.EventScreencastFrame, 64) // the listener never blocks: frames beyond 64 are dropped
	err := chromedp.Listen(ctx, func(ev any) {
		if f, ok := ev.(*page.EventScreencastFrame); ok {
			select {
			case frames <- f:
			default:
			}
		}
	})
	if err != nil {
		t.Fatalf("listen to chromium: %v", err)
	}
	call := func(what string, f func(context.Context) error) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		if err := f(cctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	evaluate := func(expr string) func(context.Context) error {
		return func(ctx context.Context) error {
			yes := true
			res, err := cdp.Call(ctx, target, runtime.Evaluate, runtime.EvaluateParams{Expression: expr, AwaitPromise: &yes})
			if err == nil && res.ExceptionDetails != nil {
				err = fmt.Errorf("%s", res.ExceptionDetails.Text)
			}
			return err
		}
	}
	call("size the viewport", func(ctx context.Context) error {
		_, err := cdp.Call(ctx, target, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: 1280, Height: 800, DeviceScaleFactor: 1, ScreenWidth: 1280, ScreenHeight: 800})
		return err
	})
	call("load the page", func(ctx context.Context) error {
		_, err := cdp.Call(ctx, target, page.Navigate, page.NavigateParams{URL: "data:text/html," + url.PathEscape(testPage)})
		return err
	})
	call("wait for the page", evaluate(`new Promise(r => { const go = () => { document.getElementById('q').focus(); document.fonts.ready.then(() => requestAnimationFrame(() => requestAnimationFrame(r))); }; if (document.readyState === 'complete' && document.getElementById('box')) go(); else addEventListener('load', go); })`))
	call("start the screencast", func(ctx context.Context) error {
		q := int64(screencastQuality)
		_, err := cdp.Call(ctx, target, page.StartScreencast, page.StartScreencastParams{
			Format: page.StartScreencastFormatJpeg, Quality: &q, MaxWidth: 1280, MaxHeight: 800, EveryNthFrame: 1})
		return err
	})
	// next waits for the next frame that differs from prev, acknowledging
	// each one so that Chromium sends the next.
	next := func(what string, prev []byte) []byte {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case f := <-frames:
				call("acknowledge a frame", func(ctx context.Context) error {
					_, err := cdp.Call(ctx, target, page.ScreencastFrameAck, page.ScreencastFrameAckParams{SessionID: f.SessionID})
					return err
				})
				if f.Metadata == nil || f.Metadata.DeviceWidth != 1280 || f.Metadata.DeviceHeight != 800 || bytes.Equal(f.Data, prev) {
					continue
				}
				return f.Data
			case <-deadline:
				t.Fatalf("no screencast frame for %s", what)
			}
		}
	}
	var fr screencastFrames
	fr.still = next("the still page", nil)
	call("type a character", func(ctx context.Context) error {
		_, err := cdp.Call(ctx, target, input.InsertText, input.InsertTextParams{Text: "x"})
		return err
	})
	fr.typed = next("the typed character", fr.still)
	call("move the box", evaluate(`document.getElementById('box').style.left = '940px'`))
	fr.moved = next("the moved box", fr.typed)
	call("fill the page with text", evaluate(densePage))
	fr.denseStill = next("the page of text", fr.moved)
	call("type a character", func(ctx context.Context) error {
		_, err := cdp.Call(ctx, target, input.InsertText, input.InsertTextParams{Text: "x"})
		return err
	})
	fr.denseTyped = next("the typed character on the page of text", fr.denseStill)
	return fr
}

// TestChromiumScreencast checks the engine on frames that a live Chromium
// sends now, so that a Chromium update that changes its JPEG encoder shows
// here; with -update-frames it rewrites the frames in testdata.
func TestChromiumScreencast(t *testing.T) {
	requireChromium(t)
	fr := captureScreencast(t)
	if *updateFrames {
		for name, data := range map[string][]byte{
			"still.jpg": fr.still, "typed.jpg": fr.typed, "moved.jpg": fr.moved,
			"dense-still.jpg": fr.denseStill, "dense-typed.jpg": fr.denseTyped,
		} {
			if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	still, typed := mustParse(t, fr.still), mustParse(t, fr.typed)
	if w, h := typed.MCUSize(); typed.Width != 1280 || typed.Height != 800 || w != 16 || h != 16 {
		t.Errorf("Chromium's frame is %dx%d in %dx%d MCUs, want 1280x800 in 16x16 (4:2:0)", typed.Width, typed.Height, w, h)
	}
	change := Diff(still, typed)
	if len(change) == 0 {
		t.Fatal("Diff found no change after a typed character")
	}
	full := decode(t, fr.typed)
	mcus := 0
	for _, r := range change {
		mcus += r.Dx() * r.Dy() / 256
		if p, ok := samePixels(full, decode(t, mustCrop(t, typed, r)), r); !ok {
			t.Errorf("crop of %v differs from the full frame at %v", r, p)
		}
	}
	if mcus > 16 {
		t.Errorf("a typed character changed %v (%d MCUs)", change, mcus)
	}
	if p, ok := samePixels(full, decode(t, mustCrop(t, typed, typed.Bounds())), typed.Bounds()); !ok {
		t.Errorf("crop of the whole frame differs at %v", p)
	}
}
