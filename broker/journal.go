package broker

import (
	"context"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/store"
)

// reasonBrokerStopped is the session_end reason of a session that ended
// with a run of the broker that did not end it (kill -9, a crash, a power
// cut). The next start records it from the session journal.
const reasonBrokerStopped = "broker_stopped"

// auditWait bounds the wait for a record of the session journal's to be
// durable in the audit trail.
const auditWait = 10 * time.Second

// journalSession writes the session journal's entry of a session that
// started. Without it, the session's end would go unrecorded if the broker
// died before ending it.
func (s *Server) journalSession(info session.Info) {
	a := sessionActor(info)
	err := s.store.PutJournalEntry(store.JournalEntry{
		Session: info.ID, User: info.User, Role: info.Role, Terminal: a.Terminal, Started: info.Started.UTC(),
	})
	if err != nil {
		s.log.Error("session journal: this session's end goes unrecorded if the broker dies", "session", info.ID, "err", err)
	}
}

// recordSessionEnd records the end of a session and, once the record is
// durable, deletes its journal entry. When the record cannot be made
// durable, the entry stays with the reason, and the next start records it.
func (s *Server) recordSessionEnd(info session.Info, reason session.Reason) {
	ctx, cancel := context.WithTimeout(context.Background(), auditWait)
	defer cancel()
	if _, err := s.audit.Commit(ctx, audit.SessionEnd(s.now(), sessionActor(info), string(reason))); err != nil {
		s.log.Error("record session end: left in the session journal for the next start", "session", info.ID, "reason", string(reason), "err", err)
		a := sessionActor(info)
		if err := s.store.PutJournalEntry(store.JournalEntry{
			Session: info.ID, User: info.User, Role: info.Role, Terminal: a.Terminal, Started: info.Started.UTC(), Ended: string(reason),
		}); err != nil {
			s.log.Error("session journal", "session", info.ID, "err", err)
		}
		return
	}
	if err := s.store.DeleteJournalEntry(info.ID); err != nil {
		s.log.Error("session journal: the next start records this session's end again", "session", info.ID, "err", err)
	}
}

// recoverSessions records the end of every session in the session
// journal: sessions that ended with the previous run, whose end that run
// did not record. Each gets a session_end with the reason broker_stopped
// (or the reason it ended for, when only its record failed), durable
// before its entry is deleted. An entry whose record fails stays for the
// next start.
func (s *Server) recoverSessions(ctx context.Context) {
	entries, err := s.store.JournalEntries()
	if err != nil {
		s.log.Error("session journal: ends of sessions of the previous run not recorded", "err", err)
		return
	}
	for _, e := range entries {
		reason := e.Ended
		if reason == "" {
			reason = reasonBrokerStopped
		}
		a := audit.Actor{User: e.User, Role: e.Role, Terminal: e.Terminal, Session: e.Session}
		cctx, cancel := context.WithTimeout(ctx, auditWait)
		_, err := s.audit.Commit(cctx, audit.SessionEnd(s.now(), a, reason))
		cancel()
		if err != nil {
			s.log.Error("record the end of a session of the previous run", "session", e.Session, "user", e.User, "err", err)
			continue
		}
		s.log.Warn("session of the previous run recorded as ended", "session", e.Session, "user", e.User,
			"started", e.Started, "reason", reason)
		if err := s.store.DeleteJournalEntry(e.Session); err != nil {
			s.log.Error("session journal", "session", e.Session, "err", err)
		}
	}
}
