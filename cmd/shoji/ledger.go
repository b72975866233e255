package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// verifyLedger is the second half of `shoji audit verify`: it compares the
// transfer ledger in the store with the trail (transfer.CompareLedger) and
// prints that they agree, or each disagreement and fails. The store is
// locked while a broker runs on DIR; then it says the ledger was not
// checked and does not fail. A DIR without a store (a copy of the trail
// alone) has no ledger to compare, and nothing is said.
func verifyLedger(c *auditCall) error {
	if _, err := os.Stat(filepath.Join(c.data, store.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	st, err := store.Open(c.data)
	if errors.Is(err, store.ErrInUse) {
		fmt.Fprintln(c.stdout, "ledger: not checked: a broker is running on this data directory; stop it to compare the transfer ledger with the trail")
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer st.Close()
	ledger, err := st.ListTransfers(nil)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	list, err := transfer.CompareLedger(ledger, audit.Scan(c.dir, audit.Filter{Type: audit.TypeTransfer}))
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if len(list) == 0 {
		fmt.Fprintf(c.stdout, "ledger: %d transfers agree with the trail\n", len(ledger))
		return nil
	}
	for _, d := range list {
		fmt.Fprintf(c.stdout, "ledger: %s\n", printable(d.String()))
	}
	return fmt.Errorf("the transfer ledger and the trail disagree (%d finding(s) above)", len(list))
}
