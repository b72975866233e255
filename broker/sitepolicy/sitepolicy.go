// Package sitepolicy is the site-policy service: it loads the admins'
// policy document from the store, and changes it — validated as a whole,
// recorded in the audit trail before it is saved, saved only if nobody
// changed it in between, then put in force. The broker's admin API and the
// offline `shoji allow` command both change the policy through it.
package sitepolicy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// Service owns the site policy: the document in force and its changes.
type Service struct {
	engine *policy.Engine
	store  Store
	audit  audit.Sink
	log    *slog.Logger
	now    func() time.Time

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
	return &Service{engine: policy.NewEngine(o.Now), store: o.Store, audit: o.Audit, log: o.Logger, now: o.Now}
}

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
	if err := s.engine.Swap(doc); err != nil {
		return fmt.Errorf("stored site policy: %w", err)
	}
	return nil
}

// Change applies mutate to a copy of the current document, validates the
// whole result, commits its audit record, saves it and puts it in force;
// by names who changed it. ifVersion, when not negative, must be the
// current version (If-Match), else the error is ErrConflict. On any error
// nothing changes.
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
	if err := next.Validate(); err != nil {
		return nil, err
	}
	// The store makes the next version cur.Version+1: s.mu serialises
	// every change, and the store refuses any other.
	next.Version = cur.Version + 1
	data, err := next.JSON()
	if err != nil {
		return nil, err
	}
	before, _ := cur.YAML()
	after, _ := next.YAML()
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
