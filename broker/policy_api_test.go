package broker

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
)

// doHeaders is do with extra request headers and a raw body type.
func (f *apiFixture) doHeaders(c *http.Client, method, path, ctype, body string, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func TestPolicyAPI(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	f.addUser("nurse", auth.Clinician)
	admin, nurse := f.login("admin1"), f.login("nurse")

	if resp, _ := f.do(nurse, "GET", "/api/admin/policy", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("clinician reads the policy: %d", resp.StatusCode)
	}
	resp, m := f.do(admin, "GET", "/api/admin/policy", "")
	if resp.StatusCode != 200 || m["version"] != 0.0 || resp.Header.Get("ETag") != `"0"` {
		t.Fatalf("empty policy: %d %v %q", resp.StatusCode, m, resp.Header.Get("ETag"))
	}
	doc := `{"profiles":[{"name":"clinical","mode":"allowlist","rules":[{"pattern":"*.pmda.go.jp","trusted":true}]}],"default":"clinical"}`
	if resp, _ := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, nil); resp.StatusCode != http.StatusPreconditionRequired {
		t.Errorf("PUT without If-Match: %d", resp.StatusCode)
	}
	if resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %d, want 412", resp.StatusCode)
	}
	bad := `{"profiles":[{"name":"clinical","rules":[{"pattern":"*.jp"}]}]}`
	resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", bad, map[string]string{"If-Match": `"1"`})
	if resp.StatusCode != 400 || !strings.Contains(body, `*.jp`) {
		t.Errorf("invalid rule: %d %s", resp.StatusCode, body)
	}
	// The rule added over the API is stamped with who added it.
	_, m = f.do(admin, "GET", "/api/admin/policy", "")
	rule := m["policy"].(map[string]any)["profiles"].([]any)[0].(map[string]any)["rules"].([]any)[0].(map[string]any)
	if rule["added_by"] != "admin1" {
		t.Errorf("rule not stamped: %v", rule)
	}
	// The invalid document did not replace the valid one.
	resp, m = f.do(admin, "POST", "/api/admin/policy/test", `{"url":"https://www.pmda.go.jp/safety/","profile":"clinical"}`)
	if resp.StatusCode != 200 || m["allow"] != true || m["rule"] != "*.pmda.go.jp" || m["trusted"] != true {
		t.Errorf("test allowed URL: %d %v", resp.StatusCode, m)
	}
	_, m = f.do(admin, "POST", "/api/admin/policy/test", `{"url":"http://10.0.0.5/","profile":"clinical"}`)
	if m["allow"] != false || m["reason"] == "" {
		t.Errorf("test private URL: %v", m)
	}

	// Export, then import with a change.
	resp, yaml := f.doHeaders(admin, "GET", "/api/admin/policy/export", "", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(yaml, "pmda.go.jp") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %q", resp.StatusCode, yaml)
	}
	yaml = strings.Replace(yaml, "*.pmda.go.jp", "minds.jcqhc.or.jp", 1)
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/policy/import", "application/yaml", yaml, map[string]string{"If-Match": `"1"`}); resp.StatusCode != 200 {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/policy/import", "application/yaml", "profiles: [{name: x, colour: red}]", map[string]string{"If-Match": `"2"`}); resp.StatusCode != 400 || !strings.Contains(body, "colour") {
		t.Errorf("import with an unknown key: %d %s", resp.StatusCode, body)
	}

	// Kill switch: a blocked host is denied even where a rule allows it.
	if resp, _ := f.do(admin, "POST", "/api/admin/blocked", `{"host":"minds.jcqhc.or.jp","reason":"compromised"}`); resp.StatusCode != 200 {
		t.Fatalf("block: %d", resp.StatusCode)
	}
	_, m = f.do(admin, "POST", "/api/admin/policy/test", `{"url":"https://minds.jcqhc.or.jp/","profile":"clinical"}`)
	if m["allow"] != false || !strings.HasPrefix(m["rule"].(string), "blocked") {
		t.Errorf("blocked host: %v", m)
	}
	if resp, _ := f.do(admin, "POST", "/api/admin/blocked", `{"host":"minds.jcqhc.or.jp"}`); resp.StatusCode != 400 {
		t.Errorf("block without a reason: %d", resp.StatusCode)
	}
	if resp, _ := f.do(admin, "DELETE", "/api/admin/blocked/minds.jcqhc.or.jp", ""); resp.StatusCode != 200 {
		t.Errorf("unblock: %d", resp.StatusCode)
	}
	_, m = f.do(admin, "POST", "/api/admin/policy/test", `{"url":"https://minds.jcqhc.or.jp/","profile":"clinical"}`)
	if m["allow"] != true {
		t.Errorf("after unblocking: %v", m)
	}
}

func TestSiteRequestFlow(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	f.addUser("boss", auth.Approver)
	f.addUser("nurse", auth.Clinician)
	admin, boss, nurse := f.login("admin1"), f.login("boss"), f.login("nurse")
	doc := `{"profiles":[{"name":"clinical","rules":[{"pattern":"www.pmda.go.jp"}]}],"default":"clinical"}`
	if resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	sess, err := f.srv.Sessions().Attach(context.Background(), session.Owner{User: "nurse", Role: "clinician"}, testViewport)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := sess.AddViewer()
	if err != nil {
		t.Fatal(err)
	}

	if resp, m := f.do(nurse, "POST", "/api/site-requests", `{"host":"guidelines.example","url":"https://guidelines.example/a","reason":""}`); resp.StatusCode != 400 || !strings.Contains(m["error"].(string), "reason") {
		t.Errorf("request without a reason: %d %v", resp.StatusCode, m)
	}
	resp, m := f.do(nurse, "POST", "/api/site-requests", `{"host":"Guidelines.Example.","url":"https://guidelines.example/a","reason":"new sepsis guideline"}`)
	if resp.StatusCode != http.StatusCreated || m["host"] != "guidelines.example" || m["profile"] != "clinical" {
		t.Fatalf("request: %d %v", resp.StatusCode, m)
	}
	id := m["id"].(string)
	if resp, _ := f.do(nurse, "GET", "/api/site-requests?state=pending", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("clinician reads the queue: %d", resp.StatusCode)
	}
	resp, _ = f.do(boss, "GET", "/api/site-requests?state=pending", "")
	if resp.StatusCode != 200 {
		t.Fatalf("queue: %d", resp.StatusCode)
	}
	if resp, _ := f.do(boss, "POST", "/api/site-requests/"+id+"/approve", `{"profile":"nope","expires":"","comment":""}`); resp.StatusCode != 400 {
		t.Errorf("approve to an unknown profile: %d", resp.StatusCode)
	}

	// Nobody approves their own request.
	resp, m = f.do(boss, "POST", "/api/site-requests", `{"host":"self.example","url":"","reason":"mine"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("approver's own request: %d %v", resp.StatusCode, m)
	}
	own := m["id"].(string)
	if resp, m := f.do(boss, "POST", "/api/site-requests/"+own+"/approve", `{"profile":"clinical","expires":"","comment":""}`); resp.StatusCode != http.StatusForbidden || !strings.Contains(m["error"].(string), "own") {
		t.Errorf("self-approval: %d %v", resp.StatusCode, m)
	}

	exp := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	resp, m = f.do(boss, "POST", "/api/site-requests/"+id+"/approve", `{"profile":"clinical","expires":"`+exp+`","comment":"ok for a month"}`)
	if resp.StatusCode != 200 || m["state"] != "approved" || m["decidedBy"] != "boss" {
		t.Fatalf("approve: %d %v", resp.StatusCode, m)
	}
	// The site works at once for the clinician's running session.
	if d := f.srv.policy.Current().Decide("clinical", "guidelines.example", 443); !d.Allow {
		t.Errorf("approved host still denied: %+v", d)
	}
	// The viewer hears of it.
	deadline := time.After(5 * time.Second)
	for found := false; !found; {
		events, _, _ := viewer.Take()
		for _, ev := range events {
			if sr, ok := ev.(protocol.SiteRequest); ok && sr.State == "approved" {
				found = true
			}
		}
		if !found {
			select {
			case <-viewer.Wake():
			case <-deadline:
				t.Fatal("the viewer was not told of the decision")
			}
		}
	}
	if resp, _ := f.do(boss, "POST", "/api/site-requests/"+id+"/reject", `{"comment":"too late"}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("deciding twice: %d", resp.StatusCode)
	}
	resp, m = f.do(admin, "POST", "/api/site-requests/"+own+"/reject", `{"comment":""}`)
	if resp.StatusCode != 400 {
		t.Errorf("reject without a comment: %d %v", resp.StatusCode, m)
	}
	if resp, m := f.do(admin, "POST", "/api/site-requests/"+own+"/reject", `{"comment":"use the library"}`); resp.StatusCode != 200 || m["state"] != "rejected" {
		t.Errorf("reject: %d %v", resp.StatusCode, m)
	}
	if resp, _ := f.do(nurse, "GET", "/api/site-requests/mine", ""); resp.StatusCode != 200 {
		t.Errorf("mine: %d", resp.StatusCode)
	}
	// Kill switch: end every session.
	if resp, m := f.do(admin, "DELETE", "/api/admin/sessions", ""); resp.StatusCode != 200 || m["ended"] != 1.0 {
		t.Errorf("end all: %d %v", resp.StatusCode, m)
	}
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Error("end all left a session running")
	}
}

func TestEmergencyProfileAPI(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	admin := f.login("admin1")
	doc := `{"groups":[{"name":"ward-3","terminals":["10.10.3.0/24"]}],
		"profiles":[{"name":"clinical","groups":["ward-3"],"rules":[{"pattern":"www.pmda.go.jp"}]},
		            {"name":"broad","mode":"denylist"}],"default":"clinical"}`
	if resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	terminal := netip.MustParseAddr("10.10.3.7")
	profile := func() string { return f.srv.policy.Current().ProfileFor("nurse", "clinician", terminal) }
	if got := profile(); got != "clinical" {
		t.Fatalf("profile before: %q", got)
	}
	exp := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/emergency", "application/json",
		`{"group":"ward-3","profile":"broad","reason":"","expires":"`+exp+`"}`, nil); resp.StatusCode != 400 || !strings.Contains(body, "reason") {
		t.Errorf("emergency without a reason: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.doHeaders(admin, "POST", "/api/admin/emergency", "application/json",
		`{"group":"ward-3","profile":"broad","reason":"system outage: need general search","expires":"`+exp+`"}`, nil); resp.StatusCode != 200 {
		t.Fatalf("emergency on: %d %s", resp.StatusCode, body)
	}
	if got := profile(); got != "broad" {
		t.Errorf("profile during the emergency: %q, want broad", got)
	}
	if resp, _ := f.do(admin, "DELETE", "/api/admin/emergency/ward-3", ""); resp.StatusCode != 200 {
		t.Errorf("emergency off: %d", resp.StatusCode)
	}
	if got := profile(); got != "clinical" {
		t.Errorf("profile after: %q", got)
	}
	if resp, _ := f.do(admin, "DELETE", "/api/admin/emergency/ward-3", ""); resp.StatusCode != 404 {
		t.Errorf("ending twice: %d", resp.StatusCode)
	}
}

// TestSiteRequestNoteKeepsJapaneseWhole approves a request whose long
// Japanese reason is cut for the rule's note: the cut falls between
// characters, so the note (stored, exported as YAML, audited) is valid
// UTF-8, and it ends with the mark that says it was cut.
func TestSiteRequestNoteKeepsJapaneseWhole(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("admin1", auth.Admin)
	f.addUser("boss", auth.Approver)
	f.addUser("nurse", auth.Clinician)
	admin, boss, nurse := f.login("admin1"), f.login("boss"), f.login("nurse")
	doc := `{"profiles":[{"name":"clinical","rules":[{"pattern":"www.pmda.go.jp"}]}],"default":"clinical"}`
	if resp, body := f.doHeaders(admin, "PUT", "/api/admin/policy", "application/json", doc, map[string]string{"If-Match": `"0"`}); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	// 67 characters of 3 bytes: 201 bytes, so a byte cut at 200 would
	// split the last one.
	reason := strings.Repeat("あ", 67)
	resp, m := f.do(nurse, "POST", "/api/site-requests", `{"host":"guidelines.example","url":"https://guidelines.example/a","reason":"`+reason+`"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("request: %d %v", resp.StatusCode, m)
	}
	id := m["id"].(string)
	if resp, m := f.do(boss, "POST", "/api/site-requests/"+id+"/approve", `{"profile":"clinical","expires":"","comment":"ok"}`); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %v", resp.StatusCode, m)
	}
	var note string
	for _, p := range f.srv.policy.Current().Document().Profiles {
		for _, r := range p.Rules {
			if r.Pattern == "guidelines.example" {
				note = r.Note
			}
		}
	}
	want := "site request " + id + " by nurse: " + strings.Repeat("あ", 65) + "…"
	if note != want || !utf8.ValidString(note) {
		t.Errorf("note = %q, want %q", note, want)
	}
}
