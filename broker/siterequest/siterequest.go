// Package siterequest is the site-request workflow (ALLOW-1): a clinician
// asks for a blocked site, giving a reason; an approver, never the
// clinician, approves it (the site is added to a profile of the site
// policy) or rejects it. The package holds the request, its typed state,
// the storage it needs (Store) and the workflow (Service).
package siterequest

import "time"

// State is where a request stands. The values are stored as they are: a
// data directory written by an earlier version opens unchanged.
type State string

// The states of a request. A request is created Pending and decided once.
const (
	Pending  State = "pending"
	Approved State = "approved"
	Rejected State = "rejected"
)

// Valid says whether s is one of the states.
func (s State) Valid() bool {
	return s == Pending || s == Approved || s == Rejected
}

// Request is a clinician's request for access to a site: who asked, for
// which host and why, and what an approver decided. Its JSON is both the
// stored record and the API's answer.
type Request struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Host      string    `json:"host"`
	URL       string    `json:"url"`
	Reason    string    `json:"reason"`
	Profile   string    `json:"profile"`
	State     State     `json:"state"`
	Created   time.Time `json:"created"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
	Comment   string    `json:"comment,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
}

// Store holds clinicians' requests for access to a site and their
// decisions. broker/store's bbolt Store implements it; every backend must
// pass the contract suite broker/store/storetest, under the shared rules
// written in broker/store/contract.go (errors classified by the sentinels
// of broker/record, atomic writes, records as values, times to the
// nanosecond, safe for concurrent use).
type Store interface {
	// CreateSiteRequest stores r as a new request under a fresh, unique,
	// unguessable ID with State Pending, whatever r.ID and r.State were,
	// and returns the stored request.
	CreateSiteRequest(r Request) (Request, error)
	// SiteRequestByID returns one request, or record.ErrNotFound.
	SiteRequestByID(id string) (Request, error)
	// UpdateSiteRequest is a read-modify-write of one request that no
	// other write interleaves with: concurrent updates of one request are
	// not lost. fn sees the stored request; when fn returns an error
	// nothing is written (not even the fields fn already changed) and that
	// error is returned as is. A missing request is record.ErrNotFound and
	// fn is not called. The ID stays what it was whatever fn does. fn must
	// not call the backend and should only compute from its argument: a
	// backend that retries on contention may call it again with the
	// freshly read request. It returns the request as stored. Of
	// concurrent decisions whose fn refuses a request that is no longer
	// pending, exactly one succeeds.
	UpdateSiteRequest(id string, fn func(*Request) error) (Request, error)
	// ListSiteRequests returns the requests for which match is true (all
	// when match is nil), newest first by Created; the order of requests
	// created at the same instant is unspecified. None is an empty,
	// non-nil list. match must not call the backend.
	ListSiteRequests(match func(Request) bool) ([]Request, error)
}
