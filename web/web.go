// Package web holds what the clinician's browser tab runs: the viewer page
// with its login and pledge steps, copy, paste, print and files panel (/),
// the first-admin set-up page (/setup), the admin page (/admin: site
// policy, kill switches, destinations, banner and pledge), the approvers'
// page for site requests and held files (/approvals) and the auditors'
// page (/audit), with their scripts and styles under /static/. The assets are plain HTML, CSS and ES modules, embedded in the
// binary; there is no build step.
//
// The pages are written for the broker's Content-Security-Policy: no inline
// scripts, no inline styles, no eval. Everything the remote page says (titles,
// URLs, dialog messages) is shown as text, never parsed as HTML.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed index.html setup.html admin.html approvals.html audit.html static
var assets embed.FS

// pages maps the URL path of each page to its file in assets.
var pages = map[string]string{
	"/":          "index.html",
	"/setup":     "setup.html",
	"/admin":     "admin.html",
	"/approvals": "approvals.html",
	"/audit":     "audit.html",
}

// contentTypes lists the Content-Type of every kind of file the package
// serves. It is explicit so that the answer does not depend on the host's
// MIME tables; a file of any other kind is not served (a test checks that
// every embedded file has a type).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// asset is one file ready to serve.
type asset struct {
	name        string
	body        []byte
	contentType string
	etag        string
}

// handler serves a fixed set of assets by exact path.
type handler struct {
	byPath map[string]asset
}

// Handler returns the handler for the pages and their static files:
// / (index.html), /setup, /admin, /approvals, /audit and /static/<file>. Any other path answers
// 404, directories are never listed, and methods other than GET and HEAD
// answer 405. Every answer carries "Cache-Control: no-cache" and an ETag, so
// a terminal revalidates after an upgrade of the broker and otherwise gets a
// 304.
func Handler() http.Handler {
	h := &handler{byPath: make(map[string]asset)}
	for urlPath, name := range pages {
		h.byPath[urlPath] = load(name)
	}
	err := fs.WalkDir(assets, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := contentTypes[path.Ext(name)]; ok {
			h.byPath["/"+name] = load(name)
		}
		return nil
	})
	if err != nil {
		// The embedded tree is fixed at build time, so this cannot happen
		// in a binary that passed its tests.
		panic(fmt.Sprintf("web: walk embedded assets: %v", err))
	}
	return h
}

// load reads one embedded file. Reading the embedded tree cannot fail for
// a name that the build embedded.
func load(name string) asset {
	body, err := assets.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("web: read embedded %s: %v", name, err))
	}
	sum := sha256.Sum256(body)
	return asset{
		name:        name,
		body:        body,
		contentType: contentTypes[path.Ext(name)],
		etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
	}
}

// ServeHTTP serves the asset at the exact request path.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.byPath[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304, ranges and HEAD.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
