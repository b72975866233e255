package store

import (
	"errors"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/record"
)

func TestPolicy(t *testing.T) {
	s, dir := openTemp(t)
	doc, v, err := s.Policy()
	if err != nil || doc != nil || v != 0 {
		t.Fatalf("empty store: Policy() = %q, %d, %v; want nil, 0, nil", doc, v, err)
	}
	if _, err := s.PutPolicy(nil, 0); err == nil {
		t.Error("PutPolicy accepted an empty document")
	}
	if _, err := s.PutPolicy([]byte(`{"v":1}`), 1); !errors.Is(err, record.ErrConflict) {
		t.Errorf("PutPolicy(ifVersion 1) on an empty store = %v, want record.ErrConflict", err)
	}
	v, err = s.PutPolicy([]byte(`{"v":1}`), 0)
	if err != nil || v != 1 {
		t.Fatalf("PutPolicy = %d, %v; want 1", v, err)
	}
	v, err = s.PutPolicy([]byte(`{"v":2}`), 1)
	if err != nil || v != 2 {
		t.Fatalf("PutPolicy = %d, %v; want 2", v, err)
	}
	// A writer that read version 1 loses and changes nothing.
	if _, err := s.PutPolicy([]byte(`{"v":"stale"}`), 1); !errors.Is(err, record.ErrConflict) {
		t.Errorf("stale PutPolicy = %v, want record.ErrConflict", err)
	}
	doc, v, err = s.Policy()
	if err != nil || string(doc) != `{"v":2}` || v != 2 {
		t.Errorf("Policy() = %q, %d, %v; want {\"v\":2}, 2", doc, v, err)
	}

	// It survives a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	doc, v, err = s2.Policy()
	if err != nil || string(doc) != `{"v":2}` || v != 2 {
		t.Errorf("after reopen: Policy() = %q, %d, %v", doc, v, err)
	}
}

// TestPolicyConcurrentPuts checks optimistic concurrency: of writers that
// all read the same version, exactly one wins.
func TestPolicyConcurrentPuts(t *testing.T) {
	s, _ := openTemp(t)
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers) // buffered: every writer sends once, never blocks
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PutPolicy([]byte("doc"), 0)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, record.ErrConflict):
			t.Errorf("PutPolicy: %v", err)
		}
	}
	if _, v, _ := s.Policy(); won != 1 || v != 1 {
		t.Errorf("%d writers won, version %d; want 1 and 1", won, v)
	}
}
