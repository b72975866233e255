// Package inspect tells what a file crossing the transfer channel really is,
// from its bytes, for transfer policy (docs/transfer.md): its type, and whether it
// is an encrypted archive or document that a malware scanner cannot look
// into, or an Office document with macros (XFER-4).
//
// The name a web page suggests for a download is metadata, never evidence:
// a file named report.pdf that holds a Windows program is an executable. The
// name can only make a file more restricted — a text file named run.bat is
// a script — never less.
package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Classes of files. Transfer policy allows or refuses files by class.
const (
	ClassPDF        = "pdf"
	ClassImage      = "image"
	ClassText       = "text"
	ClassHTML       = "html" // HTML, SVG and XML that a browser would run scripts in
	ClassArchive    = "archive"
	ClassOffice     = "office"
	ClassExecutable = "executable"
	ClassScript     = "script"
	ClassMedia      = "media"
	ClassOther      = "other"
)

// Classes lists every class Inspect may return.
func Classes() []string {
	return []string{ClassPDF, ClassImage, ClassText, ClassHTML, ClassArchive, ClassOffice, ClassExecutable, ClassScript, ClassMedia, ClassOther}
}

// restriction ranks classes for files that are two things at once (a
// picture with a ZIP appended, a text file named .exe): the file gets the
// more restricted class.
var restriction = map[string]int{
	ClassText:       0,
	ClassImage:      1,
	ClassMedia:      2,
	ClassPDF:        3,
	ClassOther:      4,
	ClassArchive:    5,
	ClassOffice:     6,
	ClassHTML:       7,
	ClassScript:     8,
	ClassExecutable: 9,
}

// Info is what a file is, from its content.
type Info struct {
	// MIME is the type sniffed from the content, e.g. "application/pdf",
	// "image/png", "application/zip", "text/plain; charset=utf-8".
	MIME string
	// Class is one of the Class constants.
	Class string
	// Encrypted reports a password-protected archive or document: a
	// malware scanner cannot look into it, so it is held (XFER-4).
	Encrypted bool
	// Macros reports an Office document with VBA or Basic macros: held or
	// refused (XFER-4).
	Macros bool
	// Detail says why, for people: "ZIP entry report.xlsx is encrypted",
	// "vbaProject.bin present".
	Detail string
}

// headSize is how much of the start of a file is sniffed.
const headSize = 64 << 10

// Inspect reads the file at path and says what it is. name is the file name
// the web page suggested; it is metadata and can only make the result more
// restricted. An error means the file could not be read; content that is
// malformed is not an error, the Detail says what could not be inspected.
func Inspect(path string, name string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspect: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("inspect: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("inspect %s: not a regular file", path)
	}
	info, err := inspect(f, st.Size(), name)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	return info, nil
}

// formatError means the content is not what its magic number promised. It
// is not an error of Inspect: the file is classified with what is known
// and the Detail says what could not be read.
type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &formatError{msg: fmt.Sprintf(format, args...)}
}

// isMalformed reports whether err is about the content rather than about
// reading it.
func isMalformed(err error) bool {
	var fe *formatError
	return errors.As(err, &fe)
}

// source is the file being inspected.
type source struct {
	r    io.ReaderAt
	size int64
}

// read returns n bytes at off. Reading past the end is a formatError: the
// file is shorter than its own structures say.
func (s *source) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off > s.size || int64(n) > s.size-off {
		return nil, malformed("truncated: %d bytes at offset %d are past the end of the file (%d bytes)", n, off, s.size)
	}
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil
	}
	if got, err := s.r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && got == n) {
		return nil, err
	}
	return buf, nil
}

// report collects the result of inspecting one file.
type report struct {
	Info
	details []string
	zip     bool // the file was inspected as a ZIP archive
}

func (r *report) note(format string, args ...any) {
	r.details = append(r.details, fmt.Sprintf(format, args...))
}

// restrict raises the class to c if c is more restricted.
func (r *report) restrict(c string) {
	if restriction[c] > restriction[r.Class] {
		r.Class = c
	}
}

// inspect is Inspect on any content.
func inspect(r io.ReaderAt, size int64, name string) (Info, error) {
	src := &source{r: r, size: size}
	head, err := src.read(0, int(min(size, headSize)))
	if err != nil {
		return Info{}, err
	}
	rep := &report{}
	if err := sniff(src, head, rep); err != nil {
		return Info{}, err
	}
	if err := appendedZIP(src, rep); err != nil {
		return Info{}, err
	}
	restrictByName(name, rep)
	rep.Detail = strings.Join(rep.details, "; ")
	return rep.Info, nil
}

// sniff classifies by content. Formats that can be recognized by their
// first bytes come first; what remains is left to http.DetectContentType.
func sniff(src *source, head []byte, rep *report) error {
	if sniffExecutable(src, head, rep) {
		return nil
	}
	switch {
	case isZIP(head):
		return inspectZIP(src, rep)
	case bytes.HasPrefix(head, cfbMagic):
		return inspectCFB(src, rep)
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return inspectPDF(src, head, rep)
	}
	if sniffArchive(src, head, rep) {
		return nil
	}
	if sniffImageOrMedia(head, rep) {
		return nil
	}
	if bytes.HasPrefix(head, []byte(`{\rtf`)) {
		// RTF embeds OLE objects and is opened by Word.
		rep.MIME, rep.Class = "application/rtf", ClassOffice
		rep.note("RTF document")
		return nil
	}
	// PDF readers accept junk before the header within the first KiB. The
	// junk may be HTML or a script, which is more restricted than a PDF.
	if i := bytes.Index(head[:min(len(head), 1024)], []byte("%PDF-")); i > 0 {
		var text report
		sniffText(head, &text)
		if restriction[text.Class] <= restriction[ClassPDF] {
			return inspectPDF(src, head, rep)
		}
		*rep = text
		rep.note("a PDF header follows")
		return nil
	}
	sniffText(head, rep)
	return nil
}

// sniffImageOrMedia recognizes pictures, audio and video.
func sniffImageOrMedia(head []byte, rep *report) bool {
	mime := http.DetectContentType(head)
	switch {
	case bytes.HasPrefix(head, []byte("II*\x00")) || bytes.HasPrefix(head, []byte("MM\x00*")):
		rep.MIME, rep.Class = "image/tiff", ClassImage
	case len(head) >= 132 && string(head[128:132]) == "DICM":
		rep.MIME, rep.Class = "application/dicom", ClassImage
		rep.note("DICOM file")
	case len(head) >= 12 && string(head[4:8]) == "ftyp" && isHEIF(string(head[8:12])):
		rep.MIME, rep.Class = heifMIME(string(head[8:12])), ClassImage
	case strings.HasPrefix(mime, "image/"):
		rep.MIME, rep.Class = mime, ClassImage
	case bytes.HasPrefix(head, []byte("fLaC")):
		rep.MIME, rep.Class = "audio/flac", ClassMedia
	case bytes.HasPrefix(head, []byte("\x1aE\xdf\xa3")):
		rep.MIME, rep.Class = "video/x-matroska", ClassMedia
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		rep.MIME, rep.Class = "video/mp4", ClassMedia
	case strings.HasPrefix(mime, "audio/") || strings.HasPrefix(mime, "video/") || mime == "application/ogg":
		rep.MIME, rep.Class = mime, ClassMedia
	default:
		return false
	}
	return true
}

func isHEIF(brand string) bool {
	switch brand {
	case "avif", "avis", "heic", "heix", "heim", "heis", "mif1", "msf1":
		return true
	}
	return false
}

func heifMIME(brand string) string {
	if strings.HasPrefix(brand, "avi") {
		return "image/avif"
	}
	return "image/heic"
}

// activeMarkers are what make a text file something a browser renders and
// runs scripts in. They are matched case-insensitively.
var activeMarkers = []string{
	"<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<frameset",
	"<object", "<embed", "<svg", "<?xml-stylesheet", "<xsl:", "<meta http-equiv",
}

// sniffText classifies what http.DetectContentType sees as text, and
// everything else as other.
func sniffText(head []byte, rep *report) {
	mime := http.DetectContentType(head)
	text := head
	switch {
	case strings.HasPrefix(mime, "text/plain; charset=utf-16"):
		text = utf16ToUTF8(head, mime == "text/plain; charset=utf-16be")
	case strings.HasPrefix(mime, "text/"):
	default:
		rep.MIME, rep.Class = mime, ClassOther
		return
	}
	lower := bytes.ToLower(text)
	marker := ""
	for _, m := range activeMarkers {
		if bytes.Contains(lower, []byte(m)) {
			marker = m
			break
		}
	}
	switch {
	case bytes.Contains(lower, []byte("<svg")) && !bytes.Contains(lower, []byte("<html")):
		rep.MIME, rep.Class = "image/svg+xml", ClassHTML
		rep.note("SVG image: can carry scripts")
	case marker != "" || strings.HasPrefix(mime, "text/html"):
		rep.MIME, rep.Class = "text/html; charset=utf-8", ClassHTML
		if marker != "" {
			rep.note("HTML content (%s>)", marker)
		}
	case bytes.HasPrefix(text, []byte("#!")):
		rep.MIME, rep.Class = mime, ClassScript
		line, _, _ := bytes.Cut(text, []byte("\n"))
		rep.note("script (%s)", printable(strings.TrimSpace(string(line)), 60))
	case scriptText(lower) != "":
		rep.MIME, rep.Class = mime, ClassScript
		rep.note("%s", scriptText(lower))
	default:
		rep.MIME, rep.Class = mime, ClassText
	}
	if rep.MIME == "text/plain; charset=utf-8" && !validUTF8Prefix(head) {
		// Shift_JIS and other legacy encodings: the charset is unknown.
		rep.MIME = "text/plain"
	}
}

// scriptText recognizes text files that Windows acts on by their first
// line: registry files, Internet shortcuts, batch files.
func scriptText(lower []byte) string {
	lower = bytes.TrimPrefix(lower, []byte("\xef\xbb\xbf"))
	switch {
	case bytes.HasPrefix(lower, []byte("windows registry editor version")) || bytes.HasPrefix(lower, []byte("regedit4")):
		return "Windows registry file"
	case bytes.HasPrefix(lower, []byte("[internetshortcut]")):
		return "Internet shortcut"
	case bytes.HasPrefix(lower, []byte("@echo off")):
		return "batch file"
	}
	return ""
}

// validUTF8Prefix reports whether b is UTF-8, allowing a rune cut at the
// end of the sniffed prefix.
func validUTF8Prefix(b []byte) bool {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return true
		}
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

// utf16ToUTF8 decodes UTF-16 text that starts with a byte order mark.
// A surrogate pair is one character (𠮷 U+20BB7, emoji); a surrogate
// without its partner, as at the end of a cut head, becomes U+FFFD, and an
// odd last byte is dropped.
func utf16ToUTF8(b []byte, bigEndian bool) []byte {
	units := make([]uint16, 0, len(b)/2)
	for i := 2; i+1 < len(b); i += 2 {
		if bigEndian {
			units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			units = append(units, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	out := make([]byte, 0, len(units)*3)
	for _, r := range utf16.Decode(units) {
		out = utf8.AppendRune(out, r)
	}
	return out
}

// printable makes untrusted text (a ZIP entry name, a shebang line) safe to
// show in a Detail: control and format characters become '?', and it is
// cut to max runes.
func printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if r == utf8.RuneError || invisible(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
