package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is what Verify found in an intact trail.
type Report struct {
	// Files are the chain's files in order.
	Files []string
	// Records is how many records link up, from seq 1 to HeadSeq.
	Records uint64
	// HeadSeq, HeadHash and HeadTime describe the last record. Compare
	// HeadSeq and HeadHash with the collector's copy to check the end of
	// the trail, which the chain alone cannot protect.
	HeadSeq  uint64
	HeadHash string
	HeadTime time.Time
	// Torn is set when the final line is incomplete or unreadable, as a
	// crash during a write leaves it; the records before it verified.
	// Note says the same for people; it is empty when Torn is nil.
	Torn *Torn
	Note string

	// Checkpoints counts the audit_checkpoint records. Signed is true
	// when their signatures were checked (VerifyOptions.Keys), and KeyIDs
	// lists the keys that signed them, in order of first use.
	Checkpoints int
	Signed      bool
	KeyIDs      []string
	// LastCheckpoint is the last checkpoint; nil when there is none.
	LastCheckpoint *CheckpointRecord
	// Unsigned is how many records follow the last checkpoint (every
	// record when there is none): the part of the trail no signature
	// covers yet.
	Unsigned uint64
	// Sealed is true when the trail ends with a clean-stop checkpoint
	// (reason "close"): the broker stopped cleanly and nothing was
	// written after.
	Sealed bool
	// UncleanStarts are the seqs of the "open" checkpoints whose previous
	// checkpoint is not a clean stop: the broker did not stop cleanly
	// before them (a crash, kill -9, a power cut), or the trail was cut
	// there and the broker started on what was left.
	UncleanStarts []uint64
	// WhileStopped lists (up to 100 of) the records written after a
	// clean-stop checkpoint and before the next checkpoint: while the
	// broker was stopped. `shoji audit export` writes one; anything else
	// there was not written by the broker.
	WhileStopped      []uint64
	WhileStoppedCount uint64
	// Copy is what the comparison with the collector's copy found; nil
	// without VerifyOptions.Against.
	Copy *CopyReport
}

// CheckpointRecord is an audit_checkpoint record as Verify found it.
type CheckpointRecord struct {
	// Seq and Time are the checkpoint record's own; Checkpoint.Seq is the
	// record it signs, the one before.
	Seq  uint64
	Time time.Time
	File string
	Line int
	Checkpoint
}

// Torn describes an incomplete or unreadable final line.
type Torn struct {
	File   string
	Line   int
	Offset int64
	Bytes  int64 // without a newline
	// Unreadable is true when the line ends with a newline but is not a
	// record; else it has no newline.
	Unreadable bool
}

func (t *Torn) String() string {
	what := "incomplete final line"
	if t.Unreadable {
		what = "unreadable final line"
	}
	return fmt.Sprintf("%s line %d: %s (%d bytes at offset %d), as a crash during a write leaves it; "+
		"the broker cuts it off and records that when it next starts", t.File, t.Line, what, t.Bytes, t.Offset)
}

// Problem classifies a break in the chain.
type Problem string

// The problems Verify names.
const (
	// Edited: a record was changed after it was written.
	Edited Problem = "edited"
	// Deleted: records are missing (a gap in seq).
	Deleted Problem = "deleted"
	// Inserted: a record that is not part of the chain was added.
	Inserted Problem = "inserted"
	// Reordered: records are out of order.
	Reordered Problem = "reordered"
	// BrokenLink: a record's prev does not match the record before it,
	// and nothing after it tells which of the two is wrong (for example a
	// forged record appended at the end).
	BrokenLink Problem = "broken link"
	// BadCheckpoint: a checkpoint does not sign the record before it, its
	// signature does not verify, or it names a key that was not given.
	BadCheckpoint Problem = "bad checkpoint"
	// MissingCheckpoint: more records follow a checkpoint than it allows
	// before the next, the trail has no checkpoint at all, or (with
	// RequireSealed) it does not end with a clean-stop checkpoint.
	MissingCheckpoint Problem = "missing checkpoint"
	// DiffersFromCopy: the record is not the one the collector holds
	// with the same seq.
	DiffersFromCopy Problem = "differs from the collector's copy"
	// CutTail: the collector holds records after the trail's last.
	CutTail Problem = "cut tail"
)

// VerifyError names the first bad record of a trail.
type VerifyError struct {
	File string
	// Line is the line number in File, from 1.
	Line int
	// Seq is the record's seq; 0 when the line is not a readable record,
	// then After is the seq of the last good record before it.
	Seq     uint64
	After   uint64
	Problem Problem
	Detail  string
}

func (e *VerifyError) Error() string {
	where := fmt.Sprintf("seq %d", e.Seq)
	if e.Seq == 0 {
		where = fmt.Sprintf("after seq %d", e.After)
	}
	return fmt.Sprintf("audit trail broken at %s line %d (%s): %s: %s", e.File, e.Line, where, e.Problem, e.Detail)
}

// ErrNoTrail is returned by Verify for a directory without audit files.
var ErrNoTrail = errors.New("no audit trail")

// Verify walks every file of the trail in dir in order and checks that
// each line is a record, that seq counts up by one from 1, and that each
// prev is the SHA-256 of the line before, across files. It returns the
// first bad record as a *VerifyError, with what it found until there in
// the Report. An incomplete final line is not an error: it is noted in
// Report.Torn.
//
// The chain shows any change before the last record. Cutting records off
// the end, or appending records with correct hashes, leaves a valid
// chain: VerifyWith checks the signed checkpoints and compares the trail
// with the copy the Forwarder sent off the box. Verify checks only that
// each checkpoint names the record before it.
func Verify(dir string) (Report, error) {
	return VerifyWith(dir, VerifyOptions{})
}

// VerifyWith is Verify with the checks of opts: checkpoint signatures and
// cadence, a sealed end, and the collector's copy.
func VerifyWith(dir string, opts VerifyOptions) (Report, error) {
	if opts.RequireSealed && len(opts.Keys) == 0 {
		return Report{}, errors.New("audit: requiring a sealed trail needs the checkpoint public key")
	}
	var cp *collectorCopy
	if opts.Against != "" {
		var err error
		if cp, err = readCopy(opts.Against); err != nil {
			return Report{}, err
		}
	}
	files, err := listFiles(dir)
	if err != nil {
		return Report{}, fmt.Errorf("audit trail %s: %w", dir, err)
	}
	if len(files) == 0 {
		return Report{}, fmt.Errorf("%w in %s", ErrNoTrail, dir)
	}
	rep := Report{HeadHash: ZeroHash}
	for _, cf := range files {
		rep.Files = append(rep.Files, cf.name)
	}
	ec := newEndCheck(&rep, opts, cp)
	w := &walker{files: files}
	defer w.close()
	// hist holds the last two good records, the start of the chain
	// standing in before the first.
	hist := []record{{hash: ZeroHash, start: true}}
	for {
		r, err := w.next()
		if errors.Is(err, io.EOF) {
			return rep, ec.finish(hist[len(hist)-1])
		}
		if err != nil {
			return rep, err
		}
		end, err := w.atEnd()
		if err != nil {
			return rep, err
		}
		if end && (!r.terminated || r.err != nil) {
			rep.Torn = &Torn{File: r.file, Line: r.line, Offset: r.offset, Bytes: r.size, Unreadable: r.terminated}
			rep.Note = rep.Torn.String()
			return rep, ec.finish(hist[len(hist)-1])
		}
		p1 := hist[len(hist)-1]
		if r.terminated && follows(p1, r) {
			if verr := ec.record(r); verr != nil {
				return rep, verr
			}
			hist = append(hist[len(hist)-1:], r)
			rep.Records++
			rep.HeadSeq, rep.HeadHash, rep.HeadTime = r.link.Seq, r.hash, r.link.Time
			continue
		}
		after, err := w.lookahead(8)
		if err != nil {
			return rep, err
		}
		return rep, diagnose(hist, r, after, missingBefore(files, r.fileIdx))
	}
}

// missingBefore names the files missing from the numbering just before
// files[i].
func missingBefore(files []chainFile, i int) string {
	from := 1
	if i > 0 {
		from = files[i-1].index + 1
	}
	var names []string
	for n := from; n < files[i].index && len(names) < 4; n++ {
		names = append(names, fileName(n))
	}
	switch {
	case len(names) == 0:
		return ""
	case files[i].index-from > len(names):
		return fmt.Sprintf("files %s... are missing", strings.Join(names, ", "))
	case len(names) == 1:
		return fmt.Sprintf("file %s is missing", names[0])
	default:
		return fmt.Sprintf("files %s are missing", strings.Join(names, ", "))
	}
}

// record is one line of the trail as Verify sees it.
type record struct {
	file       string
	fileIdx    int // index into the files being walked
	line       int
	offset     int64
	size       int64 // bytes without the newline
	terminated bool
	hash       string
	link       link
	err        error // why the line is not a record
	start      bool  // the start of the chain, before seq 1
}

// follows reports whether b is the record after a.
func follows(a, b record) bool {
	return b.err == nil && b.link.Seq == a.link.Seq+1 && b.link.Prev == a.hash
}

// diagnose names the first bad record, given the last two good records
// (hist), the first record that does not follow them (r) and the records
// after it. A change to a record shows at the next one, whose prev no
// longer matches; the records around tell an edit from an insertion, a
// deletion or a swap.
func diagnose(hist []record, r record, after []record, missing string) *VerifyError {
	p1 := hist[len(hist)-1]
	exp := p1.link.Seq + 1
	var n1 *record
	if len(after) > 0 {
		n1 = &after[0]
	}
	at := func(x record, p Problem, format string, args ...any) *VerifyError {
		return &VerifyError{File: x.file, Line: x.line, Seq: x.link.Seq, After: p1.link.Seq, Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	if r.err != nil || !r.terminated {
		if n1 != nil && follows(p1, *n1) {
			return at(record{file: r.file, line: r.line}, Inserted, "this line is not part of the chain: the next record (seq %d, %s line %d) links to the record before it", n1.link.Seq, n1.file, n1.line)
		}
		if r.err != nil {
			return at(record{file: r.file, line: r.line}, Edited, "this line is not a valid record (%v)", r.err)
		}
		return at(r, Edited, "the line has no newline but is not the end of the trail")
	}
	if len(hist) == 2 && follows(hist[0], r) {
		return at(p1, Inserted, "this record was inserted: the next record (seq %d, %s line %d) links past it", r.link.Seq, r.file, r.line)
	}
	if r.link.Seq != exp && belongsLater(r, after) {
		for _, a := range after {
			if a.link.Seq == exp {
				return at(r, Reordered, "records are out of order: seq %d comes here, but seq %d, the next in the chain, comes later (%s line %d)", r.link.Seq, exp, a.file, a.line)
			}
		}
	}
	if n1 != nil && follows(p1, *n1) {
		return at(r, Inserted, "this record is not part of the chain: the next record (seq %d, %s line %d) links to the record before it", n1.link.Seq, n1.file, n1.line)
	}
	if r.link.Seq == exp {
		switch {
		case n1 != nil && follows(r, *n1) && !p1.start:
			return at(p1, Edited, "this record was changed after it was written: its hash no longer matches the prev of the next record (seq %d, %s line %d)", r.link.Seq, r.file, r.line)
		case n1 != nil || p1.start:
			return at(r, Edited, "this record was changed after it was written: its prev does not match the record before it, and the record after it does not link to it")
		default:
			return at(r, BrokenLink, "its prev does not match the hash of the record before it: either this record was forged or changed, or the one before it (seq %d, %s line %d) was changed", p1.link.Seq, p1.file, p1.line)
		}
	}
	if r.link.Prev == p1.hash {
		return at(r, Edited, "its seq is %d where %d belongs, yet it links to the record before it: the seq was changed", r.link.Seq, exp)
	}
	if r.link.Seq > exp {
		detail := fmt.Sprintf("records seq %d to %d are missing before it", exp, r.link.Seq-1)
		if exp == r.link.Seq-1 {
			detail = fmt.Sprintf("record seq %d is missing before it", exp)
		}
		if p1.start {
			detail += " (the chain begins at seq 1)"
		}
		if missing != "" && r.line == 1 {
			detail += "; " + missing
		}
		return at(r, Deleted, "%s", detail)
	}
	return at(r, Reordered, "seq %d comes after seq %d: records are out of order or repeated", r.link.Seq, p1.link.Seq)
}

// belongsLater reports whether r links with one of the records after it,
// so that it is a genuine record out of place rather than a forgery.
func belongsLater(r record, after []record) bool {
	for _, a := range after {
		if a.link.Prev == r.hash || r.link.Prev == a.hash {
			return true
		}
	}
	return false
}

// walker reads the lines of a trail's files in order.
type walker struct {
	files  []chainFile
	i      int
	f      *os.File
	lr     *lineReader
	peeked *record
	peekE  error
}

func (w *walker) next() (record, error) {
	if w.peeked != nil || w.peekE != nil {
		r, err := w.peeked, w.peekE
		w.peeked, w.peekE = nil, nil
		if err != nil {
			return record{}, err
		}
		return *r, nil
	}
	return w.read()
}

// atEnd reports whether the trail has no line after the last one read.
func (w *walker) atEnd() (bool, error) {
	if w.peeked == nil && w.peekE == nil {
		r, err := w.read()
		if err != nil {
			w.peekE = err
		} else {
			w.peeked = &r
		}
	}
	if errors.Is(w.peekE, io.EOF) {
		return true, nil
	}
	return false, w.peekE
}

// lookahead returns up to n records after the last one read, stopping
// before a line that is not a record.
func (w *walker) lookahead(n int) ([]record, error) {
	var out []record
	for len(out) < n {
		r, err := w.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if r.err != nil {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

func (w *walker) read() (record, error) {
	for {
		if w.lr == nil {
			if w.i >= len(w.files) {
				return record{}, io.EOF
			}
			f, err := os.Open(w.files[w.i].path)
			if err != nil {
				return record{}, fmt.Errorf("audit trail: %w", err)
			}
			w.f, w.lr = f, newLineReader(f)
		}
		line, terminated, off, err := w.lr.next()
		if errors.Is(err, io.EOF) {
			w.close()
			w.i++
			continue
		}
		cf := w.files[w.i]
		if err != nil {
			return record{}, fmt.Errorf("audit trail %s: %w", cf.name, err)
		}
		r := record{file: cf.name, fileIdx: w.i, line: w.lr.line, offset: off, size: int64(len(line)),
			terminated: terminated, hash: lineHash(line)}
		r.link, r.err = parseLink(line)
		return r, nil
	}
}

func (w *walker) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f, w.lr = nil, nil
	}
}
