package transfer

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// TestEvidenceLedger checks which transfers an audit filter selects for an
// evidence bundle, where each one's file is looked for, and which files
// the ledger expects to be kept.
func TestEvidenceLedger(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	ledger := []Transfer{
		{ID: "d1", User: "nurse", Direction: Download, State: Released, Created: at, SHA256: "aa"},
		{ID: "u1", User: "nurse", Direction: Upload, Name: "form.pdf", State: Released, Created: at.Add(time.Hour), SHA256: "bb"},
		{ID: "d2", User: "nurse", Direction: Download, State: Rejected, Created: at.Add(2 * time.Hour)},
		{ID: "d3", User: "doctor", Direction: Download, State: Held, Created: at.Add(3 * time.Hour), Expired: at.Add(4 * time.Hour)},
	}
	l := EvidenceLedger{Dir: "/q", List: func(match func(*Transfer) bool) ([]Transfer, error) {
		var out []Transfer
		for _, t := range ledger {
			if match(&t) {
				out = append(out, t)
			}
		}
		return out, nil
	}}
	for _, tc := range []struct {
		name string
		f    audit.Filter
		want []string
	}{
		{"everything", audit.Filter{}, []string{"d1", "u1", "d2", "d3"}},
		{"user", audit.Filter{User: "nurse"}, []string{"d1", "u1", "d2"}},
		{"from inclusive", audit.Filter{From: at.Add(time.Hour)}, []string{"u1", "d2", "d3"}},
		{"to exclusive", audit.Filter{To: at.Add(time.Hour)}, []string{"d1"}},
		{"hash", audit.Filter{SHA256: "bb"}, []string{"u1"}},
		{"host and type do not apply", audit.Filter{Host: "x.example", Type: audit.TypeTransfer, User: "doctor"}, []string{"d3"}},
	} {
		part, err := l.Extract(tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []string
		for _, lf := range part.Files {
			ids = append(ids, lf.ID)
		}
		if !slices.Equal(ids, tc.want) || len(part.Transfers.([]Transfer)) != len(tc.want) {
			t.Errorf("%s: selected %v (transfers %v); want %v", tc.name, ids, part.Transfers, tc.want)
		}
	}
	part, _ := l.Extract(audit.Filter{})
	want := []audit.LedgerFile{
		{ID: "d1", Path: filepath.Join("/q", "files", "d1"), Kept: true},
		{ID: "u1", Path: filepath.Join("/q", "uploads", "u1", "form.pdf"), Kept: true},
		{ID: "d2", Path: filepath.Join("/q", "files", "d2"), Kept: false},
		{ID: "d3", Path: filepath.Join("/q", "files", "d3"), Kept: false},
	}
	if !slices.Equal(part.Files, want) {
		t.Errorf("files %+v; want %+v", part.Files, want)
	}
}
