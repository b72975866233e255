package vnc

import (
	"os"
	"testing"
)

// Require skips the test when the virtual browser is not installed (see
// Missing), or fails it when the environment has SHOJI_REQUIRE_DEPS=1.
func Require(t testing.TB) {
	t.Helper()
	if err := Missing(""); err != nil {
		if os.Getenv("SHOJI_REQUIRE_DEPS") == "1" {
			t.Fatalf("virtual browser required (SHOJI_REQUIRE_DEPS=1): %v", err)
		}
		t.Skipf("virtual browser not installed: %v", err)
	}
}
