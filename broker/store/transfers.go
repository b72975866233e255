package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/record"
)

var (
	bucketTransfers    = []byte("transfers")
	bucketDestinations = []byte("destinations")
)

// Transfer directions.
const (
	DirectionDownload = "download" // remote browser → terminal
	DirectionUpload   = "upload"   // terminal → a site
	DirectionPrint    = "print"    // a page as PDF → terminal
)

// Transfer states. A transfer moves forward only: receiving → checking →
// released | held | rejected; held → released | rejected; receiving →
// canceled. Expired is set when retention deleted a quarantined file; the
// record stays (XFER-10).
const (
	TransferReceiving = "receiving"
	TransferChecking  = "checking"
	TransferReleased  = "released"
	TransferHeld      = "held"
	TransferRejected  = "rejected"
	TransferCanceled  = "canceled"
)

// Transfer is one file crossing the transfer channel: the ledger entry of
// XFER-3 (who, terminal, direction, file name and type, size, SHA-256,
// reason, destination, time, approver).
type Transfer struct {
	ID        string `json:"id"`
	Direction string `json:"direction"`
	User      string `json:"user"`
	Role      string `json:"role"`
	Terminal  string `json:"terminal,omitempty"`
	Session   string `json:"session,omitempty"`
	Profile   string `json:"profile,omitempty"`

	// Name is the file name for display and Content-Disposition, made
	// harmless; PageName is the name the page or the terminal gave,
	// exactly, kept as evidence and never used as a path.
	Name     string `json:"name"`
	PageName string `json:"pageName,omitempty"`
	// Source is the URL a download came from; Destination is the page URL
	// an upload was handed to.
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination,omitempty"`

	Size     int64  `json:"size"`
	Received int64  `json:"received,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	MIME     string `json:"mime,omitempty"`
	Class    string `json:"class,omitempty"`

	State string `json:"state"`
	// Reason says why the transfer is held, rejected or canceled, for the
	// clinician and the approver.
	Reason string `json:"reason,omitempty"`
	// Rule is the transfer policy rule that decided.
	Rule string `json:"rule,omitempty"`
	// Scan is the scanner's verdict: "clean", "infected: SIG", "not
	// scanned: why", or "not configured".
	Scan string `json:"scan,omitempty"`
	// Inspection notes what the content inspection found (encrypted
	// archive, macros).
	Inspection string `json:"inspection,omitempty"`
	// Justification is the clinician's reason for needing a held file.
	Justification string `json:"justification,omitempty"`

	Approver string    `json:"approver,omitempty"`
	Comment  string    `json:"comment,omitempty"`
	Decided  time.Time `json:"decided,omitzero"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Expired is when retention deleted the file; zero while it is kept.
	Expired time.Time `json:"expired,omitzero"`
	// Saved counts deliveries to the terminal; Sent lists deliveries to
	// departmental destinations.
	Saved int    `json:"saved,omitempty"`
	Sent  []Sent `json:"sent,omitempty"`
}

// Sent is one delivery of a released file to a departmental destination.
type Sent struct {
	Destination string    `json:"destination"`
	File        string    `json:"file"`
	By          string    `json:"by"`
	At          time.Time `json:"at"`
}

// NewTransferID returns a fresh, unguessable transfer ID (128 random bits).
func NewTransferID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// CreateTransfer stores a new transfer. Its ID must be set and unused.
func (s *Store) CreateTransfer(t Transfer) error {
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
func (s *Store) Transfer(id string) (Transfer, error) {
	return getRecord[Transfer](s, bucketTransfers, "transfer", id)
}

// UpdateTransfer changes one transfer in a single transaction: fn sees the
// stored transfer and may refuse with an error, which is returned as is and
// changes nothing.
func (s *Store) UpdateTransfer(id string, fn func(*Transfer) error) (Transfer, error) {
	return updateRecord(s, bucketTransfers, "transfer", id, fn, func(t *Transfer) { t.ID = id })
}

// ListTransfers returns the transfers that match (all when match is nil),
// newest first.
func (s *Store) ListTransfers(match func(*Transfer) bool) ([]Transfer, error) {
	return listRecords(s, bucketTransfers, "transfer", match, func(t *Transfer) int64 { return t.Created.UnixNano() })
}

// Destination is a departmental destination an admin registered (XFER-9):
// a directory on the broker host, such as a mounted departmental share,
// that released files may be sent to.
type Destination struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Dir         string    `json:"dir"`
	AddedBy     string    `json:"addedBy,omitempty"`
	Added       time.Time `json:"added,omitzero"`
}

// PutDestination adds or replaces a destination by name.
func (s *Store) PutDestination(d Destination) error {
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
func (s *Store) Destinations() ([]Destination, error) {
	out := []Destination{}
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketDestinations)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			var d Destination
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode destination: %w", err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}
