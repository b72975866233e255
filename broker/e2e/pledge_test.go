package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/shoji-rbi/shoji/broker/auth"
)

// TestPledgeAskedAgainAfterChange drives the pledge the broker enforces
// (NOTICE-1, NOTICE-3) through the real pages: an admin who opens the admin
// page without having accepted it gets the pledge in a dialog and carries
// on once it is accepted; when the admin changes the text there, the
// clinician's running viewer shows the new text and, once it is accepted,
// the same remote browser is live again; a text that changed while it was
// shown cannot be accepted, the viewer shows the new one instead.
func TestPledgeAskedAgainAfterChange(t *testing.T) {
	b := startBroker(t, nil)
	const admin = "pledge-admin"
	if err := b.srv.Auth().AddUser(admin, auth.Admin, staffPassword); err != nil {
		t.Fatal(err)
	}
	clin := newViewer(t, 1024, 700)
	clin.login(b)
	sess, ok := b.srv.Sessions().Get(b.user)
	if !ok {
		t.Fatal("the clinician has no session")
	}

	// The admin page, before the pledge: it waits behind the dialog.
	adm := newViewer(t, 1280, 800)
	staffLoginOnly(t, adm, b, admin)
	adm.do(chromedp.Navigate(b.url + "/admin#notices"))
	adm.waitFor("the pledge dialog", `document.getElementById('pledge-dialog').open`)
	if !eval[bool](adm, `document.getElementById('admin-main').hidden`) {
		t.Error("the admin page was shown before the pledge was accepted")
	}
	adm.do(chromedp.Click(chromedp.CSS(`#pledge-dialog #pledge-agree`)))
	adm.waitFor("the admin page after the pledge", `!document.getElementById('pledge-dialog').open && !document.getElementById('admin-main').hidden`)

	// The admin changes the text.
	const revised = "I will not enter patient identifiers into Internet sites. (revised)"
	adm.waitFor("the settings form", `!document.getElementById('settings').hidden && document.querySelector('#settings textarea[name=pledge]').value !== ''`)
	adm.do(
		chromedp.SetValue(chromedp.CSS(`#settings textarea[name=pledge]`), revised),
		chromedp.Click(chromedp.CSS(`#settings button[type=submit]`)),
	)
	adm.waitFor("the settings saved", `document.getElementById('settings-result').textContent !== ''`)
	// The admin's next request needs the new text too.
	adm.do(chromedp.Navigate(b.url + "/admin#kill"))
	adm.waitFor("the pledge dialog again", `document.getElementById('pledge-dialog').open && document.getElementById('pledge').textContent === `+jsString(revised))
	adm.do(chromedp.Click(chromedp.CSS(`#pledge-dialog #pledge-agree`)))
	adm.waitFor("the admin page again", `!document.getElementById('pledge-dialog').open && !document.getElementById('admin-main').hidden`)

	// The clinician's viewer was disconnected and shows the new text.
	const pledgeShown = `!!document.querySelector('#pledge-agree') && document.querySelector('#pledge-agree').offsetParent !== null`
	clin.waitFor("the revised pledge in the viewer", pledgeShown+` && document.getElementById('pledge').textContent === `+jsString(revised))

	// Changed once more while the clinician reads it: accepting what was
	// shown is refused and the newest text is shown.
	const third = "I will use this browser for clinical work only. (third text)"
	putSettings(t, b, admin, third)
	clin.do(chromedp.Click(chromedp.CSS(`#pledge-agree`)))
	clin.waitFor("the newest text with a note", `document.getElementById('pledge').textContent === `+jsString(third)+
		` && document.getElementById('pledge-error').textContent !== ''`)
	clin.do(chromedp.Click(chromedp.CSS(`#pledge-agree`)))
	clin.waitLive()
	if s2, _ := b.srv.Sessions().Get(b.user); s2 != sess {
		t.Error("the pledge change replaced the clinician's session")
	}
}

// putSettings sets the login banner and the pledge through the admin API,
// as admin (who accepts the pledge in force first).
func putSettings(t *testing.T, b *brokerUnderTest, admin, pledge string) {
	t.Helper()
	c := staffClient(t, b, admin)
	body, _ := json.Marshal(map[string]string{"banner": "", "pledge": pledge})
	req, _ := http.NewRequest("PUT", b.url+"/api/admin/settings", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put settings: %s %s", resp.Status, msg)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
