package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucketRequests = []byte("site_requests")

// The states of a site request.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestRejected = "rejected"
)

// SiteRequest is a clinician's request for access to a site (ALLOW-1): who
// asked, for which host and why, and what an approver decided.
type SiteRequest struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Host      string    `json:"host"`
	URL       string    `json:"url"`
	Reason    string    `json:"reason"`
	Profile   string    `json:"profile"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	Decided   time.Time `json:"decided,omitzero"`
	Comment   string    `json:"comment,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
}

// CreateSiteRequest stores a new pending request under a fresh ID.
func (s *Store) CreateSiteRequest(r SiteRequest) (SiteRequest, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return SiteRequest{}, err
	}
	r.ID = hex.EncodeToString(b[:])
	r.State = RequestPending
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketRequests)
		if err != nil {
			return err
		}
		return putJSON(bk, r.ID, r)
	})
	if err != nil {
		return SiteRequest{}, fmt.Errorf("store site request: %w", err)
	}
	return r, nil
}

// SiteRequestByID returns one request, or record.ErrNotFound.
func (s *Store) SiteRequestByID(id string) (SiteRequest, error) {
	return getRecord[SiteRequest](s, bucketRequests, "site request", id)
}

// UpdateSiteRequest changes one request in a single transaction: fn sees the
// stored request and may refuse with an error, which is returned as is and
// changes nothing.
func (s *Store) UpdateSiteRequest(id string, fn func(*SiteRequest) error) (SiteRequest, error) {
	return updateRecord(s, bucketRequests, "site request", id, fn, func(r *SiteRequest) { r.ID = id })
}

// ListSiteRequests returns the requests that match (all when match is nil),
// newest first.
func (s *Store) ListSiteRequests(match func(SiteRequest) bool) ([]SiteRequest, error) {
	var m func(*SiteRequest) bool
	if match != nil {
		m = func(r *SiteRequest) bool { return match(*r) }
	}
	return listRecords(s, bucketRequests, "site request", m, func(r *SiteRequest) int64 { return r.Created.UnixNano() })
}
