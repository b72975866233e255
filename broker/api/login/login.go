// Package login holds the HTTP handlers of signing in and out: the login
// banner, login, the first administrator's set-up, logout, the session and
// the usage pledge. The rules are in broker/auth (the Service and its
// Notices); the handlers decode, call one of them and encode.
package login

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

// Login outcomes, as Handlers.LoginOutcome is told them.
const (
	OutcomeSuccess        = "success"
	OutcomeLocked         = "locked"
	OutcomeRateLimited    = "rate_limited"
	OutcomeBadCredentials = "bad_credentials"
)

// pledgeRequiredMsg is the refusal of a login that has not accepted the
// pledge in force.
const pledgeRequiredMsg = "accept the usage pledge first: GET /api/session shows it, POST /api/pledge accepts it"

// Accounts is what the handlers need of the accounts (*auth.Service).
type Accounts interface {
	Login(ctx context.Context, username, password, remoteAddr string) (auth.Principal, auth.Token, error)
	Logout(p auth.Principal) error
	CompleteSetup(token, username, password string) error
}

// Notices is what the handlers need of the banner and the pledge
// (*auth.Notices).
type Notices interface {
	Banner() string
	Status(user string) (auth.PledgeStatus, error)
	Accept(user, shownVersion string) (string, error)
}

// Sessions ends a user's browsing session (*session.Manager).
type Sessions interface {
	End(user string, reason session.Reason) bool
}

// Handlers serve the login API. Every field but LoginOutcome is required.
type Handlers struct {
	Accounts Accounts
	Notices  Notices
	Sessions Sessions
	Guard    *api.Guard
	Log      *slog.Logger
	// LoginOutcome, if set, is told the outcome of every login attempt
	// that got an answer (Outcome...), for the metrics.
	LoginOutcome func(outcome string)
}

// Register adds the login routes to mux.
func (h *Handlers) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/banner", h.Guard.Handle(h.getBanner))
	mux.Handle("POST /api/login", h.Guard.Handle(h.postLogin))
	mux.Handle("POST /api/setup", h.Guard.Handle(h.postSetup))
	mux.Handle("POST /api/logout", h.Guard.LoggedIn(h.postLogout))
	mux.Handle("GET /api/session", h.Guard.LoggedIn(h.getSession))
	mux.Handle("POST /api/pledge", h.Guard.LoggedIn(h.postPledge))
}

// PledgeRule is the pledge rule (*auth.Notices).
type PledgeRule interface {
	Require(p auth.Principal) error
}

// RequirePledge returns the Guard's Pledge check for rule: the refusal of
// a principal without the pledge in force is a 403 that tells the client
// to show the pledge; any other error (the store cannot be read) is
// returned as is, so the check fails closed.
func RequirePledge(rule PledgeRule) func(p auth.Principal) error {
	return func(p auth.Principal) error {
		err := rule.Require(p)
		if errors.Is(err, auth.ErrPledgeRequired) {
			return &api.Error{Status: http.StatusForbidden, PledgeRequired: true, Msg: pledgeRequiredMsg}
		}
		return err
	}
}

func (h *Handlers) outcome(o string) {
	if h.LoginOutcome != nil {
		h.LoginOutcome(o)
	}
}

func (h *Handlers) getBanner(w http.ResponseWriter, _ *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"banner": h.Notices.Banner()})
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (h *Handlers) postLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	p, tok, err := h.Accounts.Login(r.Context(), req.Username, req.Password, r.RemoteAddr)
	switch {
	case err == nil:
		h.outcome(OutcomeSuccess)
	case errors.Is(err, auth.ErrLocked):
		h.outcome(OutcomeLocked)
		return api.Status(http.StatusTooManyRequests, "this account is locked after repeated failed logins; try again later or ask an administrator")
	case errors.Is(err, auth.ErrRateLimited):
		h.outcome(OutcomeRateLimited)
		return api.Status(http.StatusTooManyRequests, "too many login attempts from this terminal; wait a minute")
	case errors.Is(err, auth.ErrBadCredentials):
		h.outcome(OutcomeBadCredentials)
		return api.Status(http.StatusUnauthorized, "user name or password is wrong")
	default:
		return err
	}
	h.Guard.SetCookie(w, tok)
	api.WriteJSON(w, http.StatusOK, map[string]string{"user": p.User, "role": string(p.Role)})
	return nil
}

// postLogout signs the user out at every terminal: every login of the user
// ends (one logout record each), then their browser, whose other viewer is
// told (docs/protocol.md, How a session ends).
func (h *Handlers) postLogout(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	err := h.Accounts.Logout(p)
	h.Guard.ClearCookie(w)
	h.Sessions.End(p.User, session.ReasonLogout)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (h *Handlers) getSession(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	st, err := h.Notices.Status(p.User)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"user": p.User, "role": p.Role, "pledgeAccepted": st.Accepted,
		"pledge": st.Text, "pledgeVersion": st.Version, "expires": p.TokenExpires,
	})
	return nil
}

// pledgeRequest is the body of POST /api/pledge.
type pledgeRequest struct {
	// Version is the pledgeVersion (GET /api/session) of the text the client
	// showed. Empty accepts the text in force.
	Version string `json:"version"`
}

// postPledge records that the user accepted the pledge they were shown; a
// version that is no longer in force is refused with 409.
func (h *Handlers) postPledge(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req pledgeRequest
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	version, err := h.Notices.Accept(p.User, req.Version)
	switch {
	case errors.Is(err, auth.ErrMalformedPledgeVersion):
		return api.Status(http.StatusBadRequest, "version: must be the pledgeVersion from GET /api/session (64 hex digits)")
	case errors.Is(err, auth.ErrPledgeChanged):
		return api.Status(http.StatusConflict, "the pledge changed since it was shown: read the new text and accept it")
	case err != nil:
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "pledgeVersion": version})
	return nil
}

type setupRequest struct {
	Token    string `json:"token"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (h *Handlers) postSetup(w http.ResponseWriter, r *http.Request) error {
	var req setupRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	err := h.Accounts.CompleteSetup(req.Token, req.Username, req.Password)
	switch {
	case errors.Is(err, auth.ErrSetupTokenInvalid), errors.Is(err, auth.ErrSetupNotNeeded):
		return &api.Error{Status: http.StatusForbidden, Msg: "the set-up token is wrong, expired or already used", Err: err}
	case errors.Is(err, auth.ErrWeakPassword), errors.Is(err, auth.ErrBadUsername):
		return &api.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	case err != nil:
		return err
	}
	user := strings.ToLower(req.Username)
	h.Log.Info("first administrator created", "user", user)
	api.WriteJSON(w, http.StatusCreated, map[string]string{"user": user, "role": string(auth.Admin)})
	return nil
}
