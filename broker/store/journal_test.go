package store

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/broker/auth"
)

func TestJournal(t *testing.T) {
	s, dir := openTemp(t)
	if got, err := s.JournalEntries(); err != nil || len(got) != 0 {
		t.Fatalf("empty journal = %v, %v", got, err)
	}
	a := JournalEntry{Session: "s-a", User: "alice", Role: "clinician", Terminal: "10.0.0.5", Started: t0.Add(2 * time.Minute)}
	b := JournalEntry{Session: "s-b", User: "bob", Role: "clinician", Started: t0}
	for _, e := range []JournalEntry{a, b} {
		if err := s.PutJournalEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.JournalEntries()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]JournalEntry{b, a}, got); d != "" {
		t.Errorf("entries, oldest first (-want +got):\n%s", d)
	}

	// A second put of the same session replaces it.
	a.Ended = "idle"
	if err := s.PutJournalEntry(a); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteJournalEntry(b.Session); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteJournalEntry("no-such-session"); err != nil {
		t.Errorf("delete of a missing entry: %v", err)
	}

	// What is left is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err = s2.JournalEntries()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]JournalEntry{a}, got); d != "" {
		t.Errorf("entries after reopen (-want +got):\n%s", d)
	}
}

func TestJournalRefusesIncompleteEntries(t *testing.T) {
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name string
		e    JournalEntry
		want string
	}{
		{"no session", JournalEntry{User: "alice", Started: t0}, "session is empty"},
		{"no user", JournalEntry{Session: "s1", Started: t0}, "user is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutJournalEntry(tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("PutJournalEntry(%+v) = %v, want an error naming %q", tc.e, err, tc.want)
			}
		})
	}
	if got, err := s.JournalEntries(); err != nil || len(got) != 0 {
		t.Errorf("refused entries were stored: %v, %v", got, err)
	}
}

// TestTakeLoginsOf: the user's logins are removed and returned whole,
// oldest first, once; other users' logins stay.
func TestTakeLoginsOf(t *testing.T) {
	s, _ := openTemp(t)
	logins := []auth.Login{
		{ID: "a2", User: "alice", Created: t0.Add(time.Minute), Expires: t0.Add(time.Hour), RemoteAddr: "10.0.0.2"},
		{ID: "a1", User: "alice", Created: t0, Expires: t0.Add(time.Hour), RemoteAddr: "10.0.0.1"},
		{ID: "b1", User: "bob", Created: t0, Expires: t0.Add(time.Hour), RemoteAddr: "10.0.0.3"},
	}
	for _, l := range logins {
		if err := s.PutLogin(l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TakeLoginsOf("alice")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]auth.Login{logins[1], logins[0]}, got); d != "" {
		t.Errorf("TakeLoginsOf (-want +got):\n%s", d)
	}
	if again, err := s.TakeLoginsOf("alice"); err != nil || len(again) != 0 {
		t.Errorf("second TakeLoginsOf = %v, %v; want none", again, err)
	}
	if _, err := s.GetLogin("b1"); err != nil {
		t.Errorf("another user's login went: %v", err)
	}
}
