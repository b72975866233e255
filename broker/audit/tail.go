package audit

import (
	"bytes"
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

// tailChunk is how much readTail reads at a time, from the end backwards.
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
	size := fi.Size()

	// Read backwards until buf holds the final fragment and the two last
	// complete lines, or the whole file.
	start := size
	var buf []byte
	for start > 0 && bytes.Count(buf, []byte("\n")) < 3 {
		if size-start > 2*maxLine+2*tailChunk {
			return tail{}, fmt.Errorf("the last lines are longer than %d bytes", maxLine)
		}
		n := min(tailChunk, start)
		chunk := make([]byte, n, int(n)+len(buf))
		if _, err := f.ReadAt(chunk, start-n); err != nil && err != io.EOF {
			return tail{}, err
		}
		buf = append(chunk, buf...)
		start -= n
	}
	// lineStart is where the line ending just before end begins.
	lineStart := func(end int64) int64 {
		if i := bytes.LastIndexByte(buf[:end-start], '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		return start // only reached with start == 0: the first line
	}

	t := tail{size: size}
	keep := size // bytes before the cut
	if size > 0 && buf[len(buf)-1] != '\n' {
		if !repair {
			return tail{}, fmt.Errorf("the final line (at byte %d) is incomplete", lineStart(size))
		}
		keep = lineStart(size)
		t.cutReason = "incomplete final line, left by a crash during a write"
	}
	cutLine := false // whether a complete but unreadable line was cut
	for keep > 0 {
		ls := lineStart(keep - 1)
		line := buf[ls-start : keep-1]
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
		t.cutHash = lineHash(buf[keep-start:])
		if err := f.Truncate(keep); err != nil {
			return tail{}, fmt.Errorf("cut off %d bytes: %w", t.cut, err)
		}
		if err := f.Sync(); err != nil {
			return tail{}, fmt.Errorf("fsync after cutting: %w", err)
		}
	}
	return t, nil
}
