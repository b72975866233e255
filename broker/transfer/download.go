package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer/inspect"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Browse handles one report of a session's browser about a download or a
// print. It never blocks: the checks of a finished file run on their own
// goroutine. cancel stops a download in the browser; Browse calls it, on a
// goroutine of its own, for a download that grows past the direction's
// size limit (the browser's own cap is the largest of all directions).
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
		m.finish(context.Background(), id, store.TransferCanceled, reason, nil)
	}
}

func direction(d isolation.Download) string {
	if d.Print {
		return store.DirectionPrint
	}
	return store.DirectionDownload
}

func (m *Manager) started(o Owner, d isolation.Download) {
	now := m.cfg.Now().UTC()
	name := d.Name
	if name == "" && d.Print {
		name = "page.pdf"
	}
	t := store.Transfer{
		ID:        store.NewTransferID(),
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
		State:     store.TransferReceiving,
		Created:   now,
		Updated:   now,
	}
	if err := m.cfg.Store.CreateTransfer(t); err != nil {
		m.log.Error("transfer: record a new download", "user", o.User, "err", err)
		return
	}
	m.mu.Lock()
	m.receiving[d.ID] = t.ID
	m.mu.Unlock()
	m.record(t, o.actor(), "started")
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
	id := m.receiving[d.ID]
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

// forget ends the tracking of browser download id and returns its transfer.
func (m *Manager) forget(browserID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.receiving[browserID]
	delete(m.receiving, browserID)
	return id
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
	if d.Path == "" || !strings.HasPrefix(filepath.Clean(d.Path), m.cfg.Dir+string(filepath.Separator)) {
		m.finish(context.Background(), id, store.TransferCanceled, "the browser reported a file outside the quarantine", nil)
		return
	}
	if err := os.Rename(d.Path, m.filePath(id)); err != nil {
		m.log.Error("transfer: move a download into the quarantine", "transfer", id, "err", err)
		m.finish(context.Background(), id, store.TransferCanceled, "the downloaded file could not be quarantined", nil)
		return
	}
	crashpoint.Hit(crashpoint.DownloadQuarantined)
	if _, err := m.cfg.Store.UpdateTransfer(id, func(t *store.Transfer) error {
		t.State, t.Updated = store.TransferChecking, m.cfg.Now().UTC()
		return nil
	}); err != nil {
		m.log.Error("transfer: record a finished download", "transfer", id, "err", err)
	}
	m.wg.Go(func() { m.check(context.Background(), id) })
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
		m.finish(ctx, id, store.TransferRejected, "the file could not be read in the quarantine", nil)
		m.log.Error("transfer: hash", "transfer", id, "err", err)
		return
	}
	info, err := inspect.Inspect(path, t.PageName)
	if err != nil {
		m.finish(ctx, id, store.TransferRejected, "the file could not be inspected", nil)
		m.log.Error("transfer: inspect", "transfer", id, "err", err)
		return
	}
	dir := policy.DirDownload
	if t.Direction == store.DirectionPrint {
		dir = policy.DirPrint
	}
	dec := m.cfg.Policy.Transfers(t.Profile).DecideFile(dir, info.Class, info.MIME, size)
	t, err = m.cfg.Store.UpdateTransfer(id, func(t *store.Transfer) error {
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
		m.finish(ctx, id, store.TransferRejected, dec.Reason, nil)
		return
	}
	verdict, infected, scanned := m.scan(ctx, path)
	set := func(t *store.Transfer) { t.Scan = verdict }
	switch {
	case infected:
		m.finish(ctx, id, store.TransferRejected, "malware was found: "+strings.TrimPrefix(verdict, "infected: "), set)
	case !scanned:
		m.finish(ctx, id, store.TransferHeld, "the file could not be scanned for malware ("+strings.TrimPrefix(verdict, "not scanned: ")+"); an approver must decide", set)
	case info.Encrypted:
		m.finish(ctx, id, store.TransferHeld, "the file is password-protected, so it cannot be scanned; an approver must decide", set)
	case info.Macros:
		m.finish(ctx, id, store.TransferHeld, "the document contains macros; an approver must decide", set)
	case m.Suspended().On:
		m.finish(ctx, id, store.TransferHeld, "all file transfers are suspended by an administrator ("+m.Suspended().Reason+")", set)
	case dec.Action == policy.ActionApprove:
		reason := dec.Reason
		if reason == "" {
			reason = fmt.Sprintf("files of type %s need an approver", info.Class)
		}
		m.finish(ctx, id, store.TransferHeld, reason, set)
	default:
		m.finish(ctx, id, store.TransferReleased, "", set)
	}
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

// finish moves a transfer to its next state and records it. A release is
// stored only after its audit record is durable; if that fails, the file is
// held instead. Rejected and canceled files are deleted at once.
func (m *Manager) finish(ctx context.Context, id, state, reason string, mod func(*store.Transfer)) {
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		m.log.Error("transfer: finish", "transfer", id, "err", err)
		return
	}
	t.State, t.Reason, t.Updated = state, reason, m.cfg.Now().UTC()
	if mod != nil {
		mod(&t)
	}
	if state == store.TransferReleased {
		if err := m.commit(ctx, t, ownerActor(t), "released"); err != nil {
			m.log.Error("transfer: the audit trail did not take the release; the file is held", "transfer", id, "err", err)
			t.State, t.Reason = store.TransferHeld, "the audit trail is unavailable; an approver must decide"
		}
	}
	if t.State != store.TransferReleased {
		m.record(t, ownerActor(t), t.State)
	}
	crashpoint.Hit(crashpoint.FinishBeforeLedger)
	saved, err := m.cfg.Store.UpdateTransfer(id, func(s *store.Transfer) error {
		*s = t
		return nil
	})
	if err != nil {
		m.log.Error("transfer: record state", "transfer", id, "state", t.State, "err", err)
		return
	}
	crashpoint.Hit(crashpoint.FinishAfterLedger)
	if state == store.TransferRejected || state == store.TransferCanceled {
		m.removeFile(saved)
	}
	m.notify(saved)
}

// removeFile deletes a transfer's quarantined file, if any.
func (m *Manager) removeFile(t store.Transfer) {
	var err error
	if t.Direction == store.DirectionUpload {
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
