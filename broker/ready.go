package broker

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/shoji-rbi/shoji/broker/session"
)

// Readiness scopes of GET /readyz.
const (
	// readyNew (no scope, or scope=new) asks whether the node can take a
	// new session now: what readyExisting asks, admission control (max
	// sessions, memory and CPU headroom, cgroup limits included), and
	// whether a browser can start. Load balancers that pick a node for a
	// new login ask it.
	readyNew = "new"
	// readyExisting asks whether the node can serve the sessions it has:
	// not shutting down, the store open, the audit trail taking records.
	// A full node is ready in this scope, so that its clinicians can
	// reconnect, download and log out. Kubernetes' readinessProbe asks it.
	readyExisting = "existing"
)

// readyz answers GET /readyz[?scope=new|existing]: 200 "ready", 503 with
// the reason, or 400 for a scope it does not know.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	scopes := r.URL.Query()["scope"]
	scope := readyNew
	switch len(scopes) {
	case 0:
	case 1:
		scope = scopes[0]
	default:
		http.Error(w, fmt.Sprintf("readyz: scope is given %d times; give it once", len(scopes)), http.StatusBadRequest)
		return
	}
	var err error
	switch scope {
	case readyNew:
		err = s.readyForNew(r.Context())
	case readyExisting:
		err = s.readyForExisting()
	default:
		http.Error(w, fmt.Sprintf("readyz: unknown scope %q: use /readyz (can take a new session) or /readyz?scope=existing (can serve the sessions it has)", scope), http.StatusBadRequest)
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, err.Error()+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// readyForExisting says whether the node can serve the sessions it has.
func (s *Server) readyForExisting() error {
	if s.sess.ShuttingDown() {
		return session.ErrShuttingDown
	}
	if err := s.store.Check(); err != nil {
		return fmt.Errorf("the store cannot be read: %w", err)
	}
	if err := s.audit.Err(); err != nil {
		return fmt.Errorf("the audit trail does not take records: %w", err)
	}
	return nil
}

// readyForNew says whether the node can take a new session now. A probe
// start of a browser it may wait for ends with ctx: the request's.
func (s *Server) readyForNew(ctx context.Context) error {
	if err := s.readyForExisting(); err != nil {
		return err
	}
	if err := s.sess.Admit(); err != nil {
		return err
	}
	return s.sess.CanStartBrowser(ctx)
}
