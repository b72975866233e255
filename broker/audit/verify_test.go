package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// seqOf is the seq of a chain line.
func seqOf(t *testing.T, line []byte) uint64 {
	t.Helper()
	l, err := parseLink(line)
	if err != nil {
		t.Fatalf("line %s: %v", line, err)
	}
	return l.Seq
}

// TestVerifyTamper makes one kind of change to an intact trail of several
// files and checks that Verify names the right record and problem.
func TestVerifyTamper(t *testing.T) {
	type want struct {
		file    int // file number
		line    int
		seq     uint64 // 0: not a record
		problem Problem
		detail  string // substring
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string) want
	}{
		{"field changed in a middle line", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 2))
			edited := bytes.Replace(ls[2], []byte(`"user":"u`), []byte(`"user":"mallory-u`), 1)
			if bytes.Equal(edited, ls[2]) {
				t.Fatal("no user to change")
			}
			seq := seqOf(t, ls[2])
			ls[2] = edited
			writeLines(t, trailFile(dir, 2), ls)
			return want{2, 3, seq, Edited, "no longer matches the prev of the next record"}
		}},
		{"last line of a full file changed", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			n := len(ls) - 1
			seq := seqOf(t, ls[n])
			ls[n] = bytes.Replace(ls[n], []byte(`"role":"clinician"`), []byte(`"role":"admin"`), 1)
			writeLines(t, trailFile(dir, 1), ls)
			return want{1, n + 1, seq, Edited, "no longer matches"}
		}},
		{"line deleted", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			writeLines(t, trailFile(dir, 1), slices.Delete(ls, 3, 4))
			return want{1, 4, 5, Deleted, "record seq 4 is missing before it"}
		}},
		{"forged line inserted", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			forged := Login(time.Now(), Actor{User: "mallory"})
			forged.Seq, forged.Prev = 4, lineHash(ls[2])
			line, _ := encodeLine(forged)
			writeLines(t, trailFile(dir, 1), slices.Insert(ls, 3, line))
			return want{1, 4, 4, Inserted, "links past it"}
		}},
		{"copy of a line inserted", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 2))
			seq := seqOf(t, ls[1])
			writeLines(t, trailFile(dir, 2), slices.Insert(ls, 4, ls[1]))
			return want{2, 5, seq, Inserted, "not part of the chain"}
		}},
		{"two lines swapped", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			ls[2], ls[3] = ls[3], ls[2]
			writeLines(t, trailFile(dir, 1), ls)
			return want{1, 3, 4, Reordered, "seq 3, the next in the chain, comes later (audit-000001.jsonl line 4)"}
		}},
		{"line moved later", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			moved := ls[1]
			ls = slices.Delete(ls, 1, 2)
			ls = slices.Insert(ls, 3, moved)
			writeLines(t, trailFile(dir, 1), ls)
			return want{1, 2, 3, Reordered, "seq 2, the next in the chain, comes later"}
		}},
		{"rotated file deleted", func(t *testing.T, dir string) want {
			first := seqOf(t, lines(t, trailFile(dir, 3))[0])
			if err := os.Remove(trailFile(dir, 2)); err != nil {
				t.Fatal(err)
			}
			return want{3, 1, first, Deleted, "file audit-000002.jsonl is missing"}
		}},
		{"first file deleted", func(t *testing.T, dir string) want {
			first := seqOf(t, lines(t, trailFile(dir, 2))[0])
			if err := os.Remove(trailFile(dir, 1)); err != nil {
				t.Fatal(err)
			}
			return want{2, 1, first, Deleted, "(the chain begins at seq 1); file audit-000001.jsonl is missing"}
		}},
		{"prev changed", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 3))
			seq := seqOf(t, ls[1])
			i := bytes.Index(ls[1], []byte(`"prev":"`)) + len(`"prev":"`)
			ls[1][i] ^= 1 // another hex digit
			writeLines(t, trailFile(dir, 3), ls)
			return want{3, 2, seq, Edited, "its prev does not match"}
		}},
		{"seq changed", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			ls[2] = bytes.Replace(ls[2], []byte(`"seq":3,`), []byte(`"seq":33,`), 1)
			writeLines(t, trailFile(dir, 1), ls)
			return want{1, 3, 33, Edited, "the seq was changed"}
		}},
		{"line made unreadable", func(t *testing.T, dir string) want {
			ls := lines(t, trailFile(dir, 1))
			ls[1] = []byte("this is not a record")
			writeLines(t, trailFile(dir, 1), ls)
			return want{1, 2, 0, Edited, "not a valid record"}
		}},
		{"forged line appended", func(t *testing.T, dir string) want {
			files, _ := listFiles(dir)
			last := files[len(files)-1]
			ls := lines(t, last.path)
			forged := Login(time.Now(), Actor{User: "mallory"})
			forged.Seq, forged.Prev = seqOf(t, ls[len(ls)-1])+1, strings.Repeat("ab", 32)
			line, _ := encodeLine(forged)
			writeLines(t, last.path, append(ls, line))
			return want{last.index, len(ls) + 1, forged.Seq, BrokenLink, "forged or changed"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTrail(t, dir, 30, 2000)
			if files, _ := listFiles(dir); len(files) < 4 {
				t.Fatalf("%d files, want at least 4", len(files))
			}
			if _, err := Verify(dir); err != nil {
				t.Fatalf("untouched trail: %v", err)
			}
			w := tt.tamper(t, dir)
			_, err := Verify(dir)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			got := want{line: ve.Line, seq: ve.Seq, problem: ve.Problem, detail: ve.Detail}
			fmt.Sscanf(ve.File, filePrefix+"%d", &got.file)
			if got.file != w.file || got.line != w.line || got.seq != w.seq || got.problem != w.problem || !strings.Contains(ve.Detail, w.detail) {
				t.Errorf("Verify error: %v\ngot  file %d line %d seq %d %s\nwant file %d line %d seq %d %s (detail with %q)",
					err, got.file, got.line, got.seq, got.problem, w.file, w.line, w.seq, w.problem, w.detail)
			}
			if !strings.Contains(err.Error(), ve.File) || !strings.Contains(err.Error(), string(ve.Problem)) {
				t.Errorf("message %q does not name the file and problem", err)
			}
		})
	}
}

func TestVerifyEmpty(t *testing.T) {
	if _, err := Verify(t.TempDir()); !errors.Is(err, ErrNoTrail) {
		t.Errorf("Verify of an empty directory = %v, want ErrNoTrail", err)
	}
	if _, err := Verify("/nonexistent/audit"); err == nil {
		t.Error("Verify of a missing directory succeeded")
	}
}

// TestVerifyAcceptsEveryUntamperedTrail writes random event sequences with
// random rotation sizes, Commit and Record from several goroutines, and
// reopenings, every other trail with checkpoints at a random cadence, and
// checks that Verify accepts each trail (a checkpointed one with its key,
// sealed) and that it holds exactly the events written.
func TestVerifyAcceptsEveryUntamperedTrail(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	for round := range rounds {
		seed := uint64(round)*7919 + 1
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, seed))
			dir := t.TempDir()
			maxBytes := int64(200 + rng.IntN(6000))
			sessions := 1 + rng.IntN(3)
			var key *SigningKey
			every := 1 + rng.IntN(12)
			if round%2 == 1 {
				key = testKey(byte(round))
			}
			var want []Event // events passed to Commit or Record, in no order
			committed := map[uint64]Event{}
			c := newClock()
			for range sessions {
				f, err := OpenFile(dir, FileOptions{MaxBytes: maxBytes, Now: c.Now, CheckpointKey: key, CheckpointEvery: every})
				if err != nil {
					t.Fatal(err)
				}
				workers := 1 + rng.IntN(4)
				batches := make([][]Event, workers)
				commit := make([][]bool, workers)
				for w := range workers {
					for range rng.IntN(60) {
						e := randomEvent(rng, c)
						batches[w] = append(batches[w], e)
						commit[w] = append(commit[w], rng.IntN(3) > 0)
						want = append(want, e)
					}
				}
				var mu sync.Mutex
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for i, e := range batches[w] {
							if !commit[w][i] {
								f.Record(e)
								continue
							}
							got, err := f.Commit(context.Background(), e)
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							committed[got.Seq] = got
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if len(want) == 0 {
				return
			}
			rep, err := Verify(dir)
			if err != nil {
				t.Fatalf("maxBytes %d: %v", maxBytes, err)
			}
			if key != nil {
				signed, err := VerifyWith(dir, VerifyOptions{Keys: []*PublicKey{key.Public()}, RequireSealed: true})
				if err != nil || signed.Checkpoints < 2*sessions || !signed.Sealed {
					t.Fatalf("maxBytes %d, every %d: VerifyWith the key = %d checkpoints, sealed %v, %v", maxBytes, every, signed.Checkpoints, signed.Sealed, err)
				}
			}
			var got []Event
			var records uint64
			for e, err := range Scan(dir, Filter{}) {
				if err != nil {
					t.Fatal(err)
				}
				records++
				if c, ok := committed[e.Seq]; ok {
					if diff := cmp.Diff(c, e); diff != "" {
						t.Errorf("seq %d differs from what Commit returned:\n%s", e.Seq, diff)
					}
				}
				if !sinkTypes[e.Type] {
					e.Seq, e.Prev = 0, ""
					got = append(got, e)
				}
			}
			if records != rep.Records {
				t.Errorf("Scan found %d records, Verify %d", records, rep.Records)
			}
			byTime := func(a, b Event) int { return a.Time.Compare(b.Time) }
			slices.SortFunc(want, byTime)
			slices.SortFunc(got, byTime)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events in the trail differ from those written (-written +trail):\n%s", diff)
			}
		})
	}
}

// randomEvent is an event with random text, including quotes, newlines,
// HTML and non-ASCII characters, and a unique time.
func randomEvent(rng *rand.Rand, c *clock) Event {
	text := func() string {
		const alphabet = "abcXYZ019 \"'\\\n\t<>&=+-@/:?#%日本語病院ｶﾀｶﾅ😀\u2028"
		r := []rune(alphabet)
		n := rng.IntN(40)
		s := make([]rune, n)
		for i := range s {
			s[i] = r[rng.IntN(len(r))]
		}
		return string(s)
	}
	a := Actor{User: text(), Role: "clinician", Terminal: text(), Session: text()}
	at := c.Now()
	switch rng.IntN(8) {
	case 0:
		return Navigation(at, a, "https://example.jp/"+text())
	case 1:
		return Deny(at, a, text(), text(), text(), text())
	case 2:
		return TransferStep(at, a, Transfer{ID: text(), Direction: DirectionUpload, Name: text(), Size: rng.Int64N(1 << 40), SHA256: text(), State: text()})
	case 3:
		return ClipboardText(at, a, DirectionPaste, text(), text(), text())
	case 4:
		return PolicyChange(at, a, text(), strings.Repeat(text(), rng.IntN(50)), text())
	case 5:
		return UserChange(at, a, text(), text(), text(), text())
	case 6:
		return KillSwitch(at, a, text(), text(), text())
	default:
		return SessionEnd(at, a, text())
	}
}
