package broker

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// fakeDownload makes user's fake browser download content as name and
// waits until the broker decided it.
func (f *apiFixture) fakeDownload(user, name string, content []byte) transfer.Transfer {
	f.t.Helper()
	s, ok := f.srv.Sessions().Get(user)
	if !ok {
		var err error
		if s, err = f.srv.Sessions().Attach(context.Background(), session.Owner{User: user, Role: "clinician"}, testViewport); err != nil {
			f.t.Fatal(err)
		}
	}
	br, _ := s.Browser()
	fb := br.(*isolationtest.Browser)
	if fb.Opts.DownloadDir == "" || fb.Opts.MaxDownloadBytes == 0 {
		f.t.Fatalf("the browser was launched without a quarantine: %+v", fb.Opts)
	}
	guid := transfer.NewID()
	path := filepath.Join(fb.Opts.DownloadDir, guid)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		f.t.Fatal(err)
	}
	before, _ := f.srv.xfer.Mine(user)
	fb.EmitDownload(isolation.Download{ID: guid, State: isolation.DownloadStarted, URL: "http://demo.shoji.test/x", Name: name})
	fb.EmitDownload(isolation.Download{ID: guid, State: isolation.DownloadDone, URL: "http://demo.shoji.test/x", Name: name, Path: path, Received: int64(len(content))})
	f.srv.xfer.Wait()
	list, _ := f.srv.xfer.Mine(user)
	if len(list) != len(before)+1 {
		f.t.Fatalf("%d transfers after the download, want %d", len(list), len(before)+1)
	}
	for _, t := range list {
		if t.PageName == name {
			return t
		}
	}
	f.t.Fatalf("no transfer named %q", name)
	return transfer.Transfer{}
}

func (f *apiFixture) post(c *http.Client, path, body string) (*http.Response, map[string]any) {
	f.t.Helper()
	return f.do(c, "POST", path, body)
}

var testPDF = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

func TestTransferAPI(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("nurse", auth.Clinician)
	f.addUser("other", auth.Clinician)
	f.addUser("boss", auth.Approver)
	f.addUser("root", auth.Admin)
	f.addUser("eye", auth.Auditor)
	nurse, other, boss, root, eye := f.login("nurse"), f.login("other"), f.login("boss"), f.login("root"), f.login("eye")

	released := f.fakeDownload("nurse", "../Drug notice.pdf", testPDF)
	if released.State != transfer.Released {
		t.Fatalf("PDF: %+v", released)
	}

	t.Run("Save", func(t *testing.T) {
		resp, err := nurse.Get(f.ts.URL + "/api/transfers/" + released.ID + "/file")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || !bytes.Equal(body, testPDF) {
			t.Fatalf("save: %d, %d bytes", resp.StatusCode, len(body))
		}
		if cd := h.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || strings.Contains(cd, "/") {
			t.Errorf("Content-Disposition %q", cd)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("headers %v", h)
		}
		sum := sha256.Sum256(testPDF)
		if h.Get("X-Shoji-SHA256") != hex.EncodeToString(sum[:]) {
			t.Errorf("hash header %q", h.Get("X-Shoji-SHA256"))
		}
		// Another user, an anonymous client and a guessed ID all get 404 or 401.
		for _, c := range []*http.Client{other, f.client()} {
			resp, _ := f.do(c, "GET", "/api/transfers/"+released.ID+"/file", "")
			if resp.StatusCode != 404 && resp.StatusCode != 401 {
				t.Errorf("someone else fetched the file: %d", resp.StatusCode)
			}
		}
		if resp, _ := f.do(nurse, "GET", "/api/transfers/0123456789abcdef0123456789abcdef/file", ""); resp.StatusCode != 404 {
			t.Errorf("guessed ID: %d", resp.StatusCode)
		}
	})

	held := f.fakeDownload("nurse", "stock.bin", []byte{0, 1, 2, 3, 4, 5, 6, 7})
	if held.State != transfer.Held {
		t.Fatalf("binary: %+v", held)
	}

	t.Run("Approval", func(t *testing.T) {
		if resp, _ := f.do(nurse, "GET", "/api/transfers/"+held.ID+"/file", ""); resp.StatusCode != http.StatusConflict {
			t.Errorf("held file delivered: %d", resp.StatusCode)
		}
		if resp, m := f.post(nurse, "/api/transfers/"+held.ID+"/reason", `{"reason":"ward stock list from the wholesaler"}`); resp.StatusCode != 200 {
			t.Fatalf("reason: %d %v", resp.StatusCode, m)
		}
		// Only approvers approve: not the clinician, not an admin.
		for _, c := range []*http.Client{nurse, root} {
			if resp, _ := f.post(c, "/api/approvals/transfers/"+held.ID+"/approve", `{}`); resp.StatusCode != 403 {
				t.Errorf("non-approver approved: %d", resp.StatusCode)
			}
		}
		resp, _ := f.do(boss, "GET", "/api/approvals/transfers", "")
		if resp.StatusCode != 200 {
			t.Fatalf("queue: %d", resp.StatusCode)
		}
		if resp, m := f.post(boss, "/api/approvals/transfers/"+held.ID+"/approve", `{"comment":"ok"}`); resp.StatusCode != 200 || m["state"] != "released" {
			t.Fatalf("approve: %d %v", resp.StatusCode, m)
		}
		if resp, _ := f.do(nurse, "GET", "/api/transfers/"+held.ID+"/file", ""); resp.StatusCode != 200 {
			t.Errorf("approved file: %d", resp.StatusCode)
		}
	})

	t.Run("SelfApproval", func(t *testing.T) {
		own := f.fakeDownload("boss", "own.bin", []byte{9, 9, 9, 9, 9, 9, 9, 9})
		if resp, m := f.post(boss, "/api/approvals/transfers/"+own.ID+"/approve", `{}`); resp.StatusCode != 403 || !strings.Contains(m["error"].(string), "own") {
			t.Fatalf("self-approval: %d %v", resp.StatusCode, m)
		}
	})

	t.Run("Destinations", func(t *testing.T) {
		share := t.TempDir()
		if resp, _ := f.post(nurse, "/api/admin/destinations", `{"name":"ikyoku","dir":"`+share+`"}`); resp.StatusCode != 403 {
			t.Errorf("clinician registered a destination: %d", resp.StatusCode)
		}
		if resp, m := f.post(root, "/api/admin/destinations", `{"name":"ikyoku","dir":"/no/such/dir"}`); resp.StatusCode != 400 || !strings.Contains(m["error"].(string), "/no/such/dir") {
			t.Errorf("bad dir: %d %v", resp.StatusCode, m)
		}
		if resp, m := f.post(root, "/api/admin/destinations", `{"name":"ikyoku","description":"医局","dir":"`+share+`"}`); resp.StatusCode != 201 {
			t.Fatalf("add: %d %v", resp.StatusCode, m)
		}
		resp, m := f.post(nurse, "/api/transfers/"+released.ID+"/send", `{"destination":"ikyoku"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("send: %d %v", resp.StatusCode, m)
		}
		b, err := os.ReadFile(filepath.Join(share, m["file"].(string)))
		if err != nil || !bytes.Equal(b, testPDF) {
			t.Errorf("sent file: %v", err)
		}
		// Clinicians see names, not the broker's paths.
		req, _ := http.NewRequest("GET", f.ts.URL+"/api/destinations", nil)
		r2, _ := nurse.Do(req)
		raw, _ := io.ReadAll(r2.Body)
		r2.Body.Close()
		if strings.Contains(string(raw), share) {
			t.Errorf("destination path shown to a clinician: %s", raw)
		}
	})

	t.Run("KillSwitch", func(t *testing.T) {
		if resp, _ := f.do(root, "PUT", "/api/admin/transfers/suspend", `{"on":true}`); resp.StatusCode != 400 {
			t.Errorf("suspend without a reason: %d", resp.StatusCode)
		}
		if resp, m := f.do(root, "PUT", "/api/admin/transfers/suspend", `{"on":true,"reason":"incident 42"}`); resp.StatusCode != 200 {
			t.Fatalf("suspend: %d %v", resp.StatusCode, m)
		}
		if resp, _ := f.do(nurse, "GET", "/api/transfers/"+released.ID+"/file", ""); resp.StatusCode != 403 {
			t.Errorf("delivered while suspended: %d", resp.StatusCode)
		}
		suspended := f.fakeDownload("nurse", "during.pdf", testPDF)
		if suspended.State != transfer.Held {
			t.Errorf("released while suspended: %+v", suspended)
		}
		if resp, _ := f.do(root, "PUT", "/api/admin/transfers/suspend", `{"on":false}`); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
		if resp, _ := f.do(nurse, "GET", "/api/transfers/"+released.ID+"/file", ""); resp.StatusCode != 200 {
			t.Errorf("after resuming: %d", resp.StatusCode)
		}
	})

	t.Run("Audit", func(t *testing.T) {
		for _, c := range []*http.Client{nurse, boss, root} {
			if resp, _ := f.do(c, "GET", "/api/audit/events", ""); resp.StatusCode != 403 {
				t.Errorf("non-auditor read the audit trail: %d", resp.StatusCode)
			}
		}
		resp, m := f.do(eye, "GET", "/api/audit/status", "")
		if resp.StatusCode != 200 || m["ok"] != true {
			t.Fatalf("status: %d %v", resp.StatusCode, m)
		}
		resp, m = f.do(eye, "GET", "/api/audit/events?type=transfer&user=nurse&limit=2", "")
		events, _ := m["events"].([]any)
		if resp.StatusCode != 200 || len(events) != 2 || m["more"] != true {
			t.Fatalf("events: %d %v", resp.StatusCode, m)
		}
		if first, second := events[0].(map[string]any)["seq"].(float64), events[1].(map[string]any)["seq"].(float64); first <= second {
			t.Errorf("events not newest first: %v then %v", first, second)
		}
		if resp, m := f.do(eye, "GET", "/api/audit/events?from=yesterday", ""); resp.StatusCode != 400 || !strings.Contains(m["error"].(string), "from") {
			t.Errorf("bad from: %d %v", resp.StatusCode, m)
		}
		resp, m = f.do(eye, "GET", "/api/audit/counts", "")
		if users, _ := m["users"].(map[string]any); resp.StatusCode != 200 || users["nurse"] == nil {
			t.Errorf("counts: %d %v", resp.StatusCode, m)
		}
		req, _ := http.NewRequest("GET", f.ts.URL+"/api/audit/events.csv?user=nurse", nil)
		r2, err := eye.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		csv, _ := io.ReadAll(r2.Body)
		r2.Body.Close()
		if !strings.Contains(string(csv), "nurse") || !strings.HasPrefix(r2.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("CSV: %s", csv)
		}
	})

	t.Run("Evidence", func(t *testing.T) {
		from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		req, _ := http.NewRequest("GET", f.ts.URL+"/api/audit/evidence?user=nurse&from="+from, nil)
		resp, err := eye.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("evidence: %d %s", resp.StatusCode, raw)
		}
		zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, zf := range zr.File {
			rc, _ := zf.Open()
			files[zf.Name], _ = io.ReadAll(rc)
			rc.Close()
		}
		var m audit.EvidenceManifest
		if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
			t.Fatal(err)
		}
		if m.By != "eye" || m.User != "nurse" || m.Records == 0 || m.Ledger < 3 || m.Files == 0 || !strings.HasPrefix(m.Chain, "intact") {
			t.Errorf("manifest %+v", m)
		}
		for name, want := range m.Contents {
			sum := sha256.Sum256(files[name])
			if hex.EncodeToString(sum[:]) != want {
				t.Errorf("%s: hash in the manifest does not match", name)
			}
		}
		if !bytes.Equal(files["files/"+released.ID], testPDF) {
			t.Error("the released file is not in the bundle")
		}
		// The chain in the bundle verifies on its own.
		dir := t.TempDir()
		for name, b := range files {
			if strings.HasPrefix(name, "chain/") {
				os.WriteFile(filepath.Join(dir, strings.TrimPrefix(name, "chain/")), b, 0o600)
			}
		}
		if _, err := audit.Verify(dir); err != nil {
			t.Errorf("bundled chain: %v", err)
		}
	})
}

// TestAccountEventsAudited: logins, failures, lockouts and logouts reach the
// audit trail with the terminal's address.
func TestAccountEventsAudited(t *testing.T) {
	f := newAPI(t, nil)
	f.addUser("nurse", auth.Clinician)
	c := f.login("nurse")
	f.do(f.client(), "POST", "/api/login", `{"username":"nurse","password":"wrong password here"}`)
	f.do(c, "POST", "/api/logout", "")
	// Logins and logouts are recorded without waiting for the disk (Record,
	// not Commit): read the trail until the logout is there.
	seen := map[audit.Type]audit.Event{}
	for deadline := time.Now().Add(10 * time.Second); ; {
		for e, err := range audit.Scan(filepath.Join(f.srv.cfg.Data, "audit"), audit.Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			seen[e.Type] = e
		}
		if _, ok := seen[audit.TypeLogout]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, typ := range []audit.Type{audit.TypeUserChange, audit.TypeLogin, audit.TypeLoginFailed, audit.TypeLogout} {
		e, ok := seen[typ]
		if !ok {
			t.Errorf("no %s record (have %v)", typ, seen)
			continue
		}
		if typ != audit.TypeUserChange && (e.User != "nurse" || typ != audit.TypeLogout && e.Terminal == "") {
			t.Errorf("%s record %+v", typ, e)
		}
	}
	if strings.Contains(fmt.Sprint(seen), "wrong password") {
		t.Error("a password reached the audit trail")
	}
}

// TestAuditForwardedToSyslog: with audit.syslog set, records reach the
// collector as RFC 5424 messages carrying the record's JSON.
func TestAuditForwardedToSyslog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf []byte
		tmp := make([]byte, 4096)
		for {
			n, err := c.Read(tmp)
			buf = append(buf, tmp[:n]...)
			if strings.Contains(string(buf), `"type":"login"`) {
				got <- string(buf)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	f := newAPI(t, func(c *Config) { c.Audit.Syslog = l.Addr().String() })
	f.addUser("nurse", auth.Clinician)
	f.login("nurse")
	select {
	case msg := <-got:
		if !strings.Contains(msg, "<") || !strings.Contains(msg, `"user":"nurse"`) {
			t.Errorf("collector got %q", msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no login record reached the collector")
	}
}
