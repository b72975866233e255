package inspect

import (
	"regexp"
)

// pdfScanLen is how much of each end of a PDF is searched for its
// encryption dictionary: the trailer (or cross-reference stream) at the
// end, and the first-page trailer of a linearized file at the start.
const pdfScanLen = 1 << 20

// pdfEncrypt matches a trailer's /Encrypt entry: a reference to the
// encryption dictionary or the dictionary itself. Trailer and
// cross-reference stream dictionaries are never compressed, so the entry
// is plain text.
var pdfEncrypt = regexp.MustCompile(`/Encrypt[\x00\t\n\f\r ]*(?:\d+[\x00\t\n\f\r ]+\d+[\x00\t\n\f\r ]+R|<<)`)

// inspectPDF inspects a PDF for encryption.
func inspectPDF(src *source, head []byte, rep *report) error {
	rep.MIME, rep.Class = "application/pdf", ClassPDF
	found := pdfEncrypt.Match(head)
	if !found && src.size > int64(len(head)) {
		n := min(src.size, pdfScanLen)
		b, err := src.read(src.size-n, int(n))
		if err != nil {
			return err
		}
		found = pdfEncrypt.Match(b)
		if !found && src.size > n {
			if b, err = src.read(0, int(min(src.size-n, pdfScanLen))); err != nil {
				return err
			}
			found = pdfEncrypt.Match(b)
		}
	}
	if found {
		rep.Encrypted = true
		rep.note("PDF is encrypted (/Encrypt in the trailer)")
	}
	return nil
}
