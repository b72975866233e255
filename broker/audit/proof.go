package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// VerifyOptions are the checks of the trail's end that VerifyWith makes
// beyond the chain.
type VerifyOptions struct {
	// Keys are the public keys checkpoints may be signed with. With keys,
	// every checkpoint's signature must verify with the key it names,
	// the trail must hold a checkpoint, and no more records may follow a
	// checkpoint than its Every before the next one. None: signatures
	// and cadence are not checked.
	Keys []*PublicKey
	// RequireSealed makes it an error when the trail does not end with a
	// clean-stop checkpoint: use it on the trail of a broker that was
	// stopped cleanly. It needs Keys.
	RequireSealed bool
	// Against is a file holding a syslog collector's copy of the trail
	// (see readCopy): every record in both must be identical, and the
	// copy must hold no record after the trail's last.
	Against string
}

// CopyReport is what the comparison with a collector's copy found.
type CopyReport struct {
	File string
	// Records is how many distinct records the copy holds, FirstSeq and
	// LastSeq their range.
	Records           int
	FirstSeq, LastSeq uint64
	// Matched is how many records of the trail the copy holds, byte for
	// byte; Missing how many records of the trail from FirstSeq on it
	// lacks (not forwarded yet, or lost by the collector).
	Matched, Missing uint64
	// Skipped counts the copy's lines that hold no readable record (other
	// messages, or records the collector cut short).
	Skipped int
}

// endCheck makes the checks of VerifyOptions as Verify walks the chain,
// one good record at a time.
type endCheck struct {
	rep  *Report
	opts VerifyOptions
	keys map[string]*PublicKey
	cp   *collectorCopy
	// since counts the records after the last checkpoint that count
	// towards its Every (all but checkpoint, rotated and recovered).
	since int64
}

func newEndCheck(rep *Report, opts VerifyOptions, cp *collectorCopy) *endCheck {
	ec := &endCheck{rep: rep, opts: opts, cp: cp, keys: map[string]*PublicKey{}}
	for _, k := range opts.Keys {
		ec.keys[k.ID()] = k
	}
	rep.Signed = len(opts.Keys) > 0
	if cp != nil {
		rep.Copy = &CopyReport{File: cp.name, Records: len(cp.recs), FirstSeq: cp.first, LastSeq: cp.last, Skipped: cp.skipped}
	}
	return ec
}

// record checks r, a record that follows the chain.
func (ec *endCheck) record(r record) *VerifyError {
	at := func(p Problem, format string, args ...any) *VerifyError {
		return &VerifyError{File: r.file, Line: r.line, Seq: r.link.Seq, Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	if ec.cp != nil {
		if c, ok := ec.cp.recs[r.link.Seq]; ok {
			if c.hash != r.hash {
				return at(DiffersFromCopy, "the collector's copy of seq %d (%s line %d) is another record: this record or the copy was changed", r.link.Seq, ec.cp.name, c.line)
			}
			ec.rep.Copy.Matched++
		} else if len(ec.cp.recs) > 0 && r.link.Seq >= ec.cp.first {
			ec.rep.Copy.Missing++
		}
	}
	switch r.link.Type {
	case TypeCheckpoint:
	case TypeRotated, TypeRecovered:
		ec.rep.Unsigned++
		return nil
	default:
		ec.rep.Unsigned++
		ec.since++
		if last := ec.rep.LastCheckpoint; last != nil && last.Reason == CheckpointClose {
			ec.rep.WhileStoppedCount++
			if len(ec.rep.WhileStopped) < 100 {
				ec.rep.WhileStopped = append(ec.rep.WhileStopped, r.link.Seq)
			}
		}
		if last := ec.rep.LastCheckpoint; ec.rep.Signed && last != nil && ec.since > last.Every {
			return at(MissingCheckpoint, "%d records follow the checkpoint at seq %d (%s line %d) without another, but it promised one at least every %d: "+
				"checkpoints were removed (the chain was rewritten from there), or the broker ran without its checkpoint key", ec.since, last.Seq, last.File, last.Line, last.Every)
		}
		return nil
	}

	c := r.link.Checkpoint
	if c == nil {
		return at(BadCheckpoint, "the checkpoint record has no checkpoint fields")
	}
	if c.Seq != r.link.Seq-1 || c.Hash != r.link.Prev {
		return at(BadCheckpoint, "it signs seq %d with hash %s, but the record before it is seq %d with hash %s: "+
			"the records before it were changed after it was signed, and the chain recomputed", c.Seq, c.Hash, r.link.Seq-1, r.link.Prev)
	}
	if ec.rep.Signed {
		k := ec.keys[c.KeyID]
		if k == nil {
			return at(BadCheckpoint, "it is signed by key %q, which is not among the keys given: a checkpoint of another broker, or forged with another key", c.KeyID)
		}
		if !k.verify(checkpointMessage(c.KeyID, c.Seq, c.Hash, r.link.Time, c.Reason, c.Every), c.Sig) {
			return at(BadCheckpoint, "its signature does not verify with key %s: the checkpoint was forged or changed", c.KeyID)
		}
	}
	if !slices.Contains(ec.rep.KeyIDs, c.KeyID) {
		ec.rep.KeyIDs = append(ec.rep.KeyIDs, c.KeyID)
	}
	if last := ec.rep.LastCheckpoint; c.Reason == CheckpointOpen && last != nil && last.Reason != CheckpointClose {
		ec.rep.UncleanStarts = append(ec.rep.UncleanStarts, r.link.Seq)
	}
	ec.rep.Checkpoints++
	ec.rep.LastCheckpoint = &CheckpointRecord{Seq: r.link.Seq, Time: r.link.Time, File: r.file, Line: r.line, Checkpoint: *c}
	ec.rep.Unsigned, ec.since = 0, 0
	return nil
}

// finish checks the end of the trail, whose last good record is head
// (the start of the chain when it has none).
func (ec *endCheck) finish(head record) error {
	rep := ec.rep
	last := rep.LastCheckpoint
	rep.Sealed = last != nil && last.Seq == rep.HeadSeq && last.Reason == CheckpointClose && rep.Torn == nil
	at := func(p Problem, format string, args ...any) error {
		return &VerifyError{File: head.file, Line: head.line, Seq: head.link.Seq, Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	if head.start {
		head.file = rep.Files[0]
	}
	if ec.cp != nil && ec.cp.last > rep.HeadSeq {
		return at(CutTail, "the collector holds records up to seq %d (%s line %d); the trail ends at seq %d: records were cut off the end of the trail",
			ec.cp.last, ec.cp.name, ec.cp.recs[ec.cp.last].line, rep.HeadSeq)
	}
	if !rep.Signed {
		return nil
	}
	if last == nil {
		return at(MissingCheckpoint, "the trail holds no checkpoint: it was never written with a checkpoint key, or its checkpoints were removed")
	}
	if ec.opts.RequireSealed && !rep.Sealed {
		return at(MissingCheckpoint, "the trail does not end with a clean-stop checkpoint: %d record(s) after the checkpoint at seq %d (%s, reason %s) are not signed; "+
			"records were added after the broker stopped, or the trail was cut, or the broker did not stop cleanly", rep.Unsigned, last.Seq, last.Time.Format("2006-01-02T15:04:05Z07:00"), last.Reason)
	}
	return nil
}

// collectorCopy is a syslog collector's copy of a trail: the line hash of
// each record it holds, by seq.
type collectorCopy struct {
	name        string
	recs        map[uint64]copyRecord
	first, last uint64
	skipped     int
}

type copyRecord struct {
	hash string
	line int // line (or message) number in the copy, from 1
}

// recordStart begins every record's line; a syslog message holds it right
// after its header.
var recordStart = []byte(`{"seq":`)

// readCopy reads a collector's copy of the trail from path. It takes
//
//   - the messages the Forwarder sends (RFC 5424 with octet-counting
//     framing, one after another, as a raw capture of the connection
//     holds them), or
//   - one message per line, with or without the length prefix, in RFC
//     5424 or any other syslog format that keeps the message as sent, or
//   - plain JSON lines, as in the trail itself.
//
// In each message or line the record is everything from its first
// `{"seq":` to its end. Lines without one are skipped and counted.
func readCopy(path string) (*collectorCopy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("collector's copy: %w", err)
	}
	defer f.Close()
	cp := &collectorCopy{name: path, recs: map[uint64]copyRecord{}}
	br := bufio.NewReaderSize(f, 64<<10)
	next := readCopyLine
	if head, _ := br.Peek(16); isOctetCounted(head) {
		next = readFrame
	}
	for n := 1; ; n++ {
		msg, err := next(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("collector's copy %s, message %d: %w", path, n, err)
		}
		if err := cp.add(msg, n); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// add takes the record in message n of the copy.
func (cp *collectorCopy) add(msg []byte, n int) error {
	i := bytes.Index(msg, recordStart)
	if i < 0 {
		cp.skipped++
		return nil
	}
	line := bytes.TrimRight(msg[i:], "\r\n")
	l, err := parseLink(line)
	if err != nil {
		cp.skipped++
		return nil
	}
	h := lineHash(line)
	if prev, ok := cp.recs[l.Seq]; ok {
		if prev.hash != h {
			return fmt.Errorf("collector's copy %s holds two different records with seq %d (lines %d and %d): "+
				"it holds the records of more than one broker (keep one host's), or it was changed", cp.name, l.Seq, prev.line, n)
		}
		return nil // sent twice: after a reconnect the Forwarder may resend
	}
	cp.recs[l.Seq] = copyRecord{hash: h, line: n}
	if len(cp.recs) == 1 || l.Seq < cp.first {
		cp.first = l.Seq
	}
	cp.last = max(cp.last, l.Seq)
	return nil
}

// isOctetCounted reports whether b begins an octet-counted message:
// digits, a space, and "<".
func isOctetCounted(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i > 0 && i+1 < len(b) && b[i] == ' ' && b[i+1] == '<'
}

// maxCopyLine bounds a message of the copy: the longest record and a
// syslog header.
const maxCopyLine = maxLine + 4096

// readCopyLine reads one line.
func readCopyLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxCopyLine {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxCopyLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// readFrame reads one octet-counted message (RFC 6587): its length in
// decimal, a space, and that many bytes. Line ends between messages are
// skipped.
func readFrame(br *bufio.Reader) ([]byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' && b != '\r' {
			_ = br.UnreadByte()
			break
		}
	}
	num, err := br.ReadString(' ')
	if err != nil {
		return nil, fmt.Errorf("message length: %w", io.ErrUnexpectedEOF)
	}
	n, err := strconv.Atoi(num[:len(num)-1])
	if err != nil || n < 1 || n > maxCopyLine {
		return nil, fmt.Errorf("message length %q: want a number from 1 to %d (octet-counted framing)", num[:len(num)-1], maxCopyLine)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(br, msg); err != nil {
		return nil, fmt.Errorf("message of %d bytes: %w", n, io.ErrUnexpectedEOF)
	}
	return msg, nil
}
