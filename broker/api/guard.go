package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/shoji-rbi/shoji/broker/auth"
)

// CookieName is the session cookie.
const CookieName = "shoji_session"

// Verifier checks and renews the session cookie's token (*auth.Service).
type Verifier interface {
	Verify(token string) (auth.Principal, error)
	ShouldRenew(p auth.Principal) bool
	Renew(p auth.Principal) (auth.Token, error)
}

// Guard runs a handler only for a request that may call it: a valid session
// (LoggedIn), whose user accepted the usage pledge in force (Authed), with
// the role the handler needs (Role, Roles). It is the one place these rules
// are enforced for the API; the viewer WebSocket uses Principal and Pledge.
type Guard struct {
	Log    *slog.Logger
	Tokens Verifier
	// Pledge returns nil when p's user accepted the usage pledge in force,
	// else an error (an *Error with PledgeRequired set for the refusal).
	Pledge func(p auth.Principal) error
	// Secure marks the cookie Secure (the broker serves TLS).
	Secure bool
	// Now is the clock of the cookie's Max-Age.
	Now func() time.Time
}

// Handle adapts a Func with g's logger (Handle).
func (g *Guard) Handle(h Func) http.Handler { return Handle(g.Log, h) }

// Principal returns the request's verified session, renewing the cookie
// when it is past half its life (w may be nil: no renewal).
func (g *Guard) Principal(w http.ResponseWriter, r *http.Request) (auth.Principal, error) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return auth.Principal{}, Status(http.StatusUnauthorized, "not logged in")
	}
	p, err := g.Tokens.Verify(c.Value)
	if err != nil {
		return auth.Principal{}, &Error{Status: http.StatusUnauthorized, Msg: "session expired or invalid: log in again", Err: err}
	}
	if w != nil && g.Tokens.ShouldRenew(p) {
		if tok, err := g.Tokens.Renew(p); err == nil {
			g.SetCookie(w, tok)
		}
	}
	return p, nil
}

// LoggedIn requires a valid session only. It is for what a login may do
// before accepting the pledge: read its session and the pledge text, accept
// it, log out.
func (g *Guard) LoggedIn(h PrincipalFunc) http.Handler {
	return g.Handle(func(w http.ResponseWriter, r *http.Request) error {
		p, err := g.Principal(w, r)
		if err != nil {
			return err
		}
		return h(w, r, p)
	})
}

// Authed requires a valid session whose user accepted the current usage
// pledge: every authenticated API but the few LoggedIn ones goes through
// it, Role and Roles included.
func (g *Guard) Authed(h PrincipalFunc) http.Handler {
	return g.LoggedIn(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if err := g.Pledge(p); err != nil {
			return err
		}
		return h(w, r, p)
	})
}

// Role requires an Authed session with the given role.
func (g *Guard) Role(want auth.Role, h PrincipalFunc) http.Handler {
	return g.Authed(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if p.Role != want {
			return Status(http.StatusForbidden, fmt.Sprintf("this needs the %s role", want))
		}
		return h(w, r, p)
	})
}

// Roles requires an Authed session with one of the roles.
func (g *Guard) Roles(h PrincipalFunc, want ...auth.Role) http.Handler {
	return g.Authed(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if !slices.Contains(want, p.Role) {
			return Status(http.StatusForbidden, fmt.Sprintf("this needs one of the roles %v", want))
		}
		return h(w, r, p)
	})
}

// SetCookie sets the session cookie to tok.
func (g *Guard) SetCookie(w http.ResponseWriter, tok auth.Token) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok.Value, Path: "/", Expires: tok.Expires,
		MaxAge: int(tok.Expires.Sub(g.Now()) / time.Second), HttpOnly: true,
		Secure: g.Secure, SameSite: http.SameSiteStrictMode,
	})
}

// ClearCookie removes the session cookie.
func (g *Guard) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: g.Secure, SameSite: http.SameSiteStrictMode})
}
