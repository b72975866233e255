package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// tail is the end of one chain file, as readTail found (and repaired) it.
type tail struct {
	size  int64 // bytes kept
	empty bool  // no complete record
	seq   uint64
	hash  string
	// onlyHeader: the file's one record is its audit_rotated header.
	onlyHeader bool
	// cut, cutHash and cutReason describe the bytes cut off the end.
	cut       int64
	cutHash   string
	cutReason string
}

// tailChunk is how much readTail reads first, from the end backwards; each
// further read doubles what it holds.
const tailChunk = 64 << 10

// readTail reads the last record of the file at path. With repair it cuts
// off an incomplete final line (no newline) and then at most one final
// line that is not a record, and makes the cut durable; without repair
// either is an error.
func readTail(path string, repair bool) (tail, error) {
	flag := os.O_RDONLY
	if repair {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return tail{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return tail{}, err
	}
	t, err := scanTail(f, fi.Size(), tailChunk, repair)
	if err != nil || t.cut == 0 {
		return t, err
	}
	if err := f.Truncate(t.size); err != nil {
		return tail{}, fmt.Errorf("cut off %d bytes: %w", t.cut, err)
	}
	if err := f.Sync(); err != nil {
		return tail{}, fmt.Errorf("fsync after cutting: %w", err)
	}
	return t, nil
}

// scanTail finds the last record of a chain file of size bytes, reading r
// from the end backwards, chunk bytes first. It decides what readTail
// cuts but changes nothing.
func scanTail(r io.ReaderAt, size, chunk int64, repair bool) (tail, error) {
	w := &tailWindow{r: r, size: size, start: size, chunk: chunk}
	t := tail{size: size}
	keep := size // bytes before the cut
	if size > 0 {
		last, err := w.slice(size-1, size)
		if err != nil {
			return tail{}, err
		}
		if last[0] != '\n' {
			ls, err := w.lineStart(size)
			if err != nil {
				return tail{}, err
			}
			if !repair {
				return tail{}, fmt.Errorf("the final line (at byte %d) is incomplete", ls)
			}
			keep = ls
			t.cutReason = "incomplete final line, left by a crash during a write"
		}
	}
	cutLine := false // whether a complete but unreadable line was cut
	for keep > 0 {
		ls, err := w.lineStart(keep - 1)
		if err != nil {
			return tail{}, err
		}
		line, err := w.slice(ls, keep-1)
		if err != nil {
			return tail{}, err
		}
		l, err := parseLink(line)
		if err == nil {
			t.seq, t.hash = l.Seq, lineHash(line)
			t.onlyHeader = ls == 0 && l.Type == TypeRotated
			break
		}
		if !repair || cutLine {
			return tail{}, fmt.Errorf("the last record, at byte %d, is not readable (%v): run shoji audit verify", ls, err)
		}
		cutLine = true
		if t.cutReason == "" {
			t.cutReason = "unreadable final line, left by a crash during a write"
		} else {
			t.cutReason = "incomplete final line and an unreadable line before it, left by a crash during a write"
		}
		keep = ls
	}
	t.empty = keep == 0
	t.size = keep
	t.cut = size - keep
	if t.cut > 0 {
		cut, err := w.slice(keep, size)
		if err != nil {
			return tail{}, err
		}
		t.cutHash = lineHash(cut)
	}
	return t, nil
}

// tailWindow holds the end of a file in memory, from start to size. Every
// offset its methods take and return is an offset in the file; only slice
// turns one into an index into buf.
type tailWindow struct {
	r     io.ReaderAt
	size  int64
	start int64  // file offset of buf[0]
	buf   []byte // the file's bytes from start to size
	chunk int64  // the first read's size
}

// extend reads the bytes before the window: chunk bytes the first time,
// then as many as the window holds, so that a long line costs a few
// reads, not one per chunk.
func (w *tailWindow) extend() error {
	n := min(max(w.chunk, int64(len(w.buf))), w.start)
	b := make([]byte, n, n+int64(len(w.buf)))
	got, err := w.r.ReadAt(b, w.start-n)
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return fmt.Errorf("read bytes %d to %d: %w", w.start-n, w.start, err)
	}
	w.buf = append(b, w.buf...)
	w.start -= n
	return nil
}

// slice returns the file's bytes from..to, reading back as far as from.
func (w *tailWindow) slice(from, to int64) ([]byte, error) {
	if from < 0 || from > to || to > w.size {
		return nil, fmt.Errorf("bytes %d to %d are outside the file's %d", from, to, w.size)
	}
	for from < w.start {
		if err := w.extend(); err != nil {
			return nil, err
		}
	}
	return w.buf[from-w.start : to-w.start], nil
}

// lineStart is the offset where the line that ends at end (at its newline,
// or at the end of the file) begins. A line longer than maxLine is an
// error, so a damaged file cannot make it read gigabytes.
func (w *tailWindow) lineStart(end int64) (int64, error) {
	for {
		seen, err := w.slice(w.start, end)
		if err != nil {
			return 0, err
		}
		ls := int64(-1)
		if i := bytes.LastIndexByte(seen, '\n'); i >= 0 {
			ls = w.start + int64(i) + 1
		} else if w.start == 0 {
			ls = 0
		}
		if end-max(ls, w.start) > maxLine {
			return 0, fmt.Errorf("the line ending at byte %d is longer than %d bytes", end, maxLine)
		}
		if ls >= 0 {
			return ls, nil
		}
		if err := w.extend(); err != nil {
			return 0, err
		}
	}
}
