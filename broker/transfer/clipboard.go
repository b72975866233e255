package transfer

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Clipboard directions, as the audit trail names them.
const (
	ClipboardToTerminal = audit.DirectionCopy  // copy in the remote page
	ClipboardToRemote   = audit.DirectionPaste // paste from the terminal
)

// Clipboard decides whether text may cross the clipboard in direction and
// records the decision by length and SHA-256, never the text (AUDIT-4). An
// allowed crossing is durable in the audit trail before it returns true;
// otherwise reason says why not, for the clinician.
func (m *Manager) Clipboard(ctx context.Context, o Owner, direction, text string) (ok bool, reason string) {
	dir := policy.DirClipboardToTerminal
	if direction == ClipboardToRemote {
		dir = policy.DirClipboardToRemote
	}
	dec := m.cfg.Policy.Transfers(o.Profile).DecideText(dir, utf8.RuneCountInString(text))
	ev := audit.ClipboardText(m.cfg.Now(), o.actor(), direction, text, "", "")
	if s := m.Suspended(); s.On {
		dec = policy.Decision{Action: policy.ActionOff, Reason: "all file transfers are suspended by an administrator"}
	}
	if dec.Action != policy.ActionAllow {
		reason = dec.Reason
		if reason == "" {
			reason = "the clipboard is closed in this direction"
		}
		ev.Outcome, ev.Reason = "refused", reason
		m.cfg.Audit.Record(ev)
		return false, reason
	}
	ev.Outcome = "allowed"
	if _, err := m.cfg.Audit.Commit(ctx, ev); err != nil {
		m.log.Error("transfer: the audit trail did not take a clipboard crossing; refused", "err", err)
		return false, "the audit trail is unavailable"
	}
	return true, ""
}

// Print decides whether the clinician may print the page, and records the
// request. The PDF itself then goes through the download checks.
func (m *Manager) Print(ctx context.Context, o Owner, pageURL string) error {
	tp := m.cfg.Policy.Transfers(o.Profile)
	ev := audit.Print(m.cfg.Now(), o.actor(), pageURL, "", "")
	if tp.Print.Action == policy.ActionOff || m.Suspended().On {
		ev.Outcome, ev.Reason = "refused", "printing is not allowed for your terminal"
		if m.Suspended().On {
			ev.Reason = "all file transfers are suspended by an administrator"
		}
		m.cfg.Audit.Record(ev)
		return fmt.Errorf("%w: %s", ErrForbidden, ev.Reason)
	}
	ev.Outcome = "requested"
	m.cfg.Audit.Record(ev)
	return nil
}
