// Command shoji-bench measures shoji as a clinician feels it: click, key
// and IME latency, frame rates, CPU and memory, login time and capacity,
// each beside a raw-CDP baseline and the VNC peer (docs/benchmarks.md).
//
//	shoji-bench [--out DIR] [--samples N] [--quick] [--scenarios a,b] [flags]
//
// It is a command of its own so that the broker that runs in the hospital
// (cmd/shoji) links none of its plotting, image and test code.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shoji-rbi/shoji/internal/cli"
)

func main() { cli.Main("shoji-bench", run) }

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run runs the benchmark with the command line args.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(stdout, "shoji-bench", version)
		return nil
	}
	return runBench(ctx, args, stdin, stdout, stderr)
}
