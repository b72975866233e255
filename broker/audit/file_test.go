package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileCommitAndChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	f := openTest(t, dir, 0)
	if seq, hash := f.Head(); seq != 0 || hash != ZeroHash {
		t.Fatalf("Head of a new trail = %d %s", seq, hash)
	}
	c := newClock()
	var got []Event
	for i := range 5 {
		e, err := f.Commit(context.Background(), sampleEvent(c, i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	ls := lines(t, trailFile(dir, 1))
	if len(ls) != 5 {
		t.Fatalf("%d lines, want 5", len(ls))
	}
	prev := ZeroHash
	for i, e := range got {
		if e.Seq != uint64(i+1) || e.Prev != prev {
			t.Errorf("record %d: seq %d prev %s, want %d %s", i, e.Seq, e.Prev, i+1, prev)
		}
		line, _ := encodeLine(e)
		if !bytes.Equal(line, ls[i]) {
			t.Errorf("line %d = %s, want the committed event %s", i+1, ls[i], line)
		}
		prev = lineHash(ls[i])
	}
	if seq, hash := f.Head(); seq != 5 || hash != prev {
		t.Errorf("Head = %d %s, want 5 %s", seq, hash, prev)
	}

	for path, want := range map[string]os.FileMode{dir: 0o700, trailFile(dir, 1): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("mode of %s = %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
}

func TestFileRotationAndReopen(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 40, 1500)
	files, err := listFiles(dir)
	if err != nil || len(files) < 3 {
		t.Fatalf("files %v, %v: want at least 3", files, err)
	}
	for i, cf := range files[1:] {
		ls := lines(t, cf.path)
		var first Event
		if err := jsonUnmarshal(ls[0], &first); err != nil {
			t.Fatal(err)
		}
		prevLast := lines(t, files[i].path)
		if first.Type != TypeRotated || first.Target != files[i].name || first.Prev != lineHash(prevLast[len(prevLast)-1]) {
			t.Errorf("%s starts with %s target %q prev %s: want audit_rotated from %s linked to its last line", cf.name, first.Type, first.Target, first.Prev, files[i].name)
		}
		fi, _ := os.Stat(cf.path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", cf.name, fi.Mode().Perm())
		}
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(40 + len(files) - 1); rep.Records != want || rep.HeadSeq != want {
		t.Errorf("report %+v, want %d records", rep, want)
	}

	// Reopened, the chain goes on where it ended, in the last file.
	f := openTest(t, dir, 1500)
	if seq, hash := f.Head(); seq != rep.HeadSeq || hash != rep.HeadHash {
		t.Errorf("reopened Head = %d %s, want %d %s", seq, hash, rep.HeadSeq, rep.HeadHash)
	}
	e, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{User: "bob"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != rep.HeadSeq+1 || e.Prev != rep.HeadHash {
		t.Errorf("next record seq %d prev %s, want %d %s", e.Seq, e.Prev, rep.HeadSeq+1, rep.HeadHash)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

// A MaxBytes smaller than one record puts one record in each file after
// its header, and does not rotate forever.
func TestFileTinyMaxBytes(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 5, 1)
	files, _ := listFiles(dir)
	if len(files) != 5 {
		t.Errorf("%d files, want 5", len(files))
	}
	for _, cf := range files[1:] {
		if n := len(lines(t, cf.path)); n != 2 {
			t.Errorf("%s has %d lines, want header and one record", cf.name, n)
		}
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestFileRefusesOpenDirAndSecondWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(dir, FileOptions{}); err == nil || !strings.Contains(err.Error(), "group or others may write") {
		t.Errorf("OpenFile of a 0777 directory = %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, 0)
	if _, err := OpenFile(dir, FileOptions{}); !errors.Is(err, ErrInUse) {
		t.Errorf("second OpenFile = %v, want ErrInUse", err)
	}
}

func TestFileRecoversTornTail(t *testing.T) {
	tests := []struct {
		name       string
		tail       string // appended after the last record
		wantCut    int64
		wantReason string
	}{
		{"incomplete line", `{"seq":11,"time":"2026-11-23T0`, 30, "incomplete final line"},
		{"zeros", "\x00\x00\x00\x00", 4, "incomplete final line"},
		{"unreadable line", "{\"seq\":11,garbage}\n", 19, "unreadable final line"},
		{"both", "garbage\n{\"seq\":1", 16, "incomplete final line and an unreadable line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTrail(t, dir, 10, 0)
			before, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			appendTo(t, trailFile(dir, 1), tt.tail)
			if rep, err := Verify(dir); tt.name != "both" && (err != nil || rep.Torn == nil || rep.Records != 10) {
				t.Errorf("Verify of a torn trail = %+v, %v; want a note", rep, err)
			}

			f := openTest(t, dir, 0)
			if seq, _ := f.Head(); seq != 11 {
				t.Errorf("Head after recovery = %d, want 11 (the audit_recovered record)", seq)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(dir)
			if err != nil || rep.Torn != nil {
				t.Fatalf("Verify after recovery = %+v, %v", rep, err)
			}
			ls := lines(t, trailFile(dir, 1))
			var rec Event
			if err := jsonUnmarshal(ls[len(ls)-1], &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Type != TypeRecovered || rec.Length != tt.wantCut || !strings.Contains(rec.Reason, tt.wantReason) ||
				rec.SHA256 != lineHash([]byte(tt.tail)) || rec.Target != fileName(1) || rec.Prev != before.HeadHash {
				t.Errorf("recovery record %+v: want %d bytes cut (%q), their hash, linked to seq 10", rec, tt.wantCut, tt.wantReason)
			}
		})
	}
}

// Two unreadable lines at the end are not a crash: OpenFile refuses to
// cut them.
func TestFileRefusesDamagedTail(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 3, 0)
	appendTo(t, trailFile(dir, 1), "bad\nworse\n")
	if _, err := OpenFile(dir, FileOptions{}); err == nil || !strings.Contains(err.Error(), "run shoji audit verify") {
		t.Errorf("OpenFile = %v, want a refusal", err)
	}
	if n := len(lines(t, trailFile(dir, 1))); n != 5 {
		t.Errorf("file has %d lines after the refusal, want all 5 kept", n)
	}
}

// A crash between creating a new file and writing its header leaves it
// empty; the chain goes on from the file before.
func TestFileRecoversEmptyNewFile(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 3, 0)
	before, _ := Verify(dir)
	if err := os.WriteFile(trailFile(dir, 2), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f := openTest(t, dir, 0)
	if _, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{User: "bob"})); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.Records != before.Records+2 {
		t.Fatalf("Verify = %+v, %v; want the header and one more record", rep, err)
	}
	var hdr Event
	if err := jsonUnmarshal(lines(t, trailFile(dir, 2))[0], &hdr); err != nil || hdr.Type != TypeRotated || hdr.Prev != before.HeadHash {
		t.Errorf("audit-000002 starts with %+v, %v", hdr, err)
	}
}

// Many concurrent Commit calls share fsyncs, and each returns its own
// durable record.
func TestFileGroupCommit(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	const workers, each = 32, 20
	c := newClock()
	var mu sync.Mutex
	seen := map[uint64]Event{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e, err := f.Commit(context.Background(), sampleEvent(c, w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				// Durable: the record is on disk when Commit returns.
				if seq, _ := f.Head(); seq < e.Seq {
					t.Errorf("Commit returned seq %d before the head (%d) reached it", e.Seq, seq)
				}
				mu.Lock()
				seen[e.Seq] = e
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct seqs, want %d", len(seen), workers*each)
	}
	for seq := uint64(1); seq <= workers*each; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Errorf("seq %d missing", seq)
		}
	}
	syncs := f.syncs.Load()
	if syncs >= workers*each {
		t.Errorf("%d fsyncs for %d commits: no group commit", syncs, workers*each)
	}
	t.Logf("%d fsyncs for %d commits", syncs, workers*each)
	// Each returned event is the line on disk.
	i := 0
	for e, err := range Scan(dir, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seen[e.Seq], e); diff != "" {
			t.Errorf("seq %d on disk differs from what Commit returned (-returned +disk):\n%s", e.Seq, diff)
		}
		i++
	}
	if i != workers*each {
		t.Errorf("scan found %d records", i)
	}
}

// Every Record event is either in the trail or counted by an
// audit_dropped record, however the writer keeps up.
func TestFileRecordAccountsForEveryEvent(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, FileOptions{QueueLimit: 2, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	c := newClock()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range n / 4 {
				f.Record(Navigation(c.Now(), Actor{User: fmt.Sprint("u", w)}, fmt.Sprint("https://a.example/", i)))
			}
		})
	}
	wg.Wait()
	f.Record(Event{Type: "BAD"}) // invalid: refused, and counted
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var written, dropped, invalid int64
	for e, err := range Scan(dir, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		switch e.Type {
		case TypeNavigation:
			written++
		case TypeDropped:
			dropped += e.Count
			if strings.Contains(e.Comment, "invalid=1") {
				invalid++
			}
		}
	}
	if written+dropped != n+1 || invalid != 1 {
		t.Errorf("%d written + %d dropped (%d invalid), want %d in all and 1 invalid", written, dropped, invalid, n+1)
	}
	t.Logf("%d written, %d dropped", written, dropped)
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestFileCommitRefusals(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	if _, err := f.Commit(context.Background(), Event{Type: TypeLogin}); !errors.Is(err, errInvalid) {
		t.Errorf("Commit without time = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Commit(ctx, Login(newClock().Now(), Actor{})); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{})); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	f.Record(Login(newClock().Now(), Actor{})) // logged, does not panic or block
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	select {
	case <-f.Notify():
	default:
		t.Error("Notify channel open after Close")
	}
}

func TestFileNotify(t *testing.T) {
	f := openTest(t, t.TempDir(), 0)
	ch := f.Notify()
	select {
	case <-ch:
		t.Fatal("Notify fired before any write")
	default:
	}
	if _, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{})); err != nil {
		t.Fatal(err)
	}
	<-ch // closed by the write; a hang here fails the test by its timeout
	if f.Notify() == ch {
		t.Error("Notify returned the spent channel")
	}
}

// When the file cannot be written or cut back, the sink fails closed:
// every Commit fails, and nothing is written after the damage.
func TestFileFailsClosed(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, FileOptions{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{User: "a"})); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Errorf("Err() of a working trail = %v", err)
	}
	// The writer is idle: take its file away.
	if err := f.cur.f.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.Commit(context.Background(), Login(newClock().Now(), Actor{User: "b"})); err == nil {
			t.Fatal("Commit succeeded without a file")
		}
	}
	if seq, _ := f.Head(); seq != 1 {
		t.Errorf("Head = %d after failed writes, want 1", seq)
	}
	if err := f.Err(); err == nil {
		t.Error("Err() = nil while writes fail")
	}
	f.Record(Login(newClock().Now(), Actor{User: "c"}))
	if err := f.Close(); err == nil {
		t.Error("Close reported no error for an unwritten record")
	}
	if err := f.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.Records != 1 {
		t.Errorf("Verify = %+v, %v; want the one record", rep, err)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// An event too large for a line is refused by Commit, and a Record of one
// is accounted for by audit_dropped.
func TestFileOversizedEvent(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	c := newClock()
	huge := PolicyChange(c.Now(), Actor{User: "alice"}, "policy", strings.Repeat("x", maxLine), "")
	if _, err := f.Commit(context.Background(), huge); !errors.Is(err, errInvalid) {
		t.Errorf("Commit of a huge event = %v, want errInvalid", err)
	}
	f.Record(huge)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var dropped []Event
	for e, err := range Scan(dir, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == TypeDropped {
			dropped = append(dropped, e)
		}
	}
	if len(dropped) != 1 || dropped[0].Count != 1 || dropped[0].Comment != "policy_change=1" {
		t.Errorf("audit_dropped records: %+v", dropped)
	}
}
