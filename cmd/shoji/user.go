package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/internal/cli"
)

const userUsage = `Usage: shoji user COMMAND [NAME] [flags]

Manage user accounts offline, in the data directory's store. The broker
(shoji serve) must not be running on the same data directory.

Commands:
  add NAME --role ROLE --password-stdin   add a user (roles: clinician, approver, admin, auditor)
  list                                    list users
  disable NAME                            disable a user and end their sessions
  enable NAME                             enable a user again
  passwd NAME --password-stdin            set a user's password and end their sessions
  role NAME --role ROLE                   change a user's role

Every command takes --data DIR (default: $SHOJI_DATA, else ./data).
Run 'shoji user COMMAND --help' for a command's flags.
`

// userCommand is one `shoji user` subcommand.
type userCommand struct {
	usage string // the command line, e.g. "add NAME --role ROLE --password-stdin"
	about string
	// names is how many NAME arguments the command takes (0 or 1).
	names int
	// role and passwordStdin say which flags the command takes.
	role, passwordStdin bool
	run                 func(c *userCall) error
}

// userCall is one parsed invocation.
type userCall struct {
	svc    *auth.Service
	name   string
	role   string
	stdin  io.Reader
	stdout io.Writer
}

var userCommands = map[string]userCommand{
	"add": {
		usage: "add NAME --role ROLE --password-stdin", about: "Add a user. The password is the first line of standard input.",
		names: 1, role: true, passwordStdin: true,
		run: func(c *userCall) error {
			role, err := auth.ParseRole(c.role)
			if err != nil {
				return err
			}
			pw, err := cli.ReadPassword(c.stdin)
			if err != nil {
				return err
			}
			if err := c.svc.AddUser(c.name, role, pw); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "added user %s (%s)\n", strings.ToLower(c.name), role)
			return nil
		},
	},
	"list": {
		usage: "list", about: "List users: name, role, status and creation time.",
		run: func(c *userCall) error {
			users, err := c.svc.ListUsers()
			if err != nil {
				return err
			}
			return printUsers(c.stdout, users)
		},
	},
	"disable": {
		usage: "disable NAME", about: "Disable a user and end all their login sessions.",
		names: 1,
		run: func(c *userCall) error {
			if err := c.svc.DisableUser(c.name); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "disabled user %s\n", strings.ToLower(c.name))
			return nil
		},
	},
	"enable": {
		usage: "enable NAME", about: "Enable a disabled user again.",
		names: 1,
		run: func(c *userCall) error {
			if err := c.svc.EnableUser(c.name); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "enabled user %s\n", strings.ToLower(c.name))
			return nil
		},
	},
	"passwd": {
		usage: "passwd NAME --password-stdin", about: "Set a user's password from the first line of standard input, and end all their login sessions.",
		names: 1, passwordStdin: true,
		run: func(c *userCall) error {
			pw, err := cli.ReadPassword(c.stdin)
			if err != nil {
				return err
			}
			if err := c.svc.SetPassword(c.name, pw); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "password set for user %s; their sessions were ended\n", strings.ToLower(c.name))
			return nil
		},
	},
	"role": {
		usage: "role NAME --role ROLE", about: "Change a user's role. It applies to their open sessions at once.",
		names: 1, role: true,
		run: func(c *userCall) error {
			role, err := auth.ParseRole(c.role)
			if err != nil {
				return err
			}
			if err := c.svc.SetRole(c.name, role); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "user %s is now %s\n", strings.ToLower(c.name), role)
			return nil
		},
	},
}

// runUser runs `shoji user ARGS...`. Usage asked for with --help goes to
// stdout and is not an error.
func runUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, ok, err := pickCommand("user", userUsage, []string{"add", "list", "disable", "enable", "passwd", "role"},
		userCommands, args, stdout, stderr)
	if !ok {
		return err
	}
	prefix := "user " + args[0]

	fs := flag.NewFlagSet("shoji "+prefix, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed below
	dataDir := fs.String("data", defaultDataDir(), "`DIR` holding the store (defaults to $SHOJI_DATA if set)")
	var role string
	if cmd.role {
		fs.StringVar(&role, "role", "", "the user's `ROLE`: clinician, approver, admin or auditor")
	}
	var pwStdin bool
	if cmd.passwordStdin {
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	}
	names, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: shoji user %s [--data DIR]\n\n%s\n\nFlags:\n", cmd.usage, cmd.about)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see shoji %s --help)", prefix, err, prefix)
	}
	if len(names) != cmd.names {
		return fmt.Errorf("%s: want %d NAME argument(s), got %d: usage: shoji user %s", prefix, cmd.names, len(names), cmd.usage)
	}
	if cmd.role && role == "" {
		return fmt.Errorf("%s: --role is required (clinician, approver, admin or auditor)", prefix)
	}
	if cmd.passwordStdin && !pwStdin {
		return fmt.Errorf("%s: the password is read from standard input only: use --password-stdin", prefix)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	svc, closeStore, err := openAuth(*dataDir)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	defer closeStore()
	call := &userCall{svc: svc, role: role, stdin: stdin, stdout: stdout}
	if len(names) > 0 {
		call.name = names[0]
	}
	if err := cmd.run(call); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

// defaultDataDir is $SHOJI_DATA, else ./data.
func defaultDataDir() string {
	if d := os.Getenv("SHOJI_DATA"); d != "" {
		return d
	}
	return "./data"
}

// parseInterspersed parses flags that may come before or after positional
// arguments ("add NAME --role X" as well as "add --role X NAME") and returns
// the positional ones. Everything after "--" is positional.
// pickCommand finds the subcommand of `shoji GROUP CMD ...` in cmds. With no
// command, an unknown one or a request for help it prints the usage and
// reports ok=false with the error to return (nil after help). names lists
// the commands in the order the messages name them.
func pickCommand[C any](group, usage string, names []string, cmds map[string]C, args []string, stdout, stderr io.Writer) (cmd C, ok bool, err error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cmd, false, fmt.Errorf("%s: missing command (%s)", group, strings.Join(names, ", "))
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return cmd, false, nil
	}
	cmd, ok = cmds[args[0]]
	if !ok {
		fmt.Fprint(stderr, usage)
		last := len(names) - 1
		return cmd, false, fmt.Errorf("%s: unknown command %q (want %s or %s)", group, args[0], strings.Join(names[:last], ", "), names[last])
	}
	return cmd, true, nil
}

func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// openAuth opens the store in dir (creating dir with mode 0700) and an auth
// service on it. The returned func closes the store.
func openAuth(dir string) (*auth.Service, func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := store.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	// The audit trail is opened after the store: the store's lock keeps a
	// running broker, which writes the same trail, out.
	sink, err := audit.OpenFile(filepath.Join(dir, "audit"), audit.FileOptions{})
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("open audit trail: %w", err)
	}
	closeAll := func() {
		_ = sink.Close()
		_ = st.Close()
	}
	svc, err := auth.New(auth.Config{DataDir: dir, Audit: sink, Operator: cliOperator()}, st)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return svc, closeAll, nil
}

// cliOperator names who runs a command, for the audit trail: the login
// behind sudo when there is one.
func cliOperator() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return "cli:" + v
		}
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}

func printUsers(w io.Writer, users []auth.UserInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATUS\tCREATED")
	for _, u := range users {
		status := "enabled"
		if u.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, status, u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
