package transfer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/internal/diskusage"
)

// Reasons recorded for what Recover and Retry do.
const (
	reasonStopped      = "the broker stopped while the file was downloading"
	reasonNoResult     = "the transfer ended without a result (its session or upload is gone)"
	reasonFileMissing  = "the quarantined file was missing"
	reasonDeadSession  = "partial downloads of a session that ended with the previous run of the broker"
	reasonUnowned      = "no transfer in the ledger owns it"
	reasonFinished     = "the transfer was finished; its file was left by an interrupted deletion"
	reasonTempLeftover = "a temporary file left by an interrupted delivery"
)

// Recover finishes, once at start, what a previous run of the broker left
// when it ended without cleaning up (a crash, kill -9, a power cut, a full
// disk). Call it after everything Notify needs exists: it may notify.
//
//   - A transfer still receiving is canceled, unless its download was
//     complete in the quarantine (then it is checked); one in checking is
//     checked again (on its own goroutine: Wait waits for it).
//   - A held or released file that is missing from the quarantine is
//     marked deleted; a rejected, canceled or expired transfer whose file is
//     still there has it deleted.
//   - Files in the quarantine that no ledger entry owns, the download
//     directories of sessions that are not of this run (with their partial
//     files), and temporary files an interrupted delivery left in a
//     destination are deleted.
//
// Every deletion of a file the ledger does not account for is an audit
// record ("recovery"), durable before the file goes; every ledger change is
// a transfer step, durable before the change. What the trail does not take
// is left for the next start. Recover never stops on a bad entry: it logs
// it and goes on, and returns what went wrong, joined.
func (m *Manager) Recover(ctx context.Context) error {
	var errs []error
	list, err := m.cfg.Store.ListTransfers(nil)
	if err != nil {
		// Without the ledger nothing can tell which file is whose: leave
		// the quarantine's files, clean only what belongs to no one.
		m.log.Error("transfer: recover: the ledger cannot be read; quarantined files are left alone", "err", err)
		errs = append(errs, fmt.Errorf("recover: read the ledger: %w", err))
	} else {
		owned := make(map[string]Transfer, len(list))
		for _, t := range list {
			if !safeID(t.ID) {
				m.log.Error("transfer: recover: a ledger entry has an ID that cannot name a file; left alone", "transfer", t.ID)
				errs = append(errs, fmt.Errorf("recover: ledger entry %q: bad ID", t.ID))
				continue
			}
			owned[t.ID] = t
			if err := m.recoverEntry(ctx, t); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, m.removeUnowned(ctx, "files", owned, false)...)
		errs = append(errs, m.removeUnowned(ctx, "uploads", owned, true)...)
	}
	errs = append(errs, m.removeDeadSessions(ctx)...)
	errs = append(errs, m.removeDestinationTemps(ctx)...)
	return errors.Join(errs...)
}

// recoverEntry deals with one ledger entry at start.
func (m *Manager) recoverEntry(ctx context.Context, t Transfer) error {
	switch t.State {
	case Receiving, Checking:
		if !m.claim(t.ID) {
			return nil
		}
		m.wg.Go(func() {
			defer m.release(t.ID)
			m.resume(context.WithoutCancel(ctx), t, reasonStopped)
		})
		return nil
	case Held, Released:
		if !t.Expired.IsZero() {
			return m.removeLeftFile(ctx, t)
		}
		if _, err := os.Stat(m.ownedPath(t)); errors.Is(err, os.ErrNotExist) {
			return m.markMissing(ctx, t)
		}
		return nil
	case Rejected, Canceled:
		return m.removeLeftFile(ctx, t)
	default:
		m.log.Error("transfer: recover: a ledger entry has an unknown state; left alone", "transfer", t.ID, "state", t.State)
		return fmt.Errorf("recover: transfer %s: unknown state %q", t.ID, t.State)
	}
}

// Retry moves on the transfers in receiving or checking that nobody in
// this process is working on: a commit to the audit trail failed, or their
// session ended without a word. A download whose file is complete in the
// quarantine is checked, one whose file is not is canceled, and one in
// checking is checked again. Run calls it every interval.
func (m *Manager) Retry(ctx context.Context) {
	list, err := m.cfg.Store.ListTransfers(func(t *Transfer) bool {
		return t.State.InProgress()
	})
	if err != nil {
		m.log.Error("transfer: retry unfinished transfers", "err", err)
		return
	}
	for _, t := range list {
		if ctx.Err() != nil {
			return
		}
		if !safeID(t.ID) || !m.claim(t.ID) {
			continue
		}
		m.resume(ctx, t, reasonNoResult)
		m.release(t.ID)
	}
}

// resume moves on a claimed transfer in receiving or checking; reason says
// why a download that did not complete is canceled.
func (m *Manager) resume(ctx context.Context, t Transfer, reason string) {
	switch t.State {
	case Receiving:
		if t.Direction != Upload && fileExists(m.filePath(t.ID)) {
			if err := m.received(ctx, t.ID); err != nil {
				m.log.Error("transfer: record a finished download", "transfer", t.ID, "err", err)
				return
			}
			m.check(ctx, t.ID)
			return
		}
		_, _ = m.finish(ctx, t.ID, Canceled, reason, nil)
	case Checking:
		m.check(ctx, t.ID)
	}
}

// fileExists reports whether path names a regular file.
func fileExists(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().IsRegular()
}

// ownedPath is where a transfer's file is kept: a file for downloads and
// prints, a directory for uploads.
func (m *Manager) ownedPath(t Transfer) string {
	if t.Direction == Upload {
		return filepath.Join(m.cfg.Dir, "uploads", t.ID)
	}
	return m.filePath(t.ID)
}

// markMissing records that a held or released file is gone from the
// quarantine and marks its entry expired, so that nobody is offered a file
// that is not there.
func (m *Manager) markMissing(ctx context.Context, t Transfer) error {
	now := m.cfg.Now().UTC()
	gone := t
	gone.Expired, gone.Updated = now, now
	step := gone
	step.Reason = strings.TrimSpace(reasonFileMissing + "; " + t.Reason)
	if err := m.commit(ctx, step, ownerActor(t), StepDeleted); err != nil {
		return fmt.Errorf("recover: transfer %s: %w", t.ID, err)
	}
	if _, err := m.cfg.Store.UpdateTransfer(t.ID, func(s *Transfer) error {
		s.Expired, s.Updated = now, now
		return nil
	}); err != nil {
		return fmt.Errorf("recover: transfer %s: %w", t.ID, err)
	}
	m.log.Warn("transfer: recover: a quarantined file was missing; the transfer is marked deleted", "transfer", t.ID, "state", t.State)
	return nil
}

// removeLeftFile deletes the file of a transfer that should have none
// (rejected, canceled, expired), with a recovery record.
func (m *Manager) removeLeftFile(ctx context.Context, t Transfer) error {
	path := m.ownedPath(t)
	if _, err := os.Lstat(path); err != nil {
		return nil
	}
	return m.removeRecovered(ctx, path, t.ID, reasonFinished)
}

// removeUnowned deletes the entries of quarantine/sub that no ledger entry
// owns; dirs says whether the owned entries are directories (uploads).
func (m *Manager) removeUnowned(ctx context.Context, sub string, owned map[string]Transfer, dirs bool) []error {
	parent := filepath.Join(m.cfg.Dir, sub)
	entries, err := os.ReadDir(parent)
	if err != nil {
		return []error{fmt.Errorf("recover: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		t, ok := owned[e.Name()]
		if ok && (t.Direction == Upload) == dirs {
			continue
		}
		if err := m.removeRecovered(ctx, filepath.Join(parent, e.Name()), e.Name(), reasonUnowned); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeDeadSessions deletes the download directories of sessions that
// are not of this run, with the partial files in them.
func (m *Manager) removeDeadSessions(ctx context.Context) []error {
	parent := filepath.Join(m.cfg.Dir, "sessions")
	entries, err := os.ReadDir(parent)
	if err != nil {
		return []error{fmt.Errorf("recover: %w", err)}
	}
	var errs []error
	for _, e := range entries {
		m.mu.Lock()
		live := m.sessionDirs[e.Name()]
		m.mu.Unlock()
		if live {
			continue
		}
		if err := m.removeRecovered(ctx, filepath.Join(parent, e.Name()), e.Name(), reasonDeadSession); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeDestinationTemps deletes the temporary files an interrupted
// delivery or probe left in the registered destinations that are safe to
// write to.
func (m *Manager) removeDestinationTemps(ctx context.Context) []error {
	list, err := m.cfg.Store.Destinations()
	if err != nil {
		return []error{fmt.Errorf("recover: read destinations: %w", err)}
	}
	var errs []error
	for _, d := range list {
		root, err := m.openDestination(d.Dir)
		if err != nil {
			continue // logged at New; Send refuses it
		}
		entries, err := fs.ReadDir(root.FS(), ".")
		if err != nil {
			errs = append(errs, fmt.Errorf("recover: destination %s: %w", d.Name, err))
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, ".shoji-") || !strings.HasSuffix(name, tempSuffix) || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			ev := audit.Recovery(m.cfg.Now(), "destination", d.Name+":"+name, reasonTempLeftover, 1, fi.Size())
			if _, err := m.cfg.Audit.Commit(ctx, ev); err != nil {
				errs = append(errs, fmt.Errorf("recover: destination %s: %w", d.Name, err))
				continue
			}
			if err := root.Remove(name); err != nil {
				errs = append(errs, fmt.Errorf("recover: destination %s: %w", d.Name, err))
			}
		}
		root.Close()
	}
	return errs
}

// removeRecovered deletes path (a file or a directory with what is in it)
// after an audit record of what goes, and why, is durable.
func (m *Manager) removeRecovered(ctx context.Context, path, target, reason string) error {
	files, size := diskusage.Of(path)
	ev := audit.Recovery(m.cfg.Now(), "quarantine", target, reason, files, size)
	if _, err := m.cfg.Audit.Commit(ctx, ev); err != nil {
		m.log.Error("transfer: recover: the audit trail did not take a removal; left for the next start", "path", path, "err", err)
		return fmt.Errorf("recover: remove %s: %w", path, err)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("recover: remove %s: %w", path, err)
	}
	m.log.Info("transfer: recover: removed what a previous run left", "path", path, "files", files, "bytes", size, "reason", reason)
	return nil
}
