// Package api is the plumbing every HTTP handler of the broker shares: the
// error that separates the message shown to the user from the logged cause,
// strict JSON decoding, the session cookie, and the Guard that authenticates
// a request, checks the usage pledge and the caller's role before a handler
// runs. The handlers themselves live in one package per domain below it
// (broker/api/...); the broker root only mounts them.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
)

// MaxBodyBytes bounds a JSON request body.
const MaxBodyBytes = 64 << 10

// Error is an error with the status and the message shown to the user; Err
// is the logged cause, never shown. PledgeRequired marks the refusal of a
// login whose user has not accepted the current usage pledge.
type Error struct {
	Status         int
	Msg            string
	Err            error
	PledgeRequired bool
}

// ErrorBody is the JSON body of every refused API request.
type ErrorBody struct {
	Error          string `json:"error"`
	PledgeRequired bool   `json:"pledgeRequired,omitempty"`
}

// Body is the JSON body that answers e.
func (e *Error) Body() ErrorBody {
	return ErrorBody{Error: e.Msg, PledgeRequired: e.PledgeRequired}
}

// Refuse answers a refused viewer WebSocket upgrade as the API answers a
// refused request (stream.Refusal).
func (e *Error) Refuse(w http.ResponseWriter) { WriteJSON(w, e.Status, e.Body()) }

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Status returns an error answered with status and msg.
func Status(status int, msg string) error { return &Error{Status: status, Msg: msg} }

// Func is an HTTP handler that returns its error.
type Func func(w http.ResponseWriter, r *http.Request) error

// PrincipalFunc is a handler of an authenticated request.
type PrincipalFunc func(w http.ResponseWriter, r *http.Request, p auth.Principal) error

// Handle adapts a Func: an *Error becomes JSON {"error": msg} with its
// status (its cause logged); anything else is a 500 with the cause logged,
// not shown.
func Handle(log *slog.Logger, h Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *Error
		if !errors.As(err, &he) {
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &Error{Status: http.StatusInternalServerError, Msg: "internal error"}
		} else if he.Err != nil {
			log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", he.Status, "err", he.Err)
		}
		WriteJSON(w, he.Status, he.Body())
	})
}

// WriteJSON answers with v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON body into v strictly: the content type must be
// JSON, the size is bounded by MaxBodyBytes, unknown fields and trailing
// data are refused.
func DecodeJSON(r *http.Request, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return Status(http.StatusUnsupportedMediaType, "request body must be application/json")
	}
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Status(http.StatusRequestEntityTooLarge, "request body too large")
		}
		return Status(http.StatusBadRequest, "bad JSON: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return Status(http.StatusBadRequest, "bad JSON: trailing data after the object")
	}
	return nil
}

// Terminal returns the address of the terminal that sent r, or "" when
// r.RemoteAddr is not an address.
func Terminal(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}

// Actor is the audit trail's view of an API caller.
func Actor(r *http.Request, p auth.Principal) audit.Actor {
	return audit.Actor{User: p.User, Role: string(p.Role), Terminal: Terminal(r)}
}

// Class is one class of domain error and the status that answers it.
type Class struct {
	Err    error
	Status int
}

// Classify answers err with the status of the first class it belongs to
// (errors.Is), showing err's own text, which the domain packages write for
// the user. An error of no class is returned as it is (Handle makes it a
// 500), and nil stays nil.
func Classify(err error, classes ...Class) error {
	if err == nil {
		return nil
	}
	for _, c := range classes {
		if errors.Is(err, c.Err) {
			return Status(c.Status, err.Error())
		}
	}
	return err
}
