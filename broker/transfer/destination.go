package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/store"
)

var destinationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// AddDestination registers a departmental destination (XFER-9): a directory
// on the broker host that exists and that the broker can write.
func (m *Manager) AddDestination(ctx context.Context, p Person, d store.Destination) (store.Destination, error) {
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
	fi, err := os.Stat(d.Dir)
	if err != nil || !fi.IsDir() {
		return d, fmt.Errorf("%w: destination %s: %q is not an existing directory", ErrInvalid, d.Name, d.Dir)
	}
	if strings.HasPrefix(d.Dir+string(filepath.Separator), m.cfg.Dir+string(filepath.Separator)) {
		return d, fmt.Errorf("%w: destination %s: the quarantine cannot be a destination", ErrInvalid, d.Name)
	}
	probe, err := os.CreateTemp(d.Dir, ".shoji-probe-*")
	if err != nil {
		return d, fmt.Errorf("%w: destination %s: the broker cannot write to %q: %v", ErrInvalid, d.Name, d.Dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

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
func (m *Manager) Destinations() ([]store.Destination, error) { return m.cfg.Store.Destinations() }

// Send writes a released file of p's into a registered destination,
// atomically (a temporary file in the destination, then a link to a name
// that no other file has) and records it. It returns the file's name there.
func (m *Manager) Send(ctx context.Context, p Person, id, destination string) (string, error) {
	var dest *store.Destination
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

	base := m.cfg.Now().UTC().Format("20060102-150405") + "-" + p.User + "-" + t.Name
	name, err := writeNoClobber(dest.Dir, base, src)
	if err != nil {
		return "", fmt.Errorf("send to %s: %w", dest.Name, err)
	}
	t.Destination = dest.Name + ":" + name
	if err := m.commit(ctx, t, p.actor(), "sent"); err != nil {
		// The record is what makes a delivery legitimate: take it back.
		os.Remove(filepath.Join(dest.Dir, name))
		return "", fmt.Errorf("the audit trail is unavailable, nothing was sent: %w", err)
	}
	saved, err := m.cfg.Store.UpdateTransfer(id, func(s *store.Transfer) error {
		s.Sent = append(s.Sent, store.Sent{Destination: dest.Name, File: name, By: p.User, At: m.cfg.Now().UTC()})
		return nil
	})
	if err == nil {
		m.notify(saved)
	}
	return name, err
}

// openReleased opens p's released download.
func (m *Manager) openReleased(p Person, id string) (*os.File, store.Transfer, error) {
	if err := m.suspendedErr(); err != nil {
		return nil, store.Transfer{}, err
	}
	t, err := m.cfg.Store.Transfer(id)
	if err != nil {
		return nil, t, classify(err)
	}
	switch {
	case t.User != p.User:
		return nil, t, ErrNotFound
	case t.Direction == store.DirectionUpload:
		return nil, t, fmt.Errorf("%w: uploads are not delivered", ErrState)
	case t.State != store.TransferReleased:
		return nil, t, fmt.Errorf("%w: the file is %s, not released", ErrState, t.State)
	case !t.Expired.IsZero():
		return nil, t, fmt.Errorf("%w: the file was deleted after the retention period", ErrState)
	}
	f, err := os.Open(m.filePath(id))
	return f, t, err
}

// writeNoClobber copies r into dir under base, or base with " (2)", " (3)"…
// before its extension when that name is taken. The data goes to a
// temporary file first, is synced, and then appears under its final name in
// one step; an existing file is never replaced.
func writeNoClobber(dir, base string, r io.Reader) (string, error) {
	tmp, err := os.CreateTemp(dir, ".shoji-*.part")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
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
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return "", err
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for i := 1; i <= 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s (%d)%s", stem, i, ext)
		}
		err := os.Link(tmp.Name(), filepath.Join(dir, name))
		if err == nil {
			syncDir(dir)
			return name, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free name for %q after 1000 tries", base)
}

// syncDir makes a new directory entry durable where the system allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
