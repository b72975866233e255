package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketJournal = []byte("session_journal")

// JournalEntry is one live browsing session in the session journal. The
// broker writes it when the session starts and deletes it once the
// session's end is in the audit trail, so an entry found when the broker
// starts is a session that ended with the run before, whose end nobody
// recorded.
type JournalEntry struct {
	// Session is the browsing session's ID.
	Session  string    `json:"session"`
	User     string    `json:"user"`
	Role     string    `json:"role,omitempty"`
	Terminal string    `json:"terminal,omitempty"`
	Started  time.Time `json:"started"`
	// Ended is why the session ended when it ended but its end could not
	// be recorded then (the audit trail failed); empty while it runs.
	Ended string `json:"ended,omitempty"`
}

// PutJournalEntry stores e under its session ID, replacing an entry with
// the same ID. It returns once the entry is on disk.
func (s *Store) PutJournalEntry(e JournalEntry) error {
	if e.Session == "" {
		return errors.New("put journal entry: session is empty")
	}
	if e.User == "" {
		return fmt.Errorf("put journal entry %q: user is empty", e.Session)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketJournal)
		if err != nil {
			return err
		}
		return putJSON(b, e.Session, e)
	})
	if err != nil {
		return fmt.Errorf("put journal entry %q: %w", e.Session, err)
	}
	return nil
}

// DeleteJournalEntry removes the entry of the session. Removing one that
// does not exist is not an error.
func (s *Store) DeleteJournalEntry(session string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJournal)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(session))
	})
	if err != nil {
		return fmt.Errorf("delete journal entry %q: %w", session, err)
	}
	return nil
}

// JournalEntries returns every entry of the session journal, oldest
// session first.
func (s *Store) JournalEntries() ([]JournalEntry, error) {
	var out []JournalEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJournal)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e JournalEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode journal entry %q: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read session journal: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].Session < out[j].Session
	})
	return out, nil
}
