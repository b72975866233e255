package store

import (
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/record"
)

var (
	bucketPolicy      = []byte("policy")
	keyPolicyDocument = []byte("document")
	keyPolicyVersion  = []byte("version")
)

// Policy returns the stored site-policy document and its version. The store
// keeps the document as opaque bytes (the broker and CLI encode it). A store
// without a policy returns a nil document and version 0.
func (s *Store) Policy() (doc []byte, version int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPolicy)
		if b == nil {
			return nil
		}
		if version, err = policyVersion(b); err != nil {
			return err
		}
		if d := b.Get(keyPolicyDocument); d != nil {
			doc = append([]byte(nil), d...) // d is valid only inside the transaction
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read policy: %w", err)
	}
	return doc, version, nil
}

// PutPolicy replaces the policy document if the stored version is
// ifVersion (0 for a store without a policy), and returns the new version,
// ifVersion+1. Otherwise it writes nothing and fails with record.ErrConflict. The
// document must not be empty.
func (s *Store) PutPolicy(doc []byte, ifVersion int) (newVersion int, err error) {
	if len(doc) == 0 {
		return 0, errors.New("put policy: document is empty")
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPolicy)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketPolicy, err)
		}
		cur, err := policyVersion(b)
		if err != nil {
			return err
		}
		if cur != ifVersion {
			return fmt.Errorf("policy is at version %d, not %d: %w", cur, ifVersion, record.ErrConflict)
		}
		newVersion = cur + 1
		if err := b.Put(keyPolicyDocument, doc); err != nil {
			return fmt.Errorf("write policy: %w", err)
		}
		if err := b.Put(keyPolicyVersion, []byte(strconv.Itoa(newVersion))); err != nil {
			return fmt.Errorf("write policy version: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("put policy: %w", err)
	}
	return newVersion, nil
}

// policyVersion reads the stored version; 0 when none.
func policyVersion(b *bolt.Bucket) (int, error) {
	v := b.Get(keyPolicyVersion)
	if v == nil {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("stored policy version %q is not a number", v)
	}
	return n, nil
}
