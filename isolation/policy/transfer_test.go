package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

func TestDefaultTransfers(t *testing.T) {
	s := testSet(t, t0)
	def := DefaultTransfers()
	// A profile without transfers, the built-in profile and Resolve(nil)
	// all have the defaults.
	var none *Transfers
	for name, got := range map[string]Transfers{
		`profile "wide"`: s.Transfers("wide"),
		`profile ""`:     s.Transfers(""),
		"Resolve(nil)":   none.Resolve(),
		"empty":          (&Transfers{}).Resolve(),
	} {
		if diff := cmp.Diff(def, got); diff != "" {
			t.Errorf("%s: transfers differ from DefaultTransfers (-want +got):\n%s", name, diff)
		}
	}
	want := Transfers{
		Download: FilePolicy{Action: ActionApprove, MaxSize: 100 * MiB, Types: []TypeRule{
			{Types: []string{"pdf", "image"}, Action: ActionAllow},
			{Types: []string{"executable", "script"}, Action: ActionOff},
		}},
		Upload:       FilePolicy{Action: ActionOff, MaxSize: 25 * MiB, Types: []TypeRule{{Types: []string{"executable", "script"}, Action: ActionOff}}},
		Print:        FilePolicy{Action: ActionAllow, MaxSize: 50 * MiB},
		ClipboardOut: TextPolicy{Action: ActionAllow, MaxChars: 65536},
		ClipboardIn:  TextPolicy{Action: ActionOff, MaxChars: 65536},
	}
	if diff := cmp.Diff(want, def); diff != "" {
		t.Errorf("DefaultTransfers (-want +got):\n%s", diff)
	}
	// Each call has its own slices.
	def.Download.Types[0].Types[0] = "changed"
	if DefaultTransfers().Download.Types[0].Types[0] != "pdf" {
		t.Error("DefaultTransfers shares slices between calls")
	}

	// A profile the policy lacks transfers nothing.
	gone := s.Transfers("gone")
	for _, d := range []Direction{DirDownload, DirUpload, DirPrint} {
		if got := gone.DecideFile(d, ClassPDF, "application/pdf", 1); got.Action != ActionOff {
			t.Errorf("unknown profile: %s of a PDF = %+v, want off", d, got)
		}
	}
	for _, d := range []Direction{DirClipboardToTerminal, DirClipboardToRemote} {
		if got := gone.DecideText(d, 1); got.Action != ActionOff {
			t.Errorf("unknown profile: %s = %+v, want off", d, got)
		}
	}
}

func TestResolve(t *testing.T) {
	s := testSet(t, t0)
	// testdata's ward profile: download and upload rules written, print
	// empty, clipboard_to_remote partly written.
	want := Transfers{
		Download: FilePolicy{Action: ActionApprove, MaxSize: 200 * MiB, Types: []TypeRule{
			{Types: []string{"pdf", "image/*"}, Action: ActionAllow},
			{Types: []string{"archive", "application/x-msdownload"}, Action: ActionOff},
			{Types: []string{"executable", "script"}, Action: ActionOff}, // guard, last
		}},
		Upload: FilePolicy{Action: ActionAllow, MaxSize: 500_000, Types: []TypeRule{
			{Types: []string{"executable", "script"}, Action: ActionOff}, // guard, first
			{Types: []string{"office"}, Action: ActionOff},
		}},
		Print:        FilePolicy{Action: ActionAllow, MaxSize: 50 * MiB},
		ClipboardOut: TextPolicy{Action: ActionAllow, MaxChars: 65536},
		ClipboardIn:  TextPolicy{Action: ActionAllow, MaxChars: 2000},
	}
	got := s.Transfers("ward")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Transfers(ward) (-want +got):\n%s", diff)
	}
	// The result is the caller's.
	got.Download.Types[0].Types[0] = "changed"
	if s.Transfers("ward").Download.Types[0].Types[0] != "pdf" {
		t.Error("Set.Transfers shares slices with the Set")
	}

	// The download guard names only what the admin's rules do not.
	tr := &Transfers{Download: FilePolicy{Types: []TypeRule{{Types: []string{"script"}, Action: ActionApprove}}}}
	if diff := cmp.Diff([]TypeRule{
		{Types: []string{"script"}, Action: ActionApprove},
		{Types: []string{"executable"}, Action: ActionOff},
	}, tr.Resolve().Download.Types); diff != "" {
		t.Errorf("download guard (-want +got):\n%s", diff)
	}
	tr.Download.Types = append(tr.Download.Types, TypeRule{Types: []string{"executable"}, Action: ActionApprove})
	if got := tr.Resolve().Download.Types; len(got) != 2 {
		t.Errorf("download guard added although both classes are named: %+v", got)
	}
	// Resolve does not change its receiver.
	if len(tr.Download.Types) != 2 || tr.Download.Action != "" || tr.Upload.Types != nil {
		t.Errorf("Resolve changed its receiver: %+v", tr)
	}
}

func TestFilePolicyDecide(t *testing.T) {
	fp := FilePolicy{
		Action:  ActionApprove,
		MaxSize: 10 * MiB,
		Types: []TypeRule{
			{Types: []string{"pdf", "text/plain"}, Action: ActionAllow},
			{Types: []string{"image/*"}, Action: ActionAllow},
			{Types: []string{"Application/X-Msdownload", "executable"}, Action: ActionOff},
			{Types: []string{"archive", "text/*"}, Action: ActionOff}, // "text/plain" is decided above
		},
	}
	const (
		pdfRule  = "types [pdf text/plain] → allow"
		imgRule  = "types [image/*] → allow"
		exeRule  = "types [Application/X-Msdownload executable] → off"
		textRule = "types [archive text/*] → off"
	)
	tests := []struct {
		name        string
		class, mime string
		size        int64
		want        Decision
	}{
		{"class match", "pdf", "", 1, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"MIME match", "", "text/plain", 1, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"MIME case-insensitive", "", "TEXT/Plain", 1, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"parameters ignored", "text", "text/plain; charset=utf-8", 1, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"wildcard", "image", "image/png", 1, Decision{Action: ActionAllow, Rule: imgRule}},
		{"wildcard, no class", "", "IMAGE/SVG+XML", 1, Decision{Action: ActionAllow, Rule: imgRule}},
		{"wildcard needs a subtype", "", "image", 1, Decision{Action: ActionApprove, Rule: "default → approve", Reason: "files of type image are held until an approver releases them"}},
		{"first match wins", "pdf", "application/x-msdownload", 1, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"MIME pattern written in capitals", "", "application/x-msdownload", 1, Decision{Action: ActionOff, Rule: exeRule, Reason: "files of type application/x-msdownload may not be transferred"}},
		{"class off", "executable", "application/octet-stream", 1, Decision{Action: ActionOff, Rule: exeRule, Reason: "executables may not be transferred"}},
		{"later wildcard", "html", "text/html", 1, Decision{Action: ActionOff, Rule: textRule, Reason: "HTML files may not be transferred"}},
		{"default action", "office", "application/vnd.ms-excel", 1, Decision{Action: ActionApprove, Rule: "default → approve", Reason: "Office documents are held until an approver releases them"}},
		{"nothing known", "", "", 0, Decision{Action: ActionApprove, Rule: "default → approve", Reason: "files are held until an approver releases them"}},
		{"class is not a MIME type", "image/png", "", 1, Decision{Action: ActionApprove, Rule: "default → approve", Reason: "files are held until an approver releases them"}},
		{"at the cap", "pdf", "application/pdf", 10 << 20, Decision{Action: ActionAllow, Rule: pdfRule}},
		{"over the cap", "pdf", "application/pdf", 12 << 20, Decision{Action: ActionOff, Rule: "max_size 10MiB", Reason: "file is 12 MiB, over the 10 MiB limit"}},
		{"over the cap by a byte", "pdf", "", 10<<20 + 1, Decision{Action: ActionOff, Rule: "max_size 10MiB", Reason: "file is 10485761 bytes, over the 10485760-byte limit"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, fp.Decide(tt.class, tt.mime, tt.size)); diff != "" {
			t.Errorf("%s: Decide(%q, %q, %d) (-want +got):\n%s", tt.name, tt.class, tt.mime, tt.size, diff)
		}
	}

	// Unknown or empty actions are off; so is a zero MaxSize for any
	// non-empty file.
	for _, bad := range []FilePolicy{{Action: "maybe", MaxSize: MiB}, {MaxSize: MiB}, {Action: ActionAllow}} {
		if d := bad.Decide("pdf", "", 1); d.Action != ActionOff || d.Reason == "" {
			t.Errorf("%+v: Decide = %+v, want off with a reason", bad, d)
		}
	}
}

func TestDecideFileByDirection(t *testing.T) {
	def := DefaultTransfers()
	tests := []struct {
		d           Direction
		class, mime string
		size        int64
		want        Decision
	}{
		{DirDownload, "pdf", "application/pdf", 1, Decision{Action: ActionAllow, Rule: "download: types [pdf image] → allow"}},
		{DirDownload, "image", "image/jpeg", 1, Decision{Action: ActionAllow, Rule: "download: types [pdf image] → allow"}},
		{DirDownload, "executable", "application/x-msdownload", 1, Decision{Action: ActionOff, Rule: "download: types [executable script] → off", Reason: "executables may not be downloaded"}},
		{DirDownload, "script", "text/javascript", 1, Decision{Action: ActionOff, Rule: "download: types [executable script] → off", Reason: "scripts may not be downloaded"}},
		{DirDownload, "archive", "application/zip", 1, Decision{Action: ActionApprove, Rule: "download: default → approve", Reason: "archives are held until an approver releases them"}},
		{DirDownload, "pdf", "application/pdf", 120 << 20, Decision{Action: ActionOff, Rule: "download: max_size 100MiB", Reason: "file is 120 MiB, over the 100 MiB limit"}},
		{DirUpload, "pdf", "application/pdf", 1, Decision{Action: ActionOff, Rule: "upload: default → off", Reason: "PDF files may not be uploaded"}},
		{DirUpload, "pdf", "application/pdf", 26 << 20, Decision{Action: ActionOff, Rule: "upload: max_size 25MiB", Reason: "file is 26 MiB, over the 25 MiB limit"}},
		{DirPrint, "pdf", "application/pdf", 1, Decision{Action: ActionAllow, Rule: "print: default → allow"}},
		{DirPrint, "pdf", "application/pdf", 51 << 20, Decision{Action: ActionOff, Rule: "print: max_size 50MiB", Reason: "file is 51 MiB, over the 50 MiB limit"}},
		{DirClipboardToRemote, "pdf", "", 1, Decision{Action: ActionOff, Rule: "clipboard_to_remote", Reason: `"clipboard_to_remote" is not a file transfer direction`}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, def.DecideFile(tt.d, tt.class, tt.mime, tt.size)); diff != "" {
			t.Errorf("DecideFile(%s, %q, %q, %d) (-want +got):\n%s", tt.d, tt.class, tt.mime, tt.size, diff)
		}
	}

	// Upload allowed by an admin: executables and scripts stay off, even
	// under a MIME rule that would allow them.
	up := (&Transfers{Upload: FilePolicy{Action: ActionAllow, Types: []TypeRule{{Types: []string{"application/*"}, Action: ActionAllow}}}}).Resolve()
	for class, want := range map[string]Action{"executable": ActionOff, "script": ActionOff, "office": ActionAllow, "other": ActionAllow} {
		if got := up.DecideFile(DirUpload, class, "application/octet-stream", 1); got.Action != want {
			t.Errorf("upload of %s = %+v, want %s", class, got, want)
		}
	}
	// Download allowed by an admin: executables stay off unless named.
	down := (&Transfers{Download: FilePolicy{Types: []TypeRule{{Types: []string{"script"}, Action: ActionApprove}}, Action: ActionAllow}}).Resolve()
	for class, want := range map[string]Action{"executable": ActionOff, "script": ActionApprove, "archive": ActionAllow} {
		if got := down.DecideFile(DirDownload, class, "", 1); got.Action != want {
			t.Errorf("download of %s = %+v, want %s", class, got, want)
		}
	}
}

func TestTextPolicyDecide(t *testing.T) {
	def := DefaultTransfers()
	tests := []struct {
		d     Direction
		chars int
		want  Decision
	}{
		{DirClipboardToTerminal, 100, Decision{Action: ActionAllow, Rule: "clipboard_to_terminal: allow"}},
		{DirClipboardToTerminal, 65536, Decision{Action: ActionAllow, Rule: "clipboard_to_terminal: allow"}},
		{DirClipboardToTerminal, 65537, Decision{Action: ActionOff, Rule: "clipboard_to_terminal: max_chars 65536", Reason: "text is 65537 characters, over the 65536-character limit"}},
		{DirClipboardToRemote, 1, Decision{Action: ActionOff, Rule: "clipboard_to_remote: off", Reason: "pasting from this terminal into the remote page is off"}},
		{DirDownload, 1, Decision{Action: ActionOff, Rule: "download", Reason: `"download" is not a clipboard direction`}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, def.DecideText(tt.d, tt.chars)); diff != "" {
			t.Errorf("DecideText(%s, %d) (-want +got):\n%s", tt.d, tt.chars, diff)
		}
	}
	tp := TextPolicy{Action: ActionAllow, MaxChars: 10}
	if d := tp.Decide(10); d.Action != ActionAllow || d.Rule != "allow" {
		t.Errorf("Decide(10) = %+v, want allow", d)
	}
	if d := tp.Decide(11); d.Action != ActionOff || d.Rule != "max_chars 10" {
		t.Errorf("Decide(11) = %+v, want off by max_chars", d)
	}
	if d := (TextPolicy{Action: ActionOff, MaxChars: 10}).Decide(1); d.Action != ActionOff || d.Reason != "the clipboard is off in this direction" {
		t.Errorf("off policy: Decide = %+v", d)
	}
	if d := (TextPolicy{Action: ActionApprove, MaxChars: 10}).Decide(1); d.Action != ActionOff {
		t.Errorf("approve cannot wait for a paste: Decide = %+v, want off", d)
	}
}

func TestValidateTransfers(t *testing.T) {
	// edit changes the ward profile's transfers, which start empty.
	tests := []struct {
		name string
		edit func(d *Document, tr *Transfers)
		want []string
	}{
		{"unknown action", func(_ *Document, tr *Transfers) { tr.Download.Action = "maybe" },
			[]string{`profile "ward": transfers: download: action "maybe": want "off", "allow" or "approve"`}},
		{"unknown type rule action", func(_ *Document, tr *Transfers) {
			tr.Print.Types = []TypeRule{{Types: []string{"pdf"}, Action: "yes"}}
		}, []string{`profile "ward": transfers: print: type rule 1: action "yes": want "off", "allow" or "approve"`}},
		{"type rule without action", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"pdf"}}}
		}, []string{`profile "ward": transfers: download: type rule 1: action is required`}},
		{"type rule without types", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"pdf"}, Action: ActionAllow}, {Action: ActionOff}}
		}, []string{`profile "ward": transfers: download: type rule 2: types is empty`}},
		{"unknown class", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"exe"}, Action: ActionOff}}
		}, []string{`profile "ward": transfers: download: type rule 1: "exe": unknown class: want a class (archive, executable, html, image, media, office, other, pdf, script, text) or a MIME type`}},
		{"class in capitals", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"PDF"}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "PDF": unknown class`}},
		{"empty entry", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{""}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "": empty type`}},
		{"malformed MIME", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"image/", "/png", "a b/c", "text/pl@in"}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "image/": malformed MIME type`, `profile "ward": transfers: download: type rule 1: "/png": malformed MIME type`, `profile "ward": transfers: download: type rule 1: "a b/c": malformed MIME type`, `profile "ward": transfers: download: type rule 1: "text/pl@in": malformed MIME type`}},
		{"partial wildcard", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"image/x-*"}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "image/x-*": only a whole-subtype wildcard such as "image/*" is supported`}},
		{"every type", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"*/*"}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "*/*": a pattern for every type: set the direction's action instead`}},
		{"MIME parameters", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"text/plain; charset=utf-8"}, Action: ActionAllow}}
		}, []string{`profile "ward": transfers: download: type rule 1: "text/plain; charset=utf-8": parameters are ignored when matching: leave them out`}},
		{"type named twice", func(_ *Document, tr *Transfers) {
			tr.Download.Types = []TypeRule{{Types: []string{"application/pdf"}, Action: ActionAllow}, {Types: []string{"Application/PDF"}, Action: ActionOff}}
		}, []string{`profile "ward": transfers: download: type rule 2: "Application/PDF" is already decided by type rule 1`}},
		{"negative size", func(_ *Document, tr *Transfers) { tr.Upload.MaxSize = -1 },
			[]string{`profile "ward": transfers: upload: max_size -1 is negative`}},
		{"size over the cap", func(_ *Document, tr *Transfers) { tr.Download.MaxSize = 5 * GiB },
			[]string{`profile "ward": transfers: download: max_size 5GiB is over the limit of 4GiB`}},
		{"negative chars", func(_ *Document, tr *Transfers) { tr.ClipboardOut.MaxChars = -5 },
			[]string{`profile "ward": transfers: clipboard_to_terminal: max_chars -5 is negative`}},
		{"chars over the cap", func(_ *Document, tr *Transfers) { tr.ClipboardIn.MaxChars = 1<<20 + 1 },
			[]string{`profile "ward": transfers: clipboard_to_remote: max_chars 1048577 is over the limit of 1048576`}},
		{"upload approve", func(_ *Document, tr *Transfers) { tr.Upload.Action = ActionApprove },
			[]string{`profile "ward": transfers: upload: action "approve": an upload cannot wait for an approver: the page is waiting for the file; use "off" or "allow"`}},
		{"upload type rule approve", func(_ *Document, tr *Transfers) {
			tr.Upload.Types = []TypeRule{{Types: []string{"pdf"}, Action: ActionApprove}}
		}, []string{`profile "ward": transfers: upload: type rule 1: action "approve": an upload cannot wait`}},
		{"upload unknown action", func(_ *Document, tr *Transfers) { tr.Upload.Action = "yes" },
			[]string{`profile "ward": transfers: upload: action "yes": want "off" or "allow"`}},
		{"clipboard approve", func(_ *Document, tr *Transfers) {
			tr.ClipboardOut.Action, tr.ClipboardIn.Action = ActionApprove, ActionApprove
		}, []string{
			`profile "ward": transfers: clipboard_to_terminal: action "approve": a copy cannot wait for an approver`,
			`profile "ward": transfers: clipboard_to_remote: action "approve": a paste cannot wait for an approver: the page is waiting for it; use "off" or "allow"`,
		}},
		{"upload allows executables", func(_ *Document, tr *Transfers) {
			tr.Upload.Types = []TypeRule{{Types: []string{"pdf", "executable"}, Action: ActionAllow}, {Types: []string{"script"}, Action: ActionAllow}}
		}, []string{
			`profile "ward": transfers: upload: type rule 1: "executable" may not be allowed: executables and scripts are never uploaded (a leak path)`,
			`profile "ward": transfers: upload: type rule 2: "script" may not be allowed`,
		}},
		{"uploads in a denylist profile", func(d *Document, _ *Transfers) {
			d.Profile("search").Transfers = &Transfers{Upload: FilePolicy{Action: ActionAllow}}
		}, []string{`profile "search": transfers: upload: a denylist profile has no upload destinations`}},
		{"upload type rule in a denylist profile", func(d *Document, _ *Transfers) {
			d.Profile("search").Transfers = &Transfers{Upload: FilePolicy{Types: []TypeRule{{Types: []string{"pdf"}, Action: ActionAllow}}}}
		}, []string{`profile "search": transfers: upload: a denylist profile has no upload destinations`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := loadDoc(t)
			tr := &Transfers{}
			d.Profile("ward").Transfers = tr
			tt.edit(d, tr)
			err := d.Validate()
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.want) {
				t.Errorf("%d problems, want %d: %v", len(ve.Problems), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(ve.Problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
					t.Errorf("problems %q\nlack one starting %q", ve.Problems, w)
				}
			}
		})
	}

	// What admins may choose.
	for name, tr := range map[string]*Transfers{
		"download allows executables": {Download: FilePolicy{Action: ActionAllow, Types: []TypeRule{{Types: []string{"executable", "script"}, Action: ActionAllow}}}},
		"download approves":           {Download: FilePolicy{Action: ActionApprove}, Print: FilePolicy{Action: ActionApprove}},
		"upload refuses executables":  {Upload: FilePolicy{Action: ActionAllow, Types: []TypeRule{{Types: []string{"executable"}, Action: ActionOff}}}},
		"upload MIME wildcard":        {Upload: FilePolicy{Action: ActionOff, Types: []TypeRule{{Types: []string{"IMAGE/*", "application/pdf"}, Action: ActionAllow}}}},
		"limits at the caps":          {Download: FilePolicy{MaxSize: MaxTransferSize}, ClipboardIn: TextPolicy{Action: ActionAllow, MaxChars: MaxClipboardChars}},
		"empty":                       {},
	} {
		d := loadDoc(t)
		d.Profile("ward").Transfers = tr
		if err := d.Validate(); err != nil {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	d := loadDoc(t)
	d.Profile("search").Transfers = &Transfers{Upload: FilePolicy{Action: ActionOff}, Download: FilePolicy{Action: ActionAllow}}
	if err := d.Validate(); err != nil {
		t.Errorf("denylist profile with uploads off: Validate = %v", err)
	}
}

// uploadDoc is the policy TestUploadDestination runs against.
const uploadDoc = `
profiles:
  - name: up
    rules:
      - pattern: forms.example.jp
        uploads: true
      - pattern: read.example.jp
      - pattern: "*.files.example.jp"
        uploads: true
      - pattern: portal.example.jp/upload/
        uploads: true
      - pattern: portal.example.jp
      - pattern: bad.example.jp
        uploads: true
      - pattern: 10.1.2.0/24
        uploads: true
    transfers:
      upload:
        action: allow
        types:
          - types: [archive]
            action: "off"
        max_size: 1MiB
  - name: search
    mode: denylist
    rules:
      - pattern: evil.example
blocked:
  - host: bad.example.jp
    reason: phishing
`

func TestUploadDestination(t *testing.T) {
	d, err := ParseYAML([]byte(uploadDoc))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(d)
	if err != nil {
		t.Fatal(err)
	}
	allow := func(rule string) Decision { return Decision{Action: ActionAllow, Rule: rule} }
	off := func(rule string) Decision { return Decision{Action: ActionOff, Rule: rule} }
	tests := []struct {
		profile, url string
		want         Decision // Reason checked only for being set on an off
		reason       string   // when set, the reason must contain it
	}{
		{"up", "https://forms.example.jp/submit", allow("forms.example.jp"), ""},
		{"up", "https://FORMS.example.jp./submit?x=1", allow("forms.example.jp"), ""},
		{"up", "http://forms.example.jp/submit", off(RuleScheme), "only to HTTPS sites"},
		{"up", "wss://forms.example.jp/socket", off(RuleScheme), "only to HTTPS sites"},
		{"up", "ftp://forms.example.jp/", off(RuleScheme), "only to HTTPS sites"},
		{"up", "forms.example.jp", off(egress.RuleBadRequest), "cannot read the destination"},
		{"up", "https://forms.example.jp:8443/", off(egress.RuleDefaultDeny), "port 8443"},
		{"up", "https://read.example.jp/", off("read.example.jp"), "read.example.jp is not an upload destination"},
		{"up", "https://a.files.example.jp/", allow("*.files.example.jp"), ""},
		{"up", "https://a.b.files.example.jp/x", allow("*.files.example.jp"), ""},
		{"up", "https://files.example.jp/", off(egress.RuleDefaultDeny), ""},
		{"up", "https://portal.example.jp/upload/form", allow("portal.example.jp/upload/"), ""},
		{"up", "https://portal.example.jp/upload/../admin", off("portal.example.jp"), "not an upload destination"},
		{"up", "https://portal.example.jp/other", off("portal.example.jp"), "not an upload destination"},
		{"up", "https://bad.example.jp/", off("blocked: bad.example.jp"), "phishing"},
		{"up", "https://x.bad.example.jp/", off("blocked: bad.example.jp"), "phishing"},
		{"up", "https://elsewhere.example/", off(egress.RuleDefaultDeny), ""},
		{"up", "https://10.1.2.3/", allow("10.1.2.0/24"), ""},
		{"up", "https://forms.example.jp@evil.example/", off(egress.RuleDefaultDeny), ""},
		{"search", "https://anything.example/", off(RuleDenylistUploads), "a denylist profile has no upload destinations"},
		{"search", "https://evil.example/", off("evil.example"), ""},
		{"search", "https://bad.example.jp/", off("blocked: bad.example.jp"), ""},
		{"", "https://forms.example.jp/", off(RuleNoInternet), ""},
		{"gone", "https://forms.example.jp/", off(RuleUnknownProfile), ""},
	}
	for _, tt := range tests {
		got := s.UploadDestination(tt.profile, tt.url)
		if got.Action != ActionAllow && got.Reason == "" {
			t.Errorf("UploadDestination(%q, %q): off without a reason: %+v", tt.profile, tt.url, got)
		}
		if !strings.Contains(got.Reason, tt.reason) {
			t.Errorf("UploadDestination(%q, %q): reason %q lacks %q", tt.profile, tt.url, got.Reason, tt.reason)
		}
		pp := s.ForProfile(tt.profile).(*ProfilePolicy)
		if other := pp.UploadDestination(tt.url); other != got {
			t.Errorf("ProfilePolicy.UploadDestination(%q) = %+v, Set's %+v", tt.url, other, got)
		}
		got.Reason = ""
		if got != tt.want {
			t.Errorf("UploadDestination(%q, %q) = %+v, want %+v", tt.profile, tt.url, got, tt.want)
		}
	}

	// DecideUpload asks the destination, then the file policy.
	uploads := []struct {
		url, class string
		size       int64
		want       Decision
	}{
		{"https://forms.example.jp/", "pdf", 1000, Decision{Action: ActionAllow, Rule: "upload: default → allow"}},
		{"https://forms.example.jp/", "executable", 1000, Decision{Action: ActionOff, Rule: "upload: types [executable script] → off", Reason: "executables may not be uploaded"}},
		{"https://forms.example.jp/", "archive", 1000, Decision{Action: ActionOff, Rule: "upload: types [archive] → off", Reason: "archives may not be uploaded"}},
		{"https://forms.example.jp/", "pdf", 2 << 20, Decision{Action: ActionOff, Rule: "upload: max_size 1MiB", Reason: "file is 2 MiB, over the 1 MiB limit"}},
		{"http://forms.example.jp/", "pdf", 1000, Decision{Action: ActionOff, Rule: RuleScheme, Reason: "files are uploaded only to HTTPS sites"}},
		{"https://read.example.jp/", "pdf", 1000, Decision{Action: ActionOff, Rule: "read.example.jp", Reason: "read.example.jp is not an upload destination"}},
	}
	pp := s.ForProfile("up").(*ProfilePolicy)
	for _, tt := range uploads {
		got := s.DecideUpload("up", tt.url, tt.class, "", tt.size)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("DecideUpload(%q, %q, %d) (-want +got):\n%s", tt.url, tt.class, tt.size, diff)
		}
		if other := pp.DecideUpload(tt.url, tt.class, "", tt.size); other != got {
			t.Errorf("ProfilePolicy.DecideUpload disagrees: %+v", other)
		}
	}
	if diff := cmp.Diff(s.Transfers("up"), pp.Transfers()); diff != "" {
		t.Errorf("ProfilePolicy.Transfers differs from the Set's:\n%s", diff)
	}
}

// TestEngineTransfers checks that a policy edit reaches a profile's
// transfer policy through the live adapter.
func TestEngineTransfers(t *testing.T) {
	e := NewEngine(nil)
	pp := e.PolicyFor("ward").(*ProfilePolicy)
	if got := pp.Transfers().DecideFile(DirDownload, "pdf", "", 1); got.Action != ActionOff {
		t.Errorf("before Swap: download = %+v, want off (no such profile)", got)
	}
	d := loadDoc(t)
	if err := e.Swap(d); err != nil {
		t.Fatal(err)
	}
	if got := pp.Transfers().ClipboardIn; got.Action != ActionAllow || got.MaxChars != 2000 {
		t.Errorf("after Swap: clipboard_to_remote = %+v", got)
	}
	d.Profile("ward").Transfers = nil
	if err := e.Swap(d); err != nil {
		t.Fatal(err)
	}
	if got := pp.Transfers().ClipboardIn.Action; got != ActionOff {
		t.Errorf("after removing transfers: clipboard_to_remote = %s, want off", got)
	}
}
