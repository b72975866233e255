package store

import (
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// listed is a JSON record kept under its ID in a bucket of its own (site
// requests, transfers), listed newest first.
type listed interface {
	siterequest.Request | transfer.Transfer
}

// getRecord reads the record id of kind from bucket, or record.ErrNotFound.
func getRecord[T listed](s *Store, bucket []byte, kind, id string) (T, error) {
	var r T
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return fmt.Errorf("%s %q: %w", kind, id, record.ErrNotFound)
		}
		return getJSON(bk, kind, id, &r)
	})
	return r, err
}

// updateRecord changes one record in a single transaction: fn sees the
// stored record and may refuse with an error, which is returned as is and
// changes nothing. setID keeps the record's ID what it was.
func updateRecord[T listed](s *Store, bucket []byte, kind, id string, fn func(*T) error, setID func(*T)) (T, error) {
	var r T
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return fmt.Errorf("%s %q: %w", kind, id, record.ErrNotFound)
		}
		if err := getJSON(bk, kind, id, &r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		setID(&r)
		return putJSON(bk, id, r)
	})
	return r, err
}

// listRecords returns the records of bucket that match (all when match is
// nil), newest first by created.
func listRecords[T listed](s *Store, bucket []byte, kind string, match func(*T) bool, created func(*T) int64) ([]T, error) {
	out := []T{}
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			var r T
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode %s: %w", kind, err)
			}
			if match == nil || match(&r) {
				out = append(out, r)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return created(&out[i]) > created(&out[j]) })
	return out, err
}
