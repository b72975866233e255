package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// auditData writes a small trail into DATA/audit and returns DATA.
func auditData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	f, err := audit.OpenFile(filepath.Join(data, "audit"), audit.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	bob := audit.Actor{User: "bob", Role: "clinician", Terminal: "ward-3"}
	for _, e := range []audit.Event{
		audit.Login(at, bob),
		audit.Navigation(at.Add(time.Hour), bob, "https://guide.example.jp/a\x1b[2J"),
		audit.Deny(at.Add(2*time.Hour), bob, "ads.example.com", "https://ads.example.com/", "not-allowed", "not in the allowlist"),
		audit.TransferStep(at.Add(3*time.Hour), bob, audit.Transfer{ID: "t1", Direction: audit.DirectionDownload, Name: "=lab.pdf",
			Size: 10, SHA256: strings.Repeat("ab", 32), State: "released"}),
		audit.Login(at.Add(4*time.Hour), audit.Actor{User: "amy"}),
	} {
		if _, err := f.Commit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

func runCmd(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRunAuditVerify(t *testing.T) {
	data := auditData(t)
	out, _, err := runCmd("audit", "verify", "--data", data)
	if err != nil {
		t.Fatalf("verify of an intact trail: %v", err)
	}
	if !strings.Contains(out, "audit trail intact: 5 records in 1 file(s) (audit-000001.jsonl); head seq 5 sha256 ") || strings.Count(out, "\n") != 1 {
		t.Errorf("verify printed %q", out)
	}

	// A torn final line is a note, not a failure.
	path := filepath.Join(data, "audit", "audit-000001.jsonl")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(raw, `{"seq":6,"ti`...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCmd("audit", "verify", "--data="+data)
	if err != nil || !strings.Contains(out, "note: audit-000001.jsonl line 6: incomplete final line") {
		t.Errorf("verify of a torn trail = %q, %v", out, err)
	}

	// An edited record fails, naming it.
	edited := bytes.Replace(raw, []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd("audit", "verify", "--data", data)
	if err == nil || !strings.Contains(err.Error(), "audit verify: audit trail broken at audit-000001.jsonl line 1 (seq 1): edited") {
		t.Errorf("verify of an edited trail = %v", err)
	}

	// No trail at all is a failure too.
	if _, _, err := runCmd("audit", "verify", "--data", t.TempDir()); err == nil {
		t.Error("verify without a trail succeeded")
	}
}

func TestRunAuditList(t *testing.T) {
	data := auditData(t)
	out, _, err := runCmd("audit", "list", "--data", data, "--user", "bob", "--from", "2026-11-23T01:00:00Z", "--to", "2026-11-23T03:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "SEQ") || !strings.HasPrefix(rows[1], "2 ") || !strings.HasPrefix(rows[2], "3 ") {
		t.Errorf("list printed:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, "url=https://guide.example.jp/a?[2J") {
		t.Errorf("control characters reach the terminal:\n%q", out)
	}
	if !strings.Contains(rows[2], "rule=not-allowed") {
		t.Errorf("deny row lacks its rule: %q", rows[2])
	}

	out, _, err = runCmd("audit", "list", "--data", data, "--csv", "--sha256", strings.Repeat("AB", 32))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 2 || recs[0][0] != "seq" || recs[1][0] != "4" {
		t.Fatalf("csv = %q, %v", out, err)
	}
	if !strings.Contains(out, ",'=lab.pdf,") {
		t.Errorf("csv cell not defused: %s", out)
	}

	out, _, err = runCmd("audit", "list", "--data", data, "--type", "login", "--host", "guide.example.jp")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("list with no match = %q, %v; want the header only", out, err)
	}
}

func TestRunAuditUsage(t *testing.T) {
	tests := []struct {
		args       []string
		wantErr    string
		wantStdout string
	}{
		{[]string{"audit", "--help"}, "", "Usage: shoji audit COMMAND"},
		{[]string{"audit", "verify", "--help"}, "", "Usage: shoji audit verify [--key PUBFILE]... [--require-sealed] [--against FILE] [--data DIR]\n"},
		{[]string{"audit", "keygen", "--help"}, "", "Usage: shoji audit keygen --out PATH\n"},
		{[]string{"audit", "list", "-h"}, "", "-sha256 HASH"},
		{[]string{"audit"}, "audit: missing command (verify, keygen, list, export)", ""},
		{[]string{"audit", "show"}, `unknown command "show" (want verify, keygen, list or export)`, ""},
		{[]string{"audit", "keygen"}, "--out PATH is required", ""},
		{[]string{"audit", "verify", "--require-sealed"}, "--require-sealed needs --key PUBFILE", ""},
		{[]string{"audit", "verify", "--user", "bob"}, "flag provided but not defined: -user", ""},
		{[]string{"audit", "verify", "extra"}, `unexpected argument "extra"`, ""},
		{[]string{"audit", "list", "--type", "logn"}, `--type: unknown event type "logn"`, ""},
		{[]string{"audit", "list", "--from", "yesterday"}, `--from: "yesterday" is not a time`, ""},
	}
	for _, tt := range tests {
		out, _, err := runCmd(tt.args...)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q = %v, want error with %q", tt.args, err, tt.wantErr)
		}
		if !strings.Contains(out, tt.wantStdout) {
			t.Errorf("%q printed %q, want %q", tt.args, out, tt.wantStdout)
		}
	}
}

func TestParseAuditTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-11-23T09:00:00+09:00": time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		"2026-11-23":                time.Date(2026, 11, 23, 0, 0, 0, 0, time.Local),
		"2026-11-23T09:30":          time.Date(2026, 11, 23, 9, 30, 0, 0, time.Local),
	} {
		got, err := parseAuditTime("--from", in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseAuditTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestRunAuditExport(t *testing.T) {
	data := auditData(t)
	addLedger(t, data, transfer.Transfer{ID: "t1", Direction: transfer.Download, User: "bob", State: transfer.Released})
	out := filepath.Join(t.TempDir(), "evidence.zip")
	if _, _, err := runCmd("audit", "export", "--data", data); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("export without --out: %v", err)
	}
	stdout, _, err := runCmd("audit", "export", "--data", data, "--user", "bob", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, out) {
		t.Errorf("stdout %q", stdout)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	for _, want := range []string{"manifest.json", "records.jsonl", "transfers.json", "chain/audit-000001.jsonl"} {
		if !names[want] {
			t.Errorf("bundle lacks %s: %v", want, names)
		}
	}
	// Never over an existing file; and the export is itself recorded.
	if _, _, err := runCmd("audit", "export", "--data", data, "--out", out); err == nil {
		t.Error("export overwrote a bundle")
	}
	listed, _, err := runCmd("audit", "list", "--data", data, "--type", "export")
	if err != nil || !strings.Contains(listed, "evidence") {
		t.Errorf("the export is not in the trail: %v\n%s", err, listed)
	}
	if _, _, err := runCmd("audit", "verify", "--data", data); err != nil {
		t.Errorf("trail after export: %v", err)
	}
}

// TestRunAuditCheckpoints makes a key with keygen, writes a trail signed
// with it as the broker does, and runs verify with --key,
// --require-sealed and --against on it, intact and tampered with.
func TestRunAuditCheckpoints(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "audit-checkpoint.key")
	out, _, err := runCmd("audit", "keygen", "--out", keyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.LoadSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	id := key.Public().ID()
	if !strings.Contains(out, "key ID:      "+id) || !strings.Contains(out, keyPath+".pub") || !strings.Contains(out, key.Public().String()) {
		t.Errorf("keygen printed %q; want the paths, the key ID %s and the public key", out, id)
	}
	if _, _, err := runCmd("audit", "keygen", "--out", keyPath); err == nil || !strings.Contains(err.Error(), "key file exists") {
		t.Errorf("keygen over a key: %v", err)
	}

	data := t.TempDir()
	dir := filepath.Join(data, "audit")
	f, err := audit.OpenFile(dir, audit.FileOptions{CheckpointKey: key, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := f.Commit(context.Background(), audit.Login(time.Now(), audit.Actor{User: fmt.Sprint("u", i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// seq 1 cp:open, 2-3, 4 cp, 5-6, 7 cp, 8, 9 cp:close
	path := filepath.Join(dir, "audit-000001.jsonl")
	sealed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	collector := filepath.Join(t.TempDir(), "collector.log")
	if err := os.WriteFile(collector, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	pub := keyPath + ".pub"

	out, _, err = runCmd("audit", "verify", "--data", data)
	if err != nil || !strings.Contains(out, "checkpoints: 4, signatures NOT checked: give --key PUBFILE; the last at seq 9") {
		t.Errorf("verify without --key = %q, %v", out, err)
	}
	out, _, err = runCmd("audit", "verify", "--data", data, "--key", pub, "--require-sealed", "--against", collector)
	if err != nil || !strings.Contains(out, "checkpoints: 4, signatures verified with key "+id) || !strings.Contains(out, "end: sealed") ||
		!strings.Contains(out, "9 identical in the trail") {
		t.Errorf("verify of a sealed trail = %q, %v", out, err)
	}

	// The last 2 records cut off: --key reports an unsigned record,
	// --require-sealed and --against fail.
	ls := bytes.SplitAfter(sealed, []byte("\n"))
	cut := bytes.Join(ls[:7], nil)
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCmd("audit", "verify", "--data", data, "--key", pub)
	if err != nil || !strings.Contains(out, "end: the trail ends with a checkpoint, but not a clean-stop one") {
		t.Errorf("verify --key of a cut trail = %q, %v", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--key", pub, "--require-sealed"}, "(seq 7): missing checkpoint: the trail does not end with a clean-stop checkpoint"},
		{[]string{"--key", pub, "--against", collector}, "(seq 7): cut tail: the collector holds records up to seq 9"},
		{[]string{"--key", filepath.Join(t.TempDir(), "none.pub")}, "--key: open"},
	} {
		_, _, err := runCmd(append([]string{"audit", "verify", "--data", data}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("verify %q = %v, want %q", tc.args, err, tc.want)
		}
	}

	// Signed with another key.
	if err := os.WriteFile(path, sealed, 0o600); err != nil {
		t.Fatal(err)
	}
	otherPath := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := runCmd("audit", "keygen", "--out", otherPath); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd("audit", "verify", "--data", data, "--key", otherPath+".pub")
	if err == nil || !strings.Contains(err.Error(), "(seq 1): bad checkpoint: it is signed by key \""+id+"\", which is not among the keys given") {
		t.Errorf("verify with another key = %v", err)
	}

	// An export with the broker stopped writes a record after the clean
	// stop; verify names it.
	if _, _, err := runCmd("audit", "export", "--data", data, "--out", filepath.Join(t.TempDir(), "e.zip")); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCmd("audit", "verify", "--data", data, "--key", pub)
	if err != nil || !strings.Contains(out, "written while the broker was stopped (after a clean-stop checkpoint): seq 10:") {
		t.Errorf("verify after an export = %q, %v", out, err)
	}
}
