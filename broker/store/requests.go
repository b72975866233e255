package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/siterequest"
)

var bucketRequests = []byte("site_requests")

// CreateSiteRequest stores a new pending request under a fresh ID.
func (s *Store) CreateSiteRequest(r siterequest.Request) (siterequest.Request, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return siterequest.Request{}, err
	}
	r.ID = hex.EncodeToString(b[:])
	r.State = siterequest.Pending
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketRequests)
		if err != nil {
			return err
		}
		return putJSON(bk, r.ID, r)
	})
	if err != nil {
		return siterequest.Request{}, fmt.Errorf("store site request: %w", err)
	}
	return r, nil
}

// SiteRequestByID returns one request, or record.ErrNotFound.
func (s *Store) SiteRequestByID(id string) (siterequest.Request, error) {
	return getRecord[siterequest.Request](s, bucketRequests, "site request", id)
}

// UpdateSiteRequest changes one request in a single transaction: fn sees the
// stored request and may refuse with an error, which is returned as is and
// changes nothing.
func (s *Store) UpdateSiteRequest(id string, fn func(*siterequest.Request) error) (siterequest.Request, error) {
	return updateRecord(s, bucketRequests, "site request", id, fn, func(r *siterequest.Request) { r.ID = id })
}

// ListSiteRequests returns the requests that match (all when match is nil),
// newest first.
func (s *Store) ListSiteRequests(match func(siterequest.Request) bool) ([]siterequest.Request, error) {
	var m func(*siterequest.Request) bool
	if match != nil {
		m = func(r *siterequest.Request) bool { return match(*r) }
	}
	return listRecords(s, bucketRequests, "site request", m, func(r *siterequest.Request) int64 { return r.Created.UnixNano() })
}
