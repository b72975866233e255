package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/api/transfers"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/stream"
	"github.com/shoji-rbi/shoji/web"
)

// Settings keys in the store.
const (
	settingBanner = "login_banner"
	settingPledge = "pledge"
)

// defaultPledge is shown at a user's first login until an admin sets one.
const defaultPledge = "I will use this isolated browser only for my clinical work. " +
	"I will not enter patient names, IDs or other identifiers into Internet sites. " +
	"I understand that navigation, blocked requests and file transfers are recorded."

// routes builds the broker's handler tree.
func (s *Server) routes() http.Handler {
	s.guard = &api.Guard{Log: s.log, Tokens: s.auth, Pledge: s.requirePledge, Secure: s.cfg.TLS(), Now: s.now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsAccess.guard(s.metrics.handler(s.log)))

	mux.Handle("GET /api/banner", s.guard.Handle(s.getBanner))
	mux.Handle("POST /api/login", s.guard.Handle(s.postLogin))
	mux.Handle("POST /api/setup", s.guard.Handle(s.postSetup))
	mux.Handle("POST /api/logout", s.guard.LoggedIn(s.postLogout))
	mux.Handle("GET /api/session", s.guard.LoggedIn(s.getSession))
	mux.Handle("POST /api/pledge", s.guard.LoggedIn(s.postPledge))
	mux.Handle("GET /api/admin/settings", s.guard.Role(auth.Admin, s.getSettings))
	mux.Handle("PUT /api/admin/settings", s.guard.Role(auth.Admin, s.putSettings))
	mux.Handle("GET /api/admin/sessions", s.guard.Role(auth.Admin, s.getSessions))
	mux.Handle("DELETE /api/admin/sessions/{user}", s.guard.Role(auth.Admin, s.deleteSession))
	s.policyRoutes(mux)
	(&transfers.Handlers{Transfers: s.xfer, Guard: s.guard, Log: s.log}).Register(mux)
	s.auditRoutes(mux)
	mux.Handle("/api/", s.guard.Handle(func(http.ResponseWriter, *http.Request) error {
		return api.Status(http.StatusNotFound, "no such API")
	}))

	mux.Handle("GET /api/stream", &stream.Handler{
		Sessions:  s.sess,
		Auth:      streamAuth{s},
		Origin:    s.cfg.Origin(),
		Logger:    s.log,
		Notice:    "Isolated browsing: pages run on a remote server and only their image reaches this terminal. Navigation, blocked requests and file transfers are recorded.",
		Transfers: sessionTransfers{s},
		Metrics: stream.Metrics{
			FramesSent:    func(n int) { s.metrics.framesSent.Add(float64(n)) },
			FramesDropped: func(n int) { s.metrics.framesDropped.Add(float64(n)) },
			BytesSent:     func(n int) { s.metrics.bytesSent.Add(float64(n)) },
			Viewers:       func(d int) { s.metrics.viewers.Add(float64(d)) },
		},
	})
	mux.Handle("/", web.Handler())
	return s.securityHeaders(s.sameOrigin(mux))
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	csp := strings.Join([]string{
		"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' blob: data:",
		"connect-src 'self'", "font-src 'self'", "object-src 'none'", "frame-ancestors 'none'",
		"base-uri 'none'", "form-action 'self'",
	}, "; ")
	tls := s.cfg.TLS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), usb=(), serial=()")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses state-changing requests from another origin (the
// SameSite=Strict cookie is the first defence against CSRF, this the second).
func (s *Server) sameOrigin(next http.Handler) http.Handler {
	origin := s.cfg.Origin()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if o := r.Header.Get("Origin"); o != "" && o != origin {
				api.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "request from another origin refused"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// pledgeVersion is the version of a pledge text: its SHA-256, in hex.
func pledgeVersion(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// currentPledge returns the pledge text in force and its version. Unlike
// setting, it fails when the store cannot be read: the pledge check fails
// closed.
func (s *Server) currentPledge() (text, version string, err error) {
	text, ok, err := s.store.Setting(settingPledge)
	if err != nil {
		return "", "", fmt.Errorf("read the pledge: %w", err)
	}
	if !ok {
		text = defaultPledge
	}
	return text, pledgeVersion(text), nil
}

// requirePledge is the pledge rule (NOTICE-1, NOTICE-3), in one place: p's
// user record must name the version of the pledge text in force. An
// acceptance of an earlier text, or one stored before versions were
// recorded, does not count.
func (s *Server) requirePledge(p auth.Principal) error {
	_, version, err := s.currentPledge()
	if err != nil {
		return err
	}
	if p.PledgeVersion != version {
		return &api.Error{Status: http.StatusForbidden, PledgeRequired: true,
			Msg: "accept the usage pledge first: GET /api/session shows it, POST /api/pledge accepts it"}
	}
	return nil
}

// refuses it, before any browser starts, until the pledge is accepted.
type streamAuth struct{ s *Server }

func (a streamAuth) Authenticate(r *http.Request) (stream.Principal, error) {
	p, err := a.s.guard.Principal(nil, r)
	if err != nil {
		return stream.Principal{}, err
	}
	if err := a.s.requirePledge(p); err != nil {
		return stream.Principal{}, err
	}
	return stream.Principal{User: p.User, Role: string(p.Role)}, nil
}
func (s *Server) setting(key, def string) string {
	v, ok, err := s.store.Setting(key)
	if err != nil || !ok {
		return def
	}
	return v
}

func (s *Server) getBanner(w http.ResponseWriter, _ *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]string{"banner": s.setting(settingBanner, s.cfg.LoginBanner)})
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	p, tok, err := s.auth.Login(r.Context(), req.Username, req.Password, r.RemoteAddr)
	switch {
	case err == nil:
		s.metrics.login("success")
	case errors.Is(err, auth.ErrLocked):
		s.metrics.login("locked")
		return api.Status(http.StatusTooManyRequests, "this account is locked after repeated failed logins; try again later or ask an administrator")
	case errors.Is(err, auth.ErrRateLimited):
		s.metrics.login("rate_limited")
		return api.Status(http.StatusTooManyRequests, "too many login attempts from this terminal; wait a minute")
	case errors.Is(err, auth.ErrBadCredentials):
		s.metrics.login("bad_credentials")
		return api.Status(http.StatusUnauthorized, "user name or password is wrong")
	default:
		return err
	}
	s.guard.SetCookie(w, tok)
	api.WriteJSON(w, http.StatusOK, map[string]string{"user": p.User, "role": string(p.Role)})
	return nil
}

// postLogout signs the user out at every terminal: every login of the user
// ends (one logout record each), then their browser, whose other viewer is
// told (docs/protocol.md, How a session ends).
func (s *Server) postLogout(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	err := s.auth.Logout(p)
	s.guard.ClearCookie(w)
	s.sess.End(p.User, session.ReasonLogout)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	u, err := s.auth.User(p.User)
	if err != nil {
		return err
	}
	pledge, version, err := s.currentPledge()
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"user": p.User, "role": p.Role, "pledgeAccepted": u.PledgeVersion == version,
		"pledge": pledge, "pledgeVersion": version, "expires": p.TokenExpires,
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
func (s *Server) postPledge(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req pledgeRequest
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(r, &req); err != nil {
			return err
		}
	}
	if req.Version != "" && !isPledgeVersion(req.Version) {
		return api.Status(http.StatusBadRequest, "version: must be the pledgeVersion from GET /api/session (64 hex digits)")
	}
	_, current, err := s.currentPledge()
	if err != nil {
		return err
	}
	if req.Version != "" && req.Version != current {
		return api.Status(http.StatusConflict, "the pledge changed since it was shown: read the new text and accept it")
	}
	if err := s.auth.AcceptPledge(p.User, current); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "pledgeVersion": current})
	return nil
}

// isPledgeVersion reports whether v looks like a pledgeVersion.
func isPledgeVersion(v string) bool {
	if len(v) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

type setupRequest struct {
	Token    string `json:"token"`
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) postSetup(w http.ResponseWriter, r *http.Request) error {
	var req setupRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	err := s.auth.CompleteSetup(req.Token, req.Username, req.Password)
	switch {
	case errors.Is(err, auth.ErrSetupTokenInvalid), errors.Is(err, auth.ErrSetupNotNeeded):
		return &api.Error{Status: http.StatusForbidden, Msg: "the set-up token is wrong, expired or already used", Err: err}
	case errors.Is(err, auth.ErrWeakPassword), errors.Is(err, auth.ErrBadUsername):
		return &api.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	case err != nil:
		return err
	}
	s.log.Info("first administrator created", "user", strings.ToLower(req.Username))
	api.WriteJSON(w, http.StatusCreated, map[string]string{"user": strings.ToLower(req.Username), "role": string(auth.Admin)})
	return nil
}

type settingsBody struct {
	Banner string `json:"banner"`
	Pledge string `json:"pledge"`
}

func (s *Server) getSettings(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	api.WriteJSON(w, http.StatusOK, settingsBody{
		Banner: s.setting(settingBanner, s.cfg.LoginBanner),
		Pledge: s.setting(settingPledge, defaultPledge),
	})
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req settingsBody
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Banner) > 4000 {
		return api.Status(http.StatusBadRequest, "banner: at most 4000 bytes")
	}
	if strings.TrimSpace(req.Pledge) == "" || len(req.Pledge) > 4000 {
		return api.Status(http.StatusBadRequest, "pledge: must not be empty, at most 4000 bytes")
	}
	before := settingsBody{Banner: s.setting(settingBanner, s.cfg.LoginBanner), Pledge: s.setting(settingPledge, defaultPledge)}
	// The record is durable before the change, as for the site policy: the
	// pledge decides who may use the browser.
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(r.Context(), sitepolicy.CommitTimeout)
	defer cancel()
	if _, err := s.audit.Commit(ctx, audit.PolicyChange(s.now(), api.Actor(r, p), "login banner and pledge", string(b), string(a))); err != nil {
		return fmt.Errorf("the audit trail is unavailable, the settings were not changed: %w", err)
	}
	// Both or neither: a failure must not leave a new banner with the old
	// pledge.
	if err := s.store.SetSettings(map[string]string{settingBanner: req.Banner, settingPledge: req.Pledge}); err != nil {
		return err
	}
	s.log.Info("settings changed", "by", p.User, "banner_before_len", len(before.Banner), "banner_after_len", len(req.Banner),
		"pledge_changed", before.Pledge != req.Pledge)
	if before.Pledge != req.Pledge {
		s.askPledgeAgain(pledgeVersion(req.Pledge))
	}
	api.WriteJSON(w, http.StatusOK, req)
	return nil
}

// askPledgeAgain disconnects the viewers of every running session whose
// user has not accepted the pledge version now in force (NOTICE-3). The
// sessions and their browsers go on; a viewer's reconnect is refused until
// its user accepts the new text, which the viewer shows.
func (s *Server) askPledgeAgain(version string) {
	for _, i := range s.sess.List() {
		if u, err := s.auth.User(i.User); err == nil && u.PledgeVersion == version {
			continue
		}
		if sess, ok := s.sess.Get(i.User); ok {
			sess.DisconnectViewers(session.ReasonPledge)
			s.log.Info("viewer disconnected: the pledge changed", "user", i.User)
		}
	}
}

func (s *Server) getSessions(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	type row struct {
		ID       string    `json:"id"`
		User     string    `json:"user"`
		Role     string    `json:"role"`
		Started  time.Time `json:"started"`
		State    string    `json:"state"`
		Profile  string    `json:"profile"`
		Terminal string    `json:"terminal"`
	}
	out := []row{}
	set := s.policy.Current()
	for _, i := range s.sess.List() {
		term := ""
		if i.Terminal.IsValid() {
			term = i.Terminal.String()
		}
		out = append(out, row{i.ID, i.User, i.Role, i.Started, string(i.State), set.ProfileFor(i.User, i.Role, i.Terminal), term})
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	user := r.PathValue("user")
	if !s.sess.End(user, session.ReasonAdmin) {
		return api.Status(http.StatusNotFound, "that user has no session")
	}
	s.log.Info("session ended by administrator", "by", p.User, "user", user)
	s.audit.Record(audit.KillSwitch(s.now(), api.Actor(r, p), "end_user_sessions", user, ""))
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}
