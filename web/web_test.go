package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func serve(t *testing.T, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func TestHandler(t *testing.T) {
	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/setup", 200, "text/html; charset=utf-8"},
		{"GET", "/admin", 200, "text/html; charset=utf-8"},
		{"GET", "/approvals", 200, "text/html; charset=utf-8"},
		{"GET", "/static/approvals.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/access.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/approvals.html", 404, ""},
		{"GET", "/approvals/", 404, ""},
		{"POST", "/approvals", 405, ""},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/static/viewer.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/static/favicon.svg", 200, "image/svg+xml"},
		{"GET", "/static/", 404, ""},
		{"GET", "/static", 404, ""},
		{"GET", "/static/nope.js", 404, ""},
		{"GET", "/static/../index.html", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"GET", "/setup.html", 404, ""},
		{"GET", "/setup/", 404, ""},
		{"GET", "/web.go", 404, ""},
		{"GET", "/nope", 404, ""},
		{"POST", "/", 405, ""},
		{"PUT", "/static/viewer.js", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := serve(t, tt.method, tt.path, nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if tt.method == "GET" && rec.Body.Len() == 0 {
				t.Error("empty body")
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	first := serve(t, "GET", "/static/viewer.js", nil)
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	again := serve(t, "GET", "/static/viewer.js", http.Header{"If-None-Match": {etag}})
	if again.Code != http.StatusNotModified {
		t.Errorf("status with matching If-None-Match = %d, want 304", again.Code)
	}
}

// TestEveryAssetHasType checks that nothing embedded is silently left
// unserved for want of a Content-Type.
func TestEveryAssetHasType(t *testing.T) {
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := contentTypes[path.Ext(name)]; !ok {
			t.Errorf("%s: no Content-Type for %q files", name, path.Ext(name))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// page is what a page's HTML says about itself.
type page struct {
	refs    []string          // URLs of scripts, styles, images and links
	scripts []string          // src of each <script>
	ids     map[string]string // element id → tag name
	names   []string          // form field names
}

// parsePage reads a page and reports everything the broker's CSP forbids:
// inline scripts, <style> elements, style attributes and on* handlers.
func parsePage(t *testing.T, urlPath string) page {
	t.Helper()
	rec := serve(t, "GET", urlPath, nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s = %d", urlPath, rec.Code)
	}
	p := page{ids: map[string]string{}}
	z := html.NewTokenizer(rec.Body)
	inScript := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return p
		case html.TextToken:
			if inScript && strings.TrimSpace(string(z.Text())) != "" {
				t.Errorf("%s: inline script body %q", urlPath, z.Text())
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "script" {
				inScript = false
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: <%s %s=...>: inline event handler", urlPath, tok.Data, a.Key)
				}
				if a.Key == "style" {
					t.Errorf("%s: <%s style=...>: inline style", urlPath, tok.Data)
				}
				if strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:") {
					t.Errorf("%s: <%s %s=%q>: javascript: URL", urlPath, tok.Data, a.Key, a.Val)
				}
			}
			switch tok.Data {
			case "script":
				inScript = tt == html.StartTagToken
				p.scripts = append(p.scripts, attrs["src"])
				if attrs["src"] == "" {
					t.Errorf("%s: <script> without src", urlPath)
				}
				if attrs["type"] != "module" {
					t.Errorf("%s: <script src=%q> is not type=module", urlPath, attrs["src"])
				}
			case "style":
				t.Errorf("%s: <style> element", urlPath)
			case "a":
				// A link that opens a new tab must not hand it this window.
				if attrs["target"] == "_blank" && !strings.Contains(attrs["rel"], "noopener") {
					t.Errorf("%s: <a href=%q target=_blank> without rel=noopener", urlPath, attrs["href"])
				}
			}
			for _, k := range []string{"src", "href"} {
				if v, ok := attrs[k]; ok {
					p.refs = append(p.refs, v)
				}
			}
			if id, ok := attrs["id"]; ok {
				if _, dup := p.ids[id]; dup {
					t.Errorf("%s: duplicate id %q", urlPath, id)
				}
				p.ids[id] = tok.Data
			}
			if name, ok := attrs["name"]; ok {
				p.names = append(p.names, name)
			}
		}
	}
}

func TestPages(t *testing.T) {
	for urlPath := range pages {
		t.Run(urlPath, func(t *testing.T) {
			p := parsePage(t, urlPath)
			for _, ref := range p.refs {
				if strings.HasPrefix(ref, "#") && len(ref) > 1 {
					continue // a section of the same page
				}
				if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
					t.Errorf("reference %q is not a same-origin absolute path", ref)
					continue
				}
				if strings.HasPrefix(ref, "/api/") {
					continue // the broker's API, not this handler's
				}
				if rec := serve(t, "GET", ref, nil); rec.Code != 200 {
					t.Errorf("reference %q: GET = %d", ref, rec.Code)
				}
			}
		})
	}
}

// TestViewerContract checks the element ids and field names that end-to-end
// tests and docs/protocol.md rely on.
func TestViewerContract(t *testing.T) {
	tests := []struct {
		page  string
		ids   map[string]string
		names []string
	}{
		{
			page: "/",
			ids: map[string]string{
				"login": "form", "login-error": "p", "banner": "div",
				"screen": "canvas", "ime": "textarea", "address": "input",
				"back": "button", "forward": "button", "reload": "button",
				"host": "span", "tls": "span", "tabs": "div", "state": "span",
				"logout": "button", "restart": "button", "toast": "div",
				"dialog": "dialog", "dialog-message": "p", "dialog-input": "input",
				"dialog-ok": "button", "dialog-cancel": "button",
				"access-dialog": "dialog", "access-reason": "textarea", "access-send": "button",
				"access-cancel": "button", "access-host": "strong", "access-warning": "p",
				"profile": "span", "trusted": "span", "host-warning": "span",
				"approvals-link": "a", "admin-link": "a",
			},
			names: []string{"username", "password"},
		},
		{
			page:  "/setup",
			ids:   map[string]string{"setup": "form"},
			names: []string{"token", "username", "password", "password2"},
		},
		{
			page: "/admin",
			ids: map[string]string{
				"settings": "form", "admin-tabs": "nav", "confirm": "dialog",
				"policy-profiles": "table", "default-form": "form", "profile-form": "form",
				"rule-form": "form", "rule-error": "p", "rules": "table",
				"groups": "table", "group-form": "form", "group-error": "p",
				"test-form": "form", "test-result": "div",
				"export": "a", "import-form": "form", "import-error": "p",
				"block-form": "form", "blocked": "table", "end-user-form": "form", "end-all": "button", "sessions": "table",
				"emergency-form": "form", "emergencies": "table",
			},
			names: []string{"banner", "pledge", "pattern", "note", "expires", "uploads", "trusted",
				"url", "profile", "host", "reason", "user", "yaml", "file", "group", "terminals", "default"},
		},
		{
			page:  "/approvals",
			ids:   map[string]string{"requests": "div", "history": "table", "requests-refresh": "button", "admin-link": "a"},
			names: nil, // the fields of each request are built per request by approvals.js
		},
	}
	for _, tt := range tests {
		t.Run(tt.page, func(t *testing.T) {
			p := parsePage(t, tt.page)
			for id, tag := range tt.ids {
				if got, ok := p.ids[id]; !ok {
					t.Errorf("no element with id %q", id)
				} else if got != tag {
					t.Errorf("#%s is <%s>, want <%s>", id, got, tag)
				}
			}
			for _, name := range tt.names {
				if !slices.Contains(p.names, name) {
					t.Errorf("no field named %q", name)
				}
			}
		})
	}
}

var (
	importRE = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]`)
	// Sinks that would turn text from the remote page into markup or code,
	// or that the CSP forbids anyway.
	forbiddenJS = []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", "javascript:", "window.alert", "alert("}
)

func TestScripts(t *testing.T) {
	scripts, err := fs.Glob(assets, "static/*.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts")
	}
	for _, name := range scripts {
		t.Run(name, func(t *testing.T) {
			body, err := assets.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			src := string(body)
			for _, m := range importRE.FindAllStringSubmatch(src, -1) {
				spec := m[1]
				if !strings.HasPrefix(spec, "./") {
					t.Errorf("import %q: only ./ imports of our own modules", spec)
					continue
				}
				if rec := serve(t, "GET", "/static/"+strings.TrimPrefix(spec, "./"), nil); rec.Code != 200 {
					t.Errorf("import %q: GET = %d", spec, rec.Code)
				}
			}
			for _, bad := range forbiddenJS {
				if strings.Contains(src, bad) {
					t.Errorf("uses %q", bad)
				}
			}
		})
	}
}

// TestAdminFormFields checks the fields end-to-end tests fill in, form by
// form: a field of the same name in another form would not do.
func TestAdminFormFields(t *testing.T) {
	rec := serve(t, "GET", "/admin", nil)
	doc, err := html.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string][]string{}
	var walk func(n *html.Node, form string)
	walk = func(n *html.Node, form string) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			if n.Data == "form" {
				form = attrs["id"]
			}
			if name, ok := attrs["name"]; ok && form != "" && n.Data != "form" {
				typ := attrs["type"]
				if n.Data != "input" {
					typ = n.Data
				}
				forms[form] = append(forms[form], name+":"+typ)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, form)
		}
	}
	walk(doc, "")
	tests := map[string][]string{
		"rule-form":      {"pattern:", "note:", "expires:datetime-local", "uploads:checkbox", "trusted:checkbox"},
		"test-form":      {"url:text", "profile:select"},
		"block-form":     {"host:", "reason:"},
		"import-form":    {"file:file", "yaml:textarea"},
		"emergency-form": {"group:select", "profile:select", "reason:", "expires:datetime-local"},
		"group-form":     {"name:", "terminals:textarea"},
		"end-user-form":  {"user:"},
		"default-form":   {"default:select"},
	}
	for form, want := range tests {
		for _, f := range want {
			if !slices.Contains(forms[form], f) {
				t.Errorf("#%s: no field %q (has %v)", form, f, forms[form])
			}
		}
	}
}

// TestModulesUsed checks that every script is loaded by a page or imported
// by a script a page loads: a module left behind would be served but never
// tested.
func TestModulesUsed(t *testing.T) {
	used := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if used[name] {
			return
		}
		used[name] = true
		body, err := assets.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		for _, m := range importRE.FindAllStringSubmatch(string(body), -1) {
			visit(path.Join("static", strings.TrimPrefix(m[1], "./")))
		}
	}
	for urlPath := range pages {
		for _, src := range parsePage(t, urlPath).scripts {
			visit(strings.TrimPrefix(src, "/"))
		}
	}
	scripts, err := fs.Glob(assets, "static/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range scripts {
		if !used[name] {
			t.Errorf("%s is not loaded by any page", name)
		}
	}
}

// TestAdminTabs checks that every tab of the admin page has its section and
// that admin.js knows every tab (the fragment picks the section).
func TestAdminTabs(t *testing.T) {
	rec := serve(t, "GET", "/admin", nil)
	doc, err := html.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var tabs, sections []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch a.Key {
				case "data-tab":
					tabs = append(tabs, a.Val)
				case "data-section":
					sections = append(sections, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(tabs) == 0 || !slices.Equal(tabs, sections) {
		t.Errorf("tabs %v, sections %v: want the same, in order", tabs, sections)
	}
	js, err := assets.ReadFile("static/admin.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range tabs {
		if !strings.Contains(string(js), "'"+tab+"'") {
			t.Errorf("admin.js does not list tab %q", tab)
		}
	}
}
