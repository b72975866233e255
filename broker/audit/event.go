// Package audit is shoji's tamper-evident audit trail: typed events built by
// pure functions, a Sink that makes them durable, and the readers an
// auditor uses (Verify, Scan, Count, WriteCSV) and the syslog Forwarder
// that keeps a copy off the box.
//
// The default sink, File, appends JSON Lines in which every record carries
// the SHA-256 of the record before it, so an edit, a deletion, an insertion
// or a reordering anywhere but at the very end breaks the chain. The end
// of the chain is protected by signed checkpoints (audit_checkpoint
// records, with a key kept outside the data directory) and by the copy the
// Forwarder sends to the hospital's syslog collector.
//
// Events hold URLs and metadata, never page content or keystrokes: the
// clipboard is recorded as a length and a SHA-256, files as name, size and
// SHA-256.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Type says what an Event records.
type Type string

// The event types. The audit_* types are written by the sink itself.
const (
	TypeLogin        Type = "login"
	TypeLoginFailed  Type = "login_failed"
	TypeLockout      Type = "lockout"
	TypeLogout       Type = "logout"
	TypeSessionStart Type = "session_start"
	TypeSessionEnd   Type = "session_end"
	TypeNavigation   Type = "navigation"
	TypeDeny         Type = "deny"
	TypeSiteRequest  Type = "site_request"
	TypeSiteDecision Type = "site_decision"
	TypeTransfer     Type = "transfer"
	TypeClipboard    Type = "clipboard"
	TypePrint        Type = "print"
	TypePolicyChange Type = "policy_change"
	TypeUserChange   Type = "user_change"
	TypeKillSwitch   Type = "kill_switch"
	// TypeMaintenance records remote maintenance of the broker (AUDIT-5).
	TypeMaintenance Type = "maintenance"
	// TypeExport records an auditor taking records out: a CSV export or
	// an evidence bundle.
	TypeExport Type = "export"
	// TypeRecovery records what the broker cleaned up at start after a
	// previous run ended without cleaning up itself (a crash, kill -9, a
	// power cut): What says what was removed ("quarantine", "browser",
	// "profile"), Target which one, Count how many files and Length how
	// many bytes went with it.
	TypeRecovery Type = "recovery"
	// TypeStartWarning records a weakness of the configuration the broker
	// started with: What names it ("scanning_off"), Reason says what it
	// means.
	TypeStartWarning Type = "start_warning"

	// TypeRecovered opens the chain again after a crash left an incomplete
	// final line, which was cut off: Length is how many bytes, SHA256
	// their hash, Target the file.
	TypeRecovered Type = "audit_recovered"
	// TypeRotated is the first record of every file after the first; its
	// prev is the hash of the last record of the file before (Target).
	TypeRotated Type = "audit_rotated"
	// TypeDropped says Record events were lost because the sink's queue
	// was full: Count is how many, Comment how many of each type.
	TypeDropped Type = "audit_dropped"
	// TypeCheckpoint signs the head of the chain: Checkpoint names the
	// record before it and carries the signature (docs/audit.md).
	TypeCheckpoint Type = "audit_checkpoint"
)

// Types lists every event type, the sink's own last.
var Types = []Type{
	TypeLogin, TypeLoginFailed, TypeLockout, TypeLogout, TypeSessionStart, TypeSessionEnd,
	TypeNavigation, TypeDeny, TypeSiteRequest, TypeSiteDecision, TypeTransfer, TypeClipboard, TypePrint,
	TypePolicyChange, TypeUserChange, TypeKillSwitch, TypeMaintenance, TypeExport, TypeRecovery,
	TypeStartWarning, TypeRecovered, TypeRotated, TypeDropped, TypeCheckpoint,
}

// sinkTypes are written only by the sink.
var sinkTypes = map[Type]bool{TypeRecovered: true, TypeRotated: true, TypeDropped: true, TypeCheckpoint: true}

// Transfer directions, and the clipboard's.
const (
	// DirectionDownload is a file leaving the isolated browser for the
	// clinician's terminal.
	DirectionDownload = "download"
	// DirectionUpload is a file from the terminal into the isolated browser.
	DirectionUpload = "upload"
	// DirectionCopy is text copied out of the isolated browser.
	DirectionCopy = "copy"
	// DirectionPaste is text pasted from the terminal into the isolated
	// browser.
	DirectionPaste = "paste"
)

// ZeroHash is the prev of the first record of a chain.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Actor is who did what an Event records.
type Actor struct {
	// User is the account name; empty for events of the broker itself.
	User string `json:"user,omitempty"`
	Role string `json:"role,omitempty"`
	// Terminal is where the user sat: the client address, or a terminal
	// name when the deployment knows it.
	Terminal string `json:"terminal,omitempty"`
	// Session is the browsing or login session's ID.
	Session string `json:"session,omitempty"`
}

// Transfer describes one step of a file moving between the isolated
// browser and a terminal. Each step (requested, scanned, approved,
// released, rejected, ...) is its own Event with the same ID.
type Transfer struct {
	ID string `json:"id"`
	// Direction is DirectionDownload or DirectionUpload.
	Direction string `json:"direction"`
	// Name is the file name as the page or the clinician gave it:
	// metadata only.
	Name        string `json:"name,omitempty"`
	Size        int64  `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Source and Destination are where the file came from and goes to: a
	// URL on the remote side, a terminal on the other.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`
	// State is the step this event records.
	State string `json:"state"`
	// Verdict is the malware scanner's answer, Scanner its name and
	// signature version.
	Verdict  string `json:"verdict,omitempty"`
	Scanner  string `json:"scanner,omitempty"`
	Approver string `json:"approver,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Event is one audit record. Build it with the functions below; the sink
// sets Seq and Prev. The detail fields that a type does not use are empty
// and left out of the JSON.
type Event struct {
	// Seq numbers the records of a chain from 1 without gaps.
	Seq uint64 `json:"seq"`
	// Time is when it happened, in UTC.
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	Actor

	// Host is the site concerned (for navigation, the URL's host).
	Host string `json:"host,omitempty"`
	URL  string `json:"url,omitempty"`
	// Rule is the policy rule that decided.
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	// Target is what was acted on: a user, a host, a file of the trail.
	Target string `json:"target,omitempty"`
	// What names the change or action (for example "role", "password",
	// "block_host").
	What string `json:"what,omitempty"`
	// Before and After are the changed object as text (YAML or JSON),
	// never a secret.
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Direction, Length and SHA256 describe clipboard text (bytes of
	// UTF-8) and the bytes an audit_recovered record cut off.
	Direction string `json:"direction,omitempty"`
	Length    int64  `json:"length,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	// Count is how many records an audit_dropped record stands for.
	Count    int64     `json:"count,omitempty"`
	Transfer *Transfer `json:"transfer,omitempty"`
	// Checkpoint is set in audit_checkpoint records only.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`

	// Prev is the hex SHA-256 of the previous record's line, without its
	// newline; ZeroHash for the first record.
	Prev string `json:"prev"`
}

func event(at time.Time, t Type, a Actor) Event {
	return Event{Time: at.UTC(), Type: t, Actor: a}
}

// because is e with its reason.
func because(e Event, reason string) Event {
	e.Reason = reason
	return e
}

// Login records a successful login.
func Login(at time.Time, a Actor) Event { return event(at, TypeLogin, a) }

// LoginFailed records a refused login; a.User is the name that was tried.
func LoginFailed(at time.Time, a Actor, reason string) Event {
	return because(event(at, TypeLoginFailed, a), reason)
}

// Lockout records that an account was locked after failed logins.
func Lockout(at time.Time, a Actor, reason string) Event {
	return because(event(at, TypeLockout, a), reason)
}

// Logout records the end of a login session: by the user, idle timeout,
// expiry or an admin.
func Logout(at time.Time, a Actor, reason string) Event {
	return because(event(at, TypeLogout, a), reason)
}

// SessionStart records that a remote browser was started for a.Session.
func SessionStart(at time.Time, a Actor) Event { return event(at, TypeSessionStart, a) }

// SessionEnd records that a remote browser ended, and why.
func SessionEnd(at time.Time, a Actor, reason string) Event {
	return because(event(at, TypeSessionEnd, a), reason)
}

// Navigation records a top-level page the remote browser loaded.
func Navigation(at time.Time, a Actor, rawURL string) Event {
	e := event(at, TypeNavigation, a)
	e.URL = rawURL
	e.Host = hostOf(rawURL)
	return e
}

// Deny records a request the policy refused, with the rule that decided.
func Deny(at time.Time, a Actor, host, rawURL, rule, reason string) Event {
	e := event(at, TypeDeny, a)
	e.Host, e.URL, e.Rule, e.Reason = host, rawURL, rule, reason
	return e
}

// SiteRequest records a clinician asking for a blocked site to be allowed.
func SiteRequest(at time.Time, a Actor, host, rawURL, reason string) Event {
	e := event(at, TypeSiteRequest, a)
	e.Host, e.URL, e.Reason = host, rawURL, reason
	return e
}

// SiteDecision records an admin's answer (outcome) to requester's request
// for host.
func SiteDecision(at time.Time, a Actor, requester, host, outcome, comment string) Event {
	e := event(at, TypeSiteDecision, a)
	e.Target, e.Host, e.Outcome, e.Comment = requester, host, outcome, comment
	return e
}

// TransferStep records one step of a file transfer.
func TransferStep(at time.Time, a Actor, t Transfer) Event {
	e := event(at, TypeTransfer, a)
	e.Transfer = &t
	return e
}

// Clipboard records text crossing the clipboard: only its length in bytes
// and its SHA-256, never the text.
func Clipboard(at time.Time, a Actor, direction string, length int, sha256 string, outcome, reason string) Event {
	e := event(at, TypeClipboard, a)
	e.Direction, e.Length, e.SHA256, e.Outcome, e.Reason = direction, int64(length), sha256, outcome, reason
	return e
}

// ClipboardText is Clipboard for text in hand: it records the text's
// length and SHA-256 and drops the text.
func ClipboardText(at time.Time, a Actor, direction, text, outcome, reason string) Event {
	sum := sha256.Sum256([]byte(text))
	return Clipboard(at, a, direction, len(text), hex.EncodeToString(sum[:]), outcome, reason)
}

// Print records a print of the page at rawURL.
func Print(at time.Time, a Actor, rawURL, outcome, reason string) Event {
	e := event(at, TypePrint, a)
	e.URL, e.Host, e.Outcome, e.Reason = rawURL, hostOf(rawURL), outcome, reason
	return e
}

// PolicyChange records a change to the site policy or the broker's
// settings, with the changed part before and after.
func PolicyChange(at time.Time, a Actor, what, before, after string) Event {
	e := event(at, TypePolicyChange, a)
	e.What, e.Before, e.After = what, before, after
	return e
}

// UserChange records a change to the account target: what changed, and
// its value before and after (never a password or its hash).
func UserChange(at time.Time, a Actor, target, what, before, after string) Event {
	e := event(at, TypeUserChange, a)
	e.Target, e.What, e.Before, e.After = target, what, before, after
	return e
}

// KillSwitch records an emergency action: what was done (for example
// "block_host", "end_sessions") to target, and why.
func KillSwitch(at time.Time, a Actor, what, target, reason string) Event {
	e := event(at, TypeKillSwitch, a)
	e.What, e.Target, e.Reason = what, target, reason
	return e
}

// Maintenance records remote maintenance of the broker: what was done and
// a comment for the review afterwards.
func Maintenance(at time.Time, a Actor, what, comment string) Event {
	e := event(at, TypeMaintenance, a)
	e.What, e.Comment = what, comment
	return e
}

// Export records an auditor exporting records: what form ("csv",
// "evidence") and the filter that selected them, as the query string.
func Export(at time.Time, a Actor, what, filter string) Event {
	e := event(at, TypeExport, a)
	e.What, e.Target = what, filter
	return e
}

// Recovery records what the broker removed at start that a previous run
// left behind: what ("quarantine", "browser", "profile"), which one
// (target), why, and how many files and bytes went with it.
func Recovery(at time.Time, what, target, reason string, files, bytes int64) Event {
	e := event(at, TypeRecovery, Actor{})
	e.What, e.Target, e.Reason, e.Count, e.Length = what, target, reason, files, bytes
	return e
}

// StartWarning records a weakness of the configuration the broker started
// with: what names it, reason says what it means for the hospital.
func StartWarning(at time.Time, what, reason string) Event {
	e := event(at, TypeStartWarning, Actor{})
	e.What, e.Reason = what, reason
	return e
}

// Site is the host an event concerns: Host, else the host of URL, else
// the host of a transfer's source or destination URL; empty for none.
func (e Event) Site() string {
	if e.Host != "" {
		return normHost(e.Host)
	}
	if h := hostOf(e.URL); h != "" {
		return h
	}
	if e.Transfer != nil {
		if h := hostOf(e.Transfer.Source); h != "" {
			return h
		}
		return hostOf(e.Transfer.Destination)
	}
	return ""
}

// FileSHA256 is the hash an event carries: a transfer's file or the
// clipboard text.
func (e Event) FileSHA256() string {
	if e.Transfer != nil && e.Transfer.SHA256 != "" {
		return e.Transfer.SHA256
	}
	return e.SHA256
}

// hostOf is the lowercased host name of an absolute URL, without port;
// empty when s is not one.
func hostOf(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	return normHost(u.Hostname())
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// errInvalid marks an event the sink refuses.
var errInvalid = errors.New("invalid audit event")

// check reports what makes e unfit for the trail: a type that is not a
// short lowercase word (it becomes the syslog MSGID), a missing time or
// one JSON cannot hold, or a type only the sink writes.
func (e Event) check() error {
	if e.Type == "" || len(e.Type) > 32 {
		return fmt.Errorf("%w: type %q: want 1 to 32 characters", errInvalid, e.Type)
	}
	for _, c := range e.Type {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("%w: type %q: want lowercase letters, digits and _", errInvalid, e.Type)
		}
	}
	if sinkTypes[e.Type] {
		return fmt.Errorf("%w: type %q is written by the sink only", errInvalid, e.Type)
	}
	if e.Time.IsZero() || e.Time.Year() > 9999 || e.Time.Year() < 1 {
		return fmt.Errorf("%w: %s event: time %v is missing or out of range", errInvalid, e.Type, e.Time)
	}
	return nil
}
