package inspect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameRunes is the longest name DisplayName returns.
const MaxNameRunes = 120

// maxExtRunes is the longest extension DisplayName keeps when it shortens
// a name; a longer "extension" is just the end of a long name.
const maxExtRunes = 16

// runnableExt are file name extensions that Windows runs, opens with a
// script host, mounts or installs. A file with such a name is a script
// (text) or an executable (anything else), whatever its content.
var runnableExt = setOf(
	// programs and libraries
	"exe", "dll", "com", "scr", "pif", "cpl", "msi", "msp", "mst", "sys", "drv", "ocx", "xll",
	"appx", "appxbundle", "msix", "msixbundle", "application", "gadget", "jar", "jnlp",
	// scripts and script hosts
	"js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "ws", "bat", "cmd", "ps1", "psm1", "psd1",
	"ps1xml", "psc1", "hta", "sh", "bash", "py", "pyw", "pl", "rb", "php", "msc", "inf", "reg",
	"scf", "vb", "chm",
	// shortcuts
	"lnk", "url", "website", "library-ms", "settingcontent-ms", "searchconnector-ms",
	// disk images, mounted past any scan of their content
	"iso", "img", "vhd", "vhdx", "vmdk", "dmg",
)

// htmlExt are extensions a browser or Windows renders as HTML.
var htmlExt = setOf("html", "htm", "xhtml", "xht", "shtml", "svg", "svgz", "mht", "mhtml", "xsl", "xslt")

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// extension returns the lowercase extension of a name, without the dot.
func extension(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return strings.ToLower(name[i+1:])
}

// restrictByName applies the page's file name, which may only make the
// file more restricted.
func restrictByName(name string, rep *report) {
	ext := extension(DisplayName(name))
	switch {
	case runnableExt[ext] && rep.Class != ClassExecutable:
		switch rep.Class {
		case ClassText, ClassHTML, ClassScript:
			rep.Class = ClassScript
		default:
			rep.Class = ClassExecutable
		}
		rep.note("named .%s, which Windows runs", ext)
	case htmlExt[ext] && restriction[rep.Class] < restriction[ClassHTML]:
		rep.Class = ClassHTML
		rep.note("named .%s, which a browser renders", ext)
	}
}

// invisible reports runes that must not reach a file name or a header:
// control characters (C0, DEL, C1), format characters (bidi overrides,
// embeddings and isolates, zero-width characters, the byte order mark,
// tags), line and paragraph separators, and fillers that render as
// nothing.
func invisible(r rune) bool {
	switch r {
	case '\u2028', '\u2029', '\u034f', '\u115f', '\u1160', '\u3164', '\uffa0', '\u17b4', '\u17b5':
		return true
	}
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r >= 0xfff9 && r <= 0xfffb
}

// windowsReserved are device names Windows does not allow as the name of
// a file, with any extension.
var windowsReserved = setOf(
	"con", "prn", "aux", "nul", "conin$", "conout$", "clock$",
	"com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "com¹", "com²", "com³",
	"lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "lpt¹", "lpt²", "lpt³",
)

// DisplayName makes a file name suggested by a web page harmless to show
// and to send in a header: the last element of a / or \ path; without
// control, bidi and zero-width characters; characters Windows forbids in
// names (<>:"|?*) replaced by '_'; runs of spaces collapsed; without
// leading dots and spaces or trailing dots and spaces; Windows device
// names (CON, NUL, COM1…) prefixed with '_'; at most MaxNameRunes runes,
// keeping the extension. The real extension ends the name, so a name
// cannot pretend to be another type with a right-to-left override. An
// empty result is "download". DisplayName(DisplayName(x)) ==
// DisplayName(x).
func DisplayName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	space := false
	for i, r := range name {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(name[i:], "\uFFFD"):
			r = '_' // a byte that is not UTF-8
		case invisible(r):
			continue
		case strings.ContainsRune(`<>:"|?*`, r):
			r = '_'
		}
		if unicode.IsSpace(r) {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteRune(r)
	}
	s := strings.TrimRightFunc(strings.TrimLeftFunc(b.String(), dotOrSpace), dotOrSpace)
	base, _, _ := strings.Cut(s, ".")
	if windowsReserved[strings.ToLower(strings.TrimRightFunc(base, unicode.IsSpace))] {
		s = "_" + s
	}
	s = truncateName(s)
	if s == "" {
		return "download"
	}
	return s
}

func dotOrSpace(r rune) bool { return r == '.' || unicode.IsSpace(r) }

// truncateName shortens a name to MaxNameRunes runes, keeping its
// extension.
func truncateName(s string) string {
	if utf8.RuneCountInString(s) <= MaxNameRunes {
		return s
	}
	runes := []rune(s)
	var ext []rune
	if i := lastRune(runes, '.'); i > 0 && len(runes)-i <= maxExtRunes {
		ext = runes[i:]
	}
	if ext == nil {
		// A cut may end in spaces or dots, which the name must not.
		return strings.TrimRightFunc(string(runes[:MaxNameRunes]), dotOrSpace)
	}
	return string(runes[:MaxNameRunes-len(ext)]) + string(ext)
}

func lastRune(runes []rune, r rune) int {
	for i := len(runes) - 1; i >= 0; i-- {
		if runes[i] == r {
			return i
		}
	}
	return -1
}

// ContentDisposition returns a Content-Disposition header value that makes
// the browser save the file as DisplayName(name):
//
//	attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>
//
// The ASCII fallback has non-ASCII characters replaced by '_' and no quotes
// or backslashes; filename* is the name encoded as RFC 5987 says.
func ContentDisposition(name string) string {
	display := DisplayName(name)
	var ascii, enc strings.Builder
	for _, r := range display {
		switch {
		case r == '"' || r == '\\':
		case r >= utf8.RuneSelf:
			ascii.WriteByte('_')
		default:
			ascii.WriteRune(r)
		}
	}
	for _, c := range []byte(display) {
		if attrChar(c) {
			enc.WriteByte(c)
		} else {
			enc.WriteByte('%')
			enc.WriteByte("0123456789ABCDEF"[c>>4])
			enc.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	fallback := ascii.String()
	if fallback == "" {
		fallback = "download"
	}
	return `attachment; filename="` + fallback + `"; filename*=UTF-8''` + enc.String()
}

// attrChar reports the characters RFC 5987 allows unencoded in an
// extended parameter value.
func attrChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
