package siterequest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/approval"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/internal/truncate"
	"github.com/shoji-rbi/shoji/isolation/egress"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Limits on a request and its decision.
const (
	MaxReasonBytes  = 2000
	MaxCommentBytes = 2000
	MaxURLBytes     = 8 << 10
	// MaxNoteReason bounds the request's reason quoted in the note of the
	// rule an approval adds, "…" included.
	MaxNoteReason = 200
)

// The classes of a refusal, for errors.Is.
var (
	// ErrInvalid is input the workflow cannot take (a bad host, an empty
	// reason, an unknown profile).
	ErrInvalid = errors.New("invalid site request input")
	// ErrDecided is a decision on a request that was already decided.
	ErrDecided = errors.New("the request was already decided")
)

// refusal is a step of the workflow refused for what was asked. Msg is
// for the person who asked; Err classifies it: ErrInvalid, ErrDecided,
// approval.ErrOwnRequest or record.ErrNotFound.
type refusal struct {
	Err error
	Msg string
}

func (r *refusal) Error() string { return r.Msg }
func (r *refusal) Unwrap() error { return r.Err }

func invalid(format string, args ...any) error {
	return &refusal{Err: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

var errNoSuchRequest = &refusal{Err: record.ErrNotFound, Msg: "no such request"}

// Policy is the site policy as the workflow uses it: the policy in force,
// and a change to it (*sitepolicy.Service; a negative ifVersion changes
// whatever version is current).
type Policy interface {
	Current() *policy.Set
	Change(by string, ifVersion int, mutate func(d *policy.Document) error) (*policy.Document, error)
}

// Service is the site-request workflow. Store and Policy are required;
// the other fields may be left zero.
//
// A step refused for what was asked returns an error whose text is for the
// person who asked and which errors.Is matches to ErrInvalid, ErrDecided,
// approval.ErrOwnRequest or record.ErrNotFound; an approval's policy change
// may also fail as sitepolicy.Service.Change does (a policy that no longer
// validates is policy.ErrInvalid). Anything else is the storage's failure.
type Service struct {
	Store  Store
	Policy Policy
	// Audit receives a record of every request and decision. Nil records
	// nothing.
	Audit audit.Sink
	// Log logs requests and decisions. Nil discards.
	Log *slog.Logger
	// Now is the clock of requests, decisions and rules. Nil means
	// time.Now.
	Now func() time.Time
	// Terminal returns the terminal of the user's open session, if any,
	// for the profile a request is made under (an emergency profile goes by
	// terminal group). Nil means none.
	Terminal func(user string) (netip.Addr, bool)
	// Notify tells the requester's viewer, if open, what was decided. Nil
	// tells nobody.
	Notify func(r Request)
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) record(e audit.Event) {
	if s.Audit != nil {
		s.Audit.Record(e)
	}
}

func (s *Service) notify(r Request) {
	if s.Notify != nil {
		s.Notify(r)
	}
}

// Create records a's request for the host (the page's url, when known,
// and the reason it is needed), under the profile a browses with now.
func (s *Service) Create(a audit.Actor, host, rawURL, reason string) (Request, error) {
	h, _, err := egress.Normalize(strings.TrimSpace(host) + ":443")
	if err != nil || host == "" {
		return Request{}, invalid("host %q: not a host name", host)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > MaxReasonBytes {
		return Request{}, invalid("reason: say why you need the site (at most %d bytes)", MaxReasonBytes)
	}
	if len(rawURL) > MaxURLBytes {
		return Request{}, invalid("url: too long")
	}
	var terminal netip.Addr
	if s.Terminal != nil {
		if t, ok := s.Terminal(a.User); ok {
			terminal = t
		}
	}
	r, err := s.Store.CreateSiteRequest(Request{
		User: a.User, Host: h, URL: rawURL, Reason: reason,
		Profile: s.Policy.Current().ProfileFor(a.User, a.Role, terminal), Created: s.now().UTC(),
	})
	if err != nil {
		return Request{}, fmt.Errorf("create site request: %w", err)
	}
	s.log().Info("site requested", "event", "site_request", "user", a.User, "host", h, "id", r.ID)
	s.record(audit.SiteRequest(s.now(), a, h, rawURL, reason))
	return r, nil
}

// Mine returns the user's own requests, newest first.
func (s *Service) Mine(user string) ([]Request, error) {
	return s.Store.ListSiteRequests(func(r Request) bool { return r.User == user })
}

// List returns the requests in the state, newest first; every request when
// state is "".
func (s *Service) List(state State) ([]Request, error) {
	if state != "" && !state.Valid() {
		return nil, invalid("state: want pending, approved, rejected or nothing")
	}
	return s.Store.ListSiteRequests(func(r Request) bool { return state == "" || r.State == state })
}

// Profiles returns the names of the policy's profiles, which an approver
// picks from.
func (s *Service) Profiles() []string {
	names := []string{}
	for _, p := range s.Policy.Current().Document().Profiles {
		names = append(names, p.Name)
	}
	return names
}

// Approval is an approver's approval: the profile the site is added to,
// until when (an RFC 3339 time; "" for no end) and a comment.
type Approval struct {
	Profile string `json:"profile"`
	Expires string `json:"expires"`
	Comment string `json:"comment"`
}

// Approve approves the pending request id for a: it adds the request's
// site to the profile of the approval, then records the decision, audits
// it and notifies the requester. The rule is added first: a failure in
// between leaves the request pending, never approved without a rule.
func (s *Service) Approve(a audit.Actor, id string, ap Approval) (Request, error) {
	var expires time.Time
	if ap.Expires != "" {
		t, err := time.Parse(time.RFC3339, ap.Expires)
		if err != nil || !t.After(s.now()) {
			return Request{}, invalid("expires: want a future RFC 3339 time, e.g. 2027-01-31T00:00:00+09:00")
		}
		expires = t.UTC()
	}
	if len(ap.Comment) > MaxCommentBytes {
		return Request{}, invalid("comment: too long")
	}
	if s.Policy.Current().Document().Profile(ap.Profile) == nil {
		return Request{}, invalid("profile %q: no such profile", ap.Profile)
	}
	cur, err := s.Store.SiteRequestByID(id)
	if errors.Is(err, record.ErrNotFound) {
		return Request{}, errNoSuchRequest
	}
	if err != nil {
		return Request{}, fmt.Errorf("read site request: %w", err)
	}
	if err := checkDecision(cur, a.User); err != nil {
		return Request{}, err
	}
	if err := s.allow(a.User, cur, ap.Profile, expires); err != nil {
		return Request{}, err
	}
	r, err := s.decide(cur.ID, a.User, func(r *Request) {
		r.State, r.Profile, r.Expires, r.Comment = Approved, ap.Profile, expires, ap.Comment
	})
	if err != nil {
		return Request{}, err
	}
	s.log().Info("site request approved", "event", "site_request_decision", "by", a.User, "id", r.ID,
		"user", r.User, "host", r.Host, "profile", r.Profile, "expires", r.Expires)
	s.record(audit.SiteDecision(s.now(), a, r.User, r.Host, string(Approved), r.Comment))
	s.notify(r)
	return r, nil
}

// allow adds the request's site to the profile, unless the profile already
// has the rule.
func (s *Service) allow(by string, r Request, profile string, expires time.Time) error {
	pattern := Pattern(r)
	_, err := s.Policy.Change(by, -1, func(d *policy.Document) error {
		prof := d.Profile(profile)
		if prof == nil {
			return fmt.Errorf("profile %q: %w", profile, policy.ErrInvalid)
		}
		for _, rule := range prof.Rules {
			if rule.Pattern == pattern {
				return nil // already allowed there
			}
		}
		prof.Rules = append(prof.Rules, policy.Rule{
			Pattern: pattern, Expires: expires, AddedBy: by, Added: s.now().UTC(),
			Note: "site request " + r.ID + " by " + r.User + ": " + truncate.Ellipsis(r.Reason, MaxNoteReason),
		})
		return nil
	})
	return err
}

// Reject rejects the pending request id for a, saying why in comment.
func (s *Service) Reject(a audit.Actor, id, comment string) (Request, error) {
	if strings.TrimSpace(comment) == "" || len(comment) > MaxCommentBytes {
		return Request{}, invalid("comment: say why the request is rejected")
	}
	r, err := s.decide(id, a.User, func(r *Request) {
		r.State, r.Comment = Rejected, comment
	})
	if err != nil {
		return Request{}, err
	}
	s.log().Info("site request rejected", "event", "site_request_decision", "by", a.User, "id", r.ID, "user", r.User, "host", r.Host)
	s.record(audit.SiteDecision(s.now(), a, r.User, r.Host, string(Rejected), r.Comment))
	s.notify(r)
	return r, nil
}

// checkDecision says whether decider may decide the request now: it is
// not theirs (approval.CheckDecider) and it is pending.
func checkDecision(r Request, decider string) error {
	if err := approval.CheckDecider(r.User, decider); err != nil {
		return &refusal{Err: err, Msg: "you cannot decide your own request; another approver must"}
	}
	if r.State != Pending {
		return &refusal{Err: ErrDecided, Msg: "the request was already " + string(r.State)}
	}
	return nil
}

// decide records decider's decision on a pending request in one write
// that checks it again, so that of two concurrent decisions one wins;
// nobody decides their own request (XFER-5, ALLOW-1).
func (s *Service) decide(id, decider string, set func(*Request)) (Request, error) {
	r, err := s.Store.UpdateSiteRequest(id, func(r *Request) error {
		if err := checkDecision(*r, decider); err != nil {
			return err
		}
		r.DecidedBy, r.Decided = decider, s.now().UTC()
		set(r)
		return nil
	})
	if errors.Is(err, record.ErrNotFound) {
		return r, errNoSuchRequest
	}
	return r, err
}

// Pattern is the rule an approval of r adds: the host, with the port when
// the requested URL used one other than its scheme's default.
func Pattern(r Request) string {
	u, err := url.Parse(r.URL)
	if err != nil || u.Port() == "" || !strings.EqualFold(u.Hostname(), r.Host) {
		return r.Host
	}
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		return r.Host
	}
	return net.JoinHostPort(r.Host, u.Port())
}
