package store_test

import (
	"path/filepath"
	"testing"

	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/store/storetest"
)

// TestContract runs the storage contract suite on the bbolt store,
// reopening the same file for the persistence check.
func TestContract(t *testing.T) {
	storetest.Run(t, openBolt, storetest.Reopen(reopenBolt))
}

func openBolt(t *testing.T) store.Backend {
	t.Helper()
	return openBoltDir(t, t.TempDir())
}

func openBoltDir(t *testing.T, dir string) store.Backend {
	t.Helper()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func reopenBolt(t *testing.T, b store.Backend) store.Backend {
	t.Helper()
	s := b.(*store.Store)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openBoltDir(t, filepath.Dir(s.Path()))
}
