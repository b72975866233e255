package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The bandwidth scenario's pages. Each moves only what its workload names;
// nothing on them loads anything from outside the page server.
var (
	// pageSpinner is a still page with one 100×100 spinner, as a page
	// waiting for a laboratory system shows.
	pageSpinner = webPage{path: "/bw/spinner", marker: [3]uint8{0, 80, 240}, body: `
<style>body{margin:40px;font:16px/1.5 sans-serif;background:#fff;color:#222}
.sp{position:absolute;left:590px;top:350px;width:100px;height:100px;box-sizing:border-box;border:12px solid #dde;
border-top-color:#36c;border-radius:50%;animation:spin 1s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}</style>
<h1>検査結果を読み込んでいます / Loading the results</h1>
<p>A still page with one 100×100 spinner: the spinner is all that moves.</p><div class="sp"></div>`}

	// pageFullAnimation redraws a canvas the size of the viewport on
	// every animation frame.
	pageFullAnimation = webPage{path: "/bw/full", marker: [3]uint8{240, 0, 160}, body: `
<style>html,body{margin:0;overflow:hidden;background:#000}canvas{position:fixed;left:0;top:0;width:100vw;height:100vh}</style>
<canvas id="c"></canvas>
<script>
const c = document.getElementById('c'), g = c.getContext('2d');
c.width = innerWidth; c.height = innerHeight;
function draw(ms) {
  const t = ms / 1000, w = c.width, h = c.height;
  const bg = g.createLinearGradient(0, 0, w, h);
  bg.addColorStop(0, 'hsl(' + (t * 40 % 360) + ',70%,45%)');
  bg.addColorStop(1, 'hsl(' + ((t * 40 + 180) % 360) + ',70%,35%)');
  g.fillStyle = bg; g.fillRect(0, 0, w, h);
  for (let i = 0; i < 40; i++) {
    const x = w / 2 + Math.sin(t * (0.7 + i * 0.05) + i) * w * 0.45;
    const y = h / 2 + Math.cos(t * (0.9 + i * 0.03) + i * 2) * h * 0.45;
    g.fillStyle = 'hsla(' + (i * 9) + ',80%,60%,0.8)';
    g.beginPath(); g.arc(x, y, 20 + (i % 5) * 8, 0, 2 * Math.PI); g.fill();
  }
  requestAnimationFrame(draw);
}
requestAnimationFrame(draw);
</script>`}

	// pageVideo records 4 s of a canvas animation with MediaRecorder into
	// a WebM blob and plays it in a looping 640×360 <video>. The marker
	// shows only once the video plays, so that the bench waits for it.
	pageVideo = webPage{path: "/bw/video", marker: [3]uint8{160, 80, 0}, body: `
<style>body{margin:0;background:#fff;font:16px/1.5 sans-serif;color:#222;overflow:hidden}
p{margin:20px 40px}video{position:absolute;left:320px;top:200px;width:640px;height:360px;background:#000}</style>
<p>A 640×360 video (recorded in the page, WebM, 25 frames/s) on an otherwise still page.</p>
<video id="v" muted loop playsinline></video>
<script>
const m = document.getElementById('bench-marker');
m.style.background = '#fff';
const c = document.createElement('canvas'); c.width = 640; c.height = 360;
const g = c.getContext('2d');
let raf = 0;
function draw(ms) {
  const t = ms / 1000;
  const bg = g.createRadialGradient(320 + 200 * Math.sin(t), 180, 10, 320, 180, 400);
  bg.addColorStop(0, 'hsl(' + (t * 60 % 360) + ',80%,60%)'); bg.addColorStop(1, '#123');
  g.fillStyle = bg; g.fillRect(0, 0, 640, 360);
  for (let i = 0; i < 12; i++) {
    g.fillStyle = 'hsl(' + (i * 30) + ',70%,50%)';
    g.fillRect(320 + Math.sin(t * 1.3 + i) * 280 - 20, 180 + Math.cos(t * 1.7 + i) * 150 - 20, 40, 40);
  }
  g.fillStyle = '#fff'; g.font = 'bold 32px sans-serif'; g.fillText('shoji-bench video ' + t.toFixed(2), 40, 60);
  raf = requestAnimationFrame(draw);
}
raf = requestAnimationFrame(draw);
const type = MediaRecorder.isTypeSupported('video/webm;codecs=vp8') ? 'video/webm;codecs=vp8' : 'video/webm';
const rec = new MediaRecorder(c.captureStream(25), {mimeType: type, videoBitsPerSecond: 1500000});
const parts = [];
rec.ondataavailable = (e) => { if (e.data.size) parts.push(e.data); };
rec.onstop = () => {
  cancelAnimationFrame(raf);
  const v = document.getElementById('v');
  v.addEventListener('playing', () => { m.style.background = ''; }, {once: true});
  // A recorded WebM has no index; start it again by hand if loop stops.
  v.addEventListener('ended', () => { v.currentTime = 0; v.play(); });
  v.src = URL.createObjectURL(new Blob(parts, {type: 'video/webm'}));
  v.play();
};
rec.start(500);
setTimeout(() => rec.stop(), 4000);
</script>`}

	// pageTyping is a form's text area in an ordinary font. Its caret is
	// hidden: a blinking caret changes the screen twice a second whether
	// or not anyone types, and the windows end once the screen is still.
	pageTyping = webPage{path: "/bw/typing", marker: [3]uint8{240, 240, 0}, body: `
<style>body{margin:0;background:#fff;font:16px/1.5 sans-serif;color:#222;overflow:hidden}
h1{margin:16px 40px;font-size:20px}
textarea{position:absolute;left:40px;top:80px;width:900px;height:400px;margin:0;padding:8px;border:1px solid #888;
font:16px/1.5 sans-serif;color:#000;background:#fff;resize:none;caret-color:transparent}</style>
<h1>経過記録 / Progress note</h1>
<textarea id="t" autofocus spellcheck="false" autocomplete="off"></textarea>
<script>
const t = document.getElementById('t');
t.focus();
document.addEventListener('mousedown', (e) => { e.preventDefault(); t.focus(); });
</script>`}

	// pageScrollArticle is the scroll scenario's long article, which
	// reports to the page server how far it has been scrolled in all
	// (POST /bw/scrolled), so that bytes can be set against the pixels
	// that scrolled: a wheel notch scrolls a different distance in each
	// browser.
	pageScrollArticle = webPage{path: "/bw/article", marker: [3]uint8{0, 240, 240}, build: func() string {
		return article() + `<script>
(() => {
  const who = location.hostname === '` + pageHost + `' ? 'shoji' : 'vnc';
  let total = 0, last = scrollY, sent = -1;
  addEventListener('scroll', () => { total += Math.abs(scrollY - last); last = scrollY; }, {passive: true});
  setInterval(() => {
    if (total === sent) return;
    sent = total;
    fetch('/bw/scrolled?c=' + who + '&px=' + Math.round(total), {method: 'POST', cache: 'no-store'}).catch(() => {});
  }, 200);
})();
</script>`
	}}
)

// bwPages are the pages only the bandwidth scenario shows.
var bwPages = []webPage{pageSpinner, pageFullAnimation, pageVideo, pageTyping, pageScrollArticle}

// scrolledPath is where pageScrollArticle reports its scrolled distance.
const scrolledPath = "/bw/scrolled"

// scrollReports holds the last distance each client's article reported,
// in CSS pixels, with when it was reported.
type scrollReports struct {
	mu   sync.Mutex
	px   map[string]float64
	when map[string]time.Time
}

// serveScrolled takes a report: POST /bw/scrolled?c=CLIENT&px=N.
func (s *scrollReports) serveScrolled(w http.ResponseWriter, r *http.Request) {
	c := r.URL.Query().Get("c")
	px, err := strconv.ParseFloat(r.URL.Query().Get("px"), 64)
	if r.Method != http.MethodPost || (c != "shoji" && c != "vnc") || err != nil || px < 0 {
		http.Error(w, "want POST "+scrolledPath+"?c=shoji|vnc&px=N", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.px == nil {
		s.px, s.when = map[string]float64{}, map[string]time.Time{}
	}
	s.px[c], s.when[c] = px, time.Now()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// last returns client's last report and when it came; zero before any.
func (s *scrollReports) last(client string) (float64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.px[client], s.when[client]
}

// settled waits until client's article has reported nothing new for
// quiet (it reports every 200 ms while it scrolls) and returns its
// distance.
func (s *scrollReports) settled(ctx context.Context, client string, quiet, limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	for {
		px, at := s.last(client)
		if time.Since(at) >= quiet {
			return px, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the %s article still reported scrolling after %s", client, limit)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// typingText is what the typing workload types: lower-case letters and
// spaces, keys every keyboard layout and both clients send alike.
func typingText(n int) string {
	const s = "the quick brown fox jumps over the lazy dog "
	return strings.Repeat(s, n/len(s)+1)[:n]
}

// typingKey is the key that types r (a lower-case letter or a space).
func typingKey(r rune) (keySpec, error) {
	switch {
	case r == ' ':
		return keySpec{key: " ", code: "Space", keyCode: 32}, nil
	case r >= 'a' && r <= 'z':
		return keySpec{key: string(r), code: "Key" + strings.ToUpper(string(r)), keyCode: int('A' + r - 'a')}, nil
	}
	return keySpec{}, fmt.Errorf("no key for %q: the typing workload types a–z and spaces", r)
}
