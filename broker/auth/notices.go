package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// Settings keys of the login notices.
const (
	// SettingBanner holds the login banner an admin set.
	SettingBanner = "login_banner"
	// SettingPledge holds the usage pledge text an admin set.
	SettingPledge = "pledge"
)

// DefaultPledge is shown at a user's first login until an admin sets one.
const DefaultPledge = "I will use this isolated browser only for my clinical work. " +
	"I will not enter patient names, IDs or other identifiers into Internet sites. " +
	"I understand that navigation, blocked requests and file transfers are recorded."

// MaxNoticeBytes bounds the login banner and the pledge text.
const MaxNoticeBytes = 4000

// Sentinel errors of the login notices. Classify with errors.Is.
var (
	// ErrPledgeRequired is returned by Require for a principal whose user
	// has not accepted the pledge text in force.
	ErrPledgeRequired = errors.New("the usage pledge in force is not accepted")
	// ErrPledgeChanged is returned by Accept for a version of a text that is
	// no longer in force.
	ErrPledgeChanged = errors.New("the pledge changed since it was shown")
	// ErrMalformedPledgeVersion is returned by Accept for a version that is
	// not a PledgeVersion (64 hex digits).
	ErrMalformedPledgeVersion = errors.New("pledge version is not 64 hex digits")
)

// NoticeError is Change's refusal of a banner or pledge text that breaks
// the rules; its text names the field and what is wrong.
type NoticeError struct {
	// Field is "banner" or "pledge".
	Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *NoticeError) Error() string { return e.Field + ": " + e.Problem }

// PledgeVersion is the version of a pledge text: its SHA-256, in hex.
func PledgeVersion(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// IsPledgeVersion reports whether v looks like a PledgeVersion.
func IsPledgeVersion(v string) bool {
	if len(v) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// NoticeTexts are the login banner and the usage pledge text. The JSON
// form is what the audit record of a change shows before and after.
type NoticeTexts struct {
	Banner string `json:"banner"`
	Pledge string `json:"pledge"`
}

// Validate returns a *NoticeError naming the first text that breaks the
// rules: the banner is at most MaxNoticeBytes, the pledge is not blank and
// at most MaxNoticeBytes.
func (t NoticeTexts) Validate() error {
	if len(t.Banner) > MaxNoticeBytes {
		return &NoticeError{Field: "banner", Problem: fmt.Sprintf("at most %d bytes", MaxNoticeBytes)}
	}
	if strings.TrimSpace(t.Pledge) == "" || len(t.Pledge) > MaxNoticeBytes {
		return &NoticeError{Field: "pledge", Problem: fmt.Sprintf("must not be empty, at most %d bytes", MaxNoticeBytes)}
	}
	return nil
}

// PledgeStatus is what a logged-in user is told about the pledge.
type PledgeStatus struct {
	// Text is the pledge text in force and Version its PledgeVersion.
	Text, Version string
	// Accepted is whether the user accepted that version.
	Accepted bool
}

// Viewers is what the pledge rule needs of the running browsing sessions.
type Viewers interface {
	// Users returns the users who have a running session.
	Users() []string
	// AskPledge disconnects the viewers of the user's session and reports
	// whether the user had one; the session and its browser go on, and a
	// viewer's reconnect is refused until the user accepts the pledge in
	// force.
	AskPledge(user string) bool
}

// Notices are the login banner, which every terminal shows before login,
// and the usage pledge, which a user accepts before browsing (NOTICE-1,
// NOTICE-3). The pledge rule lives here and nowhere else: a user's record
// must name the version of the pledge text in force. Its zero value is not
// usable: Settings and Accounts are required.
type Notices struct {
	// Settings stores the texts an admin set. Required.
	Settings Settings
	// Accounts records a user's acceptance. Required.
	Accounts *Service
	// DefaultBanner is the banner while no admin has set one (the config's
	// login_banner).
	DefaultBanner string
	// Audit receives the record of a change, committed before the change
	// is made. Required by Change.
	Audit audit.Sink
	// CommitTimeout bounds the wait for that record (the broker uses the
	// site policy's, sitepolicy.CommitTimeout). Zero means no bound but
	// the caller's context.
	CommitTimeout time.Duration
	// Viewers are asked for the pledge again when its text changes. Nil
	// means there are none.
	Viewers Viewers
	// Now is the clock of the audit records. Nil means time.Now.
	Now func() time.Time
	// Logger receives changes. Nil discards them.
	Logger *slog.Logger
}

// setting returns the stored value of key, or def when there is none or
// the store cannot be read: what is shown, not what is enforced.
func (n *Notices) setting(key, def string) string {
	v, ok, err := n.Settings.Setting(key)
	if err != nil || !ok {
		return def
	}
	return v
}

// Banner returns the login banner in force.
func (n *Notices) Banner() string { return n.setting(SettingBanner, n.DefaultBanner) }

// Texts returns the banner and the pledge text in force, each falling back
// to its default when the store cannot be read.
func (n *Notices) Texts() NoticeTexts {
	return NoticeTexts{Banner: n.Banner(), Pledge: n.setting(SettingPledge, DefaultPledge)}
}

// Pledge returns the pledge text in force and its version. Unlike Texts,
// it fails when the store cannot be read: the pledge check fails closed.
func (n *Notices) Pledge() (text, version string, err error) {
	text, ok, err := n.Settings.Setting(SettingPledge)
	if err != nil {
		return "", "", fmt.Errorf("read the pledge: %w", err)
	}
	if !ok {
		text = DefaultPledge
	}
	return text, PledgeVersion(text), nil
}

// Require is the pledge rule: p's user record must name the version of the
// pledge text in force, else ErrPledgeRequired. An acceptance of an earlier
// text, or one stored before versions were recorded, does not count. When
// the store cannot be read it returns that error: it fails closed.
func (n *Notices) Require(p Principal) error {
	_, version, err := n.Pledge()
	if err != nil {
		return err
	}
	if p.PledgeVersion != version {
		return ErrPledgeRequired
	}
	return nil
}

// Status returns the pledge in force and whether the user accepted it.
func (n *Notices) Status(user string) (PledgeStatus, error) {
	u, err := n.Accounts.User(user)
	if err != nil {
		return PledgeStatus{}, err
	}
	text, version, err := n.Pledge()
	if err != nil {
		return PledgeStatus{}, err
	}
	return PledgeStatus{Text: text, Version: version, Accepted: u.PledgeVersion == version}, nil
}

// Accept records that the user accepted the pledge they were shown and
// returns the version accepted. shown is the version of the text shown
// (Status); empty accepts the text in force. A malformed version is
// ErrMalformedPledgeVersion, one no longer in force ErrPledgeChanged.
func (n *Notices) Accept(user, shown string) (string, error) {
	if shown != "" && !IsPledgeVersion(shown) {
		return "", ErrMalformedPledgeVersion
	}
	_, current, err := n.Pledge()
	if err != nil {
		return "", err
	}
	if shown != "" && shown != current {
		return "", ErrPledgeChanged
	}
	if err := n.Accounts.AcceptPledge(user, current); err != nil {
		return "", err
	}
	return current, nil
}

// Change replaces the banner and the pledge text. It refuses invalid texts
// with a *NoticeError; the audit record of the change (by whom, before,
// after) is durable before the change, and the change fails when it cannot
// be recorded, as for the site policy: the pledge decides who may use the
// browser. Both texts are stored in one write, so a failure never leaves a
// new banner with the old pledge. When the pledge text changed, the viewers
// of every running session whose user has not accepted the new version are
// asked for it again.
func (n *Notices) Change(ctx context.Context, by audit.Actor, next NoticeTexts) error {
	if err := next.Validate(); err != nil {
		return err
	}
	before := n.Texts()
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(next)
	if n.CommitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.CommitTimeout)
		defer cancel()
	}
	if _, err := n.Audit.Commit(ctx, audit.PolicyChange(n.now(), by, "login banner and pledge", string(b), string(a))); err != nil {
		return fmt.Errorf("the audit trail is unavailable, the settings were not changed: %w", err)
	}
	if err := n.Settings.SetSettings(map[string]string{SettingBanner: next.Banner, SettingPledge: next.Pledge}); err != nil {
		return fmt.Errorf("store the banner and the pledge: %w", err)
	}
	n.logger().Info("settings changed", "by", by.User, "banner_before_len", len(before.Banner), "banner_after_len", len(next.Banner),
		"pledge_changed", before.Pledge != next.Pledge)
	if before.Pledge != next.Pledge {
		n.askAgain(PledgeVersion(next.Pledge))
	}
	return nil
}

// askAgain asks the viewers of every running session whose user has not
// accepted version for the pledge again (NOTICE-3).
func (n *Notices) askAgain(version string) {
	if n.Viewers == nil {
		return
	}
	for _, user := range n.Viewers.Users() {
		if u, err := n.Accounts.User(user); err == nil && u.PledgeVersion == version {
			continue
		}
		if n.Viewers.AskPledge(user) {
			n.logger().Info("viewer disconnected: the pledge changed", "user", user)
		}
	}
}

func (n *Notices) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

func (n *Notices) logger() *slog.Logger {
	if n.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Logger
}
