package broker

import (
	"net/netip"
	"path/filepath"

	"github.com/shoji-rbi/shoji/broker/api/admin"
	"github.com/shoji-rbi/shoji/broker/api/audittrail"
	"github.com/shoji-rbi/shoji/broker/api/login"
	"github.com/shoji-rbi/shoji/broker/api/sites"
	"github.com/shoji-rbi/shoji/broker/api/transfers"
	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// The API's handlers, one package per domain under broker/api, and what
// each is given: routes() registers them all behind the one Guard.

// loginHandlers serve login, set-up, logout, the session and the pledge.
func (s *Server) loginHandlers() *login.Handlers {
	return &login.Handlers{
		Accounts:     s.auth,
		Notices:      s.notices,
		Sessions:     s.sess,
		Guard:        s.guard,
		Log:          s.log,
		LoginOutcome: s.metrics.login,
	}
}

// adminHandlers serve the admin's settings and the sessions list.
func (s *Server) adminHandlers() *admin.Handlers {
	return &admin.Handlers{
		Notices:  s.notices,
		Sessions: s.sess,
		Profiles: func() admin.Profiler { return s.policy.Current() },
		Audit:    s.audit,
		Guard:    s.guard,
		Log:      s.log,
		Now:      s.now,
	}
}

// transferHandlers serve the transfer channel (docs/transfer.md).
func (s *Server) transferHandlers() *transfers.Handlers {
	return &transfers.Handlers{Transfers: s.xfer, Guard: s.guard, Log: s.log}
}

// auditHandlers serve the auditor's API (docs/audit.md), the ledger and
// evidence bundles included.
func (s *Server) auditHandlers() *audittrail.Handlers {
	return &audittrail.Handlers{
		Guard: s.guard, Dir: filepath.Join(s.cfg.Data, "audit"), Audit: s.audit, Log: s.log, Now: s.now,
		Ledger: transfer.EvidenceLedger{List: s.store.ListTransfers, Dir: filepath.Join(s.cfg.Data, "quarantine")},
	}
}

// siteHandlers wires the policy, kill switch and site request API
// (docs/admin-api.md) to the site policy, the sessions and the store.
func (s *Server) siteHandlers() *sites.Handlers {
	return &sites.Handlers{
		Policy: s.policy.Service,
		KillSwitch: &sitepolicy.KillSwitch{
			Policy: s.policy.Service,
			CutHost: func(host string) int {
				if s.proxy == nil {
					return 0
				}
				return s.proxy.CutHost(host)
			},
			EndSessions: func() int {
				infos := s.sess.List()
				for _, i := range infos {
					s.sess.End(i.User, session.ReasonAdmin)
				}
				return len(infos)
			},
		},
		Requests: &siterequest.Service{
			Store: s.store, Policy: s.policy.Service, Audit: s.audit, Log: s.log, Now: s.now,
			Terminal: func(user string) (netip.Addr, bool) {
				if sess, ok := s.sess.Get(user); ok {
					return sess.Terminal, true
				}
				return netip.Addr{}, false
			},
			Notify: s.notifyRequester,
		},
		Guard: s.guard,
	}
}

// notifyRequester tells the requester's viewer, if open, what was decided.
func (s *Server) notifyRequester(sr siterequest.Request) {
	if sess, ok := s.sess.Get(sr.User); ok {
		sess.Notify(protocol.SiteRequest{ID: sr.ID, Host: sr.Host, State: string(sr.State), Comment: sr.Comment})
	}
}
