package demo

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// get fetches path from srv and returns the response and its body.
func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp, string(body)
}

func TestPages(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		path   string
		status int
		want   []string // substrings the body must contain
	}{
		{"/", http.StatusOK, []string{"<title>shoji demo</title>", `id="band"`, `id="link-form"`}},
		{"/form", http.StatusOK, []string{`id="name"`, `id="note"`, `id="search"`, `id="events"`, `placeholder="医薬品名を入力してください"`}},
		{"/form/result?name=a&note=b&search=c", http.StatusOK, []string{`id="result"`, `<dd id="result-name">a</dd>`}},
		{"/article", http.StatusOK, []string{`id="sec-1"`, `id="sec-12"`, `id="article-end"`}},
		{"/popup", http.StatusOK, []string{`id="open-popup"`, `id="blank-link"`, `target="_blank"`}},
		{"/popup/child?via=blank", http.StatusOK, []string{"popup child", `<span id="query">via=blank</span>`}},
		{"/alert", http.StatusOK, []string{`id="alert"`, `id="confirm-result"`, `id="prompt-result"`, `id="arm-beforeunload"`}},
		{"/animation", http.StatusOK, []string{`id="square"`, `id="stop"`}},
		{"/japanese", http.StatusOK, []string{`id="ja-input"`, `"Noto Sans CJK JP"`}},
		{"/slow", http.StatusOK, []string{`id="slow-done"`}},
		{"/status/404", http.StatusNotFound, []string{`id="not-found"`}},
		{"/no/such/page", http.StatusNotFound, []string{`id="not-found"`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, tt.path)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil || mt != "text/html" || params["charset"] != "utf-8" {
				t.Errorf("Content-Type = %q, want text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
			// Self-contained: nothing is loaded from another origin.
			for _, bad := range []string{"http://", "https://", "//fonts."} {
				if strings.Contains(body, bad) {
					t.Errorf("body references %q; the demo site must be self-contained", bad)
				}
			}
		})
	}
}

// indexLinks parses the index page and returns each link's id and href.
func indexLinks(t *testing.T, body string) map[string]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse index: %v", err)
	}
	links := map[string]string{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "a" {
			continue
		}
		var id, href string
		for _, a := range n.Attr {
			switch a.Key {
			case "id":
				id = a.Val
			case "href":
				href = a.Val
			}
		}
		links[id] = href
	}
	return links
}

func TestIndexLinks(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	_, body := get(t, srv, "/")
	links := indexLinks(t, body)
	delete(links, "home") // the site name in the header on every page
	if len(links) != len(Pages()) {
		t.Errorf("index has %d page links, want %d: %v", len(links), len(Pages()), links)
	}
	for _, p := range Pages() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			href, ok := links["link-"+p.Name]
			if !ok {
				t.Fatalf("index lacks link-%s", p.Name)
			}
			if href != p.Path {
				t.Errorf("link-%s href = %q, want %q", p.Name, href, p.Path)
			}
			resp, _ := get(t, srv, href)
			if resp.StatusCode != p.Status {
				t.Errorf("GET %s: status = %d, want %d", href, resp.StatusCode, p.Status)
			}
			if p.Status == http.StatusNotFound && p.Path != "/status/404" {
				t.Errorf("page %s is linked but answers 404", p.Path)
			}
		})
	}
}

func TestFormResultEscapes(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		field, value, want string
	}{
		{"name", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"note", `"><img src=x onerror=alert(1)>`, "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"},
		{"search", "山田 太郎 & 花子", "山田 太郎 &amp; 花子"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			q := url.Values{tt.field: {tt.value}}
			resp, body := get(t, srv, "/form/result?"+q.Encode())
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			want := `<dd id="result-` + tt.field + `">` + tt.want + `</dd>`
			if !strings.Contains(body, want) {
				t.Errorf("body lacks %q", want)
			}
			if strings.Contains(body, tt.value) && tt.value != tt.want {
				t.Errorf("body contains the raw value %q", tt.value)
			}
		})
	}
}

func TestSlowHonoursCancel(t *testing.T) {
	rec := httptest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow", nil)
	Handler().ServeHTTP(rec, req) // returns without waiting SlowDelay
	if rec.Body.Len() != 0 {
		t.Errorf("cancelled /slow wrote %d bytes", rec.Body.Len())
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	tests := []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8080", "example.jp:80", "127.0.0.1"}
	for _, addr := range tests {
		t.Run(addr, func(t *testing.T) {
			a, shutdown, err := Serve(t.Context(), addr, nil)
			if err == nil {
				_ = shutdown(context.Background())
				t.Fatalf("Serve(%q) = %v, want an error", addr, a)
			}
			if addr != "127.0.0.1" && !errors.Is(err, ErrNotLoopback) {
				t.Errorf("Serve(%q) error = %v, want ErrNotLoopback", addr, err)
			}
		})
	}
}

func TestServe(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1:0", "localhost:0"} {
		t.Run(addr, func(t *testing.T) {
			addr, shutdown, err := Serve(t.Context(), addr, nil)
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if !addr.(*net.TCPAddr).IP.IsLoopback() {
				t.Errorf("bound to %v, want loopback", addr)
			}
			base := "http://" + addr.String()
			resp, err := http.Get(base + "/")
			if err != nil {
				t.Fatalf("GET /: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET / status = %d, want 200", resp.StatusCode)
			}
			http.DefaultClient.CloseIdleConnections()
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("second shutdown: %v", err)
			}
			if _, err := net.Dial("tcp", addr.String()); err == nil {
				t.Errorf("still accepting connections after shutdown")
			}
		})
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addr, shutdown, err := Serve(ctx, "", nil)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	cancel()
	// Poll with a deadline: the listener closes shortly after ctx ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr.String())
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after the context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
