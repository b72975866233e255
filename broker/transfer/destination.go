package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/shoji-rbi/shoji/broker/audit"
)

var destinationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AddDestination registers a departmental destination (XFER-9): a directory
// on the broker host that exists and that the broker can write, and that
// is, with its symbolic links resolved, neither the quarantine nor any
// directory of Config.Protected or of the system, nor inside or above one.
func (m *Manager) AddDestination(ctx context.Context, p Person, d Destination) (Destination, error) {
	if !destinationName.MatchString(d.Name) {
		return d, fmt.Errorf("%w: destination name %q: use 1–64 letters, digits, '.', '_' or '-'", ErrInvalid, d.Name)
	}
	desc, err := cleanText("description", d.Description, 200)
	if err != nil {
		return d, err
	}
	d.Description = desc
	if !filepath.IsAbs(d.Dir) || filepath.Clean(d.Dir) != d.Dir {
		return d, fmt.Errorf("%w: destination %s: dir %q must be a clean absolute path", ErrInvalid, d.Name, d.Dir)
	}
	root, err := m.openDestination(d.Dir)
	if err != nil {
		return d, fmt.Errorf("%w: destination %s: %v", ErrInvalid, d.Name, err)
	}
	defer root.Close()
	probe, err := createTemp(root, ".shoji-probe-")
	if err != nil {
		return d, fmt.Errorf("%w: destination %s: the broker cannot write to %q: %v", ErrInvalid, d.Name, d.Dir, writeHint(d.Dir, err))
	}
	probe.Close()
	_ = root.Remove(filepath.Base(probe.Name()))

	d.AddedBy, d.Added = p.User, m.cfg.Now().UTC()
	if _, err := m.cfg.Audit.Commit(ctx, audit.PolicyChange(m.cfg.Now(), p.actor(), "destination "+d.Name, "", d.Dir)); err != nil {
		return d, fmt.Errorf("the audit trail is unavailable, nothing changed: %w", err)
	}
	return d, m.cfg.Store.PutDestination(d)
}

// RemoveDestination unregisters a destination.
func (m *Manager) RemoveDestination(ctx context.Context, p Person, name string) error {
	list, err := m.cfg.Store.Destinations()
	if err != nil {
		return err
	}
	for _, d := range list {
		if d.Name == name {
			if _, err := m.cfg.Audit.Commit(ctx, audit.PolicyChange(m.cfg.Now(), p.actor(), "destination "+d.Name, d.Dir, "")); err != nil {
				return fmt.Errorf("the audit trail is unavailable, nothing changed: %w", err)
			}
			return m.cfg.Store.DeleteDestination(name)
		}
	}
	return fmt.Errorf("%w: no destination %q", ErrNotFound, name)
}

// Destinations lists the registered destinations.
func (m *Manager) Destinations() ([]Destination, error) { return m.cfg.Store.Destinations() }

// Send writes a released file of p's into a registered destination,
// atomically (a temporary file in the destination, then a link to a name
// that no other file has) and records it. It returns the file's name there.
func (m *Manager) Send(ctx context.Context, p Person, id, destination string) (string, error) {
	var dest *Destination
	list, err := m.cfg.Store.Destinations()
	if err != nil {
		return "", err
	}
	for i := range list {
		if list[i].Name == destination {
			dest = &list[i]
		}
	}
	if dest == nil {
		return "", fmt.Errorf("%w: no destination %q", ErrInvalid, destination)
	}
	src, t, err := m.openReleased(p, id)
	if err != nil {
		return "", err
	}
	defer src.Close()

	root, err := m.openDestination(dest.Dir)
	if err != nil {
		// The destination was safe when it was registered: someone changed
		// it since (a link into the broker's data, say). The clinician is
		// told it is refused; the path goes to the log and the trail only.
		m.log.Error("transfer: a send to an unsafe destination was refused", "destination", dest.Name, "dir", dest.Dir, "transfer", id, "err", err)
		refused := t
		refused.Destination, refused.Reason = dest.Name, "refused: "+err.Error()
		if err := m.commit(ctx, refused, p.actor(), StepRefused); err != nil {
			m.log.Error("transfer: the audit trail did not take a refused send", "transfer", id, "err", err)
		}
		if errors.Is(err, errUnsafeDestination) {
			return "", fmt.Errorf("%w: the destination %s is not safe to write to; an administrator must check it", ErrForbidden, dest.Name)
		}
		return "", fmt.Errorf("send to %s: the destination cannot be opened: %w", dest.Name, err)
	}
	defer root.Close()
	base := m.cfg.Now().UTC().Format("20060102-150405") + "-" + p.User + "-" + t.Name
	name, err := writeNoClobber(root, base, src)
	if err != nil {
		return "", fmt.Errorf("send to %s: %w", dest.Name, writeHint(dest.Dir, err))
	}
	t.Destination = dest.Name + ":" + name
	if err := m.commit(ctx, t, p.actor(), StepSent); err != nil {
		// The record is what makes a delivery legitimate: take it back.
		_ = root.Remove(name)
		return "", fmt.Errorf("the audit trail is unavailable, nothing was sent: %w", err)
	}
	saved, err := m.cfg.Store.UpdateTransfer(id, func(s *Transfer) error {
		s.Sent = append(s.Sent, Sent{Destination: dest.Name, File: name, By: p.User, At: m.cfg.Now().UTC()})
		return nil
	})
	if err == nil {
		m.notify(saved)
	}
	return name, err
}

// openReleased opens p's released download.
func (m *Manager) openReleased(p Person, id string) (*os.File, Transfer, error) {
	if err := m.suspendedErr(); err != nil {
		return nil, Transfer{}, err
	}
	if !safeID(id) {
		return nil, Transfer{}, ErrNotFound
	}
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		return nil, t, classify(err)
	}
	switch {
	case t.User != p.User:
		return nil, t, ErrNotFound
	case t.Direction == Upload:
		return nil, t, fmt.Errorf("%w: uploads are not delivered", ErrState)
	case t.State != Released:
		return nil, t, fmt.Errorf("%w: the file is %s, not released", ErrState, t.State)
	case !t.Expired.IsZero():
		return nil, t, fmt.Errorf("%w: the file was deleted after the retention period", ErrState)
	}
	f, err := os.Open(m.filePath(id))
	return f, t, err
}

// writeNoClobber copies r into the directory root under base, or base
// with " (2)", " (3)"… before its extension when that name is taken. The
// data goes to a temporary file first, is synced, and then appears under
// its final name in one step; an existing file is never replaced.
func writeNoClobber(root *os.Root, base string, r io.Reader) (string, error) {
	tmp, err := createTemp(root, ".shoji-")
	if err != nil {
		return "", err
	}
	tmpName := filepath.Base(tmp.Name())
	defer root.Remove(tmpName)
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for i := 1; i <= 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		err := root.Link(tmpName, name)
		if err == nil {
			syncDir(root)
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free name for %q after 1000 tries", base)
}

// tempSuffix ends the name of every temporary file the broker makes in a
// destination; Recover removes those a crash left.
const tempSuffix = ".part"

// createTemp creates a new file in root named prefix, random digits and
// tempSuffix, readable by the broker only.
func createTemp(root *os.Root, prefix string) (*os.File, error) {
	for range 100 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		f, err := root.OpenFile(prefix+hex.EncodeToString(b[:])+tempSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, os.ErrExist) {
			return f, err
		}
	}
	return nil, errors.New("no free temporary file name")
}

// syncDir makes a new directory entry durable where the system allows.
func syncDir(root *os.Root) {
	if d, err := root.Open("."); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
