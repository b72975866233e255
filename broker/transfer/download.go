package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/transfer/inspect"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Browse handles one report of a session's browser about a download or a
// print. It waits only for the ledger and the audit record of a step; the
// checks of a finished file run on their own goroutine. cancel stops a
// download in the browser; Browse calls it, on a goroutine of its own, for
// a download that grows past the direction's size limit (the browser's own
// cap is the largest of all directions).
func (m *Manager) Browse(o Owner, d isolation.Download, cancel func(ctx context.Context, id string) error) {
	switch d.State {
	case isolation.DownloadStarted:
		m.started(o, d)
		m.capSize(o, d, cancel)
	case isolation.DownloadProgress:
		m.progress(d)
		m.capSize(o, d, cancel)
	case isolation.DownloadDone:
		m.done(o, d)
	case isolation.DownloadCanceled, isolation.DownloadFailed:
		id := m.forget(d.ID)
		if id == "" {
			return
		}
		defer m.release(id)
		reason := d.Reason
		m.mu.Lock()
		if r := m.capped[d.ID]; r != "" {
			reason = r
		}
		delete(m.capped, d.ID)
		m.mu.Unlock()
		if reason == "" {
			reason = "the download did not complete"
		}
		_, _ = m.finish(context.Background(), id, Canceled, reason, nil)
	}
}

func direction(d isolation.Download) Direction {
	if d.Print {
		return Print
	}
	return Download
}

func (m *Manager) started(o Owner, d isolation.Download) {
	now := m.cfg.Now().UTC()
	name := d.Name
	if name == "" && d.Print {
		name = "page.pdf"
	}
	t := Transfer{
		ID:        NewID(),
		Direction: direction(d),
		User:      o.User,
		Role:      o.Role,
		Terminal:  o.Terminal,
		Session:   o.Session,
		Profile:   o.Profile,
		Name:      inspect.DisplayName(name),
		PageName:  d.Name,
		Source:    d.URL,
		Size:      d.Total,
		Received:  d.Received,
		State:     Receiving,
		Created:   now,
		Updated:   now,
	}
	// The entry is made before its first step is in the trail: a crash in
	// between leaves an entry in receiving with no "started" step, which
	// Recover cancels (and records), while the other order would leave a
	// step of a transfer the ledger does not know.
	m.claim(t.ID)
	if err := m.cfg.Store.CreateTransfer(t); err != nil {
		m.release(t.ID)
		m.log.Error("transfer: record a new download", "user", o.User, "err", err)
		return
	}
	m.mu.Lock()
	m.receiving[d.ID] = receiving{transfer: t.ID, session: o.Session}
	m.mu.Unlock()
	if err := m.commit(context.Background(), t, o.actor(), StepStarted); err != nil {
		// Nothing is lost: the download goes on, and the later steps are
		// recorded (and wait for the trail) as usual.
		m.log.Error("transfer: the audit trail did not take the start of a download", "transfer", t.ID, "err", err)
	}
	m.notify(t)
}

// capSize cancels a download that is, or announces to be, larger than its
// direction allows, once.
func (m *Manager) capSize(o Owner, d isolation.Download, cancel func(ctx context.Context, id string) error) {
	dir := policy.DirDownload
	if d.Print {
		dir = policy.DirPrint
	}
	fp, _ := m.cfg.Policy.Transfers(o.Profile).File(dir)
	limit := int64(fp.MaxSize)
	if limit <= 0 || cancel == nil || max(d.Total, d.Received) <= limit {
		return
	}
	m.mu.Lock()
	_, done := m.capped[d.ID]
	if !done {
		m.capped[d.ID] = fmt.Sprintf("the file is larger than the %s limit for a %s", policy.Size(limit), dir)
	}
	m.mu.Unlock()
	if done {
		return
	}
	go func() {
		ctx, cancelCtx := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelCtx()
		if err := cancel(ctx, d.ID); err != nil {
			m.log.Warn("transfer: cancel an over-size download", "download", d.ID, "err", err)
		}
	}()
}

func (m *Manager) progress(d isolation.Download) {
	m.mu.Lock()
	id := m.receiving[d.ID].transfer
	m.mu.Unlock()
	if id == "" {
		return
	}
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		return
	}
	// Progress is shown, not stored: the ledger keeps what was decided.
	t.Received, t.Size = d.Received, max(d.Total, t.Size)
	m.notify(t)
}

// forget ends the tracking of browser download id and returns its
// transfer, which stays claimed: the caller releases it.
func (m *Manager) forget(browserID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.receiving[browserID].transfer
	delete(m.receiving, browserID)
	return id
}

// endDownloads cancels the downloads a session's browser was still writing
// when the session ended: its browser is gone and will not report them.
func (m *Manager) endDownloads(sessionID string) {
	var ids []string
	m.mu.Lock()
	for browserID, r := range m.receiving {
		if r.session == sessionID {
			ids = append(ids, r.transfer)
			delete(m.receiving, browserID)
			delete(m.capped, browserID)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		_, _ = m.finish(context.Background(), id, Canceled, "the session ended while the file was downloading", nil)
		m.release(id)
	}
}

// done moves the finished file out of the browser's reach and checks it.
func (m *Manager) done(o Owner, d isolation.Download) {
	id := m.forget(d.ID)
	if id == "" {
		// A print reports done with no earlier start when it was quick.
		m.started(o, d)
		id = m.forget(d.ID)
		if id == "" {
			return
		}
	}
	inQuarantine := d.Path != "" && strings.HasPrefix(filepath.Clean(d.Path), m.cfg.Dir+string(filepath.Separator))
	m.mu.Lock()
	capped := m.capped[d.ID]
	delete(m.capped, d.ID)
	m.mu.Unlock()
	if capped != "" {
		// The browser finished the file before the cancel reached it: it
		// is still larger than its direction allows, and ends as decided.
		if inQuarantine {
			if err := os.Remove(d.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				m.log.Error("transfer: remove an over-size download", "transfer", id, "err", err)
			}
		}
		_, _ = m.finish(context.Background(), id, Canceled, capped, nil)
		m.release(id)
		return
	}
	if !inQuarantine {
		_, _ = m.finish(context.Background(), id, Canceled, "the browser reported a file outside the quarantine", nil)
		m.release(id)
		return
	}
	if err := os.Rename(d.Path, m.filePath(id)); err != nil {
		m.log.Error("transfer: move a download into the quarantine", "transfer", id, "err", err)
		_, _ = m.finish(context.Background(), id, Canceled, "the downloaded file could not be quarantined", nil)
		m.release(id)
		return
	}
	crashpoint.Hit(crashpoint.DownloadQuarantined)
	if err := m.received(context.Background(), id); err != nil {
		// The ledger keeps receiving, the file stays in the quarantine,
		// and Run tries again.
		m.log.Error("transfer: record a finished download", "transfer", id, "err", err)
		m.release(id)
		return
	}
	m.wg.Go(func() {
		defer m.release(id)
		m.check(context.Background(), id)
	})
}

// received records that a download's file is complete in the quarantine
// and moves its ledger entry from receiving to checking, in that order.
func (m *Manager) received(ctx context.Context, id string) error {
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		return fmt.Errorf("transfer %s: %w", id, err)
	}
	if t.State != Receiving {
		return fmt.Errorf("transfer %s: %w: it is %s, not receiving", id, ErrState, t.State)
	}
	t.State, t.Updated = Checking, m.cfg.Now().UTC()
	if err := m.commit(ctx, t, ownerActor(t), StepReceived); err != nil {
		return err
	}
	_, err = m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		if s.State != Receiving {
			return fmt.Errorf("%w: it is %s, not receiving", ErrState, s.State)
		}
		s.State, s.Updated = t.State, t.Updated
		return nil
	})
	if err != nil {
		return fmt.Errorf("transfer %s: record checking: %w", id, err)
	}
	return nil
}

// check runs the checks of a quarantined file in order: SHA-256 and size,
// content inspection, policy, scan; then it releases, holds or rejects.
func (m *Manager) check(ctx context.Context, id string) {
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		m.log.Error("transfer: check", "transfer", id, "err", err)
		return
	}
	path := m.filePath(id)
	sum, size, err := hashFile(path)
	if err != nil {
		_, _ = m.finish(ctx, id, Rejected, "the file could not be read in the quarantine", nil)
		m.log.Error("transfer: hash", "transfer", id, "err", err)
		return
	}
	info, err := inspect.Inspect(path, t.PageName)
	if err != nil {
		_, _ = m.finish(ctx, id, Rejected, "the file could not be inspected", nil)
		m.log.Error("transfer: inspect", "transfer", id, "err", err)
		return
	}
	dir := policy.DirDownload
	if t.Direction == Print {
		dir = policy.DirPrint
	}
	dec := m.cfg.Policy.Transfers(t.Profile).DecideFile(dir, info.Class, info.MIME, size)
	t, err = m.cfg.Store.UpdateTransfer(id, func(t *Transfer) error {
		t.SHA256, t.Size, t.Received, t.MIME, t.Class = sum, size, size, info.MIME, info.Class
		t.Rule, t.Inspection = dec.Rule, info.Detail
		t.Updated = m.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		m.log.Error("transfer: record checks", "transfer", id, "err", err)
		return
	}
	if dec.Action == policy.ActionOff {
		_, _ = m.finish(ctx, id, Rejected, dec.Reason, nil)
		return
	}
	verdict, infected, scanned := m.scan(ctx, path)
	set := func(t *Transfer) { t.Scan = verdict }
	var state State
	var reason string
	switch {
	case infected:
		state, reason = Rejected, "malware was found: "+strings.TrimPrefix(verdict, "infected: ")
	case !scanned:
		state, reason = Held, "the file could not be scanned for malware ("+strings.TrimPrefix(verdict, "not scanned: ")+"); an approver must decide"
	case info.Encrypted:
		state, reason = Held, "the file is password-protected, so it cannot be scanned; an approver must decide"
	case info.Macros:
		state, reason = Held, "the document contains macros; an approver must decide"
	case m.Suspended().On:
		state, reason = Held, "all file transfers are suspended by an administrator ("+m.Suspended().Reason+")"
	case dec.Action == policy.ActionApprove:
		state, reason = Held, dec.Reason
		if reason == "" {
			reason = fmt.Sprintf("files of type %s need an approver", info.Class)
		}
	default:
		state = Released
	}
	_, _ = m.finish(ctx, id, state, reason, set)
}

// scan returns the scanner's verdict for the ledger, whether the file is
// infected, and whether it was scanned at all.
func (m *Manager) scan(ctx context.Context, path string) (verdict string, infected, scanned bool) {
	if m.cfg.Scanner == nil {
		return "not configured", false, true
	}
	f, err := os.Open(path)
	if err != nil {
		return "not scanned: " + err.Error(), false, false
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ScanTimeout)
	defer cancel()
	res, err := m.cfg.Scanner.Scan(ctx, f)
	switch {
	case err != nil:
		m.log.Warn("transfer: scanner unavailable; the file is held", "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			return "not scanned: the scanner timed out", false, false
		}
		return "not scanned: the scanner is unavailable", false, false
	case res.Infected:
		return "infected: " + res.Signature, true, true
	}
	if res.Engine != "" {
		return "clean (" + res.Engine + ")", false, true
	}
	return "clean", false, true
}

// finish moves a transfer on from receiving or checking to state,
// write-ahead: the step's audit record is durable first, then the ledger
// changes. When the trail does not take a release, the file is held
// instead if the trail takes that; when it takes nothing, the ledger keeps
// the transfer where it was (nothing released, nothing lost) and Run or
// Recover moves it on later. Rejected and canceled files are deleted once
// the ledger says so. It returns the entry as stored.
func (m *Manager) finish(ctx context.Context, id string, state State, reason string, mod func(*Transfer)) (Transfer, error) {
	prev, err := m.cfg.Store.Transfer(id)
	if err != nil {
		m.log.Error("transfer: finish", "transfer", id, "err", err)
		return prev, fmt.Errorf("transfer %s: %w", id, err)
	}
	if !prev.State.InProgress() {
		return prev, fmt.Errorf("transfer %s: %w: it is %s already", id, ErrState, prev.State)
	}
	t := prev
	t.State, t.Reason, t.Updated = state, reason, m.cfg.Now().UTC()
	if mod != nil {
		mod(&t)
	}
	// The step that moves a transfer to a state of the checks' verdict
	// bears the state's name (TestStates).
	err = m.commit(ctx, t, ownerActor(t), Step(state))
	if err != nil && state == Released && t.Direction != Upload {
		m.log.Error("transfer: the audit trail did not take the release; the file is held", "transfer", id, "err", err)
		t.State, t.Reason = Held, "the audit trail did not take the release; an approver must decide"
		err = m.commit(ctx, t, ownerActor(t), Step(t.State))
	}
	if err != nil {
		m.log.Error("transfer: the audit trail did not take a step; the transfer stays where it was and is retried",
			"transfer", id, "state", prev.State, "step", t.State, "err", err)
		return prev, err
	}
	crashpoint.Hit(crashpoint.FinishBeforeLedger)
	saved, err := m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		if s.State != prev.State {
			return fmt.Errorf("%w: it is %s, not %s", ErrState, s.State, prev.State)
		}
		*s = t
		return nil
	})
	if err != nil {
		m.log.Error("transfer: record state", "transfer", id, "state", t.State, "err", err)
		return prev, fmt.Errorf("transfer %s: record %s: %w", id, t.State, err)
	}
	crashpoint.Hit(crashpoint.FinishAfterLedger)
	if saved.State.Stopped() {
		m.removeFile(saved)
	}
	m.notify(saved)
	return saved, nil
}

// removeFile deletes a transfer's quarantined file, if any.
func (m *Manager) removeFile(t Transfer) {
	if !safeID(t.ID) {
		return
	}
	var err error
	if t.Direction == Upload {
		err = os.RemoveAll(filepath.Join(m.cfg.Dir, "uploads", t.ID))
	} else {
		err = os.Remove(m.filePath(t.ID))
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("transfer: remove quarantined file", "transfer", t.ID, "err", err)
	}
}

// hashFile returns the hex SHA-256 and size of a file.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
