//go:build crashpoints

package crashpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// childEnv tells a re-executed test binary to hit the comma-separated
// points it names, in order, and then exit 0.
const childEnv = "SHOJI_CRASHPOINT_TEST_HITS"

func TestMain(m *testing.M) {
	if hits, ok := os.LookupEnv(childEnv); ok {
		for name := range strings.SplitSeq(hits, ",") {
			fmt.Printf("before %s\n", name)
			Hit(name)
		}
		fmt.Println("survived")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild re-executes the test binary as a child that hits the points in
// hits with EnvVar set to spec.
func runChild(t *testing.T, spec, hits string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvVar+"="+spec, childEnv+"="+hits)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestHit: the named point, at the named hit, kills the process with
// SIGKILL after saying which point it was; other points and other hits
// do nothing.
func TestHit(t *testing.T) {
	for _, tc := range []struct {
		name, spec, hits string
		// killedBy is the point that kills the child, "" for none.
		killedBy string
		// wantOut is what the child printed.
		wantOut string
	}{
		{"first hit", "a", "b,a,c", "a", "before b\nbefore a\n"},
		{"third hit", "a@3", "a,b,a,a,a", "a", "before a\nbefore b\nbefore a\nbefore a\n"},
		{"one of a list", "x, c@2", "a,c,b,c,a", "c", "before a\nbefore c\nbefore b\nbefore c\n"},
		{"not named", "x", "a,b", "", "before a\nbefore b\nsurvived\n"},
		{"never reached", "a@4", "a,a,a", "", "before a\nbefore a\nbefore a\nsurvived\n"},
		{"unset", "", "a", "", "before a\nsurvived\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runChild(t, tc.spec, tc.hits)
			if out != tc.wantOut {
				t.Errorf("child printed %q, want %q", out, tc.wantOut)
			}
			if tc.killedBy == "" {
				if err != nil {
					t.Fatalf("child: %v\n%s", err, errOut)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child was not killed: %v", err)
			}
			ws, ok := ee.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("child ended with %v, want SIGKILL", ee)
			}
			if want := "crashpoint " + tc.killedBy + "\n"; errOut != want {
				t.Errorf("child's stderr %q, want %q", errOut, want)
			}
		})
	}
}

// TestHitBadSpec: a list that does not parse stops the process at its
// start, naming the bad entry.
func TestHitBadSpec(t *testing.T) {
	out, errOut, err := runChild(t, "a,b@0", "a")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("child: %v, want exit status 2", err)
	}
	if out != "" || !strings.Contains(errOut, EnvVar) || !strings.Contains(errOut, `"b@0"`) {
		t.Errorf("child printed %q and %q", out, errOut)
	}
}
