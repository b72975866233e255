package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// sitePolicy is the site policy in force: the admins' document (stored, and
// compiled in the engine) plus the static allows of the config file and the
// demo site, which every profile gets.
type sitePolicy struct {
	engine *policy.Engine
	// base allows what the config file's egress.allow (and demo mode)
	// lists, for every profile, unless the host is blocked everywhere.
	base  egress.Policy
	store *store.Store
	log   *slog.Logger
	// audit receives a record of every change, before and after.
	audit audit.Sink

	mu sync.Mutex // serialises changes: read, change, validate, save, swap
}

// errConflict is a change based on an older version of the policy.
var errConflict = errors.New("the policy was changed by someone else")

// load reads the stored policy into the engine. A stored policy that no
// longer validates stops the broker with an error naming the bad rule.
func (sp *sitePolicy) load() error {
	raw, version, err := sp.store.Policy()
	if err != nil {
		return err
	}
	doc := &policy.Document{}
	if raw != nil {
		if doc, err = policy.ParseJSON(raw); err != nil {
			return fmt.Errorf("stored site policy: %w", err)
		}
	}
	doc.Version = version
	if err := sp.engine.Swap(doc); err != nil {
		return fmt.Errorf("stored site policy: %w", err)
	}
	return nil
}

// change applies mutate to a copy of the current document, validates the
// whole result, saves it and swaps it in. ifVersion, when not negative, must
// be the current version (If-Match). On any error nothing changes.
func (sp *sitePolicy) change(by string, ifVersion int, mutate func(d *policy.Document) error) (*policy.Document, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	cur := sp.engine.Current().Document()
	if ifVersion >= 0 && ifVersion != cur.Version {
		return nil, errConflict
	}
	next := cur.Clone()
	if err := mutate(next); err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	data, err := next.JSON()
	if err != nil {
		return nil, err
	}
	// The store makes the next version cur.Version+1: sp.mu serialises
	// every change, and the store refuses any other.
	next.Version = cur.Version + 1
	before, _ := cur.YAML()
	after, _ := next.YAML()
	what := fmt.Sprintf("site policy version %d", next.Version)
	if err := sp.commit(by, what, before, after); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.PolicyBeforeStore)
	v, err := sp.store.PutPolicy(data, cur.Version)
	if err != nil {
		sp.recordUnsaved(by, what, err)
		if errors.Is(err, store.ErrConflict) {
			return nil, errConflict
		}
		return nil, err
	}
	crashpoint.Hit(crashpoint.PolicyAfterStore)
	next.Version = v
	if err := sp.engine.Swap(next); err != nil {
		return nil, err // cannot happen: validated above
	}
	sp.log.Info("policy changed", "event", "policy_change", "by", by, "version", v,
		"before", string(before), "after", string(after))
	return next, nil
}

// policyCommitTimeout bounds the wait for a policy change's audit record.
const policyCommitTimeout = 30 * time.Second

// commit makes the record of a change durable before the change is saved,
// so that no version in the store lacks its record (audit.Sink: a policy
// change does not happen unrecorded). A crash after it and before the save
// leaves a record of a version that never came into force.
func (sp *sitePolicy) commit(by, what string, before, after []byte) error {
	if sp.audit == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), policyCommitTimeout)
	defer cancel()
	e := audit.PolicyChange(time.Now(), audit.Actor{User: by}, what, string(before), string(after))
	if _, err := sp.audit.Commit(ctx, e); err != nil {
		return fmt.Errorf("the audit trail is unavailable, the policy was not changed: %w", err)
	}
	return nil
}

// recordUnsaved records that a change whose record was committed could not
// be saved, so that the trail does not claim a version that never came
// into force.
func (sp *sitePolicy) recordUnsaved(by, what string, cause error) {
	sp.log.Error("policy change not saved", "by", by, "what", what, "err", cause)
	if sp.audit == nil {
		return
	}
	e := audit.PolicyChange(time.Now(), audit.Actor{User: by}, what+" not saved", "", "")
	e.Outcome, e.Reason = "failed", cause.Error()
	sp.audit.Record(e)
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
	return p.sp.engine.Current().ProfileFor(o.user, o.role, o.terminal)
}

// Decide is the proxy's host decision: the profile's, or else the static
// allows, unless the host is blocked everywhere.
func (p *sessionPolicy) Decide(host string, port int) egress.Decision {
	o := p.owner.Load()
	if o == nil {
		return unclaimed
	}
	set := p.sp.engine.Current()
	d := set.Decide(set.ProfileFor(o.user, o.role, o.terminal), host, port)
	if d.Allow || strings.HasPrefix(d.Rule, policy.RuleBlockedPrefix) {
		return d
	}
	if b := p.sp.base.Decide(host, port); b.Allow {
		return b
	}
	return d
}

// AllowAddr lets the profile's CIDR rules allow internal addresses.
func (p *sessionPolicy) AllowAddr(host string, addr netip.Addr, port int) (bool, string) {
	o := p.owner.Load()
	if o == nil {
		return false, ruleUnclaimed
	}
	set := p.sp.engine.Current()
	return set.AllowAddr(set.ProfileFor(o.user, o.role, o.terminal), host, addr, port)
}

// CheckURL is the browser Fetch layer's check of a navigation; it adds path
// rules to the proxy's host decision.
func (p *sessionPolicy) CheckURL(raw string) isolation.NavDecision {
	o := p.owner.Load()
	if o == nil {
		return isolation.NavDecision{Rule: unclaimed.Rule, Reason: unclaimed.Reason}
	}
	set := p.sp.engine.Current()
	r := set.CheckURL(set.ProfileFor(o.user, o.role, o.terminal), raw)
	if !r.Allow && !strings.HasPrefix(r.Rule, policy.RuleBlockedPrefix) && r.Host != "" {
		if b := p.sp.base.Decide(r.Host, r.Port); b.Allow {
			return isolation.NavDecision{Allow: true, Host: r.Host, Rule: b.Rule}
		}
	}
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
