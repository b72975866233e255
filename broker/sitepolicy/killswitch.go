package sitepolicy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// The classes of a kill-switch refusal, for errors.Is. Bad input is
// policy.ErrInvalid, as an invalid policy is.
var (
	// ErrAlreadyBlocked is a block of a host that is blocked already.
	ErrAlreadyBlocked = errors.New("the host is already blocked")
	// ErrNotInPolicy is the removal of a block or an emergency profile
	// that the policy does not have.
	ErrNotInPolicy = errors.New("not in the policy")
)

// refusal is a change refused for what was asked: msg is for the admin who
// asked, class classifies it.
type refusal struct {
	class error
	msg   string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.class }

// Replace replaces the whole document with doc (an admin's edit or an
// import) if ifVersion is still the current version, as by. The rules that
// do not say who added them and when are stamped with by and now: the
// server, not the client, says who changed the policy.
func (s *Service) Replace(by string, ifVersion int, doc *policy.Document) (*policy.Document, error) {
	stampRules(doc, by, s.now().UTC())
	return s.Change(by, ifVersion, func(d *policy.Document) error {
		doc.Version = d.Version
		*d = *doc
		return nil
	})
}

// stampRules records who added the rules that say nothing of it.
func stampRules(d *policy.Document, by string, now time.Time) {
	for i := range d.Profiles {
		for j := range d.Profiles[i].Rules {
			r := &d.Profiles[i].Rules[j]
			if r.AddedBy == "" {
				r.AddedBy = by
			}
			if r.Added.IsZero() {
				r.Added = now
			}
		}
	}
}

// KillSwitch is what an admin does in an incident (IR-1): block a host
// everywhere at once, switch a terminal group to an emergency profile, end
// every session. Each act changes the policy through Policy and is logged
// and recorded in the audit trail with Policy's logger, sink and clock.
type KillSwitch struct {
	// Policy is the site policy. Required.
	Policy *Service
	// CutHost cuts the connections already open to the host and under it
	// (tunnels, WebSockets, kept-alive forwards) and returns how many. Nil
	// cuts none.
	CutHost func(host string) int
	// EndSessions ends every browsing session for an admin's reason and
	// returns how many. Nil ends none.
	EndSessions func() int
}

func (k *KillSwitch) record(a audit.Actor, what, target, reason string) {
	if k.Policy.audit != nil {
		k.Policy.audit.Record(audit.KillSwitch(k.Policy.now(), a, what, target, reason))
	}
}

// Block blocks host everywhere, for every profile, and cuts the
// connections already open to it; it returns the host as the policy names
// it (lower case, without a trailing dot).
func (k *KillSwitch) Block(a audit.Actor, host, reason string) (string, error) {
	h, _, err := egress.Normalize(strings.TrimSpace(host) + ":443")
	if err != nil || host == "" {
		return "", &refusal{policy.ErrInvalid, fmt.Sprintf("host %q: not a host name", host)}
	}
	if strings.TrimSpace(reason) == "" {
		return "", &refusal{policy.ErrInvalid, "reason: say why the host is blocked"}
	}
	_, err = k.Policy.Change(a.User, -1, func(d *policy.Document) error {
		for _, b := range d.Blocked {
			if b.Host == h {
				return &refusal{ErrAlreadyBlocked, h + " is already blocked"}
			}
		}
		d.Blocked = append(d.Blocked, policy.BlockedHost{Host: h, Reason: reason, By: a.User, At: k.Policy.now().UTC()})
		return nil
	})
	if err != nil {
		return "", err
	}
	// The policy refuses new connections from now on; cut the ones already
	// open too.
	cut := 0
	if k.CutHost != nil {
		cut = k.CutHost(h)
	}
	k.Policy.log.Warn("kill switch: host blocked everywhere", "event", "kill_switch", "by", a.User, "host", h, "reason", reason, "connections_cut", cut)
	k.record(a, "block_host", h, reason)
	return h, nil
}

// Unblock lifts the block of host.
func (k *KillSwitch) Unblock(a audit.Actor, host string) error {
	_, err := k.Policy.Change(a.User, -1, func(d *policy.Document) error {
		return removeFrom(&d.Blocked, func(b policy.BlockedHost) bool { return b.Host == host }, host+" is not blocked")
	})
	if err != nil {
		return err
	}
	k.Policy.log.Info("kill switch lifted", "event", "kill_switch", "by", a.User, "host", host)
	k.record(a, "unblock_host", host, "")
	return nil
}

// StartEmergency switches e.Group's terminals to the emergency profile
// e.Profile, replacing any emergency profile the group had.
func (k *KillSwitch) StartEmergency(a audit.Actor, e policy.Emergency) error {
	e.By = a.User
	_, err := k.Policy.Change(a.User, -1, func(d *policy.Document) error {
		d.Emergencies = slices.DeleteFunc(d.Emergencies, func(x policy.Emergency) bool { return x.Group == e.Group })
		d.Emergencies = append(d.Emergencies, e)
		return nil
	})
	if err != nil {
		return err
	}
	k.Policy.log.Warn("emergency profile on", "event", "emergency", "by", a.User, "group", e.Group,
		"profile", e.Profile, "reason", e.Reason, "expires", e.Expires)
	k.record(a, "emergency_on", e.Group+" → "+e.Profile, e.Reason)
	return nil
}

// EndEmergency ends the emergency profile of the terminal group.
func (k *KillSwitch) EndEmergency(a audit.Actor, group string) error {
	_, err := k.Policy.Change(a.User, -1, func(d *policy.Document) error {
		return removeFrom(&d.Emergencies, func(e policy.Emergency) bool { return e.Group == group }, "no emergency profile for group "+group)
	})
	if err != nil {
		return err
	}
	k.Policy.log.Info("emergency profile off", "event", "emergency", "by", a.User, "group", group)
	k.record(a, "emergency_off", group, "")
	return nil
}

// EndAllSessions ends every browsing session and returns how many.
func (k *KillSwitch) EndAllSessions(a audit.Actor) int {
	n := 0
	if k.EndSessions != nil {
		n = k.EndSessions()
	}
	k.Policy.log.Warn("kill switch: all sessions ended", "event", "kill_switch", "by", a.User, "sessions", n)
	k.record(a, "end_all_sessions", fmt.Sprintf("%d sessions", n), "")
	return n
}

// removeFrom deletes the entries of *list that match, or fails with
// ErrNotInPolicy saying notFound when none does.
func removeFrom[T any](list *[]T, match func(T) bool, notFound string) error {
	n := len(*list)
	*list = slices.DeleteFunc(*list, match)
	if len(*list) == n {
		return &refusal{ErrNotInPolicy, notFound}
	}
	return nil
}
