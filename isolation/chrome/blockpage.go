package chrome

import (
	"bytes"
	"html/template"
	"net/url"

	"github.com/chromedp/cdproto/fetch"

	"github.com/shoji-rbi/shoji/internal/truncate"
)

// specialHost is the host of the URLs that the block pages link to. It is
// in the .invalid TLD, which never resolves; the Fetch handler answers every
// request for it, so none reaches the network.
const specialHost = "shoji.invalid"

// requestAccessPath is the path of the "request access" link.
const requestAccessPath = "/request-access"

// Limits on what the "request access" link carries.
const (
	maxRequestHost = 253
	maxRequestURL  = 2048
)

// blockHeaders are the headers of a block page. The CSP sandbox gives the
// page an opaque origin, so no page of the refused site's origin can read
// it (and its request-access token); it runs no script and loads nothing.
var blockHeaders = []*fetch.HeaderEntry{
	{Name: "Content-Type", Value: "text/html; charset=utf-8"},
	{Name: "Content-Security-Policy", Value: "sandbox; default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"},
	{Name: "Cache-Control", Value: "no-store"},
	{Name: "X-Content-Type-Options", Value: "nosniff"},
	{Name: "Referrer-Policy", Value: "no-referrer"},
}

// pageStyle is the inline style of the block pages' card.
const pageStyle = `margin:0;font-family:system-ui,"Noto Sans CJK JP","Hiragino Sans",sans-serif;background:#f4f2ed;color:#1f1f1f;line-height:1.6`

// blockTmpl is the page of a navigation the policy refused.
var blockTmpl = template.Must(template.New("block").Parse(`<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>アクセスできません / Not allowed — {{.Host}}</title></head>
<body style='` + pageStyle + `'>
<main style="max-width:38em;margin:3em auto;padding:2em 2.2em;background:#fff;border-top:6px solid #b3261e;border-radius:6px;box-shadow:0 1px 6px rgba(0,0,0,.15)">
<h1 style="font-size:1.45em;margin:0">このサイトへのアクセスは許可されていません</h1>
<p lang="en" style="font-size:1.15em;margin:.2em 0 1.4em;color:#555">This site is not allowed</p>
<p style="margin:0;color:#555">サイト / Site</p>
<p id="host" style="margin:0 0 1em;font:bold 1.25em monospace;word-break:break-all">{{.Host}}</p>
{{if .Reason}}<p style="margin:0;color:#555">理由 / Reason</p>
<p id="reason" style="margin:0 0 1.4em">{{.Reason}}</p>{{end}}
<p style="margin:0 0 1em">業務に必要なサイトであれば、理由を添えてアクセスを申請できます。<br>
<span lang="en">If you need this site for your work, you can request access with a reason.</span></p>
<a id="request-access" href="{{.RequestURL}}" style="display:inline-block;padding:.7em 1.5em;background:#1a5fb4;color:#fff;text-decoration:none;border-radius:4px;font-weight:bold">アクセスを申請 / Request access</a>
</main></body></html>
`))

// certTmpl is the page of a navigation refused for an invalid certificate.
// It offers no way to proceed.
var certTmpl = template.Must(template.New("cert").Parse(`<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>証明書が無効です / Invalid certificate — {{.Host}}</title></head>
<body style='` + pageStyle + `'>
<main style="max-width:38em;margin:3em auto;padding:2em 2.2em;background:#fff;border-top:6px solid #b3261e;border-radius:6px;box-shadow:0 1px 6px rgba(0,0,0,.15)">
<h1 style="font-size:1.45em;margin:0">このサイトの証明書は無効です</h1>
<p lang="en" style="font-size:1.15em;margin:.2em 0 1.4em;color:#555">This site's certificate is invalid</p>
<p style="margin:0;color:#555">サイト / Site</p>
<p id="host" style="margin:0 0 1em;font:bold 1.25em monospace;word-break:break-all">{{.Host}}</p>
<p style="margin:0 0 1em">接続が安全ではないため、このページは表示されません。なりすましのサイトである可能性があります。<br>
<span lang="en">The connection is not secure, so the page is not shown. The site may be an impostor.</span></p>
<p id="reason" style="margin:0;color:#555;font-family:monospace">{{.Reason}}</p>
</main></body></html>
`))

// blockPage is what a block page shows.
type blockPage struct {
	Host, Reason string
	// RequestURL is the "request access" link.
	RequestURL string
}

// render executes tmpl with p.
func (p blockPage) render(tmpl *template.Template) []byte {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, p); err != nil {
		// The templates are fixed and their data are strings.
		panic("chrome: block page template: " + err.Error())
	}
	return buf.Bytes()
}

// requestAccessURL is the link of the "request access" button for the
// refused rawURL of host, with the browser's token.
func requestAccessURL(host, rawURL, token string) string {
	rawURL = truncate.Bytes(rawURL, maxRequestURL)
	q := url.Values{"host": {host}, "url": {rawURL}, "token": {token}}
	return (&url.URL{Scheme: "https", Host: specialHost, Path: requestAccessPath, RawQuery: q.Encode()}).String()
}
