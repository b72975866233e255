package broker

import (
	"github.com/shoji-rbi/shoji/broker/session"
)

// endLogins ends every login of a user whose browser is ending for a cause
// that ends them: logout, idle, lifetime or admin. A user has one browser,
// shared by all their logins, and the browser and the logins end together,
// so nothing of the browser stays reachable from a terminal left logged in
// (docs/protocol.md). A shutdown ends no login (the viewer reconnects to a
// new browser once the broker is back), nor does a replaced viewer or a
// crash. It runs as the session begins to end (session.Config.OnEnding),
// before a viewer can reconnect.
func (s *Server) endLogins(info session.Info, r session.Reason) {
	switch r {
	case session.ReasonLogout, session.ReasonIdle, session.ReasonLifetime, session.ReasonAdmin:
	default:
		return
	}
	if s.auth == nil {
		return
	}
	if _, err := s.auth.EndLogins(info.User, string(r)); err != nil {
		s.log.Error("end the logins of a user whose session ended", "user", info.User, "session", info.ID, "reason", string(r), "err", err)
	}
}
