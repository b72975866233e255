// Package demo serves shoji's built-in demo site: a small, self-contained
// "hospital information" site that the isolated Chromium browses in demo mode
// and that the end-to-end tests drive.
//
// Every page is deterministic and loads nothing from elsewhere: styles and
// scripts are inline and a Content-Security-Policy of 'self' enforces it.
// Pages and the element ids tests rely on:
//
//   - / — title "shoji demo", a flat #1e5aa8 band 60 px tall across the top
//     (no text in it), and a link with id "link-NAME" to every page in [Pages].
//   - /form — #name, #note, #search and #submit; submitting GETs /form/result,
//     which echoes the values, HTML-escaped, in #result-name, #result-note and
//     #result-search inside #result. <pre id="events"> records, one per line,
//     "compositionstart", "compositionend DATA" and "keydown KEY" (the last
//     4000 characters are kept).
//   - /article — a long article with headings #sec-1 … #sec-N and #article-end.
//   - /popup — #open-popup (window.open of /popup/child) and #blank-link
//     (target=_blank to /popup/child?via=blank); the child shows "popup child"
//     and its query in #query.
//   - /alert — #alert, #confirm (result in #confirm-result as
//     "confirmed: true|false"), #prompt (answer in #prompt-result) and the
//     checkbox #arm-beforeunload.
//   - /animation — a square that moves continuously; #stop and #start, state in #anim-state.
//   - /japanese — a Japanese drug-safety notice and #ja-input mirrored into #ja-echo.
//   - /slow — answers after [SlowDelay]; /status/404 and unknown paths answer 404.
package demo

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"time"
)

// SlowDelay is how long /slow waits before it answers.
const SlowDelay = 2 * time.Second

// BandColor is the CSS colour of the band across the top of every page.
const BandColor = "#1e5aa8"

// BandHeight is the height of the top band in CSS pixels.
const BandHeight = 60

// Page describes one page linked from the index.
type Page struct {
	// Name is the page's short name; its link on the index has id "link-" + Name.
	Name string
	// Path is the URL path of the page.
	Path string
	// Title is the link text.
	Title string
	// Status is the HTTP status the page answers with.
	Status int
}

// pages is the list behind the index; Pages returns a copy.
var pages = []Page{
	{Name: "form", Path: "/form", Title: "問い合わせフォーム / Form", Status: http.StatusOK},
	{Name: "article", Path: "/article", Title: "診療ガイドライン解説 / Article", Status: http.StatusOK},
	{Name: "popup", Path: "/popup", Title: "ポップアップ / Popup", Status: http.StatusOK},
	{Name: "alert", Path: "/alert", Title: "ダイアログ / Dialogs", Status: http.StatusOK},
	{Name: "animation", Path: "/animation", Title: "アニメーション / Animation", Status: http.StatusOK},
	{Name: "japanese", Path: "/japanese", Title: "安全性速報 / Japanese", Status: http.StatusOK},
	{Name: "files", Path: "/files", Title: "ファイル・コピー・印刷 / Files", Status: http.StatusOK},
	{Name: "slow", Path: "/slow", Title: "遅いページ / Slow page", Status: http.StatusOK},
	{Name: "status-404", Path: "/status/404", Title: "存在しないページ / 404", Status: http.StatusNotFound},
}

// Pages returns the pages linked from the index, in index order.
func Pages() []Page {
	return append([]Page(nil), pages...)
}

//go:embed pages/*.html
var pageFS embed.FS

var templates = template.Must(template.ParseFS(pageFS, "pages/*.html"))

// contentSecurityPolicy keeps the site self-contained: nothing may load from
// another origin, so a page that accidentally references one fails visibly.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'"

// Handler returns the demo site's handler. It is safe for concurrent use and
// holds no state between requests.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", servePage("index.html", "shoji demo", func(*http.Request) any {
		return struct{ Pages []Page }{pages}
	}))
	mux.HandleFunc("GET /form", servePage("form.html", "shoji demo - フォーム", nil))
	mux.HandleFunc("GET /form/result", servePage("result.html", "shoji demo - 送信内容", func(r *http.Request) any {
		q := r.URL.Query()
		return struct{ Name, Note, Search string }{q.Get("name"), q.Get("note"), q.Get("search")}
	}))
	mux.HandleFunc("GET /article", servePage("article.html", "shoji demo - 記事", func(*http.Request) any {
		return struct{ Sections []section }{articleSections}
	}))
	mux.HandleFunc("GET /popup", servePage("popup.html", "shoji demo - ポップアップ", nil))
	mux.HandleFunc("GET /popup/child", servePage("child.html", "popup child", func(r *http.Request) any {
		return struct{ Query string }{r.URL.RawQuery}
	}))
	mux.HandleFunc("GET /alert", servePage("alert.html", "shoji demo - ダイアログ", nil))
	mux.HandleFunc("GET /animation", servePage("animation.html", "shoji demo - アニメーション", nil))
	mux.HandleFunc("GET /japanese", servePage("japanese.html", "shoji demo - 安全性速報", nil))
	mux.HandleFunc("GET /files", servePage("files.html", "shoji demo - ファイル", nil))
	mux.HandleFunc("GET /files/{name}", serveFile)
	mux.HandleFunc("GET /slow", serveSlow)
	mux.HandleFunc("/", serveNotFound)
	return mux
}

// servePage returns a handler that renders the named template with status 200.
// data, when not nil, supplies the page's fields besides its title.
func servePage(name, title string, data func(*http.Request) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var fields any
		if data != nil {
			fields = data(r)
		}
		render(w, http.StatusOK, name, title, fields)
	}
}

// serveSlow answers after SlowDelay, or not at all when the client goes away first.
func serveSlow(w http.ResponseWriter, r *http.Request) {
	timer := time.NewTimer(SlowDelay)
	defer timer.Stop()
	select {
	case <-timer.C:
		render(w, http.StatusOK, "slow.html", "shoji demo - 遅いページ", nil)
	case <-r.Context().Done():
	}
}

// serveNotFound answers every unknown path, /status/404 included, with a 404 page.
func serveNotFound(w http.ResponseWriter, _ *http.Request) {
	render(w, http.StatusNotFound, "notfound.html", "shoji demo - 404", nil)
}

// pageData is what every template gets: the title for the layout and the
// page's own fields.
type pageData struct {
	Title string
	Page  any
}

// render executes the template into memory first, so that a template error
// becomes a clean 500 rather than half a page.
func render(w http.ResponseWriter, status int, name, title string, fields any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, pageData{Title: title, Page: fields}); err != nil {
		http.Error(w, fmt.Sprintf("render %s: %v", name, err), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// demoFiles are the downloads of the files page: one the default transfer
// policy releases (a PDF), one it holds for an approver (CSV text) and one
// it refuses (an executable).
var demoFiles = map[string]struct {
	contentType string
	body        []byte
}{
	"notice.pdf":     {"application/pdf", DemoPDF},
	"ward-stock.csv": {"text/csv; charset=utf-8", []byte("drug,stock\nprednisolone 5mg,120\nheparin 5000U,40\n")},
	"setup.exe":      {"application/octet-stream", append([]byte("MZ\x90\x00"), make([]byte, 508)...)},
}

// DemoPDF is the demo's one-page PDF.
var DemoPDF = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
	"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n" +
	"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >> endobj\n" +
	"trailer << /Root 1 0 R >>\n%%EOF\n")

// serveFile answers a demo download as an attachment.
func serveFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, ok := demoFiles[name]
	if !ok {
		serveNotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", fmt.Sprint(len(f.body)))
	_, _ = w.Write(f.body)
}
