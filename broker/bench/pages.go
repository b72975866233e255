package bench

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pageHost is the name the scenario pages have inside the remote browsers
// (the broker's egress maps it to the page server) and for the raw-CDP
// baseline (whose proxy is the page server itself).
const pageHost = "bench.shoji.test"

// A webPage is one scenario page. Every page has a marker box of its own
// colour in the top right corner, so that a client can tell from a frame
// which page it shows.
type webPage struct {
	path   string
	marker [3]uint8
	body   string // the page's HTML after the marker
	// build makes the body instead, for a page that is costly to make; it
	// runs when the page is first served.
	build func() string
}

// Marker geometry in CSS pixels, from the top right corner.
const (
	markerW = 48
	markerH = 24
)

// Colours of the click page: the whole viewport is one of them and each
// mousedown switches to the other.
var (
	clickA = [3]uint8{230, 60, 40}
	clickB = [3]uint8{30, 90, 220}
)

// The scenario pages.
var (
	pageIdle = webPage{path: "/idle", marker: [3]uint8{200, 200, 200}, body: `
<style>body{margin:40px;font:16px/1.5 sans-serif;background:#fff;color:#222}</style>
<h1>shoji-bench: idle</h1><p>A page that stands still, as a clinician's reference page does while they read it.</p>`}

	pageClick = webPage{path: "/click", marker: [3]uint8{0, 160, 0}, body: fmt.Sprintf(`
<style>html,body{margin:0;height:100%%;overflow:hidden;background:%s}body.b{background:%s}</style>
<script>document.addEventListener('mousedown', () => document.body.classList.toggle('b'));</script>`,
		cssRGB(clickA), cssRGB(clickB))}

	pageText = webPage{path: "/text", marker: [3]uint8{160, 0, 160}, body: `
<style>body{margin:0;background:#fff;overflow:hidden}
textarea{position:absolute;left:40px;top:60px;width:900px;height:360px;margin:0;padding:0;border:0;outline:none;resize:none;
overflow:hidden;font:96px/1.15 monospace;color:#000;background:#fff;caret-color:transparent}</style>
<textarea id="t" autofocus spellcheck="false" autocomplete="off"></textarea>
<script>
const t = document.getElementById('t');
t.focus();
// A click anywhere keeps the focus in the field.
document.addEventListener('mousedown', (e) => { e.preventDefault(); t.focus(); });
// A full field is emptied as the next key or composition begins, before
// its text goes in, so that every input shows on a field with room.
const clear = () => { if (t.value.length >= 16) t.value = ''; };
t.addEventListener('keydown', clear);
t.addEventListener('compositionstart', clear);
</script>`}

	pageAnimation = webPage{path: "/animation", marker: [3]uint8{0, 160, 160}, body: `
<style>body{margin:0;background:#fff;overflow:hidden;font:16px/1.5 sans-serif}
p{margin:20px 40px;width:600px}
#box{position:absolute;left:40px;top:140px;width:360px;height:360px;border-radius:24px;
background:linear-gradient(45deg,#c33,#fc3,#3c6,#36c);animation:move 1.6s linear infinite alternate;animation-play-state:paused}
body.run #box{animation-play-state:running}
@keyframes move{from{transform:translateX(0) rotate(0deg)}to{transform:translateX(760px) rotate(180deg)}}</style>
<p>A CSS animation: a mousedown starts it, the next one stops it.</p><div id="box"></div>
<script>document.addEventListener('mousedown', () => document.body.classList.toggle('run'));</script>`}

	pageArticle = webPage{path: "/article", marker: [3]uint8{160, 160, 0}, body: article()}

	pageDense = webPage{path: "/dense", marker: [3]uint8{0, 0, 200}, body: denseRecord()}

	pagePhoto = webPage{path: "/photo", marker: [3]uint8{240, 120, 0}, build: photoGallery}

	pageStatic = webPage{path: "/static", marker: [3]uint8{90, 90, 90}, body: `
<style>body{margin:40px;font:16px/1.5 sans-serif;background:#fff;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 12px}</style>
<h1>検査結果 / Laboratory results</h1>
<p>A static page: once it has been drawn, nothing on it changes.</p>
<table><tr><th>項目</th><th>値</th><th>基準値</th></tr>
<tr><td>WBC</td><td>6.2</td><td>3.3–8.6 ×10³/µL</td></tr>
<tr><td>Hb</td><td>13.8</td><td>13.7–16.8 g/dL</td></tr>
<tr><td>PLT</td><td>245</td><td>158–348 ×10³/µL</td></tr>
<tr><td>CRP</td><td>0.12</td><td>0.00–0.14 mg/dL</td></tr></table>`}
)

var pages = append([]webPage{pageIdle, pageClick, pageText, pageAnimation, pageArticle, pageDense, pagePhoto, pageStatic}, bwPages...)

// html returns the whole document of p.
func (p webPage) html() string {
	body := p.body
	if p.build != nil {
		body = p.build()
	}
	return `<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>shoji-bench ` + strings.TrimPrefix(p.path, "/") +
		`</title><style>#bench-marker{position:fixed;top:0;right:0;width:` + strconv.Itoa(markerW) + `px;height:` +
		strconv.Itoa(markerH) + `px;z-index:2147483647;background:` + cssRGB(p.marker) +
		`}</style></head><body><div id="bench-marker"></div>` + body + `</body></html>`
}

func cssRGB(c [3]uint8) string { return fmt.Sprintf("rgb(%d,%d,%d)", c[0], c[1], c[2]) }

// article is a long article of about 30 000 CSS pixels for the scrolling
// scenario: headings, paragraphs in Japanese and English, and tables.
func article() string {
	ja := []string{
		"本ガイドラインは、成人の市中肺炎の診断と初期治療について、外来と入院の別に推奨を示す。",
		"重症度の判定には年齢、脱水、呼吸状態、意識障害、血圧の五項目を用い、点数に応じて治療の場を選ぶ。",
		"抗菌薬の選択は想定される起炎菌と地域の耐性状況、患者の基礎疾患、直近の抗菌薬使用歴を考慮して行う。",
		"高齢者では症状が非典型的であることが多く、食欲低下や活動性の低下のみで受診する例も少なくない。",
	}
	en := []string{
		"Community-acquired pneumonia remains a leading cause of hospital admission among older adults.",
		"Severity scores guide the site of care, but clinical judgement must weigh social circumstances.",
		"Blood cultures are recommended for patients admitted with severe disease or risk factors for resistant organisms.",
		"Switching from intravenous to oral therapy is appropriate once the patient is clinically stable.",
	}
	var b strings.Builder
	b.WriteString(`<style>body{margin:40px auto;max-width:860px;font:17px/1.7 serif;background:#fff;color:#111}
h2{font:bold 22px/1.3 sans-serif;margin-top:48px}table{border-collapse:collapse;margin:16px 0}
td,th{border:1px solid #888;padding:3px 10px;font:14px sans-serif}</style><h1>成人市中肺炎診療ガイドライン (bench article)</h1>`)
	for i := range 120 {
		fmt.Fprintf(&b, "<h2>%d. %s</h2>", i+1, html.EscapeString(en[i%len(en)][:40]))
		for j := range 3 {
			fmt.Fprintf(&b, "<p>%s %s %s</p>", ja[(i+j)%len(ja)], en[(i+2*j)%len(en)], ja[(i+j+1)%len(ja)])
		}
		if i%10 == 5 {
			b.WriteString("<table><tr><th>項目</th><th>点数</th></tr>")
			for k := range 5 {
				fmt.Fprintf(&b, "<tr><td>criterion %d</td><td>%d</td></tr>", k+1, (i+k)%3)
			}
			b.WriteString("</table>")
		}
	}
	return b.String()
}

// pageServer serves the scenario pages on a loopback port. It is also the
// HTTP proxy of the raw-CDP baseline's Chromium, which gets the same
// --proxy-server flag as shoji's browsers: a proxy request names the page
// by its absolute URL, which net/http routes like any other.
type pageServer struct {
	ln   net.Listener
	srv  *http.Server
	port string
	done chan struct{}
	// scrolled holds what the bandwidth scenario's article reports.
	scrolled scrollReports
}

// startPages serves the pages on addr ("127.0.0.1:0" for any free port).
func startPages(addr string) (*pageServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve scenario pages: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &pageServer{ln: ln, port: port, done: make(chan struct{})}
	// A page is made when it is first asked for: the photo page takes a
	// while.
	byPath := map[string]func() string{}
	for _, p := range pages {
		byPath[p.path] = sync.OnceValue(p.html)
	}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, byPath)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *pageServer) serve(w http.ResponseWriter, r *http.Request, byPath map[string]func() string) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if r.Method == http.MethodConnect || (host != pageHost && !isLoopbackName(host) && host != s.ip()) {
		// The baseline's Chromium asks only for the pages; anything else
		// (its own background requests) is refused, as shoji's egress
		// proxy would.
		http.Error(w, "the bench serves only its own pages", http.StatusForbidden)
		return
	}
	if r.URL.Path == scrolledPath {
		s.scrolled.serveScrolled(w, r)
		return
	}
	doc, ok := byPath[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(doc()))
}

func isLoopbackName(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// ip returns the address the server listens on.
func (s *pageServer) ip() string {
	host, _, _ := net.SplitHostPort(s.ln.Addr().String())
	return host
}

// Addr is the server's host:port, the raw baseline's proxy address.
func (s *pageServer) Addr() string { return s.ln.Addr().String() }

// URL is the address of p inside the remote browsers and the baseline.
func (s *pageServer) URL(p webPage) string {
	return "http://" + net.JoinHostPort(pageHost, s.port) + p.path
}

// DirectURL is the address of p for a browser without the page name
// mapping, such as the VNC peer's.
func (s *pageServer) DirectURL(p webPage) string {
	return "http://" + s.Addr() + p.path
}

// Close stops the server.
func (s *pageServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
