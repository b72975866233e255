package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
)

// reportPDF is a small valid-looking PDF the files site serves.
var reportPDF = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" +
	"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

// filesSite serves the downloads of the transfer tests as files.test.
func filesSite(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	infected := append(append([]byte{}, reportPDF...), clamdtest.TestMarker...)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	mux := http.NewServeMux()
	attach := func(w http.ResponseWriter, ctype, disposition string, body []byte) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", disposition)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}
	mux.HandleFunc("/report.pdf", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "application/pdf", `attachment; filename="report.pdf"`, reportPDF)
	})
	mux.HandleFunc("/again.pdf", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "application/pdf", `attachment; filename="again.pdf"`, reportPDF)
	})
	mux.HandleFunc("/infected.pdf", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "application/pdf", `attachment; filename="infected.pdf"`, infected)
	})
	mux.HandleFunc("/stock.csv", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "text/csv", `attachment; filename="stock.csv"`, []byte("drug,stock\nheparin,40\n"))
	})
	mux.HandleFunc("/big.bin", func(w http.ResponseWriter, r *http.Request) {
		// No Content-Length: the cap must be enforced while it downloads.
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="big.bin"`)
		for i := 0; i < len(big); i += 64 << 10 {
			if _, err := w.Write(big[i : i+64<<10]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	hostile := "../../etc/passwd\u202egpj.exe" + strings.Repeat("x", 300)
	mux.HandleFunc("/hostile.pdf", func(w http.ResponseWriter, r *http.Request) {
		attach(w, "application/pdf", "attachment; filename*=UTF-8''"+url.PathEscape(hostile)+"%0A%01", reportPDF)
	})
	mux.HandleFunc("/chooser", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>plain form</title><body style="margin:0">
<input type="file" id="file" style="display:block;width:300px;height:60px"></body>`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>files</title><body style="margin:0;font:16px sans-serif">
<a id="pdf" href="/report.pdf" style="display:block;width:200px;height:40px">report</a>
<a id="infected" href="/infected.pdf" style="display:block;width:200px;height:40px">infected</a>
<a id="csv" href="/stock.csv" style="display:block;width:200px;height:40px">csv</a>
<a id="big" href="/big.bin" style="display:block;width:200px;height:40px">big</a>
<a id="hostile" href="/hostile.pdf" style="display:block;width:200px;height:40px">hostile</a>
<a id="popup" href="/again.pdf" target="_blank" style="display:block;width:200px;height:40px">popup</a>
<button id="print" onclick="window.print()" style="display:block;width:200px;height:40px">print</button>
<p id="copy-text" style="font-size:24px">Heparin 5000 units</p>
<textarea id="paste-target" rows="2" cols="30"></textarea>
</body>`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, ts.URL[strings.LastIndex(ts.URL, ":")+1:]
}

// transferDoc is the policy of the transfer tests: files.test allowed,
// downloads capped at 512 KiB, paste allowed.
func transferDoc(port string) string {
	return `{"profiles":[{"name":"ward","rules":[{"pattern":"files.test:` + port + `"}],
"transfers":{"download":{"max_size":"512KiB"},"clipboard_to_remote":{"action":"allow"}}}],"default":"ward"}`
}

// panelItem is a JavaScript expression for the Files panel entry of the
// newest transfer named name.
func panelItem(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#transfers .transfer')].find(e => e.querySelector('.name').textContent.includes(%q))`, name)
}

// transferNamed returns the user's newest transfer whose page name contains s.
func transferNamed(t *testing.T, b *brokerUnderTest, user, s string) transfer.Transfer {
	t.Helper()
	list, err := b.srv.Transfers().Mine(user)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range list {
		if strings.Contains(tr.PageName, s) {
			return tr
		}
	}
	t.Fatalf("no transfer named %q among %d", s, len(list))
	return transfer.Transfer{}
}

// clickRemoteID clicks the element id of the remote page through the viewer.
func clickRemoteID(t *testing.T, v *viewer, b *brokerUnderTest, id string) {
	t.Helper()
	x, y := remoteCentre(t, b, "#"+id)
	v.clickRemote(x, y)
}

// viewerDownloads makes the viewer's own browser save downloads into a
// directory it returns, as the terminal's browser would.
func viewerDownloads(t *testing.T, v *viewer) string {
	t.Helper()
	dir := t.TempDir()
	params := map[string]any{"behavior": "allow", "downloadPath": dir}
	if err := chromedp.FromContext(v.ctx).Browser.Call(v.ctx, "Browser.setDownloadBehavior", params, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFile waits for a complete file in dir and returns its bytes.
func waitFile(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".crdownload") {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err == nil && len(b) > 0 {
					return e.Name(), b
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the viewer saved no file")
	return "", nil
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestTransfers drives the transfer channel through the viewer, in real
// Chromium, with a real clamd: downloads released, rejected, held and
// approved, from popups, over the cap and with hostile names; print; and
// the clipboard both ways.
func TestTransfers(t *testing.T) {
	clamd := clamdtest.Start(t)
	site, port := filesSite(t)
	b := startBroker(t, func(c *broker.Config) {
		c.Egress.Hosts = map[string]string{"files.test": "127.0.0.1"}
		c.Egress.AllowAddrs = []string{site.Listener.Addr().String()}
		c.Transfer.Clamd = clamd.Addr
		c.Transfer.ScanTimeout = broker.Duration(20 * time.Second)
	})
	for _, u := range []struct {
		name string
		role auth.Role
	}{{"admin1", auth.Admin}, {"boss", auth.Approver}} {
		if err := b.srv.Auth().AddUser(u.name, u.role, staffPassword); err != nil {
			t.Fatal(err)
		}
	}
	putPolicy(t, b, "admin1", transferDoc(port))
	base := "http://files.test:" + port + "/"

	v := newViewer(t, 1100, 760)
	v.login(b)
	saved := viewerDownloads(t, v)
	navigateURL(t, v, b, base)

	t.Run("PDFReleasedAndSaved", func(t *testing.T) {
		v := v.in(t)
		clickRemoteID(t, v, b, "pdf")
		v.waitFor("the panel to open with the PDF released", `(() => { const e = `+panelItem("report.pdf")+`;
			return !document.getElementById('transfers').hidden && e && e.dataset.state === 'released'; })()`)
		tr := transferNamed(t, b, b.user, "report.pdf")
		if tr.SHA256 != hexSum(reportPDF) || tr.Class != "pdf" || !strings.HasPrefix(tr.Scan, "clean") {
			t.Fatalf("ledger: %+v", tr)
		}
		v.do(chromedp.Evaluate[chromedp.Void](`(` + panelItem("report.pdf") + `).querySelector('button.save').click()`))
		name, got := waitFile(t, saved)
		if !bytes.Equal(got, reportPDF) || hexSum(got) != tr.SHA256 {
			t.Fatalf("saved %s: %d bytes, want the PDF", name, len(got))
		}
		if name != "report.pdf" {
			t.Errorf("saved as %q", name)
		}
	})

	t.Run("MalwareRejected", func(t *testing.T) {
		v := v.in(t)
		clickRemoteID(t, v, b, "infected")
		v.waitFor("the infected file rejected", `(() => { const e = `+panelItem("infected.pdf")+`;
			return e && e.dataset.state === 'rejected' && e.querySelector('.reason').textContent.includes('`+clamdtest.TestSignatureName+`'); })()`)
		tr := transferNamed(t, b, b.user, "infected.pdf")
		if _, err := os.Stat(filepath.Join(b.data, "quarantine", "files", tr.ID)); !os.IsNotExist(err) {
			t.Errorf("the infected file is still in the quarantine: %v", err)
		}
	})

	t.Run("PopupDownloadCaught", func(t *testing.T) {
		v := v.in(t)
		clickRemoteID(t, v, b, "popup")
		v.waitFor("the popup's download released", `(() => { const e = `+panelItem("again.pdf")+`; return e && e.dataset.state === 'released'; })()`)
	})

	t.Run("OverSizeCanceled", func(t *testing.T) {
		v := v.in(t)
		v.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#tabs [role=tab]') && document.querySelector('#tabs [role=tab]').click()`))
		navigateURL(t, v, b, base)
		clickRemoteID(t, v, b, "big")
		v.waitFor("the big download canceled", `(() => { const e = `+panelItem("big.bin")+`; return e && e.dataset.state === 'canceled'; })()`)
		tr := transferNamed(t, b, b.user, "big.bin")
		if !strings.Contains(tr.Reason, "512") {
			t.Errorf("reason %q does not name the cap", tr.Reason)
		}
		if left, _ := os.ReadDir(filepath.Join(b.data, "quarantine", "sessions")); len(left) > 0 {
			for _, d := range left {
				files, _ := os.ReadDir(filepath.Join(b.data, "quarantine", "sessions", d.Name()))
				for _, f := range files {
					t.Errorf("partial file left: %s", f.Name())
				}
			}
		}
	})

	t.Run("HostileName", func(t *testing.T) {
		v := v.in(t)
		clickRemoteID(t, v, b, "hostile")
		v.waitFor("the hostile download released", `(() => { const e = `+panelItem("passwd")+`; return e && e.dataset.state === 'released'; })()`)
		tr := transferNamed(t, b, b.user, "passwd")
		if strings.ContainsAny(tr.Name, "/\\\n\x01\u202e") || len([]rune(tr.Name)) > 120 || !strings.HasSuffix(tr.Name, ".pdf") && !strings.Contains(tr.Name, "exe") {
			t.Errorf("display name %q", tr.Name)
		}
		shown := eval[string](v, `(`+panelItem("passwd")+`).querySelector('.name').textContent`)
		if strings.ContainsAny(shown, "/\u202e") {
			t.Errorf("panel shows %q", shown)
		}
	})

	t.Run("Print", func(t *testing.T) {
		v := v.in(t)
		clickRemoteID(t, v, b, "print")
		v.waitFor("the page's print released", `[...document.querySelectorAll('#transfers .transfer')].some(e => e.dataset.state === 'released' && e.querySelector('.meta').textContent.match(/print|印刷/i))`)
		list, _ := b.srv.Transfers().Mine(b.user)
		found := false
		for _, tr := range list {
			found = found || (tr.Direction == transfer.Print && tr.Class == "pdf" && tr.State == transfer.Released)
		}
		if !found {
			t.Fatal("no released print in the ledger")
		}
	})

	t.Run("Clipboard", func(t *testing.T) {
		v := v.in(t)
		params := map[string]any{"permissions": []string{"clipboardReadWrite", "clipboardSanitizedWrite"}, "origin": b.url}
		if err := chromedp.FromContext(v.ctx).Browser.Call(v.ctx, "Browser.grantPermissions", params, nil); err != nil {
			t.Fatal(err)
		}
		// Select the paragraph with a triple click on the canvas, then Ctrl+C.
		x, y := remoteCentre(t, b, "#copy-text")
		ox, oy := v.canvasOrigin()
		v.do(chromedp.MouseClickXY(ox+x, oy+y, chromedp.ClickCount(3)))
		waitRemote(t, b, "the selection", `getSelection().toString().includes('Heparin')`)
		v.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('ime').focus()`), chromedp.KeyEvent("c", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		v.waitFor("the terminal clipboard", `navigator.clipboard.readText().then(s => s.includes('Heparin 5000 units'))`)

		// Paste: the warning first, then the text reaches the remote page.
		clickRemoteID(t, v, b, "paste-target")
		waitRemote(t, b, "the textarea focused", `document.activeElement.id === 'paste-target'`)
		v.do(chromedp.Evaluate[chromedp.Void](`navigator.clipboard.writeText('ヘパリン 5000単位')`),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('ime').focus()`),
			chromedp.KeyEvent("v", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		v.waitFor("the paste warning", `document.getElementById('paste-dialog').open`)
		v.do(chromedp.Click(chromedp.CSS(`#paste-ok`)))
		waitRemote(t, b, "the pasted text", `document.getElementById('paste-target').value === 'ヘパリン 5000単位'`)
	})

	t.Run("ScannerDownHeldThenApproved", func(t *testing.T) {
		v := v.in(t)
		clamd.Stop()
		navigateURL(t, v, b, base)
		clickRemoteID(t, v, b, "pdf")
		v.waitFor("the PDF held", `[...document.querySelectorAll('#transfers .transfer')].some(e => e.querySelector('.name').textContent.includes('report') && e.dataset.state === 'held')`)
		var held transfer.Transfer
		list, _ := b.srv.Transfers().Mine(b.user)
		for _, tr := range list {
			if tr.State == transfer.Held && strings.Contains(tr.PageName, "report") {
				held = tr
				break
			}
		}
		if held.ID == "" || !strings.Contains(held.Reason, "scanned") {
			t.Fatalf("held: %+v", held)
		}
		// The clinician says why; the approver sees it and approves.
		v.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector('#transfers .transfer[data-id=%q]');
			e.querySelector('textarea.justify').value = 'drug safety notice for ward 3'; e.querySelector('button.justify-send').click(); })()`, held.ID)))
		waitFor(t, "the reason stored", func() bool {
			tr, _ := b.srv.Transfers().Get(held.ID)
			return tr.Justification != ""
		})
		appr := newViewer(t, 1280, 800)
		staffLogin(t, appr, b, "boss", "/approvals")
		row := fmt.Sprintf(`document.querySelector('#held-transfers .held-transfer[data-id=%q]')`, held.ID)
		appr.waitFor("the held file in the queue", `!!`+row+` && `+row+`.textContent.includes('ward 3')`)
		appr.do(chromedp.Evaluate[chromedp.Void](row + `.querySelector('.approve').click()`))
		appr.waitFor("the queue to empty", `!`+row)
		v.waitFor("the file released in the panel", fmt.Sprintf(`document.querySelector('#transfers .transfer[data-id=%q]').dataset.state === 'released'`, held.ID))
		tr, _ := b.srv.Transfers().Get(held.ID)
		if tr.Approver != "boss" || !strings.Contains(tr.Scan, "not scanned") {
			t.Errorf("ledger after approval: %+v", tr)
		}
		// The clinician saves the approved file.
		for _, e := range mustReadDir(t, saved) {
			os.Remove(filepath.Join(saved, e.Name()))
		}
		v.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('#transfers .transfer[data-id=%q] button.save').click()`, held.ID)))
		if _, got := waitFile(t, saved); !bytes.Equal(got, reportPDF) {
			t.Errorf("saved %d bytes after approval, want the PDF", len(got))
		}
		clamd.Restart()
	})

	t.Run("SelfApprovalRefused", func(t *testing.T) {
		// The approver browses too, and their own held file is not theirs
		// to approve.
		boss := newViewer(t, 1100, 760)
		bb := b.as("boss")
		bb.pw = staffPassword
		boss.login(bb)
		navigateURL(t, boss, b.as("boss"), base)
		clickRemoteID(t, boss, b.as("boss"), "csv")
		waitFor(t, "the approver's own held file", func() bool {
			list, _ := b.srv.Transfers().Mine("boss")
			return len(list) > 0 && list[0].State == transfer.Held
		})
		list, _ := b.srv.Transfers().Mine("boss")
		own := list[0]
		appr := newViewer(t, 1280, 800)
		staffLogin(t, appr, b, "boss", "/approvals")
		row := fmt.Sprintf(`document.querySelector('#held-transfers .held-transfer[data-id=%q]')`, own.ID)
		appr.waitFor("the own file in the queue", `!!`+row)
		appr.do(chromedp.Evaluate[chromedp.Void](row + `.querySelector('.approve').click()`))
		appr.waitFor("the refusal", row+`.querySelector('.error').textContent.includes('own')`)
		if tr, _ := b.srv.Transfers().Get(own.ID); tr.State != transfer.Held {
			t.Errorf("self-approved: %+v", tr)
		}
	})
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uploadSite serves an HTTPS form as upload.test with a certificate from a
// test CA, and returns the CA's PEM file for the broker's trusted_cas.
func uploadSite(t *testing.T) (*httptest.Server, string, string) {
	t.Helper()
	caPEM, cert := testCertificates(t, "upload.test")
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>referral</title><body style="margin:0">
<input type="file" id="file" accept=".txt,.pdf" style="display:block;width:300px;height:60px">
<pre id="content"></pre>
<div id="zone" style="display:block;width:300px;height:120px;background:#dde">drop here</div>
<pre id="dropped"></pre>
<script>
const zone = document.getElementById('zone');
zone.addEventListener('dragover', e => e.preventDefault());
zone.addEventListener('drop', async e => {
  e.preventDefault();
  const out = [];
  for (const f of e.dataTransfer.files) out.push(f.name + '|' + f.size + '|' + await f.text());
  document.getElementById('dropped').textContent = out.join(';');
});
document.getElementById('file').addEventListener('change', async e => {
  const f = e.target.files[0];
  document.getElementById('content').textContent = f ? f.name + '|' + f.size + '|' + await f.text() : 'none';
});
</script></body>`)
	}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	caFile := filepath.Join(t.TempDir(), "hospital-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts, ts.URL[strings.LastIndex(ts.URL, ":")+1:], caFile
}

// TestUploads: a file the clinician picks in the viewer reaches the file
// input of an allowed HTTPS page with its name and bytes; a page that is
// not an upload destination gets nothing and the clinician is told why.
func TestUploads(t *testing.T) {
	clamd := clamdtest.Start(t)
	up, upPort, caFile := uploadSite(t)
	files, filesPort := filesSite(t)
	b := startBroker(t, func(c *broker.Config) {
		c.Egress.Hosts = map[string]string{"upload.test": "127.0.0.1", "files.test": "127.0.0.1"}
		c.Egress.AllowAddrs = []string{up.Listener.Addr().String(), files.Listener.Addr().String()}
		c.TrustedCAs = []string{caFile}
		c.Transfer.Clamd = clamd.Addr
	})
	if err := b.srv.Auth().AddUser("admin1", auth.Admin, staffPassword); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, b, "admin1", `{"profiles":[{"name":"ward","rules":[
{"pattern":"upload.test:`+upPort+`","uploads":true},{"pattern":"files.test:`+filesPort+`"}],
"transfers":{"upload":{"action":"allow","max_size":"64KiB"}}}],"default":"ward"}`)

	v := newViewer(t, 1100, 760)
	v.login(b)
	local := filepath.Join(t.TempDir(), "紹介状.txt")
	letter := "referral letter: no patient identifiers\n"
	if err := os.WriteFile(local, []byte(letter), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("AllowedDestination", func(t *testing.T) {
		v := v.in(t)
		navigateURL(t, v, b, "https://upload.test:"+upPort+"/")
		clickRemoteID(t, v, b, "file")
		v.waitFor("the upload dialog", `document.getElementById('upload-dialog').open && document.getElementById('upload-host').textContent.includes('upload.test')`)
		if w := eval[string](v, `document.getElementById('upload-warning').textContent`); !strings.Contains(w, "患者") {
			t.Errorf("no NOTICE-2 warning: %q", w)
		}
		v.do(chromedp.SetUploadFiles(chromedp.CSS(`#upload-file`), []string{local}),
			chromedp.Click(chromedp.CSS(`#upload-send`)))
		waitRemote(t, b, "the file in the page", fmt.Sprintf(`document.getElementById('content').textContent === %q`,
			"紹介状.txt|"+fmt.Sprint(len(letter))+"|"+letter))
		v.waitFor("the dialog to close", `!document.getElementById('upload-dialog').open`)
		tr := transferNamed(t, b, b.user, "紹介状")
		if tr.Direction != transfer.Upload || tr.State != transfer.Released || tr.SHA256 != hexSum([]byte(letter)) ||
			!strings.HasPrefix(tr.Destination, "https://upload.test") || !strings.HasPrefix(tr.Scan, "clean") {
			t.Errorf("ledger: %+v", tr)
		}
	})

	t.Run("DropOnPage", func(t *testing.T) {
		// A file dragged from the terminal's desktop onto the remote page's
		// drop zone: the viewer asks, with the warning, then the page's drop
		// handler gets the file.
		v := v.in(t)
		navigateURL(t, v, b, "https://upload.test:"+upPort+"/")
		x, y := remoteCentre(t, b, "#zone")
		ox, oy := v.canvasOrigin()
		data := map[string]any{"items": []any{}, "files": []string{local}, "dragOperationsMask": 1}
		for _, typ := range []string{"dragEnter", "dragOver", "drop"} {
			ev := map[string]any{"type": typ, "x": ox + x, "y": oy + y, "data": data}
			if err := chromedp.FromContext(v.ctx).Target.Call(v.ctx, "Input.dispatchDragEvent", ev, nil); err != nil {
				t.Fatal(err)
			}
		}
		v.waitFor("the upload dialog with the dropped file", `document.getElementById('upload-dialog').open && document.getElementById('upload-files').textContent.includes('紹介状.txt')`)
		v.do(chromedp.Click(chromedp.CSS(`#upload-send`)))
		waitRemote(t, b, "the drop in the page", fmt.Sprintf(`document.getElementById('dropped').textContent === %q`,
			"紹介状.txt|"+fmt.Sprint(len(letter))+"|"+letter))
	})

	t.Run("PasteRefused", func(t *testing.T) {
		// This profile keeps clipboard_to_remote at its default, off.
		v := v.in(t)
		params := map[string]any{"permissions": []string{"clipboardReadWrite", "clipboardSanitizedWrite"}, "origin": b.url}
		if err := chromedp.FromContext(v.ctx).Browser.Call(v.ctx, "Browser.grantPermissions", params, nil); err != nil {
			t.Fatal(err)
		}
		v.do(chromedp.Evaluate[chromedp.Void](`navigator.clipboard.writeText('patient 12345')`),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('ime').focus()`),
			chromedp.KeyEvent("v", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
		v.waitFor("the paste warning", `document.getElementById('paste-dialog').open`)
		v.do(chromedp.Click(chromedp.CSS(`#paste-ok`)))
		v.waitFor("the refusal", `!document.getElementById('toast').hidden && document.getElementById('toast').textContent.includes('paste refused')`)
		if got := remote[string](t, b, `document.body.innerText`); strings.Contains(got, "12345") {
			t.Error("the refused paste reached the page")
		}
	})

	t.Run("NotADestination", func(t *testing.T) {
		v := v.in(t)
		navigateURL(t, v, b, "http://files.test:"+filesPort+"/chooser")
		clickRemoteID(t, v, b, "file")
		v.waitFor("the refusal", `!document.getElementById('toast').hidden && document.getElementById('toast').textContent.includes('files.test')`)
		if eval[bool](v, `document.getElementById('upload-dialog').open`) {
			t.Error("the upload dialog opened for a page that is not a destination")
		}
		waitRemote(t, b, "no file in the page", `document.getElementById('file').files.length === 0`)
	})
}

// testCertificates makes a CA (returned as PEM) and a server certificate
// for host that it signed.
func testCertificates(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shoji e2e hospital CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
