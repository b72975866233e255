package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// settingSuspended is the store setting that holds the transfer kill
// switch, so that it survives a restart.
const settingSuspended = "transfers_suspended"

// Suspension is the kill switch of all transfers (IR-1): while it is on,
// nothing crosses. Finished downloads are held instead of released, held
// files cannot be approved, released files are not delivered, and uploads,
// clipboard and print are refused.
type Suspension struct {
	On     bool      `json:"on"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

func (m *Manager) loadSuspension() {
	v, ok, err := m.cfg.Store.Setting(settingSuspended)
	if err != nil || !ok {
		return
	}
	var s Suspension
	if json.Unmarshal([]byte(v), &s) == nil {
		m.suspended.Store(&s)
	}
}

// Suspended returns the transfer kill switch.
func (m *Manager) Suspended() Suspension {
	if s := m.suspended.Load(); s != nil {
		return *s
	}
	return Suspension{}
}

// suspendedErr is the refusal while transfers are suspended, or nil.
func (m *Manager) suspendedErr() error {
	if s := m.Suspended(); s.On {
		return fmt.Errorf("%w: all file transfers are suspended by an administrator (%s)", ErrForbidden, s.Reason)
	}
	return nil
}

// Suspend turns the transfer kill switch on or off. Turning it on needs a
// reason.
func (m *Manager) Suspend(ctx context.Context, p Person, on bool, reason string) (Suspension, error) {
	reason, err := cleanText("reason", reason, maxComment)
	if err != nil {
		return Suspension{}, err
	}
	if on && reason == "" {
		return Suspension{}, fmt.Errorf("%w: say why transfers are suspended", ErrInvalid)
	}
	s := Suspension{On: on, By: p.User, Reason: reason, At: m.cfg.Now().UTC()}
	what := "suspend_transfers"
	if !on {
		what = "resume_transfers"
	}
	if _, err := m.cfg.Audit.Commit(ctx, audit.KillSwitch(m.cfg.Now(), p.actor(), what, "all transfers", reason)); err != nil {
		return s, fmt.Errorf("the audit trail is unavailable, nothing changed: %w", err)
	}
	b, _ := json.Marshal(s)
	if err := m.cfg.Store.SetSetting(settingSuspended, string(b)); err != nil {
		return s, err
	}
	m.suspended.Store(&s)
	return s, nil
}
