package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// forbiddenDeps are the packages the broker's binary must not link, as an
// import path or a prefix ending in "/": the benchmark (shoji-bench) and
// what only it and tests need — plotting, fonts, image encoders and the
// testing package. The broker runs in the hospital's DMZ; code it does not
// need is attack surface and size.
var forbiddenDeps = []string{
	"github.com/shoji-rbi/shoji/broker/bench",
	"github.com/shoji-rbi/shoji/broker/bench/",
	"gonum.org/",
	"testing",
	"testing/",
	"net/http/httptest",
	"codeberg.org/go-fonts/",
	"codeberg.org/go-latex/",
	"codeberg.org/go-pdf/",
	"github.com/go-fonts/",
	"github.com/go-latex/",
	"github.com/go-pdf/",
	"github.com/ajstarks/svgo",
	"github.com/golang/freetype",
	"github.com/golang/freetype/",
	"git.sr.ht/~sbinet/gg",
	"golang.org/x/image/",
}

// forbiddenDep returns the entry of forbiddenDeps that pkg matches, if any.
func forbiddenDep(pkg string) (string, bool) {
	for _, f := range forbiddenDeps {
		if pkg == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(pkg, f)) {
			return f, true
		}
	}
	return "", false
}

// TestBinaryDependencies is a fence on what the shoji binary links: it
// lists the packages `go build ./cmd/shoji` compiles in and fails on any
// that forbiddenDeps names.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	found := map[string]bool{}
	for _, d := range deps {
		found[d] = true
		if f, bad := forbiddenDep(d); bad {
			t.Errorf("cmd/shoji links %s (forbidden: %s); the benchmark and test code belong in cmd/shoji-bench and _test files", d, f)
		}
	}
	// The list must be the real one, or the fence checks nothing.
	for _, want := range []string{"github.com/shoji-rbi/shoji/broker", "github.com/shoji-rbi/shoji/isolation/chrome", "github.com/shoji-rbi/shoji/cmd/shoji"} {
		if !found[want] {
			t.Fatalf("go list -deps lacks %s; the fence checks nothing:\n%s", want, out)
		}
	}
}

// TestForbiddenDep checks the matching of the fence on the packages the
// benchmark links, and that it does not catch their lookalikes.
func TestForbiddenDep(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{"gonum.org/v1/plot/vg/vgimg", true},
		{"testing", true},
		{"testing/iotest", true},
		{"github.com/shoji-rbi/shoji/broker/bench", true},
		{"github.com/shoji-rbi/shoji/broker/bench/vnc", true},
		{"codeberg.org/go-fonts/liberation", true},
		{"golang.org/x/image/webp", true},
		{"git.sr.ht/~sbinet/gg", true},
		{"github.com/golang/freetype/truetype", true},
		{"github.com/ajstarks/svgo", true},
		{"github.com/shoji-rbi/shoji/broker/benchmark", false},
		{"github.com/shoji-rbi/shoji/broker", false},
		{"testingx", false},
		{"golang.org/x/net/html", false},
		{"image/jpeg", false},
	} {
		if _, got := forbiddenDep(tc.pkg); got != tc.want {
			t.Errorf("forbiddenDep(%q) = %v, want %v", tc.pkg, got, tc.want)
		}
	}
}

// TestBenchPointsToShojiBench checks that `shoji bench`, which the
// benchmark used to be, now fails with a pointer to shoji-bench.
func TestBenchPointsToShojiBench(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "--quick"}, {"bench", "--help"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "shoji-bench") {
			t.Errorf("shoji %s: err = %v, want a pointer to shoji-bench", strings.Join(args, " "), err)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"help"}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "shoji-bench") || strings.Contains(stdout.String(), "shoji bench") {
		t.Errorf("usage does not point to shoji-bench, or still offers shoji bench:\n%s", stdout.String())
	}
}
