package cleanup

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRemoveAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir, time.Second); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	if err := RemoveAll(dir, time.Second); err != nil {
		t.Fatalf("RemoveAll of a missing directory: %v", err)
	}
}

// TestRemoveAllGivesUp: a directory that cannot be removed returns the
// error once the limit is spent.
func TestRemoveAllGivesUp(t *testing.T) {
	// A regular file in place of the parent makes the removal fail even
	// for root, who could remove from a read-only directory.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(filepath.Join(parent, "child"), 50*time.Millisecond); err == nil {
		t.Fatal("RemoveAll under a regular file: no error")
	}
}
