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
		{"GET", "/audit", 200, "text/html; charset=utf-8"},
		{"GET", "/static/audit.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/transfers.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/stats.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/screen.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/audit.html", 404, ""},
		{"GET", "/audit/", 404, ""},
		{"POST", "/audit", 405, ""},
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
	refs    []string                     // URLs of scripts, styles, images and links
	scripts []string                     // src of each <script>
	ids     map[string]string            // element id → tag name
	attrs   map[string]map[string]string // element id → its attributes
	names   []string                     // form field names
}

// parsePage reads a page and reports everything the broker's CSP forbids:
// inline scripts, <style> elements, style attributes and on* handlers.
func parsePage(t *testing.T, urlPath string) page {
	t.Helper()
	rec := serve(t, "GET", urlPath, nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s = %d", urlPath, rec.Code)
	}
	p := page{ids: map[string]string{}, attrs: map[string]map[string]string{}}
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
				p.attrs[id] = attrs
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
				"approvals-link": "a", "admin-link": "a", "audit-link": "a",
				"copy": "button", "print": "button", "transfers-button": "button", "transfers-count": "span",
				"transfers": "aside", "transfers-list": "div", "transfers-close": "button",
				"paste-dialog": "dialog", "paste-warning": "p", "paste-preview": "pre", "paste-ok": "button",
				"paste-cancel": "button", "paste-dont-ask": "input",
				"upload-dialog": "dialog", "upload-host": "strong", "upload-warning": "p", "upload-file": "input",
				"upload-max": "p", "upload-files": "ul", "upload-progress": "progress", "upload-error": "p",
				"upload-send": "button", "upload-cancel": "button",
				"stats-toggle": "button", "stats": "div", "stats-fps": "span", "stats-bytes": "span",
				"stats-input-frame": "span", "stats-drops": "span",
				"pledge-view": "main", "pledge": "div", "pledge-agree": "button", "pledge-logout": "button", "pledge-error": "p",
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
				"block-form": "form", "blocked": "table", "end-user-form": "form", "end-all": "button", "sessions": "table", "suspend-form": "form", "suspend-off": "button",
				"emergency-form": "form", "emergencies": "table",
				"destination-form": "form", "destination-error": "p", "destinations-table": "table",
				"profile-transfers": "div", "profile-transfers-body": "div",
				"pledge-dialog": "dialog", "pledge": "div", "pledge-agree": "button", "pledge-logout": "button", "pledge-error": "p",
			},
			names: []string{"banner", "pledge", "pattern", "note", "expires", "uploads", "trusted",
				"url", "profile", "host", "reason", "user", "yaml", "file", "group", "terminals", "default",
				"name", "description", "dir"},
		},
		{
			page: "/approvals",
			ids: map[string]string{"requests": "div", "history": "table", "requests-refresh": "button", "admin-link": "a",
				"held-transfers": "section", "held-list": "div", "held-refresh": "button", "transfer-history": "table",
				"pledge-dialog": "dialog", "pledge": "div", "pledge-agree": "button", "pledge-logout": "button", "pledge-error": "p"},
			names: nil, // the fields of each request and file are built per item by approvals.js
		},
		{
			page: "/audit",
			ids: map[string]string{
				"audit-filter": "form", "audit-events": "table", "audit-more": "button", "audit-counts": "div",
				"audit-csv": "a", "audit-status": "section", "audit-verify": "button", "audit-evidence": "form",
				"audit-evidence-link": "a", "audit-transfers": "table", "audit-message": "p", "audit-main": "div",
				"pledge-dialog": "dialog", "pledge": "div", "pledge-agree": "button", "pledge-logout": "button", "pledge-error": "p",
			},
			names: []string{"from", "to", "user", "type", "host", "sha256"},
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

// formFields returns the named fields of each form of a page as
// "name:type" (the tag name for a select or textarea), by form id.
func formFields(t *testing.T, urlPath string) map[string][]string {
	t.Helper()
	doc := parseDoc(t, urlPath)
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
	return forms
}

// parseDoc parses a page into a tree.
func parseDoc(t *testing.T, urlPath string) *html.Node {
	t.Helper()
	rec := serve(t, "GET", urlPath, nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s = %d", urlPath, rec.Code)
	}
	doc, err := html.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestFormFields checks the fields end-to-end tests fill in, form by form:
// a field of the same name in another form would not do.
func TestFormFields(t *testing.T) {
	tests := map[string]map[string][]string{
		"/admin": {
			"rule-form":        {"pattern:", "note:", "expires:datetime-local", "uploads:checkbox", "trusted:checkbox"},
			"test-form":        {"url:text", "profile:select"},
			"block-form":       {"host:", "reason:"},
			"import-form":      {"file:file", "yaml:textarea"},
			"emergency-form":   {"group:select", "profile:select", "reason:", "expires:datetime-local"},
			"group-form":       {"name:", "terminals:textarea"},
			"end-user-form":    {"user:"},
			"suspend-form":     {"reason:"},
			"default-form":     {"default:select"},
			"destination-form": {"name:", "description:", "dir:"},
		},
		"/audit": {
			"audit-filter":   {"from:datetime-local", "to:datetime-local", "user:", "type:select", "host:", "sha256:"},
			"audit-evidence": {"from:datetime-local", "to:datetime-local", "user:"},
		},
	}
	for urlPath, want := range tests {
		forms := formFields(t, urlPath)
		for form, fields := range want {
			for _, f := range fields {
				if !slices.Contains(forms[form], f) {
					t.Errorf("%s #%s: no field %q (has %v)", urlPath, form, f, forms[form])
				}
			}
		}
	}
}

// TestViewerAttributes checks the attributes of viewer elements that
// end-to-end tests and the modules rely on.
func TestViewerAttributes(t *testing.T) {
	p := parsePage(t, "/")
	tests := []struct{ id, attr, want string }{
		{"upload-file", "type", "file"},
		{"paste-dont-ask", "type", "checkbox"},
		{"transfers", "hidden", ""},
		{"transfers-count", "hidden", ""},
		{"upload-progress", "hidden", ""},
		{"audit-link", "hidden", ""},
		{"audit-link", "href", "/audit"},
		{"copy", "type", "button"},
		{"print", "type", "button"},
		{"transfers-button", "aria-controls", "transfers"},
		{"paste-ok", "type", "submit"},
		{"upload-send", "type", "submit"},
		{"stats", "hidden", ""},
		{"stats-toggle", "type", "button"},
		{"stats-toggle", "aria-controls", "stats"},
		{"stats-toggle", "aria-expanded", "false"},
	}
	for _, tt := range tests {
		got, ok := p.attrs[tt.id][tt.attr]
		if !ok {
			t.Errorf("#%s has no %s attribute", tt.id, tt.attr)
		} else if got != tt.want {
			t.Errorf("#%s %s=%q, want %q", tt.id, tt.attr, got, tt.want)
		}
	}
}

// text returns the text inside the element with the given id, spaces
// collapsed.
func text(doc *html.Node, id string) (string, bool) {
	var found *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if found != nil {
			return
		}
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == id {
					found = n
					return
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if found == nil {
		return "", false
	}
	var b strings.Builder
	var collect func(n *html.Node)
	collect = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			collect(c)
		}
	}
	collect(found)
	return strings.Join(strings.Fields(b.String()), " "), true
}

// TestNotices checks the warnings the viewer must show before text or a
// file goes to an Internet site (NOTICE-2), word for word.
func TestNotices(t *testing.T) {
	doc := parseDoc(t, "/")
	tests := map[string]string{
		"paste-warning":  "患者氏名・ID などの個人情報を貼り付けないでください / Do not paste patient names, IDs or other identifiers into Internet sites",
		"upload-warning": "患者氏名・ID などの個人情報を含むファイルを外部サイトに送らないでください / Do not upload files with patient names, IDs or other identifiers",
		"access-warning": "患者氏名・ID などの個人情報を入力しないでください / Do not enter patient names, IDs or other identifiers",
	}
	for id, want := range tests {
		got, ok := text(doc, id)
		if !ok {
			t.Errorf("no #%s", id)
		} else if got != want {
			t.Errorf("#%s says %q, want %q", id, got, want)
		}
	}
	if got, _ := text(doc, "paste-dialog"); !strings.Contains(got, "このセッション中は確認しない Don't ask again in this session") {
		t.Errorf("#paste-dialog does not offer \"don't ask again\": %q", got)
	}
}

// TestViewerMessages checks that the viewer handles every message type the
// broker sends it and sends the clipboard and print requests: a type
// dropped from the dispatch would be ignored silently.
func TestViewerMessages(t *testing.T) {
	viewer, err := assets.ReadFile("static/viewer.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"ready", "state", "dialog", "dialogClosed", "caret", "status", "accessRequest",
		"siteRequest", "error", "clipboard", "transfer", "fileChooser"} {
		if !strings.Contains(string(viewer), "case '"+typ+"':") {
			t.Errorf("viewer.js does not handle %q messages", typ)
		}
	}
	clip, err := assets.ReadFile("static/clipboard.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"copy", "paste", "print"} {
		if !strings.Contains(string(clip), "type: '"+typ+"'") {
			t.Errorf("clipboard.js does not send %q", typ)
		}
	}
}

// TestAPIPaths checks that the modules call the broker's transfer and
// audit API at the paths it serves (broker/api/transfers,
// broker/api/audittrail).
func TestAPIPaths(t *testing.T) {
	tests := map[string][]string{
		"static/transfers.js":    {"'/api/transfers'", "'/api/destinations'", "/file`", "/send`", "/reason`"},
		"static/upload.js":       {"`/api/uploads/${encodeURIComponent(id)}`", "`/api/uploads/${encodeURIComponent(id)}/answer`", "'X-Shoji-Filename'"},
		"static/approvals.js":    {"'/api/approvals/transfers'", "'/api/approvals/transfers?state=decided'", "/api/approvals/transfers/${"},
		"static/destinations.js": {"'/api/admin/destinations'", "'/api/admin/destinations/'"},
		"static/audit.js": {"'/api/audit/events'", "'/api/audit/events.csv'", "'/api/audit/counts'", "'/api/audit/status'",
			"'/api/audit/transfers'", "'/api/audit/evidence'"},
	}
	for name, want := range tests {
		body, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s does not contain %s", name, w)
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

// TestViewerInstrumentation checks the names that end-to-end tests and
// `shoji-bench` read from the viewer: <body data-frames>, the data
// attributes of #stats and window.shojiViewerStats.
func TestViewerInstrumentation(t *testing.T) {
	tests := map[string][]string{
		"static/screen.js": {"document.body.dataset.frames = String(c.drawn)", "createImageBitmap("},
		"static/stats.js": {"d.fps =", "d.bytes =", "d.inputFrame =", "d.drops =", "'shojiViewerStats'",
			"framesReceived:", "framesDrawn:", "framesDropped:", "bytesReceived:", "lastDrawAt:", "Object.freeze("},
		"static/viewer.js": {"exposeStats(screen)", "screen.beforeDraw = () => input.flush()"},
	}
	for name, want := range tests {
		body, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s does not contain %s", name, w)
			}
		}
	}
	if rec := serve(t, "GET", "/", nil); !strings.Contains(rec.Body.String(), `data-frames="0"`) {
		t.Error(`index.html: <body> has no data-frames="0"`)
	}
}
