package broker

import (
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

// TestStaticAllowReadOnlyLayer checks the config file's egress.allow as the
// policy's read-only layer through the server: sessions and `policy test`
// are allowed by it, naming "config file egress.allow"; a host blocked
// everywhere beats it; GET shows it read-only; a PUT or import that sends
// it back unchanged or leaves it out is accepted, one that alters or
// removes it is refused naming the rule; and it is never stored.
func TestStaticAllowReadOnlyLayer(t *testing.T) {
	f := newAPI(t, func(c *Config) { c.Egress.Allow = []string{"guide.example.jp", "files.example.jp:8443"} })
	f.addUser("admin1", auth.Admin)
	admin := f.login("admin1")
	const rule = "config file egress.allow: guide.example.jp"

	_, m := f.do(admin, "GET", "/api/admin/policy", "")
	static, _ := m["policy"].(map[string]any)["static"].([]any)
	if len(static) != 2 {
		t.Fatalf("GET policy: %v; want the two static rules", m)
	}
	if r := static[0].(map[string]any); r["pattern"] != "guide.example.jp" || r["source"] != "config file egress.allow" || r["read_only"] != true {
		t.Errorf("static rule %v; want guide.example.jp from the config file, read-only", r)
	}

	// A session with no profile browses the static sites, and only them.
	sp := newSessionPolicy(f.srv.policy, session.Info{ID: "s-1", User: "nurse", Role: string(auth.Clinician)})
	if d := sp.Decide("guide.example.jp", 443); !d.Allow || d.Rule != rule {
		t.Errorf("proxy decision = %+v; want allowed by %q", d, rule)
	}
	if d := sp.CheckURL("https://guide.example.jp/x"); !d.Allow || d.Rule != rule {
		t.Errorf("navigation decision = %+v; want allowed by %q", d, rule)
	}
	if d := sp.Decide("files.example.jp", 443); d.Allow {
		t.Errorf("port not in the static rule: %+v; want denied", d)
	}
	_, m = f.do(admin, "POST", "/api/admin/policy/test", `{"url":"https://guide.example.jp/","profile":""}`)
	if m["allow"] != true || m["rule"] != rule {
		t.Errorf("policy test: %v; want allowed by %q", m, rule)
	}

	// A PUT without the layer keeps it; one that alters or drops it is refused.
	doc := `{"profiles":[{"name":"ward","rules":[{"pattern":"www.pmda.go.jp"}]}],"default":"ward"}`
	if resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != 200 {
		t.Fatalf("PUT without the static layer: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ static, want string }{
		{`[{"pattern":"files.example.jp:8443","source":"config file egress.allow","read_only":true}]`, `static rule \"guide.example.jp\" is read-only (config file egress.allow) and cannot be changed`},
		{`[]`, `static rule \"guide.example.jp\" is read-only (config file egress.allow) and cannot be removed`},
	} {
		body := strings.TrimSuffix(doc, "}") + `,"static":` + tc.static + `}`
		resp, got := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", body, map[string]string{"If-Match": `"1"`})
		if resp.StatusCode != 400 || !strings.Contains(got, tc.want) {
			t.Errorf("PUT static %s: %d %s; want 400 %s", tc.static, resp.StatusCode, got, tc.want)
		}
	}

	// Export shows the layer; importing it back unchanged is accepted,
	// altered refused.
	_, yaml := f.doHeaders(admin, "GET", "/api/admin/policy/export", "", "", nil)
	if !strings.Contains(yaml, "source: config file egress.allow") || !strings.Contains(yaml, "read_only: true") {
		t.Fatalf("export: %s; want the read-only layer", yaml)
	}
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/policy/import", "application/yaml", yaml, map[string]string{"If-Match": `"1"`}); resp.StatusCode != 200 {
		t.Errorf("import of the export: %d %s", resp.StatusCode, body)
	}
	altered := strings.Replace(yaml, "pattern: guide.example.jp", "pattern: evil.example", 1)
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/policy/import", "application/yaml", altered, map[string]string{"If-Match": `"2"`}); resp.StatusCode != 400 || !strings.Contains(body, "guide.example.jp") {
		t.Errorf("import altering the static layer: %d %s; want 400 naming the rule", resp.StatusCode, body)
	}

	// A host blocked everywhere beats the static layer.
	if resp, _ := f.do(admin, "POST", "/api/admin/blocked", `{"host":"guide.example.jp","reason":"compromised"}`); resp.StatusCode != 200 {
		t.Fatalf("block: %d", resp.StatusCode)
	}
	if d := sp.Decide("guide.example.jp", 443); d.Allow || !strings.HasPrefix(d.Rule, "blocked") {
		t.Errorf("blocked static host: %+v; want the block", d)
	}
	if d := sp.CheckURL("https://guide.example.jp/"); d.Allow || !strings.HasPrefix(d.Rule, "blocked") {
		t.Errorf("blocked static host, navigation: %+v; want the block", d)
	}
	raw, _, err := f.srv.store.Policy()
	if err != nil || strings.Contains(string(raw), "static") {
		t.Errorf("stored policy %s, %v; want no read-only layer", raw, err)
	}
}
