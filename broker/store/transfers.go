package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

var (
	bucketTransfers    = []byte("transfers")
	bucketDestinations = []byte("destinations")
)

// CreateTransfer stores a new transfer. Its ID must be set and unused.
func (s *Store) CreateTransfer(t transfer.Transfer) error {
	if t.ID == "" {
		return fmt.Errorf("store transfer: empty ID")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketTransfers)
		if err != nil {
			return err
		}
		if bk.Get([]byte(t.ID)) != nil {
			return fmt.Errorf("transfer %s: %w", t.ID, record.ErrExists)
		}
		return putJSON(bk, t.ID, t)
	})
	if err != nil {
		return fmt.Errorf("store transfer: %w", err)
	}
	return nil
}

// Transfer returns one transfer, or record.ErrNotFound.
func (s *Store) Transfer(id string) (transfer.Transfer, error) {
	return getRecord[transfer.Transfer](s, bucketTransfers, "transfer", id)
}

// UpdateTransfer changes one transfer in a single transaction: fn sees the
// stored transfer and may refuse with an error, which is returned as is and
// changes nothing.
func (s *Store) UpdateTransfer(id string, fn func(*transfer.Transfer) error) (transfer.Transfer, error) {
	return updateRecord(s, bucketTransfers, "transfer", id, fn, func(t *transfer.Transfer) { t.ID = id })
}

// ListTransfers returns the transfers that match (all when match is nil),
// newest first.
func (s *Store) ListTransfers(match func(*transfer.Transfer) bool) ([]transfer.Transfer, error) {
	return listRecords(s, bucketTransfers, "transfer", match, func(t *transfer.Transfer) int64 { return t.Created.UnixNano() })
}

// PutDestination adds or replaces a destination by name.
func (s *Store) PutDestination(d transfer.Destination) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketDestinations)
		if err != nil {
			return err
		}
		return putJSON(bk, d.Name, d)
	})
	if err != nil {
		return fmt.Errorf("store destination: %w", err)
	}
	return nil
}

// DeleteDestination removes a destination, or returns record.ErrNotFound.
func (s *Store) DeleteDestination(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDestinations)
		if bk == nil || bk.Get([]byte(name)) == nil {
			return fmt.Errorf("destination %q: %w", name, record.ErrNotFound)
		}
		return bk.Delete([]byte(name))
	})
}

// Destinations returns every destination, by name.
func (s *Store) Destinations() ([]transfer.Destination, error) {
	out := []transfer.Destination{}
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDestinations)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			var d transfer.Destination
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode destination: %w", err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// Store keeps the transfer channel's state.
var _ transfer.Store = (*Store)(nil)
