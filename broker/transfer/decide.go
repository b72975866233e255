package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/shoji-rbi/shoji/broker/approval"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/crashpoint"
	"github.com/shoji-rbi/shoji/broker/record"
)

// Limits on free text.
const (
	maxJustification = 1000
	maxComment       = 1000
)

// Person is who acts on a transfer through the API.
type Person struct {
	User     string
	Role     string
	Terminal string
}

func (p Person) actor() audit.Actor {
	return audit.Actor{User: p.User, Role: p.Role, Terminal: p.Terminal}
}

// cleanText trims s and checks its length and characters.
func cleanText(what, s string, limit int) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: the %s is not valid UTF-8", ErrInvalid, what)
	}
	if utf8.RuneCountInString(s) > limit {
		return "", fmt.Errorf("%w: the %s is longer than %d characters", ErrInvalid, what, limit)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return "", fmt.Errorf("%w: the %s contains control characters", ErrInvalid, what)
		}
	}
	return s, nil
}

// Justify stores the clinician's reason for needing a held file, which the
// approver sees.
func (m *Manager) Justify(p Person, id, reason string) (Transfer, error) {
	reason, err := cleanText("reason", reason, maxJustification)
	if err != nil {
		return Transfer{}, err
	}
	if reason == "" {
		return Transfer{}, fmt.Errorf("%w: say why you need the file", ErrInvalid)
	}
	ok := func(t *Transfer) error {
		if t.User != p.User {
			return ErrNotFound
		}
		if t.State != Held {
			return fmt.Errorf("%w: the file is %s, not held", ErrState, t.State)
		}
		return nil
	}
	t, err := m.cfg.Store.Transfer(id)
	if err == nil {
		err = ok(&t)
	}
	if err != nil {
		return Transfer{}, classify(err)
	}
	t.Justification, t.Updated = reason, m.cfg.Now().UTC()
	if err := m.commit(context.Background(), t, p.actor(), StepJustified); err != nil {
		return Transfer{}, fmt.Errorf("the audit trail is unavailable, the reason was not stored: %w", err)
	}
	t, err = m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		if err := ok(s); err != nil {
			return err
		}
		s.Justification, s.Updated = t.Justification, t.Updated
		return nil
	})
	if err != nil {
		return t, classify(err)
	}
	m.notify(t)
	return t, nil
}

// Decide is an approver's decision on a held transfer: approve releases the
// file, otherwise it is rejected and deleted. Nobody decides on their own
// transfer (XFER-5). The decision is durable in the audit trail before the
// file is released.
func (m *Manager) Decide(ctx context.Context, p Person, id string, approve bool, comment string) (Transfer, error) {
	comment, err := cleanText("comment", comment, maxComment)
	if err != nil {
		return Transfer{}, err
	}
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		return t, classify(err)
	}
	switch {
	case approval.CheckDecider(t.User, p.User) != nil:
		return t, fmt.Errorf("%w: nobody approves their own transfer", ErrForbidden)
	case t.State != Held:
		return t, fmt.Errorf("%w: the file is %s, not held", ErrState, t.State)
	case !t.Expired.IsZero():
		return t, fmt.Errorf("%w: the file was deleted after the retention period", ErrState)
	}
	t.Approver, t.Comment, t.Decided = p.User, comment, m.cfg.Now().UTC()
	t.Updated = t.Decided
	if approve {
		if err := m.suspendedErr(); err != nil {
			return t, err
		}
		t.State = Released
		t.Reason = "approved by " + p.User
		if err := m.commit(ctx, t, p.actor(), StepApproved); err != nil {
			return t, fmt.Errorf("the audit trail is unavailable, nothing was released: %w", err)
		}
	} else {
		t.State = Rejected
		t.Reason = "rejected by " + p.User
		if comment != "" {
			t.Reason += ": " + comment
		}
		if err := m.commit(ctx, t, p.actor(), StepRejected); err != nil {
			return t, fmt.Errorf("the audit trail is unavailable: %w", err)
		}
	}
	crashpoint.Hit(crashpoint.DecideBeforeLedger)
	saved, err := m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		if s.State != Held {
			return fmt.Errorf("%w: someone else decided first: the file is %s", ErrState, s.State)
		}
		*s = t
		return nil
	})
	if err != nil {
		return saved, classify(err)
	}
	if !approve {
		m.removeFile(saved)
	}
	m.notify(saved)
	return saved, nil
}

// Open opens a released file for its owner to save on the terminal. The
// delivery is durable in the audit trail before the ledger counts it and
// before the file is handed out.
func (m *Manager) Open(ctx context.Context, p Person, id string) (*os.File, Transfer, error) {
	// Someone else's transfer gets the same answer as one that does not
	// exist: an ID reveals nothing (XFER-6).
	f, t, err := m.openReleased(p, id)
	if err != nil {
		return nil, t, err
	}
	if err := m.commit(ctx, t, p.actor(), StepSaved); err != nil {
		f.Close()
		return nil, t, fmt.Errorf("the audit trail is unavailable, nothing was delivered: %w", err)
	}
	t, err = m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		s.Saved++
		return nil
	})
	if err != nil {
		f.Close()
		return nil, t, err
	}
	return f, t, nil
}

// classify maps store errors to the package's.
func classify(err error) error {
	if errors.Is(err, record.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
