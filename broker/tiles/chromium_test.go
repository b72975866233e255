package tiles

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
func captureScreencast(t *testing.T) (screencastFrames, func(expr string) string) {
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
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
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
	// value evaluates expr, awaiting it, and returns its result as JSON.
	value := func(expr string) string {
		t.Helper()
		var out string
		call("evaluate", func(ctx context.Context) error {
			yes := true
			res, err := cdp.Call(ctx, target, runtime.Evaluate, runtime.EvaluateParams{Expression: expr, AwaitPromise: &yes, ReturnByValue: &yes})
			if err == nil && res.ExceptionDetails != nil {
				err = fmt.Errorf("%s", res.ExceptionDetails.Text)
			}
			if err == nil {
				out = string(res.Result.Value)
			}
			return err
		})
		return out
	}
	return fr, value
}

// TestChromiumScreencast checks the engine on frames that a live Chromium
// sends now, so that a Chromium update that changes its JPEG encoder shows
// here; with -update-frames it rewrites the frames in testdata.
func TestChromiumScreencast(t *testing.T) {
	requireChromium(t)
	fr, value := captureScreencast(t)
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
	browserDecodes(t, value, fr.typed, typed, append(change, image.Rect(0, 0, 48, 32), image.Rect(1232, 768, 1280, 800), image.Rect(480, 320, 800, 480)))
}

// browserDecodes has Chromium decode crops of m (whose JPEG is data) and
// draw them and the full frame on canvases: every crop must decode to its
// size and, away from its outermost two pixels, to exactly the full
// frame's pixels. At the edge Chromium's smoothing chroma upsampling can
// differ (see the package documentation); the test logs by how much.
func browserDecodes(t *testing.T, value func(string) string, data []byte, m *Image, rects []image.Rectangle) {
	t.Helper()
	var crops []string
	var boxes []string
	for _, r := range rects {
		crops = append(crops, `"`+base64.StdEncoding.EncodeToString(mustCrop(t, m, r))+`"`)
		boxes = append(boxes, fmt.Sprintf("[%d,%d,%d,%d]", r.Min.X, r.Min.Y, r.Dx(), r.Dy()))
	}
	expr := `(async () => {
  const load = b64 => new Promise((ok, fail) => { const i = new Image(); i.onload = () => ok(i); i.onerror = () => fail(new Error('decode failed')); i.src = 'data:image/jpeg;base64,' + b64; });
  const pixels = (img, w, h) => { const c = document.createElement('canvas'); c.width = w; c.height = h; const g = c.getContext('2d'); g.drawImage(img, 0, 0); return g.getImageData(0, 0, w, h).data; };
  const full = pixels(await load("` + base64.StdEncoding.EncodeToString(data) + `"), ` + fmt.Sprint(m.Width, ",", m.Height) + `);
  const crops = [` + strings.Join(crops, ",") + `], boxes = [` + strings.Join(boxes, ",") + `];
  const out = [];
  for (let n = 0; n < crops.length; n++) {
    const [x0, y0, w, h] = boxes[n];
    const img = await load(crops[n]);
    if (img.naturalWidth !== w || img.naturalHeight !== h) { out.push('size ' + img.naturalWidth + 'x' + img.naturalHeight); continue; }
    const p = pixels(img, w, h);
    let inner = 0, edge = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
      const d = Math.abs(p[(y * w + x) * 4 + c] - full[((y0 + y) * ` + fmt.Sprint(m.Width) + ` + x0 + x) * 4 + c]);
      if (x >= 2 && y >= 2 && x < w - 2 && y < h - 2) inner = Math.max(inner, d); else edge = Math.max(edge, d);
    }
    out.push(inner + '/' + edge);
  }
  return out;
})()`
	var got []string
	if err := json.Unmarshal([]byte(value(expr)), &got); err != nil {
		t.Fatalf("the browser's answer: %v", err)
	}
	for i, r := range rects {
		var inner, edge int
		if _, err := fmt.Sscanf(got[i], "%d/%d", &inner, &edge); err != nil {
			t.Errorf("crop %v in Chromium: %s", r, got[i])
			continue
		}
		if inner != 0 {
			t.Errorf("crop %v in Chromium differs from the full frame by up to %d inside its edge", r, inner)
		}
		t.Logf("crop %v in Chromium: identical inside, up to %d levels apart on its outermost two pixels", r, edge)
	}
}
