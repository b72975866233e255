package broker

import (
	"net/netip"

	"github.com/shoji-rbi/shoji/broker/api/sites"
	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/siterequest"
)

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
