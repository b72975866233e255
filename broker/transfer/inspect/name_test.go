package inspect

import (
	"mime"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var displayNameCases = []struct{ in, want string }{
	{"report.pdf", "report.pdf"},
	{"../../etc/passwd", "passwd"},
	{`C:\Users\x\Desktop\evil.exe`, "evil.exe"},
	{`..\..\boot.ini`, "boot.ini"},
	{"dir/", "download"},
	{"", "download"},
	{"...", "download"},
	{" \u3000 ", "download"},
	{".bashrc", "bashrc"},
	{"name.txt. . ", "name.txt"},
	{"invoice\u202Efdp.exe", "invoicefdp.exe"},
	{"a\u2066b\u2069c\u200Bd\u200Ee\u200Ff\u061Cg\uFEFFh", "abcdefgh"},
	{"tab\there\nnew\x00line\x7f\u0085", "tabherenewline"},
	{"CON", "_CON"},
	{"nul.txt", "_nul.txt"},
	{"com1.tar.gz", "_com1.tar.gz"},
	{"Lpt9 .log", "_Lpt9 .log"},
	{"console.txt", "console.txt"},
	{`a<b>c:d"e|f?g*h.txt`, "a_b_c_d_e_f_g_h.txt"},
	{"many     spaces.pdf", "many spaces.pdf"},
	{"invoice.pdf" + strings.Repeat(" ", 200) + ".exe", "invoice.pdf .exe"},
	{"診療報告書_2026年.pdf", "診療報告書_2026年.pdf"},
	{"bad\xffbyte.txt", "bad_byte.txt"},
	{"\uFFFD.txt", "\uFFFD.txt"},
	{strings.Repeat("a", 300) + ".docx", strings.Repeat("a", 115) + ".docx"},
	{strings.Repeat("あ", 300) + ".pdf", strings.Repeat("あ", 116) + ".pdf"},
	{strings.Repeat("b", 300), strings.Repeat("b", 120)},
	{strings.Repeat("c", 119) + " " + strings.Repeat("d", 10), strings.Repeat("c", 119)},
	{strings.Repeat("e", 200) + "." + strings.Repeat("x", 40), strings.Repeat("e", 120)},
}

func TestDisplayName(t *testing.T) {
	for _, tt := range displayNameCases {
		if got := DisplayName(tt.in); got != tt.want {
			t.Errorf("DisplayName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"診療 報告.pdf", `attachment; filename="__ __.pdf"; filename*=UTF-8''%E8%A8%BA%E7%99%82%20%E5%A0%B1%E5%91%8A.pdf`},
		{`say "hi".txt`, `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20_hi_.txt`},
		{"../x;y=z%20.txt", `attachment; filename="x;y=z%20.txt"; filename*=UTF-8''x%3By%3Dz%2520.txt`},
		{"", `attachment; filename="download"; filename*=UTF-8''download`},
	}
	for _, tt := range tests {
		got := ContentDisposition(tt.in)
		if got != tt.want {
			t.Errorf("ContentDisposition(%q) =\n%s\nwant\n%s", tt.in, got, tt.want)
		}
		// A standard parser reads back the display name.
		disp, params, err := mime.ParseMediaType(got)
		if err != nil || disp != "attachment" || params["filename"] != DisplayName(tt.in) {
			t.Errorf("mime.ParseMediaType(%q) = %q, %q, %v; want filename %q", got, disp, params, err, DisplayName(tt.in))
		}
	}
}

// checkDisplayName checks what DisplayName promises of any input.
func checkDisplayName(t *testing.T, in string) {
	got := DisplayName(in)
	if got == "" {
		t.Fatalf("DisplayName(%q) is empty", in)
	}
	if strings.ContainsAny(got, `/\`) {
		t.Fatalf("DisplayName(%q) = %q has a path separator", in, got)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("DisplayName(%q) = %q is not UTF-8", in, got)
	}
	if n := utf8.RuneCountInString(got); n > MaxNameRunes {
		t.Fatalf("DisplayName(%q) = %q has %d runes", in, got, n)
	}
	for _, r := range got {
		if invisible(r) || unicode.Is(unicode.Bidi_Control, r) || r == 0x7f {
			t.Fatalf("DisplayName(%q) = %q keeps %U", in, got, r)
		}
	}
	if strings.HasPrefix(got, ".") || strings.HasSuffix(got, ".") || strings.TrimSpace(got) != got {
		t.Fatalf("DisplayName(%q) = %q starts or ends with a dot or space", in, got)
	}
	if again := DisplayName(got); again != got {
		t.Fatalf("DisplayName not idempotent: %q → %q → %q", in, got, again)
	}
	cd := ContentDisposition(in)
	if strings.ContainsAny(cd, "\r\n\x00") {
		t.Fatalf("ContentDisposition(%q) = %q breaks the header", in, cd)
	}
	if _, params, err := mime.ParseMediaType(cd); err != nil || params["filename"] != got {
		t.Fatalf("ContentDisposition(%q) = %q does not parse back to %q: %v %q", in, cd, got, err, params)
	}
}

func FuzzDisplayName(f *testing.F) {
	for _, tt := range displayNameCases {
		f.Add(tt.in)
	}
	for _, s := range []string{"\u202E", "a\u202Eb.exe", "CON.", " . CON", "a/\\b", "\x80\x81", "x." + strings.Repeat("y", 15), strings.Repeat("z ", 100) + ".pdf"} {
		f.Add(s)
	}
	f.Fuzz(checkDisplayName)
}
