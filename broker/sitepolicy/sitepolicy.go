// Package sitepolicy is the site-policy service: it loads the admins'
// policy document from the store, and changes it — validated as a whole,
// recorded in the audit trail before it is saved, saved only if nobody
// changed it in between, then put in force. The broker's admin API and the
// offline `shoji allow` command both change the policy through it.
//
// The policy it serves has a read-only layer besides the admins' document:
// the sites the broker's configuration allows in every profile (Static:
// the config file's egress.allow, and the demo site in demo mode). The
// layer is shown with the document (policy.Document.Static) and decides
// like any rule, naming its source, but it is never stored, and a change
// that would alter it is refused.
package sitepolicy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// ErrConflict is a change based on an older version of the policy.
var ErrConflict = errors.New("the policy was changed by someone else")

// CommitTimeout bounds the wait for the audit record of a change.
const CommitTimeout = 30 * time.Second

// Store holds the policy document. It is broker/store's Policies contract
// (broker/store/contract.go), which *store.Store implements and the contract
// suite broker/store/storetest checks.
type Store interface {
	// Policy returns the stored document (nil when there is none) and its
	// version (0 when there is none).
	Policy() ([]byte, int, error)
	// PutPolicy stores data as the version after ifVersion, which must be
	// the stored version, and returns the new version; otherwise it fails
	// with record.ErrConflict.
	PutPolicy(data []byte, ifVersion int) (int, error)
}

// Options configure a Service.
type Options struct {
	// Store holds the policy. Required.
	Store Store
	// Audit receives a record of every change, before and after. Nil
	// records nothing (only for tests).
	Audit audit.Sink
	// Logger logs changes. Nil discards.
	Logger *slog.Logger
	// Now is the clock of records and of rule expiry. Nil means time.Now.
	Now func() time.Time
	// Static is the read-only layer, each rule with its Source (see
	// SourceConfig and SourceDemo); ReadOnly is set whatever it says. The
	// layer is compiled with the document at Load: an invalid rule makes
	// Load fail, naming it.
	Static []policy.StaticRule
}

// Sources of the read-only layer's rules, which decisions name.
const (
	// SourceConfig is the config file's egress.allow.
	SourceConfig = "config file egress.allow"
	// SourceDemo is the demo site that demo mode serves and allows.
	SourceDemo = "demo mode"
)

// Service owns the site policy: the document in force and its changes.
type Service struct {
	engine *policy.Engine
	store  Store
	audit  audit.Sink
	log    *slog.Logger
	now    func() time.Time
	static []policy.StaticRule // nil when there is none

	mu sync.Mutex // serialises changes: read, change, validate, record, save, swap
}

// New returns a Service whose policy is the empty document until Load.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var static []policy.StaticRule
	for _, r := range o.Static {
		r.ReadOnly = true
		static = append(static, r)
	}
	return &Service{engine: policy.NewEngine(o.Now), store: o.Store, audit: o.Audit, log: o.Logger, now: o.Now, static: static}
}

// Static returns the read-only layer.
func (s *Service) Static() []policy.StaticRule { return slices.Clone(s.static) }

// Engine is the compiled policy in force, for sessions to decide by.
func (s *Service) Engine() *policy.Engine { return s.engine }

// Current is the policy in force now.
func (s *Service) Current() *policy.Set { return s.engine.Current() }

// Load reads the stored policy and puts it in force. A stored policy that
// no longer validates is an error naming the bad rule; nothing changes.
func (s *Service) Load() error {
	raw, version, err := s.store.Policy()
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
	doc.Static = s.static // a stored document has none: it is never stored
	if err := s.engine.Swap(doc); err != nil {
		return fmt.Errorf("stored site policy: %w", err)
	}
	return nil
}

// Change applies mutate to a copy of the current document, validates the
// whole result, commits its audit record, saves it and puts it in force;
// by names who changed it. ifVersion, when not negative, must be the
// current version (If-Match), else the error is ErrConflict. The read-only
// layer stays as it is: mutate may leave it, or set it to nil (a document
// sent without it); any other change to it is refused with a
// *policy.ValidationError naming the rule. On any error nothing changes.
func (s *Service) Change(by string, ifVersion int, mutate func(d *policy.Document) error) (*policy.Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.engine.Current().Document()
	if ifVersion >= 0 && ifVersion != cur.Version {
		return nil, ErrConflict
	}
	next := cur.Clone()
	if err := mutate(next); err != nil {
		return nil, err
	}
	if next.Static == nil {
		next.Static = s.static
	} else if err := s.sameStatic(next.Static); err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	// The store makes the next version cur.Version+1: s.mu serialises
	// every change, and the store refuses any other.
	next.Version = cur.Version + 1
	data, err := stored(next).JSON()
	if err != nil {
		return nil, err
	}
	before, _ := stored(cur).YAML()
	after, _ := stored(next).YAML()
	what := fmt.Sprintf("site policy version %d", next.Version)
	if err := s.commit(by, what, before, after); err != nil {
		return nil, err
	}
	crashpoint.Hit(crashpoint.PolicyBeforeStore)
	v, err := s.store.PutPolicy(data, cur.Version)
	if err != nil {
		s.recordUnsaved(by, what, err)
		if errors.Is(err, record.ErrConflict) {
			return nil, ErrConflict
		}
		return nil, err
	}
	crashpoint.Hit(crashpoint.PolicyAfterStore)
	next.Version = v
	if err := s.engine.Swap(next); err != nil {
		return nil, err // cannot happen: validated above
	}
	s.log.Info("policy changed", "event", "policy_change", "by", by, "version", v,
		"before", string(before), "after", string(after))
	return next, nil
}

// commit makes the record of a change durable before the change is saved,
// so that no version in the store lacks its record (audit.Sink: a policy
// change does not happen unrecorded). A crash after it and before the save
// leaves a record of a version that never came into force.
func (s *Service) commit(by, what string, before, after []byte) error {
	if s.audit == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommitTimeout)
	defer cancel()
	e := audit.PolicyChange(s.now(), audit.Actor{User: by}, what, string(before), string(after))
	if _, err := s.audit.Commit(ctx, e); err != nil {
		return fmt.Errorf("the audit trail is unavailable, the policy was not changed: %w", err)
	}
	return nil
}

// recordUnsaved records that a change whose record was committed could not
// be saved, so that the trail does not claim a version that never came
// into force.
func (s *Service) recordUnsaved(by, what string, cause error) {
	s.log.Error("policy change not saved", "by", by, "what", what, "err", cause)
	if s.audit == nil {
		return
	}
	e := audit.PolicyChange(s.now(), audit.Actor{User: by}, what+" not saved", "", "")
	e.Outcome, e.Reason = "failed", cause.Error()
	s.audit.Record(e)
}

// stored is d as it is stored and recorded: without the read-only layer.
func stored(d *policy.Document) *policy.Document {
	c := *d
	c.Static = nil
	return &c
}

// sameStatic refuses a read-only layer that differs from the service's,
// naming the first rule added, removed or changed.
func (s *Service) sameStatic(got []policy.StaticRule) error {
	refuse := func(format string, args ...any) error {
		return &policy.ValidationError{Problems: []string{fmt.Sprintf(format, args...)}}
	}
	for i := range max(len(got), len(s.static)) {
		switch {
		case i >= len(got):
			r := s.static[i]
			return refuse("static rule %q is read-only (%s) and cannot be removed here: remove it there and restart the broker", r.Pattern, r.Source)
		case i >= len(s.static):
			return refuse("static rule %q cannot be added: static rules are read-only, set in the broker's configuration; add the site to a profile instead", got[i].Pattern)
		case got[i] != s.static[i]:
			r := s.static[i]
			return refuse("static rule %q is read-only (%s) and cannot be changed here: change it there and restart the broker", r.Pattern, r.Source)
		}
	}
	return nil
}
