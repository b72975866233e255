// Command shoji is the virtual-terminal browsing broker: it serves isolated
// remote browsers to clinical terminals and manages their accounts.
//
//	shoji serve --listen ADDR --data DIR [--config FILE]
//	shoji user add|list|disable|enable|passwd ...
//	shoji allow add|list|rm|export|import ...
//	shoji audit verify|list|export ...
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/shoji-rbi/shoji/internal/cli"
)

func main() { cli.Main("shoji", run) }

const usage = `shoji — isolated browsing for clinical terminals

Usage:
  shoji serve   run the broker (shoji serve --help)
  shoji user    manage accounts: add, list, disable, enable, passwd (shoji user --help)
  shoji allow   edit the site policy: add, list, rm, export, import (shoji allow --help)
  shoji audit   check, list and export the audit trail: verify, list, export (shoji audit --help)
  shoji version print the version

Run 'shoji COMMAND --help' for a command's flags. The benchmark is a command
of its own, shoji-bench (make bench; docs/benchmarks.md).
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run dispatches a subcommand.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], stdin, stdout, stderr)
	case "allow":
		return runAllow(ctx, args[1:], stdin, stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "bench":
		// The benchmark left this binary so that the broker links none of
		// its plotting and test code; point whoever still types it there.
		return errors.New("the benchmark is its own command now: run shoji-bench (make bench builds and runs it; docs/benchmarks.md)")
	case "version", "--version":
		fmt.Fprintln(stdout, "shoji", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
