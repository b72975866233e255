package transfer

import (
	"context"
	"time"
)

// Sweep deletes the quarantined files of transfers older than the
// retention period and marks their records expired; the records stay
// (XFER-10). Each deletion is an audit record, durable before the file
// goes. It returns how many files it deleted.
func (m *Manager) Sweep(ctx context.Context) int {
	now := m.cfg.Now().UTC()
	cutoff := now.Add(-m.cfg.Retention)
	list, err := m.cfg.Store.ListTransfers(func(t *Transfer) bool {
		return t.Expired.IsZero() && t.Created.Before(cutoff) &&
			!t.State.InProgress()
	})
	if err != nil {
		m.log.Error("transfer: retention", "err", err)
		return 0
	}
	n := 0
	for _, t := range list {
		if !safeID(t.ID) {
			continue
		}
		gone := t
		gone.Expired, gone.Updated = now, now
		if err := m.commit(ctx, gone, ownerActor(gone), StepDeleted); err != nil {
			// The file stays until the trail takes its deletion.
			m.log.Error("transfer: retention: the audit trail did not take a deletion; retried at the next sweep", "transfer", t.ID, "err", err)
			continue
		}
		m.removeFile(t)
		if _, err := m.cfg.Store.UpdateTransfer(t.ID, func(s *Transfer) error {
			s.Expired, s.Updated = now, now
			return nil
		}); err != nil {
			m.log.Error("transfer: retention", "transfer", t.ID, "err", err)
			continue
		}
		n++
	}
	if n > 0 {
		m.log.Info("transfer: quarantine retention deleted files", "count", n, "retention", m.cfg.Retention)
	}
	return n
}

// Run moves on, every interval until ctx ends, the transfers that nobody
// is working on (see Retry) and sweeps the quarantine.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.Retry(ctx)
		m.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
