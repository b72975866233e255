// Package transfer is shoji's controlled file-transfer channel (docs/transfer.md):
// the only way a file crosses between the isolated browser and the clinical
// side. It quarantines what the remote browser downloads or prints, checks
// it (SHA-256, content type sniffed from the bytes, transfer policy, malware
// scan, encrypted and macro documents), and releases it, holds it for an
// approver, or rejects it. It checks files a clinician uploads before they
// reach a page, delivers released files to registered departmental
// destinations, and deletes quarantined files after the retention period.
//
// Every step is an audit record, and the ledger (Ledger, kept by the store)
// changes only after the record of the step is durable (write-ahead), so
// that the ledger and the trail agree after any crash (CheckLedger). A file
// is released only after the record of its release is durable (fail
// closed); a file that cannot be scanned is held, never released. Recover
// finishes at start what a previous run left.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Policy answers the transfer questions of a session's policy profile.
type Policy interface {
	// Transfers returns the profile's transfer policy, defaults filled in.
	Transfers(profile string) policy.Transfers
	// UploadDestination says whether files may be uploaded to the page at
	// rawURL (XFER-7).
	UploadDestination(profile, rawURL string) policy.Decision
}

// Owner is the session a transfer belongs to.
type Owner struct {
	User     string
	Role     string
	Terminal string
	Session  string
	Profile  string
}

func (o Owner) actor() audit.Actor {
	return audit.Actor{User: o.User, Role: o.Role, Terminal: o.Terminal, Session: o.Session}
}

// Config configures a Manager.
type Config struct {
	// Store keeps the ledger, the destinations and the kill switch
	// (broker/store's bbolt file in the broker). Required.
	Store Store
	// Dir is the quarantine root, e.g. DATA/quarantine. Required.
	Dir string
	// Policy decides. Required.
	Policy Policy
	// Audit records every step. Required.
	Audit audit.Sink
	// Scanner scans files; nil means scanning is not configured (files are
	// then released on policy alone, and the ledger says "not configured").
	Scanner scan.Scanner
	// ScanTimeout bounds one scan; a scan that takes longer holds the file.
	// Zero means 2 minutes.
	ScanTimeout time.Duration
	// Retention is how long quarantined files are kept. Zero means 24 h.
	Retention time.Duration
	// Notify, when set, tells a user's viewer that one of their transfers
	// changed. It must not block, and it must do nothing for a user who has
	// no session or viewer.
	Notify func(user string, t Transfer)
	// Protected lists directories no departmental destination may be
	// in, equal to or above: the data directory, the configuration file's
	// directory, the profile root. The quarantine (Dir) and the system
	// directories (see systemTrees and systemDirs) are always protected.
	// Relative paths are made absolute; symbolic links are resolved.
	Protected []string
	// Logger receives operational logs. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Errors classified by the HTTP API.
var (
	// ErrNotFound: no such transfer for this user (or at all).
	ErrNotFound = errors.New("no such transfer")
	// ErrForbidden: the caller may not do this to the transfer.
	ErrForbidden = errors.New("forbidden")
	// ErrState: the transfer is not in a state that allows this.
	ErrState = errors.New("not possible in this state")
	// ErrInvalid: the request itself is wrong (a message says what).
	ErrInvalid = errors.New("invalid request")
)

// Manager runs the transfer channel of one node.
type Manager struct {
	cfg Config
	log *slog.Logger

	// protected are the resolved roots no destination may touch.
	protected []protectedDir

	mu        sync.Mutex
	receiving map[string]receiving // browser download ID → its transfer
	capped    map[string]string    // browser download ID → why it is being canceled
	choosers  map[string]*chooser
	// busy holds the transfers a goroutine of this process is moving on
	// (receiving, checking, uploading); the others in receiving or
	// checking were left by a failed audit commit or a previous run, and
	// Run (or Recover) moves them on.
	busy map[string]bool
	// sessionDirs are the session download directories made by this run;
	// Recover removes every other one.
	sessionDirs map[string]bool
	wg          sync.WaitGroup
	suspended   atomic.Pointer[Suspension]
}

// receiving is a download the browser is still writing.
type receiving struct {
	transfer string
	session  string
}

// New returns a Manager, creating the quarantine directories. It does not
// touch what a previous run left: call Recover once everything Notify
// needs exists.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("transfer config: Store is required")
	case cfg.Dir == "":
		return nil, errors.New("transfer config: Dir is required")
	case cfg.Policy == nil:
		return nil, errors.New("transfer config: Policy is required")
	case cfg.Audit == nil:
		return nil, errors.New("transfer config: Audit is required")
	}
	if cfg.ScanTimeout == 0 {
		cfg.ScanTimeout = 2 * time.Minute
	}
	if cfg.Retention == 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.Retention < 0 || cfg.ScanTimeout < 0 {
		return nil, errors.New("transfer config: Retention and ScanTimeout must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "sessions"), filepath.Join(cfg.Dir, "files"), filepath.Join(cfg.Dir, "uploads")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
	}
	protected, err := protectedDirs(cfg.Dir, cfg.Protected)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:         cfg,
		log:         cfg.Logger,
		protected:   protected,
		receiving:   make(map[string]receiving),
		capped:      make(map[string]string),
		choosers:    make(map[string]*chooser),
		busy:        make(map[string]bool),
		sessionDirs: make(map[string]bool),
	}
	m.loadSuspension()
	m.checkDestinations()
	return m, nil
}

// claim marks transfer id as being moved on by the caller, who must
// release it; false means someone else is at it.
func (m *Manager) claim(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[id] {
		return false
	}
	m.busy[id] = true
	return true
}

// release ends a claim.
func (m *Manager) release(id string) {
	m.mu.Lock()
	delete(m.busy, id)
	m.mu.Unlock()
}

// Wait waits for the checks in progress (tests, shutdown).
func (m *Manager) Wait() { m.wg.Wait() }

// SessionDir returns the directory a session's browser downloads into,
// creating it. The browser names files there by GUID.
func (m *Manager) SessionDir(sessionID string) (string, error) {
	if !safeID(sessionID) {
		return "", fmt.Errorf("quarantine: bad session ID %q", sessionID)
	}
	dir := filepath.Join(m.cfg.Dir, "sessions", sessionID)
	m.mu.Lock()
	m.sessionDirs[sessionID] = true
	m.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	return dir, nil
}

// RemoveSessionDir removes what a session's browser left in its download
// directory (partial files); finished downloads were moved out already.
func (m *Manager) RemoveSessionDir(sessionID string) {
	if !safeID(sessionID) {
		return
	}
	if err := os.RemoveAll(filepath.Join(m.cfg.Dir, "sessions", sessionID)); err != nil {
		m.log.Warn("transfer: remove session download directory", "session", sessionID, "err", err)
	}
	m.mu.Lock()
	delete(m.sessionDirs, sessionID)
	m.mu.Unlock()
}

// Quarantine returns the directory a session's browser downloads into
// (SessionDir) and the largest file it may download (MaxDownload). A
// pooled browser, whose owner (o.User) is not known until it is claimed,
// gets no cap of its own: Browse cancels a download past its owner's cap
// as it grows.
func (m *Manager) Quarantine(o Owner) (dir string, maxSize int64, err error) {
	dir, err = m.SessionDir(o.Session)
	if err != nil || o.User == "" {
		return dir, 0, err
	}
	return dir, m.MaxDownload(o.Profile), nil
}

// MaxDownload is the largest file a browser of profile may download or
// print; a larger one is canceled while it downloads.
func (m *Manager) MaxDownload(profile string) int64 {
	tp := m.cfg.Policy.Transfers(profile)
	return max(int64(tp.Download.MaxSize), int64(tp.Print.MaxSize))
}

// safeID reports whether id can name a file: letters, digits, '-' and '_'.
func safeID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// filePath is where a quarantined download or print is kept.
func (m *Manager) filePath(id string) string {
	return filepath.Join(m.cfg.Dir, "files", id)
}

// Get returns a transfer. A user who is not an approver, admin or auditor
// sees only their own.
func (m *Manager) Get(id string) (Transfer, error) {
	t, err := m.cfg.Store.Transfer(id)
	if errors.Is(err, record.ErrNotFound) {
		return t, ErrNotFound
	}
	return t, err
}

// Mine returns a user's transfers, newest first.
func (m *Manager) Mine(user string) ([]Transfer, error) {
	return m.cfg.Store.ListTransfers(func(t *Transfer) bool { return t.User == user })
}

// Held returns the transfers waiting for an approver, oldest first.
func (m *Manager) Held() ([]Transfer, error) {
	list, err := m.cfg.Store.ListTransfers(func(t *Transfer) bool { return t.State == Held })
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list, err
}

// Decided returns the transfers an approver approved or rejected, newest
// first.
func (m *Manager) Decided() ([]Transfer, error) {
	return m.cfg.Store.ListTransfers(func(t *Transfer) bool { return t.Approver != "" })
}

// List returns the transfers that match, newest first (approvers, auditors).
func (m *Manager) List(match func(*Transfer) bool) ([]Transfer, error) {
	return m.cfg.Store.ListTransfers(match)
}

// notify tells the owner's viewer, if Notify is set. Notify must cope with
// a user who has no session or viewer.
func (m *Manager) notify(t Transfer) {
	if m.cfg.Notify != nil {
		m.cfg.Notify(t.User, t)
	}
}

// record writes an audit record of a transfer step without waiting, for
// steps that change nothing in the ledger.
func (m *Manager) record(t Transfer, a audit.Actor, step Step) {
	m.cfg.Audit.Record(audit.TransferStep(m.cfg.Now(), a, auditTransfer(t, step)))
}

// commitTimeout bounds the wait for one audit record, so that a trail that
// hangs leaves the transfer where it was (and retried) instead of blocking
// its goroutine for ever.
const commitTimeout = 30 * time.Second

// commit writes an audit record of a transfer step and waits until it is
// durable. Every change of the ledger comes after the commit of its step
// (write-ahead): when the commit fails the ledger keeps its previous state.
func (m *Manager) commit(ctx context.Context, t Transfer, a audit.Actor, step Step) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if _, err := m.cfg.Audit.Commit(ctx, audit.TransferStep(m.cfg.Now(), a, auditTransfer(t, step))); err != nil {
		return fmt.Errorf("audit transfer %s step %s: %w", t.ID, step, err)
	}
	return nil
}

func ownerActor(t Transfer) audit.Actor {
	return audit.Actor{User: t.User, Role: t.Role, Terminal: t.Terminal, Session: t.Session}
}

// auditTransfer is the audit view of a ledger entry at one step: the step
// is the record's state.
func auditTransfer(t Transfer, step Step) audit.Transfer {
	reason := t.Reason
	if t.Comment != "" {
		reason += " (comment: " + t.Comment + ")"
	}
	if t.Rule != "" {
		reason += " [rule: " + t.Rule + "]"
	}
	return audit.Transfer{
		ID:          t.ID,
		Direction:   string(t.Direction),
		Name:        t.Name,
		Size:        t.Size,
		SHA256:      t.SHA256,
		ContentType: t.MIME,
		Source:      t.Source,
		Destination: t.Destination,
		State:       string(step),
		Verdict:     t.Scan,
		Approver:    t.Approver,
		Reason:      strings.TrimSpace(reason),
	}
}
