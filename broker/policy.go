package broker

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// sitePolicy is the site policy in force: the admins' document, which the
// site-policy service loads, changes and compiles, with its read-only layer
// of the config file's egress.allow and the demo site, which every profile
// gets (sitepolicy.Options.Static).
type sitePolicy struct {
	*sitepolicy.Service
}

// sessionPolicy is one session's view of the site policy. Its profile is
// decided at every call from the current policy, so rule changes, an
// emergency profile switched on for the terminal's group and a host blocked
// everywhere reach the running session at once.
//
// A pooled browser's policy has no owner until a user claims the browser
// (Bind); until then it refuses everything.
type sessionPolicy struct {
	sp    *sitePolicy
	owner atomic.Pointer[policyOwner]
}

// policyOwner is who a session is for.
type policyOwner struct {
	user     string
	role     string
	terminal netip.Addr
}

// ruleUnclaimed decides for a pooled browser that no user has claimed.
const ruleUnclaimed = "pool-unclaimed"

var unclaimed = egress.Decision{Rule: ruleUnclaimed, Reason: "no user has claimed this browser yet"}

// newSessionPolicy is the policy of the session info; with no User, of a
// pooled browser.
func newSessionPolicy(sp *sitePolicy, info session.Info) *sessionPolicy {
	p := &sessionPolicy{sp: sp}
	if info.User != "" {
		p.owner.Store(&policyOwner{user: info.User, role: info.Role, terminal: info.Terminal})
	}
	return p
}

// Bind gives a pooled browser's policy the owner of the session that
// claimed it (session.BindableEgress). A policy never changes owner.
func (p *sessionPolicy) Bind(info session.Info) error {
	if info.User == "" {
		return fmt.Errorf("bind egress of session %s: no user", info.ID)
	}
	if !p.owner.CompareAndSwap(nil, &policyOwner{user: info.User, role: info.Role, terminal: info.Terminal}) {
		return fmt.Errorf("bind egress of session %s: it already has an owner", info.ID)
	}
	return nil
}

// Profile is the profile the session browses under now; "" before a
// pooled browser is claimed.
func (p *sessionPolicy) Profile() string {
	o := p.owner.Load()
	if o == nil {
		return ""
	}
	return p.sp.Current().ProfileFor(o.user, o.role, o.terminal)
}

// Decide is the proxy's host decision: the profile's, or else the static
// allows, unless the host is blocked everywhere (policy.Set.Decide).
func (p *sessionPolicy) Decide(host string, port int) egress.Decision {
	o := p.owner.Load()
	if o == nil {
		return unclaimed
	}
	set := p.sp.Current()
	return set.Decide(set.ProfileFor(o.user, o.role, o.terminal), host, port)
}

// AllowAddr lets the profile's CIDR rules allow internal addresses.
func (p *sessionPolicy) AllowAddr(host string, addr netip.Addr, port int) (bool, string) {
	o := p.owner.Load()
	if o == nil {
		return false, ruleUnclaimed
	}
	set := p.sp.Current()
	return set.AllowAddr(set.ProfileFor(o.user, o.role, o.terminal), host, addr, port)
}

// CheckURL is the browser Fetch layer's check of a navigation; it adds path
// rules to the proxy's host decision.
func (p *sessionPolicy) CheckURL(raw string) isolation.NavDecision {
	o := p.owner.Load()
	if o == nil {
		return isolation.NavDecision{Rule: unclaimed.Rule, Reason: unclaimed.Reason}
	}
	set := p.sp.Current()
	r := set.CheckURL(set.ProfileFor(o.user, o.role, o.terminal), raw)
	return isolation.NavDecision{Allow: r.Allow, Host: r.Host, Rule: r.Rule, Reason: r.Reason, Trusted: r.Trusted}
}

// sessionEgress is a session's egress listener with its policy.
type sessionEgress struct {
	*egress.Listener
	*sessionPolicy
}

// egressOpener opens each session's listener with the session's policy.
type egressOpener struct {
	p  *egress.Proxy
	sp *sitePolicy
}

// Open opens the listener of the session info. With no User (a pooled
// browser) it refuses everything until Bind.
func (o egressOpener) Open(info session.Info) (session.Egress, error) {
	pol := newSessionPolicy(o.sp, info)
	l, err := o.p.OpenWith(info.ID, egress.ListenerOptions{Policy: pol, Addrs: pol})
	if err != nil {
		return nil, err
	}
	return &sessionEgress{Listener: l, sessionPolicy: pol}, nil
}
