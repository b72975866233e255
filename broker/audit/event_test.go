package audit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBuilders(t *testing.T) {
	at := time.Date(2026, 11, 23, 18, 30, 0, 5, time.FixedZone("JST", 9*3600))
	utc := at.UTC()
	a := Actor{User: "bob", Role: "clinician", Terminal: "10.0.0.7", Session: "s1"}
	adm := Actor{User: "alice", Role: "admin", Terminal: "10.0.0.9"}
	tr := Transfer{ID: "t1", Direction: DirectionDownload, Name: "a.pdf", Size: 10, SHA256: "aa", State: "released", Approver: "carol"}
	tests := []struct {
		name string
		got  Event
		want Event
	}{
		{"login", Login(at, a), Event{Time: utc, Type: TypeLogin, Actor: a}},
		{"login failed", LoginFailed(at, Actor{User: "bob", Terminal: "10.0.0.7"}, "bad password"),
			Event{Time: utc, Type: TypeLoginFailed, Actor: Actor{User: "bob", Terminal: "10.0.0.7"}, Reason: "bad password"}},
		{"lockout", Lockout(at, a, "5 failures"), Event{Time: utc, Type: TypeLockout, Actor: a, Reason: "5 failures"}},
		{"logout", Logout(at, a, "idle"), Event{Time: utc, Type: TypeLogout, Actor: a, Reason: "idle"}},
		{"session start", SessionStart(at, a), Event{Time: utc, Type: TypeSessionStart, Actor: a}},
		{"session end", SessionEnd(at, a, "closed"), Event{Time: utc, Type: TypeSessionEnd, Actor: a, Reason: "closed"}},
		{"navigation", Navigation(at, a, "https://Guide.Example.JP:8443/x?y=1"),
			Event{Time: utc, Type: TypeNavigation, Actor: a, URL: "https://Guide.Example.JP:8443/x?y=1", Host: "guide.example.jp"}},
		{"deny", Deny(at, a, "ads.example.com", "https://ads.example.com/", "blocked-everywhere", "kill switch"),
			Event{Time: utc, Type: TypeDeny, Actor: a, Host: "ads.example.com", URL: "https://ads.example.com/", Rule: "blocked-everywhere", Reason: "kill switch"}},
		{"site request", SiteRequest(at, a, "journal.example.org", "https://journal.example.org/a", "guideline"),
			Event{Time: utc, Type: TypeSiteRequest, Actor: a, Host: "journal.example.org", URL: "https://journal.example.org/a", Reason: "guideline"}},
		{"site decision", SiteDecision(at, adm, "bob", "journal.example.org", "approved", "ok for 30 days"),
			Event{Time: utc, Type: TypeSiteDecision, Actor: adm, Target: "bob", Host: "journal.example.org", Outcome: "approved", Comment: "ok for 30 days"}},
		{"transfer", TransferStep(at, a, tr), Event{Time: utc, Type: TypeTransfer, Actor: a, Transfer: &tr}},
		{"clipboard", Clipboard(at, a, DirectionPaste, 12, "bb", "allowed", ""),
			Event{Time: utc, Type: TypeClipboard, Actor: a, Direction: DirectionPaste, Length: 12, SHA256: "bb", Outcome: "allowed"}},
		{"print", Print(at, a, "https://guide.example.jp/p", "released", ""),
			Event{Time: utc, Type: TypePrint, Actor: a, URL: "https://guide.example.jp/p", Host: "guide.example.jp", Outcome: "released"}},
		{"policy change", PolicyChange(at, adm, "profile default", "a", "b"),
			Event{Time: utc, Type: TypePolicyChange, Actor: adm, What: "profile default", Before: "a", After: "b"}},
		{"user change", UserChange(at, adm, "bob", "role", "clinician", "approver"),
			Event{Time: utc, Type: TypeUserChange, Actor: adm, Target: "bob", What: "role", Before: "clinician", After: "approver"}},
		{"kill switch", KillSwitch(at, adm, "block_host", "evil.example", "phishing"),
			Event{Time: utc, Type: TypeKillSwitch, Actor: adm, What: "block_host", Target: "evil.example", Reason: "phishing"}},
		{"maintenance", Maintenance(at, adm, "restart", "vendor call 123"),
			Event{Time: utc, Type: TypeMaintenance, Actor: adm, What: "restart", Comment: "vendor call 123"}},
		{"export", Export(at, Actor{User: "dave", Role: "auditor"}, "csv", "user=bob"),
			Event{Time: utc, Type: TypeExport, Actor: Actor{User: "dave", Role: "auditor"}, What: "csv", Target: "user=bob"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if err := tt.got.check(); err != nil {
			t.Errorf("%s: check: %v", tt.name, err)
		}
	}
}

// The clipboard is recorded as length and hash only (AUDIT-4).
func TestClipboardTextKeepsNoText(t *testing.T) {
	const text = "患者ID 12345 秘密のメモ"
	e := ClipboardText(time.Now(), Actor{User: "bob"}, DirectionCopy, text, "allowed", "")
	line, err := encodeLine(e)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(line), "12345") || strings.Contains(string(line), "秘密") {
		t.Errorf("line holds the text: %s", line)
	}
	if e.Length != int64(len(text)) || len(e.SHA256) != 64 {
		t.Errorf("length %d sha256 %q, want %d and a SHA-256", e.Length, e.SHA256, len(text))
	}
	// The FIPS 180-2 test vector.
	if abc := ClipboardText(time.Now(), Actor{}, DirectionCopy, "abc", "", ""); abc.SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" || abc.Length != 3 {
		t.Errorf("ClipboardText(abc) = %d %s", abc.Length, abc.SHA256)
	}
}

// The JSON field names are the record format in docs/audit.md.
func TestEventJSON(t *testing.T) {
	e := TransferStep(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Actor{User: "bob", Role: "clinician", Terminal: "t1", Session: "s"},
		Transfer{ID: "t", Direction: "download", Name: "n", Size: 1, SHA256: "h", ContentType: "application/pdf", Source: "https://a/",
			Destination: "t1", State: "scanned", Verdict: "clean", Scanner: "clamd", Approver: "carol", Reason: "r"})
	e.Seq, e.Prev = 7, ZeroHash
	line, err := encodeLine(e)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"seq":7,"time":"2026-01-02T03:04:05.000000006Z","type":"transfer","user":"bob","role":"clinician","terminal":"t1","session":"s",` +
		`"transfer":{"id":"t","direction":"download","name":"n","size":1,"sha256":"h","content_type":"application/pdf","source":"https://a/",` +
		`"destination":"t1","state":"scanned","verdict":"clean","scanner":"clamd","approver":"carol","reason":"r"},` +
		`"prev":"` + ZeroHash + `"}`
	if string(line) != want {
		t.Errorf("line:\n%s\nwant:\n%s", line, want)
	}
	var back Event
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// URLs keep & < > as they are.
	n := Navigation(time.Now(), Actor{}, "https://a.example/?x=1&y=<2>")
	n.Prev = ZeroHash
	if line, _ := encodeLine(n); !strings.Contains(string(line), `"url":"https://a.example/?x=1&y=<2>"`) {
		t.Errorf("URL escaped: %s", line)
	}
}

func TestEventCheck(t *testing.T) {
	at := time.Now()
	for _, e := range []Event{
		{Type: TypeLogin},
		{Time: at},
		{Time: at, Type: "Login"},
		{Time: at, Type: "a b"},
		{Time: at, Type: Type(strings.Repeat("a", 33))},
		{Time: at, Type: TypeRotated},
		{Time: at, Type: TypeCheckpoint, Checkpoint: &Checkpoint{Reason: CheckpointClose}},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Type: TypeLogin},
	} {
		if err := e.check(); !errors.Is(err, errInvalid) {
			t.Errorf("check(%+v) = %v, want errInvalid", e, err)
		}
	}
}

func TestSite(t *testing.T) {
	for _, tt := range []struct {
		e    Event
		want string
	}{
		{Event{Host: "A.Example."}, "a.example"},
		{Event{URL: "https://b.example:8443/x"}, "b.example"},
		{Event{Transfer: &Transfer{Source: "https://c.example/f"}}, "c.example"},
		{Event{Transfer: &Transfer{Source: "terminal", Destination: "https://d.example/up"}}, "d.example"},
		{Event{URL: "not a url"}, ""},
	} {
		if got := tt.e.Site(); got != tt.want {
			t.Errorf("Site(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}
