package chrome

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
)

// Warnings of describeHost, in Japanese and English.
const (
	warnMixedScripts  = "紛らわしいドメイン名です（文字種が混在: %s） / Lookalike domain name: mixes %s letters"
	warnLooksLike     = "紛らわしいドメイン名です（%s に見えます） / Lookalike domain name: looks like %s"
	warnUndisplayable = "表示できないドメイン名です / The domain name cannot be displayed"
)

// displayProfile maps and checks host names as Chromium's URL parser does
// (UTS #46, non-transitional, Bidi rule, no strict hyphen or STD3 rules).
var displayProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// describeHost returns host (punycode, as in a URL) in Unicode for display,
// and a warning when it can pass for another host (SITEID-3): a label whose
// letters mix scripts outside the combinations a language uses (Japanese
// mixes Han, Hiragana, Katakana and Latin; Chinese Han, Bopomofo and
// Latin; Korean Han, Hangul and Latin), or a label made only of letters
// that look like ASCII ones ("аррӏе" in Cyrillic). A label in the script of
// its own top-level domain (Cyrillic under .рф) is not taken for ASCII. An
// ASCII host or an IP address comes back as it is, without warning.
func describeHost(host string) (display, warning string) {
	if host == "" || !strings.Contains(host, "xn--") {
		return host, ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, ""
	}
	// A canonical host decodes to valid labels and encodes back to itself.
	uni, err := displayProfile.ToUnicode(host)
	if err != nil {
		return host, warnUndisplayable
	}
	if back, err := displayProfile.ToASCII(uni); err != nil || back != host {
		return host, warnUndisplayable
	}
	labels, ascii := strings.Split(uni, "."), strings.Split(host, ".")
	if len(labels) != len(ascii) {
		return host, warnUndisplayable
	}
	tldScripts := scriptsOf(labels[len(labels)-1])
	lookalike := false
	for i, l := range labels {
		if !strings.HasPrefix(ascii[i], "xn--") {
			continue
		}
		ss := scriptsOf(l)
		if len(ss) > 1 && !allowedMix(ss) {
			names := slices.Sorted(func(yield func(string) bool) {
				for s := range ss {
					if !yield(s) {
						return
					}
				}
			})
			return uni, fmt.Sprintf(warnMixedScripts, strings.Join(names, " + "), strings.Join(names, " and "))
		}
		if skeleton, ok := asciiSkeleton(l); ok && !(len(ss) == 1 && sameScripts(ss, tldScripts) && !ss["Latin"]) {
			labels[i] = skeleton
			lookalike = true
		}
	}
	if lookalike {
		like := strings.Join(labels, ".")
		return uni, fmt.Sprintf(warnLooksLike, like, like)
	}
	return uni, ""
}

// scriptsOf returns the scripts of the letters of s, leaving out the
// Common and Inherited ones (digits, hyphens, the long-vowel mark ー,
// combining marks).
func scriptsOf(s string) map[string]bool {
	out := map[string]bool{}
	for _, r := range s {
		if r < 0x80 {
			if unicode.IsLetter(r) {
				out["Latin"] = true
			}
			continue
		}
		if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
			continue
		}
		for name, table := range unicode.Scripts {
			if unicode.Is(table, r) {
				out[name] = true
				break
			}
		}
	}
	return out
}

// mixes are the combinations of scripts that one language uses in a
// label; any subset of one is fine.
var mixes = []map[string]bool{
	{"Latin": true, "Han": true, "Hiragana": true, "Katakana": true},
	{"Latin": true, "Han": true, "Bopomofo": true},
	{"Latin": true, "Han": true, "Hangul": true},
}

// allowedMix reports whether the scripts ss are a subset of a language's
// combination.
func allowedMix(ss map[string]bool) bool {
	for _, m := range mixes {
		ok := true
		for s := range ss {
			if !m[s] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// sameScripts reports whether a and b hold the same scripts.
func sameScripts(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for s := range a {
		if !b[s] {
			return false
		}
	}
	return true
}

// confusables maps letters that look like an ASCII letter, in the fonts a
// browser uses, to that letter.
var confusables = map[rune]rune{
	// Cyrillic.
	'а': 'a', 'в': 'b', 'ь': 'b', 'с': 'c', 'ԁ': 'd', 'е': 'e', 'ҽ': 'e', 'ԍ': 'g', 'һ': 'h', 'і': 'i',
	'ј': 'j', 'к': 'k', 'ӏ': 'l', 'п': 'n', 'о': 'o', 'р': 'p', 'ԛ': 'q', 'г': 'r', 'ѕ': 's', 'т': 't',
	'ц': 'u', 'ѵ': 'v', 'ԝ': 'w', 'ѡ': 'w', 'х': 'x', 'у': 'y',
	// Greek.
	'α': 'a', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'γ': 'y', 'ω': 'w',
	// Armenian.
	'ա': 'w', 'հ': 'h', 'ո': 'n', 'ս': 'u', 'օ': 'o', 'ց': 'g', 'զ': 'q',
	// Latin letters beyond ASCII.
	'ı': 'i', 'ɑ': 'a', 'ɡ': 'g', 'ʋ': 'u', 'ɩ': 'i', 'ȷ': 'j',
}

// asciiSkeleton returns the ASCII label that label looks like, if each of
// its letters is ASCII or looks like an ASCII letter, and one does.
func asciiSkeleton(label string) (string, bool) {
	var sb strings.Builder
	confusable := false
	for _, r := range label {
		switch c, ok := confusables[r]; {
		case r < 0x80:
			sb.WriteRune(r)
		case ok:
			sb.WriteRune(c)
			confusable = true
		default:
			return "", false
		}
	}
	return sb.String(), confusable
}
