package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// queryTrail writes a small trail for the filter tests and returns the
// events as committed.
func queryTrail(t *testing.T, dir string) []Event {
	t.Helper()
	f := openTest(t, dir, 600) // several files
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
	bob := Actor{User: "bob", Role: "clinician", Terminal: "ward-3"}
	amy := Actor{User: "amy", Role: "clinician", Terminal: "ward-5"}
	adm := Actor{User: "alice", Role: "admin"}
	fileHash := strings.Repeat("0f", 32)
	in := []Event{
		Login(at(0), bob),
		Navigation(at(1), bob, "https://guide.example.jp/a"),
		Navigation(at(2), amy, "https://www.guide.example.jp:8443/b"),
		Deny(at(3), bob, "ads.example.com", "https://ads.example.com/x", "not-allowed", "not in the allowlist"),
		TransferStep(at(4), bob, Transfer{ID: "t1", Direction: DirectionDownload, Name: "lab.pdf", Size: 100, SHA256: fileHash, Source: "https://files.example.jp/lab.pdf", State: "scanned"}),
		TransferStep(at(5), bob, Transfer{ID: "t1", Direction: DirectionDownload, Name: "lab.pdf", Size: 100, SHA256: fileHash, Source: "https://files.example.jp/lab.pdf", State: "released"}),
		TransferStep(at(6), amy, Transfer{ID: "t2", Direction: DirectionDownload, Name: "lab (1).pdf", Size: 100, SHA256: strings.ToUpper(fileHash), Source: "https://files.example.jp/lab.pdf", State: "released"}),
		ClipboardText(at(7), amy, DirectionCopy, "text", "allowed", ""),
		UserChange(at(8), adm, "bob", "role", "clinician", "approver"),
		Logout(at(9), bob, "user"),
	}
	var out []Event
	for _, e := range in {
		got, err := f.Commit(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func collect(t *testing.T, seq iter.Seq2[Event, error]) []uint64 {
	t.Helper()
	var seqs []uint64
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if !sinkTypes[e.Type] {
			seqs = append(seqs, e.Seq)
		}
	}
	return seqs
}

func TestScanFilters(t *testing.T) {
	dir := t.TempDir()
	ev := queryTrail(t, dir)
	if files, _ := listFiles(dir); len(files) < 2 {
		t.Fatal("want several files")
	}
	seqs := func(idx ...int) []uint64 {
		var s []uint64
		for _, i := range idx {
			s = append(s, ev[i].Seq)
		}
		return s
	}
	base := ev[0].Time
	clip := ev[7].SHA256
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, seqs(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
		{"from inclusive, to exclusive", Filter{From: base.Add(2 * time.Hour), To: base.Add(4 * time.Hour)}, seqs(2, 3)},
		{"from in another zone", Filter{From: base.Add(8 * time.Hour).In(time.FixedZone("JST", 9*3600))}, seqs(8, 9)},
		{"user, any case", Filter{User: "AMY"}, seqs(2, 6, 7)},
		{"user acted on is not the actor", Filter{User: "alice"}, seqs(8)},
		{"type", Filter{Type: TypeTransfer}, seqs(4, 5, 6)},
		{"host of URL", Filter{Host: "guide.example.jp"}, seqs(1)},
		{"host with subdomains", Filter{Host: "*.guide.example.jp"}, seqs(1, 2)},
		{"host field", Filter{Host: "ADS.example.com."}, seqs(3)},
		{"host of transfer source", Filter{Host: "files.example.jp"}, seqs(4, 5, 6)},
		{"file hash, any case", Filter{SHA256: ev[4].Transfer.SHA256}, seqs(4, 5, 6)},
		{"clipboard hash", Filter{SHA256: clip}, seqs(7)},
		{"combined", Filter{User: "bob", Type: TypeTransfer, From: base.Add(5 * time.Hour)}, seqs(5)},
		{"nothing", Filter{User: "nobody"}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, collect(t, Scan(dir, tt.f))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	// The events come back as committed.
	var got []Event
	for e, err := range Scan(dir, Filter{User: "bob"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if diff := cmp.Diff([]Event{ev[0], ev[1], ev[3], ev[4], ev[5], ev[9]}, got); diff != "" {
		t.Errorf("scanned events differ (-committed +scanned):\n%s", diff)
	}

	// Stopping early is fine.
	for range Scan(dir, Filter{}) {
		break
	}
}

func TestScanDamagedLines(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 4, 0)
	ls := lines(t, trailFile(dir, 1))
	ls[1] = []byte("garbage")
	writeLines(t, trailFile(dir, 1), ls)
	appendTo(t, trailFile(dir, 1), `{"seq":5,"ti`) // a line being written
	var good, bad int
	for _, err := range Scan(dir, Filter{}) {
		if err != nil {
			bad++
			if !strings.Contains(err.Error(), "audit-000001.jsonl line 2") {
				t.Errorf("error %q does not name the line", err)
			}
			continue
		}
		good++
	}
	if good != 3 || bad != 1 {
		t.Errorf("%d events, %d errors; want 3 and 1", good, bad)
	}
	if _, err := Count(dir, Filter{}); err == nil {
		t.Error("Count over a damaged line reported no error")
	}
}

func TestCount(t *testing.T) {
	dir := t.TempDir()
	ev := queryTrail(t, dir)
	c, err := Count(dir, Filter{Type: ""})
	if err != nil {
		t.Fatal(err)
	}
	// Files after the first begin with an audit_rotated record.
	rotated := c.Types[TypeRotated]
	want := Counts{
		Events: 10 + rotated,
		Users:  map[string]int{"bob": 6, "amy": 3, "alice": 1},
		Types: map[Type]int{TypeLogin: 1, TypeNavigation: 2, TypeDeny: 1, TypeTransfer: 3, TypeClipboard: 1,
			TypeUserChange: 1, TypeLogout: 1, TypeRotated: rotated},
		Hosts: map[string]int{"guide.example.jp": 1, "www.guide.example.jp": 1, "ads.example.com": 1, "files.example.jp": 3},
		Files: map[string]FileCount{ev[4].Transfer.SHA256: {Name: "lab.pdf", Size: 100, Events: 3, Transfers: 2}},
	}
	if rotated == 0 {
		delete(want.Types, TypeRotated)
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Count (-want +got):\n%s", diff)
	}

	c, err = Count(dir, Filter{User: "bob", From: ev[4].Time})
	if err != nil {
		t.Fatal(err)
	}
	if c.Events != 3 || c.Users["bob"] != 3 || c.Files[ev[4].Transfer.SHA256].Transfers != 1 {
		t.Errorf("filtered Count = %+v", c)
	}
}

func TestWriteCSV(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	at := time.Date(2026, 11, 23, 9, 0, 0, 123, time.UTC)
	evil := Actor{User: "=HYPERLINK(\"http://x\")", Role: "+clinician", Terminal: "-1+2", Session: "@SUM(A1)"}
	for _, e := range []Event{
		Deny(at, evil, "\tads.example", "https://ads.example/?a=1,b=\"2\"", "＝cmd", "\rline"),
		TransferStep(at, Actor{User: "bob"}, Transfer{ID: "t1", Direction: DirectionDownload, Name: "=1+1.csv", Size: 42,
			SHA256: "ab", State: "released", Approver: "carol", Reason: "checked", Source: "https://files.example.jp/x"}),
		Clipboard(at, Actor{User: "amy"}, DirectionPaste, 5, "cd", "allowed", ""),
	} {
		if _, err := f.Commit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, Scan(dir, Filter{})); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, buf.String())
	}
	if diff := cmp.Diff(csvHeader, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want header and 3", len(rows))
	}
	col := func(row []string, name string) string { return row[slices.Index(csvHeader, name)] }
	deny, transfer, clip := rows[1], rows[2], rows[3]
	for name, want := range map[string]string{
		"seq": "1", "time": "2026-11-23T09:00:00.000000123Z", "type": "deny",
		"user": `'=HYPERLINK("http://x")`, "role": "'+clinician", "terminal": "'-1+2", "session": "'@SUM(A1)",
		"host": "'\tads.example", "url": `https://ads.example/?a=1,b="2"`, "rule": "'＝cmd", "reason": "'\rline",
	} {
		if got := col(deny, name); got != want {
			t.Errorf("deny %s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"type": "transfer", "file": "'=1+1.csv", "size": "42", "sha256": "ab", "direction": "download", "state": "released",
		"approver": "carol", "reason": "checked", "transfer_id": "t1", "host": "files.example.jp", "source": "https://files.example.jp/x",
	} {
		if got := col(transfer, name); got != want {
			t.Errorf("transfer %s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{"direction": "paste", "length": "5", "sha256": "cd", "outcome": "allowed", "size": ""} {
		if got := col(clip, name); got != want {
			t.Errorf("clipboard %s = %q, want %q", name, got, want)
		}
	}

	// An error from the events ends the export with it.
	failing := func(yield func(Event, error) bool) {
		if yield(Login(at, Actor{}), nil) {
			yield(Event{}, errors.New("disk on fire"))
		}
	}
	if err := WriteCSV(&bytes.Buffer{}, failing); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("WriteCSV = %v, want the events' error", err)
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "plain": "plain", "=1": "'=1", "+1": "'+1", "-1": "'-1", "@a": "'@a", "\tx": "'\tx", "\rx": "'\rx",
		"＝1": "'＝1", "＋1": "'＋1", "－1": "'－1", "＠a": "'＠a", "a=b": "a=b", "1-2": "1-2",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
