package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Action is what a transfer policy does with a file or a text.
type Action string

// Transfer actions. An empty Action in a Document means the direction's
// default (see DefaultTransfers).
const (
	// ActionOff refuses the transfer.
	ActionOff Action = "off"
	// ActionAllow lets it through (after the broker's scan, for files).
	ActionAllow Action = "allow"
	// ActionApprove holds a file until an approver releases it (XFER-2).
	// Only downloads and prints can wait: an upload or a paste has a page
	// waiting for it.
	ActionApprove Action = "approve"
)

// Direction names a transfer path (docs/transfer.md, XFER-8). Its values are the
// YAML keys of Transfers.
type Direction string

// Transfer directions.
const (
	// DirDownload is a file from the remote browser to the terminal.
	DirDownload Direction = "download"
	// DirUpload is a file from the terminal to a site on the Internet.
	DirUpload Direction = "upload"
	// DirPrint is a PDF of a page, delivered like a download.
	DirPrint Direction = "print"
	// DirClipboardToTerminal is text copied in the remote page and pasted
	// on the terminal.
	DirClipboardToTerminal Direction = "clipboard_to_terminal"
	// DirClipboardToRemote is text pasted from the terminal into the
	// remote page.
	DirClipboardToRemote Direction = "clipboard_to_remote"
)

// File classes, as the broker's content inspection names a file from its
// bytes (never its name). A type rule entry is one of these or a MIME
// pattern.
const (
	ClassPDF        = "pdf"
	ClassImage      = "image"
	ClassText       = "text"
	ClassHTML       = "html"
	ClassArchive    = "archive"
	ClassOffice     = "office"
	ClassExecutable = "executable"
	ClassScript     = "script"
	ClassMedia      = "media"
	ClassOther      = "other"
)

// classNouns are the file classes, with how reasons speak of them.
var classNouns = map[string]string{
	ClassPDF:        "PDF files",
	ClassImage:      "images",
	ClassText:       "text files",
	ClassHTML:       "HTML files",
	ClassArchive:    "archives",
	ClassOffice:     "Office documents",
	ClassExecutable: "executables",
	ClassScript:     "scripts",
	ClassMedia:      "audio and video files",
	ClassOther:      "files of this type",
}

// Classes returns the file class names type rules accept, sorted.
func Classes() []string {
	names := make([]string, 0, len(classNouns))
	for c := range classNouns {
		names = append(names, c)
	}
	slices.Sort(names)
	return names
}

// Limits on transfer policies, checked by Validate.
const (
	// MaxTransferSize is the largest MaxSize a file direction may have.
	MaxTransferSize = 4 * GiB
	// MaxClipboardChars is the largest MaxChars a clipboard direction may
	// have.
	MaxClipboardChars = 1 << 20
)

// Defaults of a profile's transfer policy (DefaultTransfers).
const (
	DefaultDownloadMaxSize   = 100 * MiB
	DefaultUploadMaxSize     = 25 * MiB
	DefaultPrintMaxSize      = 50 * MiB
	DefaultClipboardMaxChars = 65536
)

// Transfers is a profile's policy for everything that crosses between the
// isolated browser and the terminal (docs/transfer.md, XFER-*). A nil *Transfers
// in a Profile, a direction left empty, and each empty field of a direction
// take the defaults of DefaultTransfers; Resolve fills them in.
type Transfers struct {
	// Download is files from the remote browser to the terminal.
	Download FilePolicy `yaml:"download,omitempty" json:"download,omitzero"`
	// Upload is files from the terminal to the Internet. A file goes only
	// to an HTTPS site whose rule has uploads: true (UploadDestination,
	// XFER-7); executables and scripts are never uploaded.
	Upload FilePolicy `yaml:"upload,omitempty" json:"upload,omitzero"`
	// Print is a PDF of a page, delivered like a download.
	Print FilePolicy `yaml:"print,omitempty" json:"print,omitzero"`
	// ClipboardOut is text copied in the remote page to the terminal.
	ClipboardOut TextPolicy `yaml:"clipboard_to_terminal,omitempty" json:"clipboard_to_terminal,omitzero"`
	// ClipboardIn is text pasted from the terminal into the remote page.
	ClipboardIn TextPolicy `yaml:"clipboard_to_remote,omitempty" json:"clipboard_to_remote,omitzero"`
}

// FilePolicy decides the files of one direction.
type FilePolicy struct {
	// Action is what happens to a file no type rule matches. Empty means
	// the direction's default.
	Action Action `yaml:"action,omitempty" json:"action,omitempty"`
	// Types are checked in order; the first rule with an entry matching
	// the file decides. Empty means the direction's default rules.
	Types []TypeRule `yaml:"types,omitempty" json:"types,omitempty"`
	// MaxSize refuses larger files whatever the rules say. Zero means the
	// direction's default.
	MaxSize Size `yaml:"max_size,omitempty" json:"max_size,omitempty"`
}

// TypeRule gives an action to some file types.
type TypeRule struct {
	// Types are class names ("pdf", see Classes) or MIME patterns: a full
	// type ("application/pdf") or a whole-subtype wildcard ("image/*").
	// MIME patterns compare case-insensitively and ignore the file's
	// parameters ("text/plain; charset=utf-8" matches "text/plain").
	Types  []string `yaml:"types" json:"types"`
	Action Action   `yaml:"action" json:"action"`
}

// TextPolicy decides the clipboard texts of one direction.
type TextPolicy struct {
	// Action is "off" or "allow". Empty means the direction's default.
	Action Action `yaml:"action,omitempty" json:"action,omitempty"`
	// MaxChars refuses longer texts, counted in characters. Zero means the
	// direction's default.
	MaxChars int `yaml:"max_chars,omitempty" json:"max_chars,omitempty"`
}

// Decision is the verdict on one transfer. It names the rule that decided
// and, unless it allows, says why in words for the clinician.
type Decision struct {
	Action Action `json:"action"`
	// Rule is the deciding part of the policy, e.g.
	// "download: types [pdf image] → allow", "download: default → approve",
	// "upload: max_size 25MiB", or for UploadDestination a rule pattern or
	// one of the Rule* constants.
	Rule string `json:"rule"`
	// Reason is for the clinician, e.g. "executables may not be
	// downloaded"; empty for an allow.
	Reason string `json:"reason,omitempty"`
}

// DefaultTransfers returns the transfer policy of a profile without one:
//
//	download               pdf, image → allow; executable, script → off;
//	                       anything else → approve; at most 100MiB
//	upload                 off (executable, script → off even when the
//	                       action is allow); at most 25MiB
//	print                  allow; at most 50MiB
//	clipboard_to_terminal  allow; at most 65536 characters
//	clipboard_to_remote    off; at most 65536 characters
//
// Each call returns new slices.
func DefaultTransfers() Transfers {
	return Transfers{
		Download: FilePolicy{
			Action: ActionApprove,
			Types: []TypeRule{
				{Types: []string{ClassPDF, ClassImage}, Action: ActionAllow},
				{Types: []string{ClassExecutable, ClassScript}, Action: ActionOff},
			},
			MaxSize: DefaultDownloadMaxSize,
		},
		Upload: FilePolicy{
			Action:  ActionOff,
			Types:   []TypeRule{{Types: []string{ClassExecutable, ClassScript}, Action: ActionOff}},
			MaxSize: DefaultUploadMaxSize,
		},
		Print:        FilePolicy{Action: ActionAllow, MaxSize: DefaultPrintMaxSize},
		ClipboardOut: TextPolicy{Action: ActionAllow, MaxChars: DefaultClipboardMaxChars},
		ClipboardIn:  TextPolicy{Action: ActionOff, MaxChars: DefaultClipboardMaxChars},
	}
}

// transfersOff is the policy of a profile that does not exist: nothing
// crosses.
func transfersOff() Transfers {
	t := DefaultTransfers()
	t.Download = FilePolicy{Action: ActionOff, MaxSize: t.Download.MaxSize}
	t.Upload = FilePolicy{Action: ActionOff, MaxSize: t.Upload.MaxSize}
	t.Print = FilePolicy{Action: ActionOff, MaxSize: t.Print.MaxSize}
	t.ClipboardOut.Action, t.ClipboardIn.Action = ActionOff, ActionOff
	return t
}

// Resolve returns the policy in force: t with every empty part taken from
// DefaultTransfers (all of it when t is nil). Type rules an admin wrote
// replace the direction's default rules, with two guards added:
//
//   - upload: "executable, script → off" comes first, so no rule can let
//     them out;
//   - download: "→ off" for whichever of executable and script the admin's
//     rules do not name comes last, so executables stay off unless a rule
//     names them.
//
// The result shares no slices with t.
func (t *Transfers) Resolve() Transfers {
	def := DefaultTransfers()
	if t == nil {
		return def
	}
	return Transfers{
		Download:     resolveFile(t.Download, def.Download, guardLast),
		Upload:       resolveFile(t.Upload, def.Upload, guardFirst),
		Print:        resolveFile(t.Print, def.Print, guardNone),
		ClipboardOut: resolveText(t.ClipboardOut, def.ClipboardOut),
		ClipboardIn:  resolveText(t.ClipboardIn, def.ClipboardIn),
	}
}

// guard says where Resolve puts the executable and script rule of a
// direction whose type rules an admin wrote.
type guard int

const (
	guardNone guard = iota
	guardFirst
	guardLast
)

// dangerous are the classes guarded by Resolve.
var dangerous = []string{ClassExecutable, ClassScript}

func resolveFile(p, def FilePolicy, g guard) FilePolicy {
	r := FilePolicy{Action: p.Action, MaxSize: p.MaxSize, Types: cloneTypeRules(p.Types)}
	if r.Action == "" {
		r.Action = def.Action
	}
	if r.MaxSize == 0 {
		r.MaxSize = def.MaxSize
	}
	if len(r.Types) == 0 {
		r.Types = cloneTypeRules(def.Types)
		return r
	}
	switch g {
	case guardFirst:
		r.Types = slices.Insert(r.Types, 0, TypeRule{Types: slices.Clone(dangerous), Action: ActionOff})
	case guardLast:
		var unnamed []string
		for _, c := range dangerous {
			if !slices.ContainsFunc(r.Types, func(tr TypeRule) bool { return slices.Contains(tr.Types, c) }) {
				unnamed = append(unnamed, c)
			}
		}
		if len(unnamed) > 0 {
			r.Types = append(r.Types, TypeRule{Types: unnamed, Action: ActionOff})
		}
	}
	return r
}

func resolveText(p, def TextPolicy) TextPolicy {
	if p.Action == "" {
		p.Action = def.Action
	}
	if p.MaxChars == 0 {
		p.MaxChars = def.MaxChars
	}
	return p
}

// clone returns a deep copy of t.
func (t *Transfers) clone() *Transfers {
	c := *t
	c.Download.Types = cloneTypeRules(t.Download.Types)
	c.Upload.Types = cloneTypeRules(t.Upload.Types)
	c.Print.Types = cloneTypeRules(t.Print.Types)
	return &c
}

// cloneTypeRules deep-copies rules; nil and empty give nil.
func cloneTypeRules(rules []TypeRule) []TypeRule {
	if len(rules) == 0 {
		return nil
	}
	c := make([]TypeRule, len(rules))
	for i, r := range rules {
		c[i] = TypeRule{Types: slices.Clone(r.Types), Action: r.Action}
	}
	return c
}

// File returns the policy of a file direction; ok is false for the
// clipboard directions and unknown ones.
func (t Transfers) File(d Direction) (fp FilePolicy, ok bool) {
	switch d {
	case DirDownload:
		return t.Download, true
	case DirUpload:
		return t.Upload, true
	case DirPrint:
		return t.Print, true
	}
	return FilePolicy{}, false
}

// Text returns the policy of a clipboard direction; ok is false for the
// file directions and unknown ones.
func (t Transfers) Text(d Direction) (tp TextPolicy, ok bool) {
	switch d {
	case DirClipboardToTerminal:
		return t.ClipboardOut, true
	case DirClipboardToRemote:
		return t.ClipboardIn, true
	}
	return TextPolicy{}, false
}

// DecideFile is FilePolicy.Decide for a file direction of t, with the
// direction named in the rule ("download: types [pdf image] → allow") and
// the reason ("executables may not be downloaded"). Other directions are
// off. Use it on a resolved policy (Set.Transfers, Resolve).
func (t Transfers) DecideFile(d Direction, class, mimeType string, size int64) Decision {
	fp, ok := t.File(d)
	if !ok {
		return Decision{Action: ActionOff, Rule: string(d), Reason: fmt.Sprintf("%q is not a file transfer direction", d)}
	}
	return fp.decide(d, class, mimeType, size)
}

// DecideText is TextPolicy.Decide for a clipboard direction of t, with the
// direction named in the rule and the reason. Other directions are off.
func (t Transfers) DecideText(d Direction, chars int) Decision {
	tp, ok := t.Text(d)
	if !ok {
		return Decision{Action: ActionOff, Rule: string(d), Reason: fmt.Sprintf("%q is not a clipboard direction", d)}
	}
	return tp.decide(d, chars)
}

// Decide decides a file of a content class (Classes; "" when unknown), a
// MIME type (parameters ignored; "" when unknown) and a size in bytes:
// off when the size is over MaxSize, else the action of the first type
// rule with an entry matching the class or the MIME type, else Action. An
// action other than allow and approve is off. It reads the policy as it
// is: use a resolved one (Set.Transfers, Resolve), since a zero MaxSize
// refuses every non-empty file.
func (fp FilePolicy) Decide(class, mimeType string, size int64) Decision {
	return fp.decide("", class, mimeType, size)
}

// decide is Decide, naming the direction d (when not "") in the rule and
// the reason.
func (fp FilePolicy) decide(d Direction, class, mimeType string, size int64) Decision {
	prefix := ""
	if d != "" {
		prefix = string(d) + ": "
	}
	if size > int64(fp.MaxSize) {
		reason := fmt.Sprintf("file is %s, over the %s limit", Size(size).human(), fp.MaxSize.human())
		if Size(size).human() == fp.MaxSize.human() {
			reason = fmt.Sprintf("file is %d bytes, over the %d-byte limit", size, fp.MaxSize)
		}
		return Decision{Action: ActionOff, Rule: prefix + "max_size " + fp.MaxSize.String(), Reason: reason}
	}
	mt := mediaType(mimeType)
	for _, tr := range fp.Types {
		for _, e := range tr.Types {
			if matchType(e, class, mt) {
				what := fileNoun(class, mt)
				if !strings.Contains(e, "/") {
					what = fileNoun(e, "")
				}
				rule := fmt.Sprintf("%stypes [%s] → %s", prefix, strings.Join(tr.Types, " "), tr.Action)
				return fileDecision(tr.Action, rule, what, d)
			}
		}
	}
	return fileDecision(fp.Action, fmt.Sprintf("%sdefault → %s", prefix, fp.Action), fileNoun(class, mt), d)
}

// fileDecision builds the Decision of an action on files described by what.
func fileDecision(a Action, rule, what string, d Direction) Decision {
	verb := map[Direction]string{DirDownload: "downloaded", DirUpload: "uploaded", DirPrint: "printed"}[d]
	if verb == "" {
		verb = "transferred"
	}
	switch a {
	case ActionAllow:
		return Decision{Action: ActionAllow, Rule: rule}
	case ActionApprove:
		return Decision{Action: ActionApprove, Rule: rule, Reason: fmt.Sprintf("%s are held until an approver releases them", what)}
	}
	return Decision{Action: ActionOff, Rule: rule, Reason: fmt.Sprintf("%s may not be %s", what, verb)}
}

// fileNoun says how a reason speaks of a file of a class or MIME type.
func fileNoun(class, mt string) string {
	if n, ok := classNouns[class]; ok {
		return n
	}
	if mt != "" {
		return "files of type " + mt
	}
	return "files"
}

// mediaType returns a MIME type without parameters, trimmed and lowercase.
func mediaType(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// matchType reports whether a type rule entry matches a file's class or
// its media type (as mediaType returns it).
func matchType(entry, class, mt string) bool {
	if !strings.Contains(entry, "/") {
		return class != "" && entry == class
	}
	if mt == "" {
		return false
	}
	entry = strings.ToLower(entry)
	if prefix, ok := strings.CutSuffix(entry, "/*"); ok {
		top, _, _ := strings.Cut(mt, "/")
		return top == prefix && strings.Contains(mt, "/")
	}
	return entry == mt
}

// Decide decides a clipboard text of chars characters: off when it is
// longer than MaxChars, else allow when Action is allow, else off.
func (tp TextPolicy) Decide(chars int) Decision {
	return tp.decide("", chars)
}

// decide is Decide, naming the direction d (when not "") in the rule and
// the reason.
func (tp TextPolicy) decide(d Direction, chars int) Decision {
	prefix := ""
	if d != "" {
		prefix = string(d) + ": "
	}
	if chars > tp.MaxChars {
		return Decision{
			Action: ActionOff,
			Rule:   fmt.Sprintf("%smax_chars %d", prefix, tp.MaxChars),
			Reason: fmt.Sprintf("text is %d characters, over the %d-character limit", chars, tp.MaxChars),
		}
	}
	if tp.Action == ActionAllow {
		return Decision{Action: ActionAllow, Rule: prefix + string(ActionAllow)}
	}
	reason := "the clipboard is off in this direction"
	switch d {
	case DirClipboardToTerminal:
		reason = "copying from the remote page to this terminal is off"
	case DirClipboardToRemote:
		reason = "pasting from this terminal into the remote page is off"
	}
	return Decision{Action: ActionOff, Rule: prefix + string(ActionOff), Reason: reason}
}
