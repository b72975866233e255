package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

const auditUsage = `Usage: shoji audit COMMAND [flags]

Read the audit trail in the data directory (DIR/audit). verify and list
only read it, and may run while the broker is running.

Commands:
  verify   check the hash chain of the whole trail; exits with status 1
           and names the first bad record when it is broken
           [--key PUBFILE]... [--require-sealed] [--against FILE]
  keygen   make the key that signs the trail's checkpoints: --out PATH
  list     list events in the order they were written, as a table or CSV
           [--from TIME] [--to TIME] [--user NAME] [--type TYPE]
           [--host HOST] [--sha256 HASH] [--csv]

  export   write an evidence bundle (IR-2): the audit records, the transfer
           ledger and the quarantined files of a period or user, in a ZIP
           with a manifest of SHA-256 hashes; --out FILE [--from TIME]
           [--to TIME] [--user NAME]. It needs the store, so stop the broker
           first, or use the Evidence form on the auditor page (/audit).

Every command but keygen takes --data DIR (default: $SHOJI_DATA, else ./data).
`

// auditCall is one parsed `shoji audit` invocation.
type auditCall struct {
	data   string // the data directory
	dir    string // the trail: DATA/audit
	out    string // export: the bundle's file; keygen: the private key's
	filter audit.Filter
	csv    bool
	// verify: public key files, a collector's copy, and whether the trail
	// must end with a clean-stop checkpoint.
	keys          []string
	against       string
	requireSealed bool
	stdout        io.Writer
	stderr        io.Writer
}

// auditCommand is one `shoji audit` subcommand.
type auditCommand struct {
	usage, about string
	filters      bool // whether it takes list's flags
	noData       bool // whether it does without --data
	run          func(c *auditCall) error
}

var auditCommands = map[string]auditCommand{
	"verify": {
		usage: "verify [--key PUBFILE]... [--require-sealed] [--against FILE]",
		about: "Check that every record of the trail is in place and unchanged: each line is a record, seq counts up\n" +
			"by one, and each record holds the SHA-256 of the one before it, across files. Exits with status 1 and\n" +
			"names the first bad record when the chain is broken. The chain alone cannot show records cut off the\n" +
			"end or a chain recomputed from some record on:\n" +
			"  --key PUBFILE     checks every checkpoint's signature, that the trail has one, and that no more\n" +
			"                    records follow a checkpoint than it allows; it reports the records after the last\n" +
			"                    checkpoint (the unsigned tail) and whether the trail ends with a clean stop\n" +
			"  --require-sealed  also fails unless the trail ends with a clean-stop checkpoint (a stopped broker)\n" +
			"  --against FILE    compares with a syslog collector's copy: every record in both must be identical,\n" +
			"                    and the copy must hold nothing after the trail's last record",
		run: auditVerify,
	},
	"keygen": {
		usage: "keygen --out PATH",
		about: "Make an Ed25519 key for the trail's checkpoints: the private key goes to PATH (PEM PKCS #8, mode 0600)\n" +
			"and the public key to PATH.pub (PEM PKIX). Neither is overwritten. Set audit.checkpoint_key to PATH in\n" +
			"the broker's config (outside the data directory, owned by the broker's account), and give PATH.pub to\n" +
			"the auditors for shoji audit verify --key.",
		noData: true,
		run:    auditKeygen,
	},
	"list": {
		usage: "list [--from TIME] [--to TIME] [--user NAME] [--type TYPE] [--host HOST] [--sha256 HASH] [--csv]",
		about: "List events in the order they were written. TIME is RFC 3339 (2026-11-23T09:00:00+09:00) or a local\n" +
			"date (2026-11-23) or date and minute (2026-11-23T09:00); --from is inclusive, --to exclusive.",
		filters: true,
		run:     auditList,
	},
	"export": {
		usage: "export --out FILE [--from TIME] [--to TIME] [--user NAME]",
		about: "Write an evidence bundle (ZIP): records.jsonl (the matching audit records), chain/ (the whole trail, to\n" +
			"verify it independently), transfers.json (the ledger of the period and user), files/ (the quarantined\n" +
			"files still kept) and manifest.json (what was asked, by whom, the chain status and the SHA-256 of every\n" +
			"other file). The export itself is an audit record. The broker must not be running on DIR.",
		filters: true,
		run:     auditExport,
	},
}

// runAudit runs `shoji audit ARGS...`. Usage asked for with --help goes
// to stdout and is not an error.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, ok, err := pickCommand("audit", auditUsage, []string{"verify", "keygen", "list", "export"}, auditCommands, args, stdout, stderr)
	if !ok {
		return err
	}
	prefix := "audit " + args[0]

	fs := flag.NewFlagSet("shoji "+prefix, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed below
	dataDir := fs.String("data", defaultDataDir(), "`DIR` holding the data; the trail is DIR/audit (defaults to $SHOJI_DATA if set)")
	var from, to, typ string
	c := &auditCall{stdout: stdout, stderr: stderr}
	if cmd.filters {
		fs.StringVar(&from, "from", "", "list events at or after `TIME`")
		fs.StringVar(&to, "to", "", "list events before `TIME`")
		fs.StringVar(&c.filter.User, "user", "", "list events of the account `NAME` (the one who acted)")
		fs.StringVar(&typ, "type", "", "list events of `TYPE`: "+typeNames())
		fs.StringVar(&c.filter.Host, "host", "", "list events concerning `HOST` (*.example.jp includes names under it)")
		fs.StringVar(&c.filter.SHA256, "sha256", "", "list events of the file or clipboard text with this SHA-256 `HASH`")
		fs.BoolVar(&c.csv, "csv", false, "write CSV with a header row instead of a table")
	}
	switch args[0] {
	case "export":
		fs.StringVar(&c.out, "out", "", "write the bundle to `FILE` (required; not overwritten)")
	case "keygen":
		fs.StringVar(&c.out, "out", "", "write the private key to `PATH` and the public key to PATH.pub (required; not overwritten)")
	case "verify":
		fs.Func("key", "check checkpoint signatures with the public key in `PUBFILE` (from shoji audit keygen); give it again for each key the trail was signed with", func(v string) error {
			c.keys = append(c.keys, v)
			return nil
		})
		fs.BoolVar(&c.requireSealed, "require-sealed", false, "fail unless the trail ends with a clean-stop checkpoint (needs --key)")
		fs.StringVar(&c.against, "against", "", "compare with a syslog collector's copy of the trail in `FILE` (RFC 5424 lines, a raw capture, or JSON lines)")
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		dataFlag := " [--data DIR]"
		if cmd.noData {
			dataFlag = ""
		}
		fmt.Fprintf(stdout, "Usage: shoji audit %s%s\n\n%s\n\nFlags:\n", cmd.usage, dataFlag, cmd.about)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w (see shoji %s --help)", prefix, err, prefix)
	}
	if len(pos) != 0 {
		return fmt.Errorf("%s: unexpected argument %q: usage: shoji audit %s", prefix, pos[0], cmd.usage)
	}
	if c.filter.From, err = parseAuditTime("--from", from); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	if c.filter.To, err = parseAuditTime("--to", to); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	if typ != "" {
		c.filter.Type = audit.Type(typ)
		if !slices.Contains(audit.Types, c.filter.Type) {
			return fmt.Errorf("%s: --type: unknown event type %q (want one of %s)", prefix, typ, typeNames())
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.data = *dataDir
	c.dir = filepath.Join(*dataDir, "audit")
	if err := cmd.run(c); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return nil
}

func typeNames() string {
	names := make([]string, len(audit.Types))
	for i, t := range audit.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// parseAuditTime reads a --from or --to value: RFC 3339, or a date or
// date and minute in local time. Empty is the zero time.
func parseAuditTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: %q is not a time: want RFC 3339 (2026-11-23T09:00:00+09:00), a date (2026-11-23) or a date and minute (2026-11-23T09:00)", flagName, s)
}

func auditVerify(c *auditCall) error {
	if c.requireSealed && len(c.keys) == 0 {
		return errors.New("--require-sealed needs --key PUBFILE: only a signed checkpoint shows a clean stop")
	}
	opts := audit.VerifyOptions{RequireSealed: c.requireSealed, Against: c.against}
	for _, path := range c.keys {
		k, err := audit.LoadPublicKey(path)
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		opts.Keys = append(opts.Keys, k)
	}
	rep, err := audit.VerifyWith(c.dir, opts)
	if err != nil {
		return err
	}
	files := rep.Files[0]
	if len(rep.Files) > 1 {
		files += " to " + rep.Files[len(rep.Files)-1]
	}
	fmt.Fprintf(c.stdout, "audit trail intact: %d records in %d file(s) (%s); head seq %d sha256 %s at %s\n",
		rep.Records, len(rep.Files), files, rep.HeadSeq, rep.HeadHash, rep.HeadTime.Format(time.RFC3339))
	if rep.Torn != nil {
		fmt.Fprintf(c.stdout, "note: %s\n", rep.Torn)
	}
	printEnd(c.stdout, rep)
	return verifyLedger(c)
}

// printEnd tells what the checkpoints and the collector's copy say about
// the end of the trail.
func printEnd(w io.Writer, rep audit.Report) {
	if last := rep.LastCheckpoint; last != nil {
		checked := "signatures verified with key " + strings.Join(rep.KeyIDs, ", ")
		if !rep.Signed {
			checked = "signatures NOT checked: give --key PUBFILE"
		}
		fmt.Fprintf(w, "checkpoints: %d, %s; the last at seq %d (%s, %s)\n",
			rep.Checkpoints, checked, last.Seq, last.Time.Format(time.RFC3339), last.Reason)
		switch {
		case rep.Sealed:
			fmt.Fprintln(w, "end: sealed: the trail ends with a clean-stop checkpoint; nothing was added after the broker stopped")
		case rep.Unsigned == 0:
			fmt.Fprintln(w, "end: the trail ends with a checkpoint, but not a clean-stop one: the broker is running, or did not stop cleanly, or the trail was cut there")
		default:
			fmt.Fprintf(w, "end: %d record(s) after the last checkpoint (seq %d to %d) are not signed yet: a running broker or one that did not stop cleanly leaves some; compare them with the collector's copy\n",
				rep.Unsigned, last.Seq+1, rep.HeadSeq)
		}
	} else if rep.Signed {
		fmt.Fprintln(w, "checkpoints: none")
	}
	if len(rep.UncleanStarts) > 0 {
		seqs := make([]string, len(rep.UncleanStarts))
		for i, s := range rep.UncleanStarts {
			seqs[i] = strconv.FormatUint(s, 10)
		}
		fmt.Fprintf(w, "unclean starts: the broker did not stop cleanly before the start at seq %s: records written just before may be missing (compare with the collector's copy)\n",
			strings.Join(seqs, ", "))
	}
	if rep.WhileStoppedCount > 0 {
		seqs := make([]string, len(rep.WhileStopped))
		for i, s := range rep.WhileStopped {
			seqs[i] = strconv.FormatUint(s, 10)
		}
		more := ""
		if n := rep.WhileStoppedCount - uint64(len(seqs)); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(w, "written while the broker was stopped (after a clean-stop checkpoint): seq %s%s: shoji audit export writes such a record; check any other\n",
			strings.Join(seqs, ", "), more)
	}
	if cp := rep.Copy; cp != nil {
		fmt.Fprintf(w, "collector's copy %s: %d record(s), seq %d to %d; %d identical in the trail, none differ, none after the trail's end; "+
			"%d record(s) of the trail from seq %d on are not in the copy (not forwarded yet, or lost by the collector); %d line(s) without a record skipped\n",
			cp.File, cp.Records, cp.FirstSeq, cp.LastSeq, cp.Matched, cp.Missing, cp.FirstSeq, cp.Skipped)
	}
}

// auditKeygen makes a checkpoint key pair.
func auditKeygen(c *auditCall) error {
	if c.out == "" {
		return errors.New("--out PATH is required: where to write the private key (for example /etc/shoji/audit-checkpoint.key)")
	}
	k, err := audit.GenerateKey(c.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "private key: %s (mode 0600): set audit.checkpoint_key to this path; keep it outside the data directory,\n"+
		"  owned by the broker's account and readable by it only\n"+
		"public key:  %s.pub: give it to the auditors for shoji audit verify --key\n"+
		"key ID:      %s\n"+
		"public key (base64): %s\n", c.out, c.out, k.Public().ID(), k.Public())
	return nil
}

func auditList(c *auditCall) error {
	events := audit.Scan(c.dir, c.filter)
	if c.csv {
		return audit.WriteCSV(c.stdout, events)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tUSER\tTERMINAL\tSITE\tDETAIL")
	bad := 0
	for e, err := range events {
		if err != nil {
			bad++
			fmt.Fprintln(c.stderr, "shoji: audit list:", err)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Local().Format(time.RFC3339), e.Type,
			printable(e.User), printable(e.Terminal), printable(e.Site()), printable(eventDetail(e)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d line(s) of the trail are not records: run shoji audit verify", bad)
	}
	return nil
}

// eventDetail is the rest of an event, key=value, for the table.
func eventDetail(e audit.Event) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("url", e.URL)
	add("rule", e.Rule)
	add("outcome", e.Outcome)
	add("reason", e.Reason)
	add("target", e.Target)
	add("what", e.What)
	add("direction", e.Direction)
	if e.Length != 0 {
		add("length", strconv.FormatInt(e.Length, 10))
	}
	add("sha256", e.SHA256)
	if e.Count != 0 {
		add("count", strconv.FormatInt(e.Count, 10))
	}
	if cp := e.Checkpoint; cp != nil {
		add("checkpoint", cp.Reason)
		add("signs_seq", strconv.FormatUint(cp.Seq, 10))
		add("key_id", cp.KeyID)
	}
	if t := e.Transfer; t != nil {
		add("transfer", t.ID)
		add("direction", t.Direction)
		add("state", t.State)
		if t.Name != "" {
			add("file", strconv.Quote(t.Name))
		}
		if t.Size != 0 {
			add("size", strconv.FormatInt(t.Size, 10))
		}
		add("sha256", t.SHA256)
		add("verdict", t.Verdict)
		add("approver", t.Approver)
		add("reason", t.Reason)
	}
	if e.Before != "" || e.After != "" {
		parts = append(parts, "(before/after: see --csv)")
	}
	add("comment", e.Comment)
	return strings.Join(parts, " ")
}

// printable replaces control and bidirectional-override characters, which
// a recorded URL or name could use to rewrite the auditor's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '?'
		}
		return r
	}, s)
}

// auditExport writes an evidence bundle of the filter to --out, atomically
// and never over an existing file, and records the export.
func auditExport(c *auditCall) error {
	if c.out == "" {
		return errors.New("--out FILE is required")
	}
	if _, err := os.Stat(c.out); err == nil {
		return fmt.Errorf("--out %s: the file exists; choose another name", c.out)
	}
	st, err := store.Open(c.data)
	if err != nil {
		return err
	}
	defer st.Close()
	sink, err := audit.OpenFile(c.dir, audit.FileOptions{})
	if err != nil {
		return fmt.Errorf("open audit trail: %w", err)
	}
	defer sink.Close()
	q := url.Values{}
	if !c.filter.From.IsZero() {
		q.Set("from", c.filter.From.Format(time.RFC3339))
	}
	if !c.filter.To.IsZero() {
		q.Set("to", c.filter.To.Format(time.RFC3339))
	}
	if c.filter.User != "" {
		q.Set("user", c.filter.User)
	}
	op := cliOperator()
	if _, err := sink.Commit(context.Background(), audit.Export(time.Now(), audit.Actor{User: op}, "evidence", q.Encode())); err != nil {
		return fmt.Errorf("record the export: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.out), ".shoji-evidence-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	filter := audit.Filter{From: c.filter.From, To: c.filter.To, User: c.filter.User}
	ledger := transfer.EvidenceLedger{List: st.ListTransfers, Dir: filepath.Join(c.data, "quarantine")}
	if err := audit.WriteEvidence(tmp, c.dir, ledger, filter, op, time.Now()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), c.out); err != nil {
		return fmt.Errorf("--out %s: %w", c.out, err)
	}
	fmt.Fprintf(c.stdout, "evidence bundle written to %s\n", c.out)
	return nil
}
