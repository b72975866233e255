// Package transfers is the HTTP API of the transfer channel
// (docs/transfer.md): a clinician's own transfers, uploads for a page's
// file chooser, departmental destinations, the approvers' queue and
// decisions, and the admins' kill switch. The handlers decode, call one
// method of the transfer channel, and encode; the rules are in
// broker/transfer.
package transfers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/broker/transfer/inspect"
)

// Channel is what the handlers ask of the transfer channel;
// *transfer.Manager implements it.
type Channel interface {
	Mine(user string) ([]transfer.Transfer, error)
	Open(ctx context.Context, p transfer.Person, id string) (*os.File, transfer.Transfer, error)
	Justify(p transfer.Person, id, reason string) (transfer.Transfer, error)
	Send(ctx context.Context, p transfer.Person, id, destination string) (string, error)
	Destinations() ([]transfer.Destination, error)
	AddDestination(ctx context.Context, p transfer.Person, d transfer.Destination) (transfer.Destination, error)
	RemoveDestination(ctx context.Context, p transfer.Person, name string) error
	Upload(ctx context.Context, p transfer.Person, chooser, name string, size int64, body io.Reader) (transfer.Transfer, error)
	Answer(ctx context.Context, p transfer.Person, chooser string, transfers []string) error
	Held() ([]transfer.Transfer, error)
	Decided() ([]transfer.Transfer, error)
	Decide(ctx context.Context, p transfer.Person, id string, approve bool, comment string) (transfer.Transfer, error)
	Suspended() transfer.Suspension
	Suspend(ctx context.Context, p transfer.Person, on bool, reason string) (transfer.Suspension, error)
}

var _ Channel = (*transfer.Manager)(nil)

// Handlers serves the transfer channel's API.
type Handlers struct {
	// Transfers is the transfer channel. Required.
	Transfers Channel
	// Guard checks the caller's login and roles. Required.
	Guard *api.Guard
	// Log receives what the caller is not shown: a delivery that broke
	// off, the kill switch turned. Nil means slog.Default().
	Log *slog.Logger
}

// Register adds the transfer channel's routes to mux.
func (h *Handlers) Register(mux *http.ServeMux) {
	g := h.Guard
	// The clinician's own transfers.
	mux.Handle("GET /api/transfers", g.Authed(h.myTransfers))
	mux.Handle("GET /api/transfers/{id}/file", g.Authed(h.saveTransfer))
	mux.Handle("POST /api/transfers/{id}/reason", g.Authed(h.justifyTransfer))
	mux.Handle("POST /api/transfers/{id}/send", g.Authed(h.sendTransfer))
	mux.Handle("GET /api/destinations", g.Authed(h.listDestinations))
	mux.Handle("POST /api/uploads/{chooser}", g.Authed(h.postUpload))
	mux.Handle("POST /api/uploads/{chooser}/answer", g.Authed(h.answerChooser))
	// Approvers (and only approvers: XFER-5 keeps the roles apart).
	mux.Handle("GET /api/approvals/transfers", g.Roles(h.heldTransfers, auth.Approver))
	mux.Handle("POST /api/approvals/transfers/{id}/approve", g.Roles(h.decideTransfer(true), auth.Approver))
	mux.Handle("POST /api/approvals/transfers/{id}/reject", g.Roles(h.decideTransfer(false), auth.Approver))
	// Admins register departmental destinations.
	mux.Handle("GET /api/admin/destinations", g.Role(auth.Admin, h.listDestinations))
	mux.Handle("POST /api/admin/destinations", g.Role(auth.Admin, h.addDestination))
	mux.Handle("DELETE /api/admin/destinations/{name}", g.Role(auth.Admin, h.removeDestination))
	// The transfer kill switch (IR-1).
	mux.Handle("GET /api/admin/transfers/suspend", g.Role(auth.Admin, h.getSuspension))
	mux.Handle("PUT /api/admin/transfers/suspend", g.Role(auth.Admin, h.putSuspension))
}

func (h *Handlers) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// person is the transfer view of an API caller.
func person(r *http.Request, p auth.Principal) transfer.Person {
	return transfer.Person{User: p.User, Role: string(p.Role), Terminal: api.Terminal(r)}
}

// transferError maps the transfer package's errors to HTTP.
func transferError(err error) error {
	return api.Classify(err,
		api.Class{Err: transfer.ErrNotFound, Status: http.StatusNotFound},
		api.Class{Err: transfer.ErrForbidden, Status: http.StatusForbidden},
		api.Class{Err: transfer.ErrState, Status: http.StatusConflict},
		api.Class{Err: transfer.ErrInvalid, Status: http.StatusBadRequest},
		api.Class{Err: transfer.ErrTooLarge, Status: http.StatusRequestEntityTooLarge},
	)
}

func (h *Handlers) myTransfers(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := h.Transfers.Mine(p.User)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

// saveTransfer streams a released file to its owner's terminal. The body is
// never rendered by the terminal's browser: attachment, nosniff, a generic
// type, and a sandbox CSP in case it is opened anyway.
func (h *Handlers) saveTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, t, err := h.Transfers.Open(r.Context(), person(r, p), r.PathValue("id"))
	if err != nil {
		return transferError(err)
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", inspect.ContentDisposition(t.Name))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.FormatInt(t.Size, 10))
	hd.Set("X-Shoji-SHA256", t.SHA256)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if _, err := io.Copy(w, f); err != nil {
			h.log().Warn("transfer: delivery to the terminal broke off", "transfer", t.ID, "user", p.User, "err", err)
		}
	}
	return nil
}

func (h *Handlers) justifyTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, err := h.Transfers.Justify(person(r, p), r.PathValue("id"), req.Reason)
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusOK, t)
	return nil
}

func (h *Handlers) sendTransfer(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Destination string `json:"destination"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, err := h.Transfers.Send(r.Context(), person(r, p), r.PathValue("id"), req.Destination)
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"destination": req.Destination, "file": name})
	return nil
}

func (h *Handlers) listDestinations(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	list, err := h.Transfers.Destinations()
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

func (h *Handlers) addDestination(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req transfer.Destination
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	d, err := h.Transfers.AddDestination(r.Context(), person(r, p), transfer.Destination{Name: req.Name, Description: req.Description, Dir: req.Dir})
	if err != nil {
		return transferError(err)
	}
	api.WriteJSON(w, http.StatusCreated, d)
	return nil
}

func (h *Handlers) removeDestination(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := h.Transfers.RemoveDestination(r.Context(), person(r, p), r.PathValue("name")); err != nil {
		return transferError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// postUpload takes one file for a page's file chooser. The body is the
// file's bytes; the X-Shoji-Filename header carries its name,
// percent-encoded UTF-8.
func (h *Handlers) postUpload(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	name, err := url.PathUnescape(r.Header.Get("X-Shoji-Filename"))
	if err != nil || name == "" {
		return api.Status(http.StatusBadRequest, "X-Shoji-Filename: the file's name, percent-encoded, is required")
	}
	t, err := h.Transfers.Upload(r.Context(), person(r, p), r.PathValue("chooser"), name, r.ContentLength, r.Body)
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

func (h *Handlers) answerChooser(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		Transfers []string `json:"transfers"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := h.Transfers.Answer(r.Context(), person(r, p), r.PathValue("chooser"), req.Transfers); err != nil {
		return transferError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// heldTransfers lists the approvers' queue (?state=held, the default) or
// what approvers decided (?state=decided).
func (h *Handlers) heldTransfers(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var list []transfer.Transfer
	var err error
	switch state := r.URL.Query().Get("state"); state {
	case "", string(transfer.Held):
		list, err = h.Transfers.Held()
	case "decided":
		list, err = h.Transfers.Decided()
	default:
		return api.Status(http.StatusBadRequest, fmt.Sprintf("state %q: want held or decided", state))
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (h *Handlers) decideTransfer(approve bool) api.PrincipalFunc {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		var req struct {
			Comment string `json:"comment"`
		}
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
		t, err := h.Transfers.Decide(r.Context(), person(r, p), r.PathValue("id"), approve, req.Comment)
		if err != nil {
			return transferError(err)
		}
		api.WriteJSON(w, http.StatusOK, t)
		return nil
	}
}

func (h *Handlers) getSuspension(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	api.WriteJSON(w, http.StatusOK, h.Transfers.Suspended())
	return nil
}

// putSuspension turns the transfer kill switch on ({"on": true, "reason"})
// or off ({"on": false}).
func (h *Handlers) putSuspension(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req struct {
		On     bool   `json:"on"`
		Reason string `json:"reason"`
	}
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	sus, err := h.Transfers.Suspend(r.Context(), person(r, p), req.On, req.Reason)
	if err != nil {
		return transferError(err)
	}
	h.log().Warn("transfer kill switch", "event", "kill_switch", "by", p.User, "on", sus.On, "reason", sus.Reason)
	api.WriteJSON(w, http.StatusOK, sus)
	return nil
}
