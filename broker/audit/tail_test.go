package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestFileReopensLargeTrails writes trails larger than readTail's first
// read (one file of 70 KiB, one of several MiB with lines longer than a
// chunk, and many small files), stops the sink, optionally tears or spoils
// the final line as a crash would, and checks that OpenFile (with a
// checkpoint key) continues the chain and Verify accepts the result,
// checkpoints and clean stop included.
func TestFileReopensLargeTrails(t *testing.T) {
	trails := []struct {
		name     string
		maxBytes int64
		size     int64 // total bytes to write at least
		bigEvery int   // every bigEvery-th event is larger than tailChunk; 0 none
	}{
		{"one file of 70 KiB", 0, 70 << 10, 0},
		{"one file of 3 MiB with long lines", 0, 3 << 20, 7},
		{"many files of 100 KiB", 100 << 10, 1 << 20, 11},
	}
	endings := []struct {
		name string
		tail string // appended after the last record
		cut  bool
	}{
		{"clean", "", false},
		{"incomplete final line", `{"seq":99999,"time":"2026-11-23T0`, true},
		{"unreadable final line", "{\"seq\":99999,garbage}\n", true},
	}
	for _, tr := range trails {
		dir := t.TempDir()
		n := writeLargeTrail(t, dir, tr.size, tr.maxBytes, tr.bigEvery)
		files, err := listFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		last := files[len(files)-1].path
		if fi, err := os.Stat(last); err != nil || (tr.maxBytes == 0 && fi.Size() < tr.size) {
			t.Fatalf("%s: last file %v, %v: want at least %d bytes", tr.name, fi.Size(), err, tr.size)
		}
		if tr.maxBytes > 0 && len(files) < 5 {
			t.Fatalf("%s: %d files, want at least 5", tr.name, len(files))
		}
		pristine := snapshotDir(t, dir)
		for _, end := range endings {
			t.Run(tr.name+"/"+end.name, func(t *testing.T) {
				restoreDir(t, dir, pristine)
				before, err := Verify(dir)
				if err != nil || before.Records != uint64(n) {
					t.Fatalf("Verify before = %d records, %v; want %d", before.Records, err, n)
				}
				appendTo(t, last, end.tail)

				key := testKey(3)
				f, err := OpenFile(dir, FileOptions{MaxBytes: tr.maxBytes, Now: newClock().Now, CheckpointKey: key})
				if err != nil {
					t.Fatalf("OpenFile: %v", err)
				}
				want := before.HeadSeq + 2 // after the open checkpoint
				if end.cut {
					want++ // the audit_recovered record comes first
				}
				e, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{User: "after-restart"}))
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
				if e.Seq != want {
					t.Errorf("the first record after reopening has seq %d, want %d", e.Seq, want)
				}
				rep, err := VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{key.Public()}, RequireSealed: true})
				if err != nil || rep.Torn != nil || rep.HeadSeq != want+1 || rep.Checkpoints != 2 {
					t.Fatalf("Verify after reopening = head %d, torn %v, %d checkpoints, %v; want an intact sealed trail to seq %d", rep.HeadSeq, rep.Torn, rep.Checkpoints, err, want+1)
				}
			})
		}
	}
}

// writeLargeTrail writes events into a new trail in dir until it holds at
// least size bytes and returns how many records it holds.
func writeLargeTrail(t *testing.T, dir string, size, maxBytes int64, bigEvery int) int {
	t.Helper()
	f, err := OpenFile(dir, FileOptions{MaxBytes: maxBytes, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	var written int64
	var last Event
	for i := 0; written < size; i++ {
		e := sampleEvent(c, i)
		if bigEvery > 0 && i%bigEvery == bigEvery-1 {
			e = PolicyChange(c.Now(), Actor{User: "admin"}, "big", strings.Repeat("b", tailChunk+i%1000), strings.Repeat("a", i))
		}
		line, err := encodeLine(e)
		if err != nil {
			t.Fatal(err)
		}
		written += int64(len(line)) + 65 // and prev, a newline
		f.Record(e)
		if i%1000 == 999 {
			// Commit now and then so that the queue never fills.
			if last, err = f.Commit(context.Background(), sampleEvent(c, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if last, err = f.Commit(context.Background(), sampleEvent(c, 0)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return int(last.Seq)
}

// snapshotDir reads every file of a trail; restoreDir puts them back.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, cf := range files {
		if m[cf.path], err = os.ReadFile(cf.path); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func restoreDir(t *testing.T, dir string, m map[string][]byte) {
	t.Helper()
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range files {
		if _, ok := m[cf.path]; !ok {
			if err := os.Remove(cf.path); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, data := range m {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanTailBoundaries checks scanTail against the reference for files
// whose lines and sizes sit on, just before and just after the edges of
// its reads, with the real chunk size and a small one.
func TestScanTailBoundaries(t *testing.T) {
	for _, chunk := range []int64{tailChunk, 256} {
		c := int(chunk)
		var sizes []int
		for _, k := range []int{0, 1, 2, 3} {
			for _, d := range []int{-2, -1, 0, 1, 2} {
				if s := k*c + d; s >= 0 {
					sizes = append(sizes, s)
				}
			}
		}
		for _, size := range sizes {
			for _, lineLen := range []int{minTestLine, c - 1, c, c + 1, 2*c + 1} {
				for ending := range tailEndings {
					data := tailFile(size, lineLen, ending, lineLen, ending%2 == 0)
					for _, repair := range []bool{false, true} {
						checkScanTail(t, data, chunk, repair)
					}
				}
			}
		}
	}
}

// FuzzReadTail checks scanTail, which finds the end of a file by reading
// it backwards in chunks, against a reference that reads the whole file
// and splits it into lines, over file sizes and line lengths around the
// chunk size and its multiples.
func FuzzReadTail(f *testing.F) {
	for _, seed := range []struct {
		size, lineLen, fragLen uint32
		ending                 uint8
		small, repair, header  bool
	}{
		{tailChunk, 200, 0, 0, false, true, false},
		{tailChunk + 1, tailChunk - 1, 10, 1, false, true, false},
		{2*tailChunk - 1, tailChunk + 1, tailChunk, 3, false, true, true},
		{70 << 10, 300, 5, 2, false, false, false},
		{255, 130, 255, 1, true, true, false},
		{257, 256, 257, 4, true, true, true},
		{513, 300, 1, 5, true, false, false},
		{0, 0, 0, 6, true, true, true},
	} {
		f.Add(seed.size, seed.lineLen, seed.fragLen, seed.ending, seed.small, seed.repair, seed.header)
	}
	f.Fuzz(func(t *testing.T, size, lineLen, fragLen uint32, ending uint8, small, repair, header bool) {
		chunk := int64(tailChunk)
		if small {
			chunk = 256
		}
		c := uint32(chunk)
		data := tailFile(int(size%(3*c+600)), int(lineLen%(3*c)), int(ending)%len(tailEndings), int(fragLen%(2*c+2)), header)
		checkScanTail(t, data, chunk, repair)
	})
}

// checkScanTail compares scanTail with the reference on data.
func checkScanTail(t *testing.T, data []byte, chunk int64, repair bool) {
	t.Helper()
	got, err := scanTail(bytes.NewReader(data), int64(len(data)), chunk, repair)
	want, ok := refTail(data, repair)
	switch {
	case err != nil && ok:
		t.Fatalf("%d bytes, chunk %d, repair %v: scanTail: %v; want %+v", len(data), chunk, repair, err, want)
	case err == nil && !ok:
		t.Fatalf("%d bytes, chunk %d, repair %v: scanTail = %+v; want an error", len(data), chunk, repair, got)
	case ok && got != want:
		t.Fatalf("%d bytes, chunk %d, repair %v: scanTail =\n%+v\nwant\n%+v", len(data), chunk, repair, got, want)
	}
}

// refTail is what scanTail must find, worked out from the whole file.
func refTail(data []byte, repair bool) (tail, bool) {
	parts := bytes.SplitAfter(data, []byte("\n"))
	var frag []byte
	if n := len(parts); n > 0 && !bytes.HasSuffix(parts[n-1], []byte("\n")) {
		frag, parts = parts[n-1], parts[:n-1]
	}
	t := tail{}
	keep := len(data) - len(frag)
	if len(frag) > 0 {
		if !repair {
			return tail{}, false
		}
		t.cutReason = "incomplete final line, left by a crash during a write"
	}
	cutLine := false
	for i := len(parts) - 1; i >= 0; i-- {
		line := bytes.TrimSuffix(parts[i], []byte("\n"))
		if l, err := parseLink(line); err == nil {
			t.seq, t.hash = l.Seq, lineHash(line)
			t.onlyHeader = i == 0 && l.Type == TypeRotated
			break
		}
		if !repair || cutLine {
			return tail{}, false
		}
		cutLine = true
		if t.cutReason == "" {
			t.cutReason = "unreadable final line, left by a crash during a write"
		} else {
			t.cutReason = "incomplete final line and an unreadable line before it, left by a crash during a write"
		}
		keep -= len(parts[i])
	}
	t.size, t.empty, t.cut = int64(keep), keep == 0, int64(len(data)-keep)
	if t.cut > 0 {
		t.cutHash = lineHash(data[keep:])
	}
	return t, true
}

// tailEndings are the ways a test file ends after its records.
var tailEndings = []string{
	"clean",
	"incomplete line",
	"unreadable line",
	"unreadable line, then incomplete line",
	"two unreadable lines",
	"zeros",
	"record without newline",
}

// minTestLine is the shortest record line testLine makes.
const minTestLine = 130

// testLine is a record line of exactly n bytes (at least minTestLine),
// without the newline.
func testLine(seq int, typ Type, n int) []byte {
	head := fmt.Sprintf(`{"seq":%d,"time":"2026-11-23T00:00:00Z","type":"%s","comment":"`, seq, typ)
	tail := `","prev":"` + strings.Repeat("c", 64) + `"}`
	pad := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("p", pad) + tail)
}

// tailFile is a chain file of records lineLen bytes long (the last one
// longer to make up size), followed by one of tailEndings, whose broken
// lines are fragLen bytes long. With header its first record is an
// audit_rotated header.
func tailFile(size, lineLen, ending, fragLen int, header bool) []byte {
	lineLen = max(lineLen, minTestLine)
	var b bytes.Buffer
	for seq := 1; size-b.Len() >= minTestLine+1; seq++ {
		typ := TypeLogin
		if seq == 1 && header {
			typ = TypeRotated
		}
		n := lineLen
		if rest := size - b.Len() - 1; rest-n-1 < minTestLine {
			n = rest // the last line takes what is left
		}
		b.Write(testLine(seq, typ, n))
		b.WriteByte('\n')
	}
	fragLen = max(fragLen, 1)
	garbage := func() { b.WriteString(strings.Repeat("x", fragLen-1) + "\n") }
	partial := func() { b.Write(testLine(99, TypeLogin, fragLen+minTestLine)[:fragLen]) }
	switch tailEndings[ending] {
	case "incomplete line":
		partial()
	case "unreadable line":
		garbage()
	case "unreadable line, then incomplete line":
		garbage()
		partial()
	case "two unreadable lines":
		garbage()
		garbage()
	case "zeros":
		b.Write(make([]byte, fragLen))
	case "record without newline":
		b.Write(testLine(99, TypeLogin, minTestLine))
	}
	return b.Bytes()
}

// TestScanTailLongLine checks that a final line longer than maxLine is an
// error rather than a read of the whole file.
func TestScanTailLongLine(t *testing.T) {
	data := append(testLine(1, TypeLogin, minTestLine), '\n')
	data = append(data, bytes.Repeat([]byte("x"), maxLine+2)...)
	data = append(data, '\n')
	_, err := scanTail(bytes.NewReader(data), int64(len(data)), tailChunk, true)
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("scanTail of a file ending in a %d-byte line = %v, want an error", maxLine+2, err)
	}
}
