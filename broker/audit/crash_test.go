//go:build unix

package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// crashEnv names the directory a re-executed test binary writes to as
// the crash test's child.
const crashEnv = "SHOJI_AUDIT_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild commits events from several goroutines as fast as it can and
// prints each committed seq, until it is killed. It gives up after two
// minutes so that it never outlives a failed parent for long.
func crashChild(dir string) {
	f, err := OpenFile(dir, FileOptions{MaxBytes: 8 << 10, CheckpointKey: crashKey, CheckpointEvery: crashEvery})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	for w := range 4 {
		go func() {
			c := newClock()
			for i := 0; ; i++ {
				if i%3 == 0 {
					f.Record(sampleEvent(c, i))
				}
				e, err := f.Commit(context.Background(), sampleEvent(c, w*1_000_000+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintln(os.Stdout, e.Seq)
				out.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Minute)
	os.Exit(3)
}

// crashKey and crashEvery are the checkpoint key and cadence of the
// crash test's trail.
var (
	crashKey   = testKey(9)
	crashEvery = 5
)

// TestCrash kills a process that is writing the trail with SIGKILL, then
// checks that the trail verifies (checkpoints, their signatures and
// cadence included), holds every record the process was told was
// committed, and continues when opened again with an unclean start.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var committed []uint64
		killed := false
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			committed = append(committed, seq)
			if len(committed) == 500 && !killed {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("child ended before it was killed: %v", err)
		}

		keys := []*PublicKey{crashKey.Public()}
		rep, err := VerifyWith(dir, VerifyOptions{Keys: keys})
		if err != nil {
			t.Fatalf("round %d: Verify after SIGKILL: %v", round, err)
		}
		if rep.Sealed {
			t.Errorf("round %d: after SIGKILL the trail ends with a clean-stop checkpoint", round)
		}
		present := map[uint64]bool{}
		for e, err := range Scan(dir, Filter{}) {
			if err != nil {
				t.Fatal(err)
			}
			present[e.Seq] = true
		}
		for _, seq := range committed {
			if !present[seq] || seq > rep.HeadSeq {
				t.Fatalf("round %d: committed seq %d is not in the trail (head %d)", round, seq, rep.HeadSeq)
			}
		}
		t.Logf("round %d: %d commits seen, head %d, %d files, torn: %v", round, len(committed), rep.HeadSeq, len(rep.Files), rep.Torn)

		// Opened again, the chain recovers and goes on.
		f, err := OpenFile(dir, FileOptions{MaxBytes: 8 << 10, CheckpointKey: crashKey, CheckpointEvery: crashEvery})
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.Commit(context.Background(), Login(time.Now(), Actor{User: "after-crash"}))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		after, err := VerifyWith(dir, VerifyOptions{Keys: keys, RequireSealed: true})
		if err != nil {
			t.Fatalf("Verify after reopening: %v", err)
		}
		if after.Torn != nil || after.HeadSeq != e.Seq+1 || e.Seq <= rep.HeadSeq || len(after.UncleanStarts) != round+1 {
			t.Errorf("after reopening: head %d (torn %v), committed %d then the closing checkpoint, before %d, unclean starts %v (want %d)",
				after.HeadSeq, after.Torn, e.Seq, rep.HeadSeq, after.UncleanStarts, round+1)
		}
	}
}
