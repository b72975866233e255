package audit

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeLedger is a transfer ledger that answers a fixed extract and keeps
// the filter it was asked with.
type fakeLedger struct {
	part  LedgerExtract
	err   error
	asked Filter
}

func (l *fakeLedger) Extract(f Filter) (LedgerExtract, error) {
	l.asked = f
	return l.part, l.err
}

// readBundle returns the files of a ZIP by name.
func readBundle(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("the bundle is not a ZIP: %v", err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		files[zf.Name] = b.Bytes()
	}
	return files
}

// TestWriteEvidence checks a bundle: the manifest's hashes match the
// files, the bundled chain verifies on its own, the matching records and
// the ledger's part are there, kept quarantined files are included, and a
// kept file that is gone is named as missing while a removed one is not.
func TestWriteEvidence(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "audit")
	f := openTest(t, dir, 0)
	c := newClock()
	for i := range 30 {
		f.Record(sampleEvent(c, i))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(root, "kept.pdf")
	if err := os.WriteFile(kept, []byte("%PDF-1.4 result"), 0o600); err != nil {
		t.Fatal(err)
	}
	ledger := &fakeLedger{part: LedgerExtract{
		Transfers: []map[string]string{{"id": "t1"}, {"id": "t2"}, {"id": "t3"}},
		Files: []LedgerFile{
			{ID: "t1", Path: kept, Kept: true},
			{ID: "t2", Path: filepath.Join(root, "gone"), Kept: true},
			{ID: "t3", Path: filepath.Join(root, "removed"), Kept: false},
		},
	}}
	filter := Filter{User: "u1"}
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	if err := WriteEvidence(&buf, dir, ledger, filter, "eye", now); err != nil {
		t.Fatalf("WriteEvidence: %v", err)
	}
	if ledger.asked != filter {
		t.Errorf("the ledger was asked %+v; want the filter %+v", ledger.asked, filter)
	}
	files := readBundle(t, buf.Bytes())
	var m EvidenceManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.By != "eye" || m.User != "u1" || !m.Created.Equal(now) || m.Records != 6 || m.Ledger != 3 || m.Files != 1 ||
		!strings.HasPrefix(m.Chain, "intact: ") || !slices.Equal(m.Missing, []string{"t2"}) {
		t.Errorf("manifest %+v", m)
	}
	for name := range files {
		if _, ok := m.Contents[name]; !ok && name != "manifest.json" {
			t.Errorf("%s is in the bundle but not in the manifest", name)
		}
	}
	chainDir := t.TempDir()
	for name, want := range m.Contents {
		b, ok := files[name]
		if !ok {
			t.Errorf("%s is in the manifest but not in the bundle", name)
			continue
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("%s: the manifest's hash does not match the file", name)
		}
		if base, ok := strings.CutPrefix(name, "chain/"); ok {
			if err := os.WriteFile(filepath.Join(chainDir, base), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep, err := Verify(chainDir); err != nil || rep.Records == 0 {
		t.Errorf("the bundled chain: %+v, %v; want it to verify", rep, err)
	}
	if got := strings.Count(string(files["records.jsonl"]), "\n"); got != m.Records {
		t.Errorf("records.jsonl has %d lines; the manifest says %d", got, m.Records)
	}
	if string(files["files/t1"]) != "%PDF-1.4 result" {
		t.Errorf("files/t1 = %q; want the kept file", files["files/t1"])
	}
	var ts []map[string]string
	if err := json.Unmarshal(files["transfers.json"], &ts); err != nil || len(ts) != 3 {
		t.Errorf("transfers.json = %s, %v; want the ledger's three entries", files["transfers.json"], err)
	}
}

// TestWriteEvidenceLedger checks a bundle without a ledger and one whose
// ledger cannot be read.
func TestWriteEvidenceLedger(t *testing.T) {
	dir := t.TempDir()
	f := openTest(t, dir, 0)
	f.Record(sampleEvent(newClock(), 0))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteEvidence(&buf, dir, nil, Filter{}, "eye", time.Now()); err != nil {
		t.Fatalf("WriteEvidence without a ledger: %v", err)
	}
	files := readBundle(t, buf.Bytes())
	if got := strings.TrimSpace(string(files["transfers.json"])); got != "null" {
		t.Errorf("transfers.json without a ledger = %q; want null", got)
	}
	broken := errors.New("ledger unreadable")
	err := WriteEvidence(&bytes.Buffer{}, dir, &fakeLedger{err: broken}, Filter{}, "eye", time.Now())
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "transfers.json") {
		t.Errorf("WriteEvidence with a broken ledger = %v; want its error, naming transfers.json", err)
	}
}
