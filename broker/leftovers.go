package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/isolation/chrome"
)

// leftoverWait bounds killing the browsers a previous run left, and
// removing their profiles.
const leftoverWait = 10 * time.Second

// recoverPreviousRun cleans up after a previous run that did not stop
// cleanly, before this run starts a browser: its browsers still running
// and its profile directories, then the ends of its sessions. Each is
// recorded in the audit trail. A failure is logged: the broker starts
// anyway.
func (s *Server) recoverPreviousRun(ctx context.Context) {
	s.recoverBrowsers(ctx)
	s.recoverSessions(ctx)
}

// recoverBrowsers kills the browsers a previous run left running under
// DATA/profiles (found by their marker; see chrome.ClearLeftovers) and
// removes every profile directory there. Each is recorded first, durable
// before anything is killed or removed, so that a crash in between leaves
// a record of what the next start then finds and clears again, never a
// removal without a record. A helper that writes a profile back while it
// is cleared is recorded once it is known.
func (s *Server) recoverBrowsers(ctx context.Context) {
	root, err := filepath.Abs(filepath.Join(s.cfg.Data, "profiles"))
	if err != nil {
		s.log.Error("profile root", "err", err)
		return
	}
	found, err := chrome.FindLeftovers(root)
	if err != nil {
		s.log.Error("look for what the previous run left", "err", err)
	}
	if len(found.Browsers) == 0 && len(found.Profiles) == 0 {
		return
	}
	recorded := map[string]bool{}
	s.recordLeftovers(ctx, found, recorded)
	crashpoint.Hit(crashpoint.LeftoversRecorded)
	left, err := chrome.ClearLeftovers(root, leftoverWait)
	if err != nil {
		s.log.Error("clean up after the previous run: browsers or profiles left", "err", err)
	}
	s.recordLeftovers(ctx, left, recorded)
}

// recordLeftovers records the browsers and profiles of left that are not
// in recorded yet, and adds them to it.
func (s *Server) recordLeftovers(ctx context.Context, left chrome.Leftovers, recorded map[string]bool) {
	now := s.now()
	for _, b := range left.Browsers {
		target := "pid " + strconv.Itoa(b.PIDs[0])
		how := fmt.Sprintf("processes %v killed", b.PIDs)
		if b.PGID != 0 {
			target = "pid " + strconv.Itoa(b.PGID)
			how = fmt.Sprintf("process group %d killed", b.PGID)
		}
		if recorded["browser "+target] {
			continue
		}
		recorded["browser "+target] = true
		s.log.Warn("browser of the previous run killed", "session", b.Session, "pgid", b.PGID, "pids", b.PIDs, "profile", b.Profile)
		e := audit.Recovery(now, "browser", target, "left running by a run of the broker that did not stop cleanly; "+how, 0, 0)
		e.Session = b.Session
		s.commitRecovery(ctx, e)
	}
	for _, p := range left.Profiles {
		if recorded["profile "+p.Dir] {
			continue
		}
		recorded["profile "+p.Dir] = true
		s.log.Warn("profile of the previous run removed", "session", p.Session, "dir", p.Dir, "files", p.Files, "bytes", p.Bytes)
		e := audit.Recovery(now, "profile", p.Dir, "left by a run of the broker that did not stop cleanly; removed", p.Files, p.Bytes)
		e.Session = p.Session
		s.commitRecovery(ctx, e)
	}
}

// commitRecovery writes a recovery record and waits until it is durable.
func (s *Server) commitRecovery(ctx context.Context, e audit.Event) {
	cctx, cancel := context.WithTimeout(ctx, auditWait)
	defer cancel()
	if _, err := s.audit.Commit(cctx, e); err != nil {
		s.log.Error("record what the previous run left", "what", e.What, "target", e.Target, "err", err)
	}
}
