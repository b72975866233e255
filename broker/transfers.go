package broker

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/shoji-rbi/shoji/broker/protocol"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// Transfers answers the transfer channel's policy questions with the
// current site policy.
func (sp *sitePolicy) Transfers(profile string) policy.Transfers {
	return sp.Current().Transfers(profile)
}

// UploadDestination says whether the current policy allows uploads to
// rawURL for profile.
func (sp *sitePolicy) UploadDestination(profile, rawURL string) policy.Decision {
	return sp.Current().UploadDestination(profile, rawURL)
}

// owner is the transfer view of a session.
func owner(info session.Info) transfer.Owner {
	o := transfer.Owner{User: info.User, Role: info.Role, Session: info.ID, Profile: info.Profile}
	if info.Terminal.IsValid() {
		o.Terminal = info.Terminal.String()
	}
	return o
}

// sessionTransfers connects sessions to the transfer channel: it gives
// browsers their quarantine and takes their downloads and file choosers
// (session.Transfers), and decides copy, paste and print for the viewer
// (stream.Transfers).
type sessionTransfers struct{ s *Server }

func (st sessionTransfers) Quarantine(info session.Info) (string, int64, error) {
	return st.s.xfer.Quarantine(owner(info))
}

// Release removes the quarantine of a pooled browser closed unclaimed.
func (st sessionTransfers) Release(info session.Info) { st.s.xfer.RemoveSessionDir(info.ID) }

func (st sessionTransfers) Download(s *session.Session, d isolation.Download) {
	st.s.xfer.Browse(owner(s.Info()), d, func(ctx context.Context, id string) error {
		b, err := s.Browser()
		if err != nil {
			return err
		}
		return b.CancelDownload(ctx, id)
	})
}

func (st sessionTransfers) FileChooser(s *session.Session, c isolation.FileChooser) {
	answer := func(ctx context.Context, paths []string) error {
		b, err := s.Browser()
		if err != nil {
			return err
		}
		return b.SetFiles(ctx, c.ID, paths)
	}
	view := st.s.xfer.ChooserOpened(owner(s.Info()), c, answer)
	s.Notify(protocol.FileChooser{Chooser: view})
}

func (st sessionTransfers) Drop(ctx context.Context, s *session.Session, b isolation.Browser, x, y float64) error {
	pageURL := b.State().URL
	answer := func(ctx context.Context, paths []string) error {
		if len(paths) == 0 {
			return nil // the clinician gave up the drop
		}
		br, err := s.Browser()
		if err != nil {
			return err
		}
		return br.DropFiles(ctx, pageURL, x, y, paths)
	}
	view := st.s.xfer.DropOpened(owner(s.Info()), pageURL, answer)
	s.Notify(protocol.FileChooser{Chooser: view})
	return nil
}

func (st sessionTransfers) Copy(ctx context.Context, s *session.Session, b isolation.Browser) (string, error) {
	text, err := b.Copy(ctx)
	if err != nil {
		return "", &isolation.UserError{Message: "nothing could be copied from the page", Err: err}
	}
	if text == "" {
		return "", nil
	}
	if ok, reason := st.s.xfer.Clipboard(ctx, owner(s.Info()), transfer.ClipboardToTerminal, text); !ok {
		return "", &isolation.UserError{Message: "copy refused: " + reason}
	}
	return text, nil
}

func (st sessionTransfers) Paste(ctx context.Context, s *session.Session, b isolation.Browser, text string) error {
	if text == "" {
		return nil
	}
	if ok, reason := st.s.xfer.Clipboard(ctx, owner(s.Info()), transfer.ClipboardToRemote, text); !ok {
		return &isolation.UserError{Message: "paste refused: " + reason}
	}
	return b.InsertText(ctx, text)
}

func (st sessionTransfers) Print(ctx context.Context, s *session.Session, b isolation.Browser) error {
	if err := st.s.xfer.Print(ctx, owner(s.Info()), b.State().URL); err != nil {
		if errors.Is(err, transfer.ErrForbidden) {
			return &isolation.UserError{Message: "print refused: printing is not allowed for your terminal", Err: err}
		}
		return err
	}
	// A PDF of a long page takes a while; the viewer's call timeout is for
	// input.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := b.Print(pctx); err != nil {
		return &isolation.UserError{Message: "the page could not be printed", Err: err}
	}
	return nil
}

// notifyTransfer tells the owner's viewer that a transfer changed. A user
// without a session, or a broker whose session manager is not up yet or
// any more, is told nothing.
func (s *Server) notifyTransfer(user string, t transfer.Transfer) {
	if s.sess == nil {
		return
	}
	if sess, ok := s.sess.Get(user); ok {
		sess.Notify(protocol.Transfer{Transfer: t})
	}
}

// protectedDirs are the directories no departmental destination may be
// in, equal to or above (transfer.Config.Protected): the data directory
// and the profile root, the configuration file's directory, and the
// directories of the TLS certificate and key.
func (c Config) protectedDirs() []string {
	dirs := []string{c.Data, filepath.Join(c.Data, "profiles")}
	for _, f := range []string{c.ConfigFile, c.TLSCert, c.TLSKey} {
		if f != "" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	return dirs
}
