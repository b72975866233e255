package egress

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs a helper process when one is asked for (owner_linux_test.go),
// and otherwise the tests, failing them when a goroutine they started is
// still running after the last test: every goroutine the package starts has
// an owner that waits for it.
func TestMain(m *testing.M) {
	if code, ok := runHelper(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
