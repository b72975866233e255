package broker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/broker/transfer/inspect"
)

// transferRoutes adds the transfer channel's API (docs/transfer.md).
func (s *Server) transferRoutes(mux *http.ServeMux) {
	// The clinician's own transfers.
	mux.Handle("GET /api/transfers", s.guard.Authed(s.myTransfers))
	mux.Handle("GET /api/transfers/{id}/file", s.guard.Authed(s.saveTransfer))
	mux.Handle("POST /api/transfers/{id}/reason", s.guard.Authed(s.justifyTransfer))
	mux.Handle("POST /api/transfers/{id}/send", s.guard.Authed(s.sendTransfer))
	mux.Handle("GET /api/destinations", s.guard.Authed(s.listDestinations))
	mux.Handle("POST /api/uploads/{chooser}", s.guard.Authed(s.postUpload))
	mux.Handle("POST /api/uploads/{chooser}/answer", s.guard.Authed(s.answerChooser))
	// Approvers (and only approvers: XFER-5 keeps the roles apart).
	mux.Handle("GET /api/approvals/transfers", s.guard.Roles(s.heldTransfers, auth.Approver))
	mux.Handle("POST /api/approvals/transfers/{id}/approve", s.guard.Roles(s.decideTransfer(true), auth.Approver))
	mux.Handle("POST /api/approvals/transfers/{id}/reject", s.guard.Roles(s.decideTransfer(false), auth.Approver))
	// Admins register departmental destinations.
	mux.Handle("GET /api/admin/destinations", s.guard.Role(auth.Admin, s.listDestinations))
	mux.Handle("POST /api/admin/destinations", s.guard.Role(auth.Admin, s.addDestination))
	mux.Handle("DELETE /api/admin/destinations/{name}", s.guard.Role(auth.Admin, s.removeDestination))
	// The transfer kill switch (IR-1).
	mux.Handle("GET /api/admin/transfers/suspend", s.guard.Role(auth.Admin, s.getSuspension))
	mux.Handle("PUT /api/admin/transfers/suspend", s.guard.Role(auth.Admin, s.putSuspension))
}

// person is the transfer view of an API caller.
func person(r *http.Request, p auth.Principal) transfer.Person {
	return transfer.Person{User: p.User, Role: string(p.Role), Terminal: api.Terminal(r)}
}

// transferError maps the transfer package's errors to HTTP.
func transferError(err error) error {
	var status int
	switch {
	case err == nil:
		return nil
	case errors.Is(err, transfer.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, transfer.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, transfer.ErrState):
		status = http.StatusConflict
	case errors.Is(err, transfer.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, transfer.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	default:
		return err
	}
	return &api.Error{Status: status, Msg: err.Error()}
}

func (s *Server) myTransfers(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := s.xfer.Mine(p.User)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

// saveTransfer streams a released file to its owner's terminal. The body is
// never rendered by the terminal's browser: attachment, nosniff, a generic
// type, and a sandbox CSP in case it is opened anyway.
func (s *Server) saveTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, t, err := s.xfer.Open(r.Context(), person(r, p), r.PathValue("id"))
	if err != nil {
		return transferError(err)
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", inspect.ContentDisposition(t.Name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.FormatInt(t.Size, 10))
	h.Set("X-Shoji-SHA256", t.SHA256)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if _, err := io.Copy(w, f); err != nil {
			s.log.Warn("transfer: delivery to the terminal broke off", "transfer", t.ID, "user", p.User, "err", err)
		}
	}
	return nil
}

func (s *Server) justifyTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, err := s.xfer.Justify(person(r, p), r.PathValue("id"), req.Reason)
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) sendTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Destination string `json:"destination"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, err := s.xfer.Send(r.Context(), person(r, p), r.PathValue("id"), req.Destination)
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"destination": req.Destination, "file": name})
	return nil
}

func (s *Server) listDestinations(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := s.xfer.Destinations()
	if err != nil {
		return err
	}
	if p.Role != auth.Admin {
		// Clinicians see names and descriptions, not the broker's paths.
		for i := range list {
			list[i].Dir, list[i].AddedBy = "", ""
		}
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) addDestination(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req store.Destination
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	d, err := s.xfer.AddDestination(r.Context(), person(r, p), store.Destination{Name: req.Name, Description: req.Description, Dir: req.Dir})
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusCreated, d)
	return nil
}

func (s *Server) removeDestination(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := s.xfer.RemoveDestination(r.Context(), person(r, p), r.PathValue("name")); err != nil {
		return transferError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postUpload takes one file for a page's file chooser. The body is the
// file's bytes; the X-Shoji-Filename header carries its name,
// percent-encoded UTF-8.
func (s *Server) postUpload(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name, err := url.PathUnescape(r.Header.Get("X-Shoji-Filename"))
	if err != nil || name == "" {
		return api.Status(http.StatusBadRequest, "X-Shoji-Filename: the file's name, percent-encoded, is required")
	}
	t, err := s.xfer.Upload(r.Context(), person(r, p), r.PathValue("chooser"), name, r.ContentLength, r.Body)
	if err != nil {
		if t.ID != "" {
			// The refusal is a ledger entry too: say why, with its record.
			status := http.StatusForbidden
			if errors.Is(err, transfer.ErrTooLarge) {
				status = http.StatusRequestEntityTooLarge
			} else if errors.Is(err, transfer.ErrInvalid) {
				status = http.StatusBadRequest
			}
			api.WriteJSON(w, status, map[string]any{"error": t.Reason, "transfer": t})
			return nil
		}
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) answerChooser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Transfers []string `json:"transfers"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.xfer.Answer(r.Context(), person(r, p), r.PathValue("chooser"), req.Transfers); err != nil {
		return transferError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) heldTransfers(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var list []store.Transfer
	var err error
	switch state := r.URL.Query().Get("state"); state {
	case "", store.TransferHeld:
		list, err = s.xfer.Held()
	case "decided":
		list, err = s.xfer.List(func(t *store.Transfer) bool { return t.Approver != "" })
	default:
		return api.Status(http.StatusBadRequest, fmt.Sprintf("state %q: want held or decided", state))
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) decideTransfer(approve bool) func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		var req struct {
			Comment string `json:"comment"`
		}
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
		t, err := s.xfer.Decide(r.Context(), person(r, p), r.PathValue("id"), approve, req.Comment)
		if err != nil {
			return transferError(err)
		}
		api.WriteJSON(w, http.StatusOK, t)
		return nil
	}
}

func (s *Server) getSuspension(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	api.WriteJSON(w, http.StatusOK, s.xfer.Suspended())
	return nil
}

// putSuspension turns the transfer kill switch on ({"on": true, "reason"})
// or off ({"on": false}).
func (s *Server) putSuspension(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		On     bool   `json:"on"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	sus, err := s.xfer.Suspend(r.Context(), person(r, p), req.On, req.Reason)
	if err != nil {
		return transferError(err)
	}
	s.log.Warn("transfer kill switch", "event", "kill_switch", "by", p.User, "on", sus.On, "reason", sus.Reason)
	api.WriteJSON(w, http.StatusOK, sus)
	return nil
}
