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
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoji-bench:", err)
		os.Exit(1)
	}
}

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

// readPassword reads a password from the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on standard input (its first line is empty)")
	}
	return line, nil
}
