package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxLine bounds one record's line. An event larger than this is refused
// and a longer line in a file is an error, so a damaged file cannot make a
// reader hold gigabytes.
const maxLine = 8 << 20

// filePrefix and fileSuffix frame the chain's file names:
// audit-000001.jsonl, audit-000002.jsonl, ...
const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
)

func fileName(index int) string { return fmt.Sprintf("%s%06d%s", filePrefix, index, fileSuffix) }

// chainFile is one file of the chain.
type chainFile struct {
	index int
	name  string // base name
	path  string
}

// listFiles returns the chain's files in dir in order. Other files (the
// forwarder's cursor, temporary files) are ignored.
func listFiles(dir string) ([]chainFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []chainFile
	for _, ent := range ents {
		name := ent.Name()
		num, ok := strings.CutPrefix(name, filePrefix)
		if !ok || !ent.Type().IsRegular() {
			continue
		}
		num, ok = strings.CutSuffix(num, fileSuffix)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || strings.HasPrefix(num, "+") {
			continue
		}
		files = append(files, chainFile{index: n, name: name, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(files, func(a, b chainFile) int { return a.index - b.index })
	return files, nil
}

// encodeLine is e's line in the chain, without the newline. HTML
// characters are kept as they are so that URLs stay readable.
func encodeLine(e Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(line) > maxLine {
		return nil, fmt.Errorf("%w: %s event is %d bytes encoded, more than %d", errInvalid, e.Type, len(line), maxLine)
	}
	return line, nil
}

// lineHash is the hex SHA-256 of a line without its newline: the next
// record's prev.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// link is the part of a record the chain checks.
type link struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	Prev string    `json:"prev"`
	// Checkpoint is read for audit_checkpoint records.
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// parseLink reads the chain fields of a line, and refuses a line that is
// not a record.
func parseLink(line []byte) (link, error) {
	var l link
	if err := json.Unmarshal(line, &l); err != nil {
		return l, fmt.Errorf("not a JSON record: %w", err)
	}
	if l.Seq == 0 {
		return l, errors.New("no seq")
	}
	if len(l.Prev) != 64 {
		return l, errors.New("no prev hash")
	}
	return l, nil
}

// lineReader reads a file's lines, each with its number and offset.
type lineReader struct {
	r      *bufio.Reader
	line   int   // number of the line last read, from 1
	offset int64 // offset of the next line
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline, whether it had one, and
// its offset. It returns io.EOF after the last line.
func (lr *lineReader) next() (line []byte, terminated bool, offset int64, err error) {
	offset = lr.offset
	for {
		frag, err := lr.r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine+1 {
			return nil, false, offset, fmt.Errorf("line %d is longer than %d bytes", lr.line+1, maxLine)
		}
		switch {
		case err == nil:
			lr.line++
			lr.offset += int64(len(line))
			return line[:len(line)-1], true, offset, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, false, offset, io.EOF
			}
			lr.line++
			lr.offset += int64(len(line))
			return line, false, offset, nil
		default:
			return nil, false, offset, err
		}
	}
}
