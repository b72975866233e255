// Package e2e holds shoji's end-to-end tests: a real broker in demo mode
// with real isolated Chromium browsers, driven through the viewer page in a
// second headless Chromium exactly as a clinician would drive it.
package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
)

// demoBlue is the demo site's header band colour (#1e5aa8).
var demoBlue = [3]int{0x1e, 0x5a, 0xa8}

func near(a, b [3]int, tol int) bool {
	for i := range a {
		if d := a[i] - b[i]; d < -tol || d > tol {
			return false
		}
	}
	return true
}

// TestClinicianJourney walks through a clinician's session from login to
// logout, checking every step both on the viewer's canvas and in the
// remote page.
func TestClinicianJourney(t *testing.T) {
	b := startBroker(t, nil)
	v := newViewer(t, 1366, 768)
	v.login(b)

	t.Run("demo page appears on the canvas", func(t *testing.T) {
		v := v.in(t)
		v.waitFor("the demo's blue header on the canvas", fmt.Sprintf(`(() => {
			const c = document.getElementById('screen');
			const d = c.getContext('2d').getImageData(Math.floor(c.width/2), 10, 1, 1).data;
			return Math.abs(d[0]-%d) < 24 && Math.abs(d[1]-%d) < 24 && Math.abs(d[2]-%d) < 24;
		})()`, demoBlue[0], demoBlue[1], demoBlue[2]))
		if p := v.pixel(20, 10); !near(p, demoBlue, 24) {
			t.Errorf("canvas pixel at the header = %v, want about %v", p, demoBlue)
		}
		// Canvas pixels equal remote CSS pixels times devicePixelRatio.
		cw := eval[[]float64](v, `(() => { const c = document.getElementById('screen'); const r = c.getBoundingClientRect(); return [c.width, c.height, r.width, r.height, devicePixelRatio]; })()`)
		rw := remote[[]float64](t, b, `[innerWidth, innerHeight, devicePixelRatio]`)
		if int(rw[0]) != int(cw[2]) || int(rw[1]) != int(cw[3]) {
			t.Errorf("remote viewport %vx%v, viewer canvas %vx%v CSS px", rw[0], rw[1], cw[2], cw[3])
		}
	})

	t.Run("click a link and the address bar changes", func(t *testing.T) {
		v := v.in(t)
		waitRemote(t, b, "the demo index", `location.pathname === '/' && !!document.querySelector('#link-form')`)
		x, y := remoteCentre(t, b, "#link-form")
		v.clickRemote(x, y)
		waitRemote(t, b, "the form page", `location.pathname === '/form'`)
		v.waitFor("the address bar to show /form", `document.getElementById('address').value.endsWith('/form')`)
	})

	t.Run("type ASCII into a remote input", func(t *testing.T) {
		v := v.in(t)
		x, y := remoteCentre(t, b, "#name")
		v.clickRemote(x, y)
		waitRemote(t, b, "focus on #name", `document.activeElement && document.activeElement.id === 'name'`)
		v.do(chromedp.KeyEvent("Hello, world!"))
		waitRemote(t, b, "typed text", `document.querySelector('#name').value === 'Hello, world!'`)
		// Backspace and select-all + retype work as on a local page.
		v.do(chromedp.KeyEvent("\b\bX"))
		waitRemote(t, b, "backspace", `document.querySelector('#name').value === 'Hello, worlX'`)
		v.do(chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent("Yamada"))
		waitRemote(t, b, "select-all replaced", `document.querySelector('#name').value === 'Yamada'`)
	})

	t.Run("type Japanese through the viewer's IME", func(t *testing.T) {
		v := v.in(t)
		x, y := remoteCentre(t, b, "#search")
		v.clickRemote(x, y)
		waitRemote(t, b, "focus on #search", `document.activeElement && document.activeElement.id === 'search'`)
		ctx, cancel := context.WithTimeout(v.ctx, 20*time.Second)
		defer cancel()
		for _, step := range []string{"に", "にほ", "にほん", "にほんご"} {
			n := int64(len([]rune(step)))
			if _, err := chromedp.Call(ctx, input.ImeSetComposition, input.ImeSetCompositionParams{Text: step, SelectionStart: n, SelectionEnd: n}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: "日本語"}); err != nil {
			t.Fatal(err)
		}
		waitRemote(t, b, "日本語 committed", `document.querySelector('#search').value === '日本語'`)
		// The composition reached the remote page as a composition, not
		// keystrokes: compositionend follows the committed value.
		waitRemote(t, b, "the composition events", `(() => {
			const e = document.querySelector('#events');
			return !!e && e.textContent.includes('compositionstart') && e.textContent.includes('compositionend');
		})()`)
		if got := remote[string](t, b, `document.querySelector('#name').value`); got != "Yamada" {
			t.Errorf("#name changed to %q while composing elsewhere", got)
		}
	})

	t.Run("scroll with the wheel and the content moves", func(t *testing.T) {
		v := v.in(t)
		v.do(
			chromedp.Click(chromedp.CSS(`#address`)),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('address').select()`),
			chromedp.KeyEvent("http://demo.shoji.test:"+demoPort(t, b)+"/article\r"),
		)
		waitRemote(t, b, "the article", `location.pathname === '/article' && document.readyState === 'complete'`)
		before := v.settledCanvas()
		ox, oy := v.canvasOrigin()
		ctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
		defer cancel()
		// A real wheel event on the viewer's canvas. Chromium wants both
		// deltas and cdproto leaves out a zero one, hence the map.
		wheel := map[string]any{"type": "mouseWheel", "x": ox + 300, "y": oy + 300, "deltaX": 0, "deltaY": 600}
		if err := chromedp.FromContext(v.ctx).Target.Call(ctx, input.DispatchMouseEvent.Method, wheel, nil); err != nil {
			t.Fatal(err)
		}
		waitRemote(t, b, "the page scrolled", `window.scrollY > 100`)
		v.waitFor("the canvas to change", fmt.Sprintf(`(() => {
			const c = document.getElementById('screen');
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			let h = 2166136261;
			for (let i = 0; i < d.length; i += 16) { h = Math.imul(h ^ d[i] ^ (d[i+1] << 8) ^ (d[i+2] << 16), 16777619); }
			return String(h >>> 0) !== %q;
		})()`, before))
	})

	t.Run("a popup becomes a tab", func(t *testing.T) {
		v := v.in(t)
		navigate(t, v, b, "/popup")
		x, y := remoteCentre(t, b, "#open-popup")
		v.clickRemote(x, y)
		v.waitFor("two tabs", `document.querySelectorAll('#tabs [data-tab-id]').length === 2`)
		v.waitFor("the popup active", `document.getElementById('address').value.includes('/popup/child')`)
		waitRemote(t, b, "the popup is the active tab", `location.pathname === '/popup/child'`)
		// Close the popup tab from the toolbar: back to one tab, the opener active.
		v.do(chromedp.Click(chromedp.CSS(`#tabs .tab.active [data-close-tab]`)))
		v.waitFor("one tab", `document.querySelectorAll('#tabs [data-tab-id]').length === 1`)
		v.waitFor("the opener active", `document.getElementById('address').value.endsWith('/popup')`)
	})

	t.Run("alert and confirm are answered in the viewer", func(t *testing.T) {
		v := v.in(t)
		navigate(t, v, b, "/alert")
		x, y := remoteCentre(t, b, "#alert")
		v.clickRemote(x, y)
		v.waitFor("the alert in the viewer", `document.getElementById('dialog').open && document.getElementById('dialog-message').textContent.length > 0`)
		v.do(chromedp.Click(chromedp.CSS(`#dialog-ok`)))
		v.waitFor("the alert closed", `!document.getElementById('dialog').open`)

		x, y = remoteCentre(t, b, "#confirm")
		v.clickRemote(x, y)
		v.waitFor("the confirm in the viewer", `document.getElementById('dialog').open`)
		v.do(chromedp.Click(chromedp.CSS(`#dialog-ok`)))
		waitRemote(t, b, "confirm answered", `document.querySelector('#confirm-result').textContent.includes('true')`)
	})

	t.Run("reloading the viewer resumes the same remote page", func(t *testing.T) {
		v := v.in(t)
		sess, _ := b.srv.Sessions().Get(b.user)
		id := sess.ID
		v.do(chromedp.Reload())
		v.waitLive()
		v.waitFor("the address bar to show /alert", `document.getElementById('address').value.endsWith('/alert')`)
		if s2, ok := b.srv.Sessions().Get(b.user); !ok || s2.ID != id {
			t.Error("reloading the viewer started a new session")
		}
		if got := remote[string](t, b, `document.querySelector('#confirm-result').textContent`); !strings.Contains(got, "true") {
			t.Errorf("remote page state lost on viewer reload: %q", got)
		}
	})

	t.Run("screenshot for the README", func(t *testing.T) {
		v := v.in(t)
		if os.Getenv("SHOJI_UPDATE_SCREENSHOT") == "" {
			t.Skip("set SHOJI_UPDATE_SCREENSHOT=1 to refresh docs/viewer.png")
		}
		navigate(t, v, b, "/japanese")
		time.Sleep(500 * time.Millisecond) // let fonts settle for a clean picture
		png, err := chromedp.Run(v.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "viewer.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("logout ends the browser and deletes its profile", func(t *testing.T) {
		v := v.in(t)
		if n := len(chromiumProcesses(filepath.Join(b.data, "profiles"))); n == 0 {
			t.Fatal("no remote browser process found before logout: the check below would prove nothing")
		}
		v.do(chromedp.Click(chromedp.CSS(`#logout`)))
		v.waitFor("the login form", `!!document.querySelector('form#login') && document.querySelector('form#login').offsetParent !== null`)
		waitGone(t, b.data)
		if _, ok := b.srv.Sessions().Get(b.user); ok {
			t.Error("session still registered after logout")
		}
	})
}

// waitViewportSynced waits until the remote viewport has the viewer
// canvas's CSS size, so a point on the canvas is the same point remotely.
func waitViewportSynced(t *testing.T, v *viewer, b *brokerUnderTest) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := eval[[]float64](v, `(() => { const r = document.getElementById('screen').getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; })()`)
		r := remote[[]float64](t, b, `[innerWidth, innerHeight]`)
		if c[0] == r[0] && c[1] == r[1] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote viewport %v never matched the canvas %v", r, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// navigate opens a demo page by typing its address into the viewer's
// address bar.
func navigate(t *testing.T, v *viewer, b *brokerUnderTest, path string) {
	t.Helper()
	v.do(
		chromedp.Evaluate[chromedp.Void](`(() => { const a = document.getElementById('address'); a.focus(); a.select(); })()`),
		chromedp.KeyEvent("http://demo.shoji.test:"+demoPort(t, b)+path+"\r"),
	)
	waitRemote(t, b, path, fmt.Sprintf(`location.pathname === %q && document.readyState === 'complete'`, path))
}

// demoPort is the port of the demo site, which the remote browser reaches
// under the name demo.shoji.test.
func demoPort(t *testing.T, b *brokerUnderTest) string {
	t.Helper()
	u, err := url.Parse(b.srv.DemoURL())
	if err != nil || u.Port() == "" {
		t.Fatalf("demo URL %q has no port", b.srv.DemoURL())
	}
	return u.Port()
}

// loginFormShown is true while the viewer shows its login form.
const loginFormShown = `document.querySelector('form#login').offsetParent !== null`

// sessionStatus is the status GET /api/session answers the viewer page.
func sessionStatus(v *viewer) int {
	return eval[int](v, `fetch('/api/session').then((r) => r.status)`)
}

// TestIdleTimeoutEndsSession lets a session idle past a short timeout: the
// browser and the login end together, the viewer shows the login form and
// says why, and the login's cookie no longer opens the session.
func TestIdleTimeoutEndsSession(t *testing.T) {
	b := startBroker(t, func(c *broker.Config) { c.IdleTimeout = broker.Duration(6 * time.Second) })
	v := newViewer(t, 1024, 700)
	v.login(b)
	v.waitFor("the login form after the idle end", loginFormShown)
	if txt := eval[string](v, `document.getElementById('login-error').textContent`); !strings.Contains(strings.ToLower(txt), "idle") {
		t.Errorf("the login form does not say why the session ended: %q", txt)
	}
	if st := sessionStatus(v); st != 401 {
		t.Errorf("GET /api/session after the idle end: %d, want 401", st)
	}
	waitGone(t, b.data)
}

// TestLogoutEndsEveryTerminal logs the same clinician in at two
// terminals; a logout at the first signs the viewer at the second out too:
// it shows the login form, and its login is gone.
func TestLogoutEndsEveryTerminal(t *testing.T) {
	b := startBroker(t, nil)
	first := newViewer(t, 1024, 700)
	first.login(b)
	second := newViewer(t, 1024, 700)
	second.login(b) // takes the session: the first viewer is replaced
	first.waitFor("the first viewer to be replaced", `document.body.dataset.state === 'ended'`)
	if st := eval[int](first, `fetch('/api/logout', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then((r) => r.status)`); st != 200 {
		t.Fatalf("logout at the first terminal: %d", st)
	}
	second.waitFor("the login form at the second terminal", loginFormShown)
	if txt := eval[string](second, `document.getElementById('login-error').textContent`); !strings.Contains(txt, "logged out") {
		t.Errorf("the second terminal does not say that the clinician was logged out: %q", txt)
	}
	if st := sessionStatus(second); st != 401 {
		t.Errorf("GET /api/session at the second terminal after the logout: %d, want 401", st)
	}
	waitGone(t, b.data)
}

// TestRefusedNavigationReachesViewer types a site the policy refuses into
// the address bar: the remote browser shows its block page and the viewer
// says why.
func TestRefusedNavigationReachesViewer(t *testing.T) {
	b := startBroker(t, nil)
	v := newViewer(t, 1024, 700)
	v.login(b)
	const refused = "refused.shoji.test"
	v.do(
		chromedp.Evaluate[chromedp.Void](`(() => { const a = document.getElementById('address'); a.focus(); a.select(); })()`),
		chromedp.KeyEvent("http://"+refused+"/\r"),
	)
	v.waitFor("the refusal in the viewer", fmt.Sprintf(`document.getElementById('toast').textContent.includes(%q)`, "refused"))
	if txt := eval[string](v, `document.getElementById('toast').textContent`); !strings.Contains(txt, refused) {
		t.Errorf("the viewer's message does not name the host: %q", txt)
	}
	waitRemote(t, b, "the block page", fmt.Sprintf(`location.hostname === %q`, refused))
}

// TestViewerAtWindowsScaling uses the viewer on a 1366×768 terminal at
// 125 % and 150 % display scaling: the toolbar fits without horizontal
// scrolling, the canvas has device pixels, and clicks land where the
// clinician points.
func TestViewerAtWindowsScaling(t *testing.T) {
	b := startBroker(t, nil)
	for _, scale := range []float64{1.25, 1.5} {
		t.Run(fmt.Sprintf("%g", scale), func(t *testing.T) {
			w, h := int(1366/scale), int(768/scale)-40 // the terminal browser's own toolbar takes some height
			v := newScaledViewer(t, w, h, scale)
			v.login(b)
			layout := eval[[]float64](v, `(() => {
				const c = document.getElementById('screen'), r = c.getBoundingClientRect();
				const bar = document.getElementById('screen').getBoundingClientRect().top;
				return [document.documentElement.scrollWidth, innerWidth, bar, c.width, r.width, devicePixelRatio];
			})()`)
			if layout[0] > layout[1] {
				t.Errorf("horizontal scrolling: content %v px wide in a %v px window", layout[0], layout[1])
			}
			if layout[2] > 44 {
				t.Errorf("toolbar takes %v CSS px, want at most 44", layout[2])
			}
			if want := layout[4] * layout[5]; layout[3] < want-1 || layout[3] > want+1 {
				t.Errorf("canvas backing store %v px for %v CSS px at dpr %v", layout[3], layout[4], layout[5])
			}
			navigate(t, v, b, "/")
			waitViewportSynced(t, v, b)
			v.settledCanvas()
			x, y := remoteCentre(t, b, "#link-article")
			v.clickRemote(x, y)
			waitRemote(t, b, "the click to land on the link", `location.pathname === '/article'`)
			v.do(chromedp.Click(chromedp.CSS(`#logout`)))
			v.waitFor("the login form", `document.querySelector('form#login').offsetParent !== null`)
		})
	}
}

// TestFramesOnlyWhenPageChanges compares, in one run, the frames a static
// page sends with those of an animated page over the same time: a settled
// page costs the terminal (almost) nothing. The window is how long the
// animation took to send its frames, so a loaded machine stretches both
// pages' windows alike instead of failing the comparison.
func TestFramesOnlyWhenPageChanges(t *testing.T) {
	b := startBroker(t, nil)
	v := newViewer(t, 1024, 700)
	v.login(b)
	const animatedFrames = 20
	navigate(t, v, b, "/animation")
	time.Sleep(500 * time.Millisecond) // let the page settle after loading
	n := v.frames()
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for v.frames()-n < animatedFrames {
		if time.Now().After(deadline) {
			t.Fatalf("the animated page sent %d frames in %s; want %d", v.frames()-n, time.Since(start), animatedFrames)
		}
		time.Sleep(20 * time.Millisecond)
	}
	window := time.Since(start)
	animated := v.frames() - n

	navigate(t, v, b, "/article")
	time.Sleep(500 * time.Millisecond) // let the page settle after loading
	n = v.frames()
	time.Sleep(window) // the same window as the animation's
	static := v.frames() - n
	t.Logf("frames in %s: animated page %d, static page %d", window.Round(time.Millisecond), animated, static)
	if static > 2 {
		t.Errorf("a static page sent %d frames in %s; want none after it settled", static, window)
	}
	if animated < 5*max(static, 1) {
		t.Errorf("animated page sent %d frames, static %d: the animation should send many more", animated, static)
	}
}
