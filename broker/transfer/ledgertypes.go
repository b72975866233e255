package transfer

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Direction is which way a file crosses the transfer channel. Its values
// are stored in the ledger and shown by the API: they never change.
type Direction string

// Transfer directions.
const (
	Download Direction = "download" // remote browser → terminal
	Upload   Direction = "upload"   // terminal → a site
	Print    Direction = "print"    // a page as PDF → terminal
)

// State is where a transfer stands. A transfer moves forward only:
// receiving → checking → released | held | rejected; held → released |
// rejected; receiving → canceled. A transfer whose quarantined file
// retention deleted keeps its state and gets Transfer.Expired (XFER-10).
// The values are stored in the ledger and shown by the API: they never
// change.
type State string

// Transfer states.
const (
	Receiving State = "receiving"
	Checking  State = "checking"
	Released  State = "released"
	Held      State = "held"
	Rejected  State = "rejected"
	Canceled  State = "canceled"
)

// Valid reports whether s is one of the states the broker writes.
func (s State) Valid() bool {
	switch s {
	case Receiving, Checking, Released, Held, Rejected, Canceled:
		return true
	}
	return false
}

// InProgress reports whether the file is still being received or checked:
// no verdict yet.
func (s State) InProgress() bool { return s == Receiving || s == Checking }

// Stopped reports whether the transfer was rejected or canceled: its file
// is deleted, and the transfer never moves on.
func (s State) Stopped() bool { return s == Rejected || s == Canceled }

// Step is one step of a transfer as the audit trail names it: the State
// of its audit.Transfer records (docs/transfer.md, "The ledger and the
// audit trail"). A step that moves the ledger to a state is recorded before
// the ledger changes (StateSteps); the others note what happened to a
// transfer. The values are in every trail written: they never change.
type Step string

// Transfer steps.
const (
	StepStarted  Step = "started"  // the browser began writing a file; an upload arrived
	StepReceived Step = "received" // the file is complete in the quarantine
	StepHeld     Step = "held"
	StepReleased Step = "released" // released by the checks
	StepApproved Step = "approved" // released by an approver
	StepRejected Step = "rejected"
	StepCanceled Step = "canceled"
	// StepJustified is a clinician's reason for needing a held file.
	StepJustified Step = "justified"
	// StepSaved is a delivery to the terminal; StepSent one to a
	// departmental destination (its destination is "NAME:FILE").
	StepSaved Step = "saved"
	StepSent  Step = "sent"
	// StepDeleted is the deletion of the quarantined file: retention, or
	// recovery finding it missing.
	StepDeleted Step = "deleted"
	// StepHanded is an upload given to the page; StepRefused a send to an
	// unsafe destination or an upload to a page that takes none. Neither
	// changes the ledger.
	StepHanded  Step = "handed"
	StepRefused Step = "refused"
)

// Transfer is one file crossing the transfer channel: the ledger entry of
// XFER-3 (who, terminal, direction, file name and type, size, SHA-256,
// reason, destination, time, approver). Its JSON is what the ledger stores
// and the API shows.
type Transfer struct {
	ID        string    `json:"id"`
	Direction Direction `json:"direction"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Terminal  string    `json:"terminal,omitempty"`
	Session   string    `json:"session,omitempty"`
	Profile   string    `json:"profile,omitempty"`

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

	State State `json:"state"`
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

// NewID returns a fresh, unguessable transfer ID (128 random bits, in
// hexadecimal).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// The interfaces below are the transfer channel's part of the storage
// contract (broker/store/contract.go has the rules every method of every
// backend follows: errors classified with record.ErrNotFound, ErrExists
// and ErrConflict; atomic, durable writes; records as values; times to the
// nanosecond; safe for concurrent use). broker/store's bbolt file
// implements them, and broker/store/storetest checks any implementation.

// Ledger is the transfer ledger: one record per file that crossed the
// transfer channel, kept after the file itself is gone.
type Ledger interface {
	// CreateTransfer stores a new transfer under t.ID (see NewID). It
	// fails when t.ID is empty and with record.ErrExists when the ID is
	// taken.
	CreateTransfer(t Transfer) error
	// Transfer returns one transfer, or record.ErrNotFound.
	Transfer(id string) (Transfer, error)
	// UpdateTransfer is a read-modify-write of one transfer that no other
	// write interleaves with: concurrent updates are not lost. fn sees the
	// stored transfer; when fn returns an error nothing is written (not
	// even the fields fn already changed) and that error is returned as
	// is. A missing transfer is record.ErrNotFound and fn is not called.
	// The ID stays what it was whatever fn does. fn must not call the
	// backend and should only compute from its argument: a backend that
	// retries on contention may call it again with the freshly read
	// transfer. It returns the transfer as stored.
	UpdateTransfer(id string, fn func(*Transfer) error) (Transfer, error)
	// ListTransfers returns the transfers for which match is true (all when
	// match is nil), newest first by Created; ties are unspecified. None is
	// an empty, non-nil list. match must not call the backend.
	ListTransfers(match func(*Transfer) bool) ([]Transfer, error)
}

// Destinations holds the departmental destinations admins registered.
type Destinations interface {
	// PutDestination adds d under d.Name or replaces the destination of
	// that name.
	PutDestination(d Destination) error
	// DeleteDestination removes the named destination, or returns
	// record.ErrNotFound.
	DeleteDestination(name string) error
	// Destinations returns every destination sorted by name (byte order).
	// None is an empty, non-nil list.
	Destinations() ([]Destination, error)
}

// Settings is the part of the admin settings table the transfer channel
// uses: it keeps the kill switch (Suspension) across restarts.
type Settings interface {
	// Setting returns the value stored under key and whether it exists. A
	// missing key is ("", false, nil), not an error.
	Setting(key string) (value string, ok bool, err error)
	// SetSetting stores value under key, replacing any earlier value.
	SetSetting(key, value string) error
}

// Store is the durable state a Manager keeps.
type Store interface {
	Ledger
	Destinations
	Settings
}
