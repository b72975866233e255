package audit

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"
	"time"
)

// Filter selects events for an auditor. Zero fields select everything.
type Filter struct {
	// From is inclusive, To exclusive.
	From, To time.Time
	// User is the account that acted (not the one acted on), in any case.
	User string
	Type Type
	// Host matches the event's host, the host of its URL, or the host of
	// a transfer's source or destination. "*.example.jp" matches
	// example.jp and every name under it.
	Host string
	// SHA256 matches a transferred file's hash or the clipboard text's.
	SHA256 string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	if !f.From.IsZero() && e.Time.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !e.Time.Before(f.To) {
		return false
	}
	if f.User != "" && !strings.EqualFold(f.User, e.User) {
		return false
	}
	if f.Type != "" && f.Type != e.Type {
		return false
	}
	if f.SHA256 != "" && !strings.EqualFold(f.SHA256, e.FileSHA256()) {
		return false
	}
	if f.Host != "" && !f.matchHost(e) {
		return false
	}
	return true
}

func (f Filter) matchHost(e Event) bool {
	want := normHost(f.Host)
	sub, wild := strings.CutPrefix(want, "*.")
	hosts := []string{normHost(e.Host), hostOf(e.URL)}
	if e.Transfer != nil {
		hosts = append(hosts, hostOf(e.Transfer.Source), hostOf(e.Transfer.Destination))
	}
	for _, h := range hosts {
		switch {
		case h == "":
		case h == want:
			return true
		case wild && (h == sub || strings.HasSuffix(h, "."+sub)):
			return true
		}
	}
	return false
}

// Scan yields the events of the trail in dir that pass f, in the order
// they were written. A line that is not an event yields an error naming
// it, and the scan goes on if the caller does. An incomplete line (the
// one being written, or one a crash left) is skipped. Scan does not
// check the chain: that is Verify's job.
func Scan(dir string, f Filter) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		files, err := listFiles(dir)
		if err != nil {
			yield(Event{}, fmt.Errorf("audit trail %s: %w", dir, err))
			return
		}
		for _, cf := range files {
			if !scanFile(cf, f, yield) {
				return
			}
		}
	}
}

// scanFile yields the matching events of one file; false means stop.
func scanFile(cf chainFile, f Filter, yield func(Event, error) bool) bool {
	file, err := os.Open(cf.path)
	if err != nil {
		return yield(Event{}, fmt.Errorf("audit trail: %w", err))
	}
	defer file.Close()
	lr := newLineReader(file)
	for {
		line, terminated, _, err := lr.next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return yield(Event{}, fmt.Errorf("audit trail %s: %w", cf.name, err))
		}
		if !terminated {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			if !yield(Event{}, fmt.Errorf("audit trail %s line %d: not a record: %w", cf.name, lr.line, err)) {
				return false
			}
			continue
		}
		if f.Match(e) && !yield(e, nil) {
			return false
		}
	}
}

// Counts summarises the events of a time range for an auditor (AUDIT-3).
type Counts struct {
	Events int `json:"events"`
	// Users counts events by the account that acted.
	Users map[string]int `json:"users"`
	Types map[Type]int   `json:"types"`
	// Hosts counts events by Event.Site.
	Hosts map[string]int `json:"hosts"`
	// Files counts transfer events by the file's SHA-256.
	Files map[string]FileCount `json:"files"`
}

// FileCount is what the trail says about one file (one SHA-256).
type FileCount struct {
	// Name and Size are as first recorded.
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Events counts transfer steps, Transfers distinct transfers.
	Events    int `json:"events"`
	Transfers int `json:"transfers"`
}

// Count counts the events in dir that pass f. On an error it returns the
// counts so far with it.
func Count(dir string, f Filter) (Counts, error) {
	c := Counts{Users: map[string]int{}, Types: map[Type]int{}, Hosts: map[string]int{}, Files: map[string]FileCount{}}
	transfers := map[string]map[string]bool{} // sha256 -> transfer IDs
	for e, err := range Scan(dir, f) {
		if err != nil {
			return c, err
		}
		c.Events++
		c.Types[e.Type]++
		if e.User != "" {
			c.Users[e.User]++
		}
		if h := e.Site(); h != "" {
			c.Hosts[h]++
		}
		if t := e.Transfer; t != nil && t.SHA256 != "" {
			sum := strings.ToLower(t.SHA256)
			fc := c.Files[sum]
			if fc.Events == 0 {
				fc.Name, fc.Size = t.Name, t.Size
				transfers[sum] = map[string]bool{}
			}
			fc.Events++
			if !transfers[sum][t.ID] {
				transfers[sum][t.ID] = true
				fc.Transfers++
			}
			c.Files[sum] = fc
		}
	}
	return c, nil
}

// csvHeader is WriteCSV's first row.
var csvHeader = []string{
	"seq", "time", "type", "user", "role", "terminal", "session", "host", "url", "rule", "reason", "outcome",
	"target", "what", "comment", "direction", "length", "sha256", "transfer_id", "file", "size", "content_type",
	"source", "destination", "state", "verdict", "scanner", "approver", "count", "before", "after",
}

// WriteCSV writes events as CSV with a fixed header (see csvHeader) for an
// incident report. host is Event.Site; direction, sha256 and reason come
// from the transfer when the event has one. A cell that a spreadsheet
// would take for a formula (starting with = + - @, a tab or a carriage
// return, or their full-width forms) gets a leading apostrophe. It stops
// at the first error from events.
func WriteCSV(w io.Writer, events iter.Seq2[Event, error]) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write audit csv: %w", err)
	}
	for e, err := range events {
		if err != nil {
			cw.Flush()
			return fmt.Errorf("write audit csv: %w", err)
		}
		if err := cw.Write(csvRow(e)); err != nil {
			return fmt.Errorf("write audit csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write audit csv: %w", err)
	}
	return nil
}

func csvRow(e Event) []string {
	t := e.Transfer
	if t == nil {
		t = &Transfer{}
	}
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	row := []string{
		strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), string(e.Type),
		e.User, e.Role, e.Terminal, e.Session, e.Site(), e.URL, e.Rule, or(e.Reason, t.Reason), e.Outcome,
		e.Target, e.What, e.Comment, or(t.Direction, e.Direction), num(e.Length), e.FileSHA256(), t.ID, t.Name,
		num(t.Size), t.ContentType, t.Source, t.Destination, t.State, t.Verdict, t.Scanner, t.Approver,
		num(e.Count), e.Before, e.After,
	}
	for i, c := range row {
		row[i] = csvSafe(c)
	}
	return row
}

// csvSafe defuses a cell a spreadsheet would run as a formula.
func csvSafe(s string) string {
	for _, p := range []string{"=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"} {
		if strings.HasPrefix(s, p) {
			return "'" + s
		}
	}
	return s
}
