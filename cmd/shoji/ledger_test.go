package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// addLedger stores transfers in DATA's ledger, as the broker would have.
func addLedger(t *testing.T, data string, list ...transfer.Transfer) {
	t.Helper()
	st, err := store.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tr := range list {
		if tr.Created.IsZero() {
			tr.Created = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
		}
		if err := st.CreateTransfer(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunAuditVerifyLedger: audit verify also compares the transfer ledger
// with the trail when the store can be opened, fails on a disagreement
// naming it, and says the ledger was not checked while a broker holds the
// store.
func TestRunAuditVerifyLedger(t *testing.T) {
	t.Run("agree", func(t *testing.T) {
		data := auditData(t)
		addLedger(t, data, transfer.Transfer{ID: "t1", Direction: transfer.Download, User: "bob", State: transfer.Released})
		out, _, err := runCmd("audit", "verify", "--data", data)
		if err != nil || !strings.Contains(out, "ledger: 1 transfers agree with the trail") {
			t.Fatalf("verify = %q, %v", out, err)
		}
	})
	t.Run("held without its step", func(t *testing.T) {
		data := auditData(t)
		addLedger(t, data,
			transfer.Transfer{ID: "t1", Direction: transfer.Download, User: "bob", State: transfer.Released},
			transfer.Transfer{ID: "t2", Direction: transfer.Download, User: "bob", State: transfer.Held})
		out, _, err := runCmd("audit", "verify", "--data", data)
		if err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Fatalf("verify of a ledger ahead of the trail: %v", err)
		}
		if !strings.Contains(out, `ledger: transfer t2 (held): the trail has no "held" step`) || !strings.Contains(out, "audit trail intact") {
			t.Errorf("verify printed %q", out)
		}
	})
	t.Run("trail without its entry", func(t *testing.T) {
		data := auditData(t)
		addLedger(t, data)
		out, _, err := runCmd("audit", "verify", "--data", data)
		if err == nil || !strings.Contains(out, "transfer t1: the trail records it") {
			t.Fatalf("verify = %q, %v", out, err)
		}
	})
	t.Run("broker running", func(t *testing.T) {
		data := auditData(t)
		addLedger(t, data)
		st, err := store.Open(data)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		out, _, err := runCmd("audit", "verify", "--data", data)
		if err != nil || !strings.Contains(out, "ledger: not checked: a broker is running") {
			t.Fatalf("verify while the store is held = %q, %v", out, err)
		}
	})
	t.Run("trail ahead of the ledger", func(t *testing.T) {
		data := auditData(t)
		addLedger(t, data, transfer.Transfer{ID: "t1", Direction: transfer.Download, User: "bob", State: transfer.Released})
		f, err := audit.OpenFile(data+"/audit", audit.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Commit(context.Background(), audit.TransferStep(time.Now(), audit.Actor{}, audit.Transfer{ID: "t1", State: "saved"})); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if out, _, err := runCmd("audit", "verify", "--data", data); err != nil {
			t.Fatalf("verify = %q, %v", out, err)
		}
	})
}
