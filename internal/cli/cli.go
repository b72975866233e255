// Package cli holds what shoji's commands (cmd/shoji, cmd/shoji-bench)
// share: how a command runs and ends, and how it reads a password.
package cli

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

// Run is a command's body: it runs with the command line args (without the
// program name) until ctx ends, and returns flag.ErrHelp after printing help.
type Run func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// Main runs run with the process's arguments and standard streams, ending
// it on SIGINT or SIGTERM, and exits: 0 on success or after help, 1 with
// "name: error" on standard error otherwise.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// ReadPassword returns the first line of r without its line ending. An
// empty first line is an error: a password is never empty.
func ReadPassword(r io.Reader) (string, error) {
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
