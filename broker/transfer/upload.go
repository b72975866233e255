package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/transfer/inspect"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// maxChoosers is how many unanswered file choosers a session keeps; a page
// that opens more loses its oldest.
const maxChoosers = 8

// ErrTooLarge is returned for an upload over the profile's size limit.
var ErrTooLarge = errors.New("file too large")

// chooser is a page's open file chooser, waiting for the clinician.
type chooser struct {
	Chooser
	owner  Owner
	answer func(ctx context.Context, paths []string) error
	files  []string // released upload transfers for it
}

// Chooser is what the viewer is told about a page's file chooser: where an
// upload would go and whether policy allows it.
type Chooser struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Host     string `json:"host"`
	Multiple bool   `json:"multiple"`
	Accept   string `json:"accept,omitempty"`
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason,omitempty"`
	MaxSize  int64  `json:"maxSize,omitempty"`
	// Drop is true for files the clinician dropped on the remote screen:
	// the viewer uploads the dropped files rather than asking for some.
	Drop bool `json:"drop,omitempty"`
}

// DropOpened handles files the clinician dropped on the page at pageURL:
// like a file chooser that takes several files, answered by dropping them
// (isolation.Browser.DropFiles).
func (m *Manager) DropOpened(o Owner, pageURL string, answer func(ctx context.Context, paths []string) error) Chooser {
	id := "drop-" + NewID()
	view := m.ChooserOpened(o, isolation.FileChooser{ID: id, URL: pageURL, Multiple: true}, answer)
	view.Drop = true
	m.mu.Lock()
	if ch := m.choosers[id]; ch != nil {
		ch.Drop = true
	}
	m.mu.Unlock()
	return view
}

// ChooserOpened handles a page's file chooser. When policy allows uploads
// to the page, the chooser waits for the clinician's files; otherwise it is
// canceled at once and the refusal recorded. answer hands files to the
// page (isolation.Browser.SetFiles). The result is what the viewer shows.
func (m *Manager) ChooserOpened(o Owner, c isolation.FileChooser, answer func(ctx context.Context, paths []string) error) Chooser {
	view := Chooser{ID: c.ID, URL: c.URL, Multiple: c.Multiple, Accept: c.Accept}
	if u, err := url.Parse(c.URL); err == nil {
		view.Host = u.Hostname()
	}
	tp := m.cfg.Policy.Transfers(o.Profile)
	dec := m.cfg.Policy.UploadDestination(o.Profile, c.URL)
	switch {
	case m.Suspended().On:
		view.Reason = "all file transfers are suspended by an administrator"
	case tp.Upload.Action == policy.ActionOff:
		view.Reason = "uploads are not allowed for your terminal"
	case dec.Action != policy.ActionAllow:
		view.Reason = dec.Reason
		if view.Reason == "" {
			view.Reason = "uploads to " + view.Host + " are not allowed"
		}
	default:
		view.Allowed, view.MaxSize = true, int64(tp.Upload.MaxSize)
	}
	if !view.Allowed {
		m.cfg.Audit.Record(audit.TransferStep(m.cfg.Now(), o.actor(), audit.Transfer{
			Direction: string(Upload), Destination: c.URL, State: string(StepRefused), Reason: view.Reason,
		}))
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = answer(ctx, nil)
		}()
		return view
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var oldest *chooser
	n := 0
	for _, ch := range m.choosers {
		if ch.owner.Session == o.Session {
			n++
			if oldest == nil {
				oldest = ch
			}
		}
	}
	if n >= maxChoosers && oldest != nil {
		delete(m.choosers, oldest.ID)
	}
	m.choosers[c.ID] = &chooser{Chooser: view, owner: o, answer: answer}
	return view
}

// EndSession forgets the file choosers of a session that ended, cancels
// the downloads its browser was still writing, and removes its download
// directory.
func (m *Manager) EndSession(sessionID string) {
	m.endDownloads(sessionID)
	m.mu.Lock()
	for id, ch := range m.choosers {
		if ch.owner.Session == sessionID {
			delete(m.choosers, id)
		}
	}
	m.mu.Unlock()
	m.RemoveSessionDir(sessionID)
}

// chooserOf returns p's open chooser id.
func (m *Manager) chooserOf(p Person, id string) (*chooser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.choosers[id]
	if ch == nil || ch.owner.User != p.User {
		return nil, fmt.Errorf("%w: the page's file chooser is gone (it navigated or closed); choose the file again on the page", ErrNotFound)
	}
	return ch, nil
}

// Upload checks a file the clinician sends for the page's chooser id:
// destination, size, type, scan. A file that passes is kept in the
// quarantine, ready for Answer; one that does not is deleted and the
// returned error says why. size is the announced length, or -1.
func (m *Manager) Upload(ctx context.Context, p Person, chooserID, name string, size int64, body io.Reader) (Transfer, error) {
	if err := m.suspendedErr(); err != nil {
		return Transfer{}, err
	}
	ch, err := m.chooserOf(p, chooserID)
	if err != nil {
		return Transfer{}, err
	}
	o := ch.owner
	tp := m.cfg.Policy.Transfers(o.Profile)
	limit := int64(tp.Upload.MaxSize)
	now := m.cfg.Now().UTC()
	t := Transfer{
		ID:          NewID(),
		Direction:   Upload,
		User:        o.User,
		Role:        o.Role,
		Terminal:    p.Terminal,
		Session:     o.Session,
		Profile:     o.Profile,
		Name:        inspect.DisplayName(name),
		PageName:    name,
		Destination: ch.URL,
		Size:        max(size, 0),
		State:       Receiving,
		Created:     now,
		Updated:     now,
	}
	// As for a download, the entry comes before its first step; an entry
	// left in receiving is canceled by Run or Recover.
	m.claim(t.ID)
	defer m.release(t.ID)
	if err := m.cfg.Store.CreateTransfer(t); err != nil {
		return t, err
	}
	if err := m.commit(ctx, t, p.actor(), StepStarted); err != nil {
		m.log.Error("transfer: the audit trail did not take the start of an upload; refused", "transfer", t.ID, "err", err)
		return t, fmt.Errorf("the audit trail is unavailable, nothing was uploaded: %w", err)
	}
	refuse := func(reason string, cause error) (Transfer, error) {
		saved, err := m.finish(ctx, t.ID, Rejected, reason, func(s *Transfer) {
			if t.SHA256 != "" {
				s.SHA256, s.Size, s.MIME, s.Class, s.Scan, s.Rule = t.SHA256, t.Size, t.MIME, t.Class, t.Scan, t.Rule
			}
		})
		if err != nil {
			return saved, fmt.Errorf("%w: %s (and the audit trail did not take the refusal: %v)", cause, reason, err)
		}
		return saved, fmt.Errorf("%w: %s", cause, reason)
	}
	if dec := m.cfg.Policy.UploadDestination(o.Profile, ch.URL); tp.Upload.Action == policy.ActionOff || dec.Action != policy.ActionAllow {
		reason := dec.Reason
		if tp.Upload.Action == policy.ActionOff || reason == "" {
			reason = "uploads to " + ch.Host + " are not allowed"
		}
		return refuse(reason, ErrForbidden)
	}
	if size > limit {
		return refuse(fmt.Sprintf("the file is %s, over the upload limit of %s", human(size), human(limit)), ErrTooLarge)
	}

	dir := filepath.Join(m.cfg.Dir, "uploads", t.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return refuse("the file could not be stored", err)
	}
	path := filepath.Join(dir, t.Name)
	n, sum, err := writeLimited(path, body, limit)
	switch {
	case errors.Is(err, ErrTooLarge):
		return refuse(fmt.Sprintf("the file is over the upload limit of %s", human(limit)), ErrTooLarge)
	case err != nil:
		return refuse("the upload did not complete", fmt.Errorf("%w: %v", ErrInvalid, err))
	case size >= 0 && n != size:
		return refuse("the upload did not complete", ErrInvalid)
	}
	info, err := inspect.Inspect(path, name)
	if err != nil {
		return refuse("the file could not be inspected", err)
	}
	dec := tp.DecideFile(policy.DirUpload, info.Class, info.MIME, n)
	t.SHA256, t.Size, t.MIME, t.Class, t.Rule = sum, n, info.MIME, info.Class, dec.Rule
	if dec.Action != policy.ActionAllow {
		return refuse(dec.Reason, ErrForbidden)
	}
	if info.Encrypted || info.Macros {
		return refuse("password-protected files and documents with macros cannot be uploaded", ErrForbidden)
	}
	verdict, infected, scanned := m.scan(ctx, path)
	t.Scan = verdict
	switch {
	case infected:
		return refuse("malware was found: "+strings.TrimPrefix(verdict, "infected: "), ErrForbidden)
	case !scanned:
		return refuse("the file could not be scanned for malware, so it was not uploaded", ErrForbidden)
	}
	saved, err := m.finish(ctx, t.ID, Released, "", func(s *Transfer) {
		s.SHA256, s.Size, s.MIME, s.Class, s.Scan, s.Rule, s.Inspection = t.SHA256, t.Size, t.MIME, t.Class, t.Scan, t.Rule, info.Detail
	})
	if err != nil {
		return saved, fmt.Errorf("the audit trail is unavailable, nothing was uploaded: %w", err)
	}
	m.mu.Lock()
	ch.files = append(ch.files, saved.ID)
	m.mu.Unlock()
	return saved, nil
}

// Answer hands the clinician's checked uploads to the page's chooser; no
// transfers cancels it. The chooser is done afterwards.
func (m *Manager) Answer(ctx context.Context, p Person, chooserID string, transferIDs []string) error {
	ch, err := m.chooserOf(p, chooserID)
	if err != nil {
		return err
	}
	if len(transferIDs) > 1 && !ch.Multiple {
		return fmt.Errorf("%w: the page accepts one file", ErrInvalid)
	}
	var paths []string
	var handed []Transfer
	for _, id := range transferIDs {
		m.mu.Lock()
		ok := false
		for _, f := range ch.files {
			ok = ok || f == id
		}
		m.mu.Unlock()
		t, err := m.cfg.Store.Transfer(id)
		if err != nil || !ok || t.State != Released {
			return fmt.Errorf("%w: file %q was not uploaded for this page", ErrInvalid, id)
		}
		paths = append(paths, filepath.Join(m.cfg.Dir, "uploads", t.ID, t.Name))
		handed = append(handed, t)
	}
	m.mu.Lock()
	delete(m.choosers, chooserID)
	m.mu.Unlock()
	if err := ch.answer(ctx, paths); err != nil {
		return fmt.Errorf("%w: the page's file chooser is gone (it navigated or closed); choose the file again on the page", ErrNotFound)
	}
	for _, t := range handed {
		m.record(t, p.actor(), StepHanded)
	}
	return nil
}

// writeLimited writes r to a new file at path, up to limit bytes, and
// returns its size and SHA-256. More than limit bytes is ErrTooLarge and
// leaves no file.
func writeLimited(path string, r io.Reader, limit int64) (int64, string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// human formats a byte count for people.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
