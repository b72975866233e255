package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sealedTrail writes two runs of the broker into dir, each opened and
// closed cleanly with key, checkpointing every 5 records:
//
//	seq  1     cp:open         seq 17    cp:open
//	seq  2-6   5 events        seq 18-22 5 events
//	seq  7     cp:records      seq 23    cp:records
//	seq  8-12  5 events        seq 24-26 3 events
//	seq 13     cp:records      seq 27    cp:close
//	seq 14-15  2 events
//	seq 16     cp:close
func sealedTrail(t *testing.T, dir string, key *SigningKey, maxBytes int64) {
	t.Helper()
	c := newClock()
	for _, n := range []int{12, 8} {
		f, err := OpenFile(dir, FileOptions{MaxBytes: maxBytes, Now: c.Now, CheckpointKey: key, CheckpointEvery: 5, CheckpointInterval: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := f.Commit(context.Background(), sampleEvent(c, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// relink rewrites ls from index from on as an attacker without the key
// would: each record gets its index's seq and the hash of the line before
// as prev; fix may change each record first. It returns the new lines.
func relink(t *testing.T, ls [][]byte, from int, fix func(e *Event)) [][]byte {
	t.Helper()
	out := slices.Clone(ls)
	for i := from; i < len(out); i++ {
		var e Event
		if err := json.Unmarshal(out[i], &e); err != nil {
			t.Fatal(err)
		}
		e.Seq, e.Prev = uint64(i+1), ZeroHash
		if i > 0 {
			e.Prev = lineHash(out[i-1])
		}
		if fix != nil {
			fix(&e)
		}
		line, err := encodeLine(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = line
	}
	return out
}

func editLine(t *testing.T, line []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(line, []byte(old)) {
		t.Fatalf("line %s has no %q", line, old)
	}
	return bytes.Replace(line, []byte(old), []byte(new), 1)
}

// outcome is what a verification should find: ok, or a problem at seq.
type outcome struct {
	problem Problem
	seq     uint64
	detail  string
}

var ok = outcome{}

// TestVerifyEndTamper runs the tamper corpus against a sealed trail: each
// change, with what Verify alone, VerifyWith the key, with the key and
// RequireSealed, and with the key and the collector's copy find.
func TestVerifyEndTamper(t *testing.T) {
	key, other := testKey(1), testKey(2)
	cpIndex := func(ls [][]byte) (idx []int) {
		for i, l := range ls {
			if bytes.Contains(l, []byte(`"type":"audit_checkpoint"`)) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	tests := []struct {
		name                        string
		tamper                      func(t *testing.T, ls [][]byte) [][]byte
		plain, keyed, sealed, copy_ outcome
		report                      func(t *testing.T, rep Report) // of VerifyWith the key, when it passes
	}{
		{
			name:   "untouched",
			tamper: func(t *testing.T, ls [][]byte) [][]byte { return ls },
			plain:  ok, keyed: ok, sealed: ok, copy_: ok,
			report: func(t *testing.T, rep Report) {
				if !rep.Sealed || rep.Unsigned != 0 || rep.Checkpoints != 7 || len(rep.UncleanStarts) != 0 || rep.LastCheckpoint.Seq != 27 || rep.WhileStoppedCount != 0 {
					t.Errorf("report %+v: want sealed, 7 checkpoints, none unsigned", rep)
				}
			},
		},
		{
			name: "last record (the clean-stop checkpoint) edited",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[26] = editLine(t, ls[26], `"time":"2026`, `"time":"2027`)
				return ls
			},
			plain: ok, keyed: outcome{BadCheckpoint, 27, "signature does not verify"},
			sealed: outcome{BadCheckpoint, 27, "signature"}, copy_: outcome{DiffersFromCopy, 27, "another record"},
		},
		{
			name: "last event edited after a crash (no clean stop)",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls = ls[:26]
				ls[25] = editLine(t, ls[25], `"user":"u`, `"user":"mallory-u`)
				return ls
			},
			plain: ok, keyed: ok, sealed: outcome{MissingCheckpoint, 26, "3 record(s) after the checkpoint at seq 23"},
			copy_: outcome{DiffersFromCopy, 26, "another record"},
			report: func(t *testing.T, rep Report) {
				if rep.Sealed || rep.Unsigned != 3 || rep.LastCheckpoint.Seq != 23 {
					t.Errorf("report %+v: want 3 unsigned records after seq 23, not sealed", rep)
				}
			},
		},
		{
			name:   "last 3 records deleted",
			tamper: func(t *testing.T, ls [][]byte) [][]byte { return ls[:24] },
			plain:  ok, keyed: ok, sealed: outcome{MissingCheckpoint, 24, "does not end with a clean-stop checkpoint"},
			copy_: outcome{CutTail, 24, "the collector holds records up to seq 27"},
			report: func(t *testing.T, rep Report) {
				if rep.Sealed || rep.Unsigned != 1 || rep.HeadSeq != 24 {
					t.Errorf("report %+v: want 1 unsigned record, not sealed", rep)
				}
			},
		},
		{
			name:   "last 4 records deleted, ending at a checkpoint",
			tamper: func(t *testing.T, ls [][]byte) [][]byte { return ls[:23] },
			plain:  ok, keyed: ok, sealed: outcome{MissingCheckpoint, 23, "0 record(s) after the checkpoint at seq 23"},
			copy_: outcome{CutTail, 23, "up to seq 27"},
			report: func(t *testing.T, rep Report) {
				if rep.Sealed || rep.Unsigned != 0 || rep.LastCheckpoint.Reason != CheckpointRecords {
					t.Errorf("report %+v: want no unsigned record, but not sealed", rep)
				}
			},
		},
		{
			name: "forged record appended with a correct prev",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				forged := Login(time.Now(), Actor{User: "mallory"})
				forged.Seq, forged.Prev = 28, lineHash(ls[26])
				line, _ := encodeLine(forged)
				return append(ls, line)
			},
			// The collector's copy cannot tell a forged record from one not
			// forwarded yet; the clean-stop rule can.
			plain: ok, keyed: ok, sealed: outcome{MissingCheckpoint, 28, "1 record(s) after the checkpoint at seq 27"}, copy_: ok,
			report: func(t *testing.T, rep Report) {
				if rep.Sealed || rep.Unsigned != 1 || !slices.Equal(rep.WhileStopped, []uint64{28}) || rep.WhileStoppedCount != 1 {
					t.Errorf("report %+v: want 1 unsigned record, written while the broker was stopped, not sealed", rep)
				}
			},
		},
		{
			name: "chain recomputed after an edit, checkpoints left as they were",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[2] = editLine(t, ls[2], `"user":"u`, `"user":"mallory-u`)
				return relink(t, ls, 3, nil)
			},
			plain: outcome{BadCheckpoint, 7, "the records before it were changed"}, keyed: outcome{BadCheckpoint, 7, "changed after it was signed"},
			sealed: outcome{BadCheckpoint, 7, ""}, copy_: outcome{DiffersFromCopy, 3, ""},
		},
		{
			name: "chain recomputed after an edit, checkpoints' heads rewritten",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[2] = editLine(t, ls[2], `"user":"u`, `"user":"mallory-u`)
				return relink(t, ls, 3, func(e *Event) {
					if e.Checkpoint != nil {
						e.Checkpoint.Seq, e.Checkpoint.Hash = e.Seq-1, e.Prev
					}
				})
			},
			plain: ok, keyed: outcome{BadCheckpoint, 7, "signature does not verify"},
			sealed: outcome{BadCheckpoint, 7, ""}, copy_: outcome{DiffersFromCopy, 3, ""},
		},
		{
			name: "chain recomputed after an edit, later checkpoints removed",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[2] = editLine(t, ls[2], `"user":"u`, `"user":"mallory-u`)
				var kept [][]byte
				for i, l := range ls {
					if i < 3 || !slices.Contains(cpIndex(ls), i) {
						kept = append(kept, l)
					}
				}
				return relink(t, kept, 3, nil)
			},
			plain: ok, keyed: outcome{MissingCheckpoint, 7, "6 records follow the checkpoint at seq 1"},
			sealed: outcome{MissingCheckpoint, 7, ""}, copy_: outcome{DiffersFromCopy, 3, ""},
		},
		{
			name: "chain recomputed after an edit and signed again with another key",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[2] = editLine(t, ls[2], `"user":"u`, `"user":"mallory-u`)
				return relink(t, ls, 3, func(e *Event) {
					if c := e.Checkpoint; c != nil {
						c.KeyID, c.Seq, c.Hash = other.Public().ID(), e.Seq-1, e.Prev
						c.Sig = other.sign(checkpointMessage(c.KeyID, c.Seq, c.Hash, e.Time, c.Reason, c.Every))
					}
				})
			},
			plain: ok, keyed: outcome{BadCheckpoint, 7, "not among the keys given"},
			sealed: outcome{BadCheckpoint, 7, ""}, copy_: outcome{DiffersFromCopy, 3, ""},
		},
		{
			name: "all checkpoints removed and the chain recomputed",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				var kept [][]byte
				for i, l := range ls {
					if !slices.Contains(cpIndex(ls), i) {
						kept = append(kept, l)
					}
				}
				return relink(t, kept, 0, nil)
			},
			plain: ok, keyed: outcome{MissingCheckpoint, 20, "holds no checkpoint"},
			sealed: outcome{MissingCheckpoint, 20, ""}, copy_: outcome{DiffersFromCopy, 1, ""},
		},
		{
			name: "signature of the last checkpoint edited",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				i := bytes.Index(ls[26], []byte(`"sig":"`)) + len(`"sig":"`)
				ls[26][i] ^= 1
				return ls
			},
			plain: ok, keyed: outcome{BadCheckpoint, 27, "signature does not verify"},
			sealed: outcome{BadCheckpoint, 27, ""}, copy_: outcome{DiffersFromCopy, 27, ""},
		},
		{
			name: "reason of the last interval checkpoint changed to close after a cut",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls = ls[:23]
				ls[22] = editLine(t, ls[22], `"reason":"records"`, `"reason":"close"`)
				return ls
			},
			plain: ok, keyed: outcome{BadCheckpoint, 23, "signature does not verify"},
			sealed: outcome{BadCheckpoint, 23, ""}, copy_: outcome{DiffersFromCopy, 23, ""},
		},
		{
			name: "signature of a middle checkpoint edited",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				i := bytes.Index(ls[12], []byte(`"sig":"`)) + len(`"sig":"`)
				ls[12][i] ^= 1
				return ls
			},
			plain: outcome{Edited, 13, ""}, keyed: outcome{BadCheckpoint, 13, "signature does not verify"},
			sealed: outcome{BadCheckpoint, 13, ""}, copy_: outcome{DiffersFromCopy, 13, ""},
		},
		// The older corpus, on a checkpointed trail.
		{
			name: "middle record edited",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[9] = editLine(t, ls[9], `"user":"u`, `"user":"mallory-u`)
				return ls
			},
			plain: outcome{Edited, 10, ""}, keyed: outcome{Edited, 10, ""}, sealed: outcome{Edited, 10, ""}, copy_: outcome{DiffersFromCopy, 10, ""},
		},
		{
			name:   "middle record deleted",
			tamper: func(t *testing.T, ls [][]byte) [][]byte { return slices.Delete(ls, 9, 10) },
			plain:  outcome{Deleted, 11, ""}, keyed: outcome{Deleted, 11, ""}, sealed: outcome{Deleted, 11, ""}, copy_: outcome{Deleted, 11, ""},
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, ls [][]byte) [][]byte {
				ls[9], ls[10] = ls[10], ls[9]
				return ls
			},
			plain: outcome{Reordered, 11, ""}, keyed: outcome{Reordered, 11, ""}, sealed: outcome{Reordered, 11, ""}, copy_: outcome{Reordered, 11, ""},
		},
		{
			name:   "copy of a record inserted",
			tamper: func(t *testing.T, ls [][]byte) [][]byte { return slices.Insert(ls, 10, ls[3]) },
			plain:  outcome{Inserted, 4, ""}, keyed: outcome{Inserted, 4, ""}, sealed: outcome{Inserted, 4, ""}, copy_: outcome{Inserted, 4, ""},
		},
	}
	base := t.TempDir()
	sealedTrail(t, base, key, 0)
	original := lines(t, trailFile(base, 1))
	if len(original) != 27 {
		t.Fatalf("the sealed trail has %d records, want 27", len(original))
	}
	copyFile := filepath.Join(t.TempDir(), "collector.log")
	writeLines(t, copyFile, original)

	keys := []*PublicKey{key.Public()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ls := tt.tamper(t, slices.Clone(original))
			for i := range ls {
				ls[i] = slices.Clone(ls[i])
			}
			writeLines(t, trailFile(dir, 1), ls)
			for _, v := range []struct {
				name string
				opts VerifyOptions
				want outcome
			}{
				{"Verify", VerifyOptions{}, tt.plain},
				{"with the key", VerifyOptions{Keys: keys}, tt.keyed},
				{"with the key, sealed", VerifyOptions{Keys: keys, RequireSealed: true}, tt.sealed},
				{"with the key and the copy", VerifyOptions{Keys: keys, Against: copyFile}, tt.copy_},
			} {
				rep, err := VerifyWith(dir, v.opts)
				checkOutcome(t, v.name, err, v.want)
				if err == nil && v.name == "with the key" && tt.report != nil {
					tt.report(t, rep)
				}
			}
		})
	}
}

// checkOutcome checks a verification's error against want.
func checkOutcome(t *testing.T, name string, err error, want outcome) {
	t.Helper()
	if want.problem == "" {
		if err != nil {
			t.Errorf("%s: %v; want it to pass", name, err)
		}
		return
	}
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Errorf("%s = %v; want %s at seq %d", name, err, want.problem, want.seq)
		return
	}
	if ve.Problem != want.problem || ve.Seq != want.seq || !strings.Contains(ve.Detail, want.detail) {
		t.Errorf("%s: %v\nwant %s at seq %d (detail with %q)", name, err, want.problem, want.seq, want.detail)
	}
}

// TestVerifyCheckpointsAcrossFiles checks a checkpointed trail of many
// files, and one written with another key.
func TestVerifyCheckpointsAcrossFiles(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	sealedTrail(t, dir, key, 1500)
	if files, _ := listFiles(dir); len(files) < 4 {
		t.Fatalf("%d files, want at least 4", len(files))
	}
	rep, err := VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{key.Public()}, RequireSealed: true})
	if err != nil || !rep.Sealed || rep.Checkpoints != 7 {
		t.Fatalf("VerifyWith = %+v, %v; want sealed with 7 checkpoints", rep, err)
	}
	_, err = VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{testKey(2).Public()}})
	checkOutcome(t, "with another key", err, outcome{BadCheckpoint, 1, "not among the keys given"})
	// Both keys: a trail whose key was replaced verifies with the old and the new.
	if _, err := VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{testKey(2).Public(), key.Public()}}); err != nil {
		t.Errorf("with both keys: %v", err)
	}
	if _, err := VerifyWith(dir, VerifyOptions{RequireSealed: true}); err == nil {
		t.Error("RequireSealed without a key succeeded")
	}
}

// TestVerifyUncleanStart copies a trail while its sink is open, as a
// crash leaves it, and checks that the next start says the broker did not
// stop cleanly, and that the records since the last checkpoint are within
// its promise.
func TestVerifyUncleanStart(t *testing.T) {
	key := testKey(1)
	live, crashed := t.TempDir(), t.TempDir()
	c := newClock()
	f, err := OpenFile(live, FileOptions{Now: c.Now, CheckpointKey: key, CheckpointEvery: 4, CheckpointInterval: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := f.Commit(context.Background(), sampleEvent(c, i)); err != nil {
			t.Fatal(err)
		}
	}
	// seq 1 cp:open, 2-5 events, 6 cp:records, 7-8 events: the crash.
	data, err := os.ReadFile(trailFile(live, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trailFile(crashed, 1), append(data, `{"seq":9,"ti`...), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := []*PublicKey{key.Public()}
	rep, err := VerifyWith(crashed, VerifyOptions{Keys: keys})
	if err != nil || rep.Unsigned != 2 || rep.Torn == nil || rep.Sealed {
		t.Fatalf("VerifyWith after the crash = %+v, %v; want 2 unsigned records and a torn line", rep, err)
	}
	f, err = OpenFile(crashed, FileOptions{Now: c.Now, CheckpointKey: key, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := kinds(trailEvents(t, crashed)); got != "cp:open navigation deny transfer clipboard cp:records policy_change login audit_recovered cp:open cp:close" {
		t.Errorf("records after the restart: %s", got)
	}
	rep, err = VerifyWith(crashed, VerifyOptions{Keys: keys, RequireSealed: true})
	if err != nil || !slices.Equal(rep.UncleanStarts, []uint64{10}) || !rep.Sealed {
		t.Errorf("VerifyWith after the restart = %+v, %v; want an unclean start at seq 10, sealed", rep, err)
	}
}

// TestForwarderSendsCheckpoints forwards a checkpointed trail to a
// collector, checks that its checkpoints are among the messages, and
// compares the trail with the collector's copy, before and after a cut.
func TestForwarderSendsCheckpoints(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	c := newClock()
	f, err := OpenFile(dir, FileOptions{MaxBytes: 4 << 10, Now: c.Now, CheckpointKey: key, CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	commitN(t, f, c, 40)
	col := newCollector(t)
	fw, err := NewForwarder(f, col.addr, ForwarderOptions{Hostname: "broker-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	head, _ := f.Head()
	waitForwarded(t, fw, col, head)
	checkReceived(t, col, dir, head)
	var copyText strings.Builder
	checkpoints := 0
	for _, m := range col.received() {
		if m.msgid == string(TypeCheckpoint) {
			checkpoints++
		}
		copyText.WriteString(m.raw + "\n")
	}
	if checkpoints < 5 {
		t.Errorf("the collector got %d checkpoints, want one at open and one every 7 records", checkpoints)
	}
	copyFile := filepath.Join(t.TempDir(), "collector.log")
	if err := os.WriteFile(copyFile, []byte("Nov 23 09:00:00 other-host sshd[1]: unrelated line\n"+copyText.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	keys := []*PublicKey{key.Public()}
	rep, err := VerifyWith(dir, VerifyOptions{Keys: keys, Against: copyFile})
	if err != nil || rep.Copy.Matched != head || rep.Copy.Skipped != 1 || rep.Copy.LastSeq != head || rep.Copy.Missing != 1 {
		t.Fatalf("VerifyWith the copy = %+v %+v, %v; want %d records matched, the closing checkpoint not forwarded, 1 line skipped", rep, rep.Copy, err, head)
	}

	// Cut the last file back by its last 3 records.
	files, _ := listFiles(dir)
	last := files[len(files)-1]
	ls := lines(t, last.path)
	if len(ls) < 4 {
		t.Fatalf("the last file has %d records; want more", len(ls))
	}
	writeLines(t, last.path, ls[:len(ls)-3])
	_, err = VerifyWith(dir, VerifyOptions{Keys: keys, Against: copyFile})
	checkOutcome(t, "after a cut", err, outcome{CutTail, head - 2, fmt.Sprintf("the collector holds records up to seq %d", head)})
}

// TestReadCopyFormats reads the same records as a raw capture of the
// forwarder's connection, as RFC 5424 lines with and without the length,
// with CRLF, and as plain JSON lines.
func TestReadCopyFormats(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 5, 0)
	ls := lines(t, trailFile(dir, 1))
	fw := &Forwarder{opts: ForwarderOptions{Hostname: "h", AppName: "shoji", Facility: 13, SDID: "shoji@32473"}}
	frame := func(l []byte) []byte {
		lk, _ := parseLink(l)
		return fw.frame(outRecord{line: l, link: lk, ok: true})
	}
	var raw, framedLines, syslogLines, crlf, plain bytes.Buffer
	for _, l := range ls {
		fr := frame(l)
		raw.Write(fr)
		framedLines.Write(append(fr, '\n'))
		_, msg, _ := bytes.Cut(fr, []byte(" "))
		syslogLines.Write(append(msg, '\n'))
		crlf.Write(append(msg, '\r', '\n'))
		plain.Write(append(l, '\n'))
	}
	for name, data := range map[string][]byte{
		"raw capture": raw.Bytes(), "framed lines": framedLines.Bytes(), "syslog lines": syslogLines.Bytes(),
		"CRLF": crlf.Bytes(), "plain JSON": plain.Bytes(), "resent": append(plain.Bytes(), plain.Bytes()...),
	} {
		path := filepath.Join(t.TempDir(), "copy")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := VerifyWith(dir, VerifyOptions{Against: path})
		if err != nil || rep.Copy.Matched != 5 || rep.Copy.Records != 5 || rep.Copy.Skipped != 0 {
			t.Errorf("%s: %+v, %v; want 5 records matched", name, rep.Copy, err)
		}
	}

	// Two records with one seq: two brokers' records, or a changed copy.
	other := editLine(t, slices.Clone(ls[2]), `"user":"u`, `"user":"x`)
	path := filepath.Join(t.TempDir(), "copy")
	writeLines(t, path, append(slices.Clone(ls), other))
	if _, err := VerifyWith(dir, VerifyOptions{Against: path}); err == nil || !strings.Contains(err.Error(), "two different records with seq 3") {
		t.Errorf("a copy with two records of seq 3: %v", err)
	}
	if _, err := VerifyWith(dir, VerifyOptions{Against: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing copy verified")
	}
	truncated := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(truncated, raw.Bytes()[:raw.Len()-5], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWith(dir, VerifyOptions{Against: truncated}); err == nil || !strings.Contains(err.Error(), "message 5") {
		t.Errorf("a capture cut inside a message: %v", err)
	}
}

// TestForwarderFlushSendsClosingCheckpoint: after the trail is closed, Flush
// returns once the collector has every record, the closing checkpoint
// included, so a clean stop leaves the collector's copy sealed too.
func TestForwarderFlushSendsClosingCheckpoint(t *testing.T) {
	key := testKey(1)
	dir := t.TempDir()
	c := newClock()
	f, err := OpenFile(dir, FileOptions{Now: c.Now, CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	commitN(t, f, c, 10)
	col := newCollector(t)
	fw, err := NewForwarder(f, col.addr, ForwarderOptions{Hostname: "broker-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	head, _ := f.Head()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fw.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := fw.Forwarded(); got != head {
		t.Fatalf("after Flush the collector acknowledged seq %d; the trail ends at %d", got, head)
	}
	waitFor(t, "the collector to read the closing checkpoint", func() bool { return uint64(len(col.received())) >= head })
	msgs := col.received()
	if last := msgs[len(msgs)-1]; last.msgid != string(TypeCheckpoint) {
		t.Fatalf("the collector's last record is %s; want the closing checkpoint", last.msgid)
	}

	// With the collector gone, Flush gives up when its context ends.
	f2, err := OpenFile(t.TempDir(), FileOptions{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	commitN(t, f2, c, 2)
	dead := newCollector(t)
	dead.stop()
	fw2, err := NewForwarder(f2, dead.addr, ForwarderOptions{Hostname: "broker-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer fw2.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := fw2.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush to a collector that is gone = %v; want the context's deadline", err)
	}
}
