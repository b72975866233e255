package transfer

import (
	"fmt"
	"path/filepath"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// EvidenceLedger is the transfer ledger as the audit trail's evidence
// bundles and the auditor's API read it (audit.Ledger).
type EvidenceLedger struct {
	// List returns the ledger's entries that match selects, oldest first
	// (the store's ListTransfers).
	List func(match func(*Transfer) bool) ([]Transfer, error)
	// Dir is the quarantine directory (Config.Dir: DATA/quarantine).
	Dir string
}

var _ audit.Ledger = EvidenceLedger{}

// Extract implements audit.Ledger: the transfers of the filter's period,
// user and hash (Matching), with where each one's file is kept.
func (l EvidenceLedger) Extract(f audit.Filter) (audit.LedgerExtract, error) {
	list, err := l.List(Matching(f))
	if err != nil {
		return audit.LedgerExtract{}, fmt.Errorf("read the transfer ledger: %w", err)
	}
	files := make([]audit.LedgerFile, len(list))
	for i, t := range list {
		path := filepath.Join(l.Dir, "files", t.ID)
		if t.Direction == Upload {
			path = filepath.Join(l.Dir, "uploads", t.ID, t.Name)
		}
		kept := t.Expired.IsZero() && !t.State.Stopped()
		files[i] = audit.LedgerFile{ID: t.ID, Path: path, Kept: kept}
	}
	return audit.LedgerExtract{Transfers: list, Files: files}, nil
}

// Matching selects the transfers of an audit filter's period (by when
// they were created), user and file hash; the filter's type and host do
// not apply to the ledger.
func Matching(f audit.Filter) func(*Transfer) bool {
	return func(t *Transfer) bool {
		return (f.User == "" || t.User == f.User) &&
			(f.From.IsZero() || !t.Created.Before(f.From)) &&
			(f.To.IsZero() || t.Created.Before(f.To)) &&
			(f.SHA256 == "" || t.SHA256 == f.SHA256)
	}
}
