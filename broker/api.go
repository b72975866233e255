package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/stream"
	"github.com/shoji-rbi/shoji/web"
)

// cookieName is the session cookie.
const cookieName = "shoji_session"

// Settings keys in the store.
const (
	settingBanner = "login_banner"
	settingPledge = "pledge"
)

// defaultPledge is shown at a user's first login until an admin sets one.
const defaultPledge = "I will use this isolated browser only for my clinical work. " +
	"I will not enter patient names, IDs or other identifiers into Internet sites. " +
	"I understand that navigation, blocked requests and file transfers are recorded."

// maxBodyBytes bounds a JSON request body.
const maxBodyBytes = 64 << 10

// httpError is an error with the status and the message shown to the user;
// Err is the logged cause. PledgeRequired marks the refusal of a login whose
// user has not accepted the current usage pledge.
type httpError struct {
	Status         int
	Msg            string
	Err            error
	PledgeRequired bool
}

// errorBody is the JSON body of every refused API request.
type errorBody struct {
	Error          string `json:"error"`
	PledgeRequired bool   `json:"pledgeRequired,omitempty"`
}

func (e *httpError) body() errorBody {
	return errorBody{Error: e.Msg, PledgeRequired: e.PledgeRequired}
}

// Refuse answers a refused viewer WebSocket upgrade as the API answers a
// refused request (stream.Refusal).
func (e *httpError) Refuse(w http.ResponseWriter) { writeJSON(w, e.Status, e.body()) }

func (e *httpError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func errStatus(status int, msg string) error { return &httpError{Status: status, Msg: msg} }

// handlerFunc is an HTTP handler that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: errors become JSON {"error": msg} with their
// status; anything unexpected is a 500 with the cause logged, not shown.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{Status: http.StatusInternalServerError, Msg: "internal error"}
		} else if he.Err != nil {
			s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "status", he.Status, "err", he.Err)
		}
		writeJSON(w, he.Status, he.body())
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON body into v strictly: the content type must be
// JSON, the size is bounded, unknown fields are refused.
func decodeJSON(r *http.Request, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return errStatus(http.StatusUnsupportedMediaType, "request body must be application/json")
	}
	body := http.MaxBytesReader(nil, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errStatus(http.StatusRequestEntityTooLarge, "request body too large")
		}
		return &httpError{Status: http.StatusBadRequest, Msg: "bad JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errStatus(http.StatusBadRequest, "bad JSON: trailing data after the object")
	}
	return nil
}

// routes builds the broker's handler tree.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsAccess.guard(s.metrics.handler(s.log)))

	mux.Handle("GET /api/banner", s.handle(s.getBanner))
	mux.Handle("POST /api/login", s.handle(s.postLogin))
	mux.Handle("POST /api/setup", s.handle(s.postSetup))
	mux.Handle("POST /api/logout", s.loggedIn(s.postLogout))
	mux.Handle("GET /api/session", s.loggedIn(s.getSession))
	mux.Handle("POST /api/pledge", s.loggedIn(s.postPledge))
	mux.Handle("GET /api/admin/settings", s.role(auth.Admin, s.getSettings))
	mux.Handle("PUT /api/admin/settings", s.role(auth.Admin, s.putSettings))
	mux.Handle("GET /api/admin/sessions", s.role(auth.Admin, s.getSessions))
	mux.Handle("DELETE /api/admin/sessions/{user}", s.role(auth.Admin, s.deleteSession))
	s.policyRoutes(mux)
	s.transferRoutes(mux)
	s.auditRoutes(mux)
	mux.Handle("/api/", s.handle(func(http.ResponseWriter, *http.Request) error {
		return errStatus(http.StatusNotFound, "no such API")
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
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "request from another origin refused"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// principal returns the request's verified session, renewing the cookie
// when it is past half its life.
func (s *Server) principal(w http.ResponseWriter, r *http.Request) (auth.Principal, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return auth.Principal{}, errStatus(http.StatusUnauthorized, "not logged in")
	}
	p, err := s.auth.Verify(c.Value)
	if err != nil {
		return auth.Principal{}, &httpError{Status: http.StatusUnauthorized, Msg: "session expired or invalid: log in again", Err: err}
	}
	if w != nil && s.auth.ShouldRenew(p) {
		if tok, err := s.auth.Renew(p); err == nil {
			s.setCookie(w, tok)
		}
	}
	return p, nil
}

// authed requires a valid session whose user accepted the current usage
// pledge (requirePledge): every authenticated API but the three loggedIn
// ones goes through it, role and roles included.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, p auth.Principal) error) http.Handler {
	return s.loggedIn(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if err := s.requirePledge(p); err != nil {
			return err
		}
		return h(w, r, p)
	})
}

// loggedIn requires a valid session only. It is for what a login may do
// before accepting the pledge: read its session and the pledge text, accept
// it, log out.
func (s *Server) loggedIn(h func(w http.ResponseWriter, r *http.Request, p auth.Principal) error) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.principal(w, r)
		if err != nil {
			return err
		}
		return h(w, r, p)
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
		return &httpError{Status: http.StatusForbidden, PledgeRequired: true,
			Msg: "accept the usage pledge first: GET /api/session shows it, POST /api/pledge accepts it"}
	}
	return nil
}

// role requires a valid session with the given role.
func (s *Server) role(want auth.Role, h func(w http.ResponseWriter, r *http.Request, p auth.Principal) error) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
		if p.Role != want {
			return errStatus(http.StatusForbidden, fmt.Sprintf("this needs the %s role", want))
		}
		return h(w, r, p)
	})
}

// streamAuth authenticates the viewer WebSocket with the session cookie and
// refuses it, before any browser starts, until the pledge is accepted.
type streamAuth struct{ s *Server }

func (a streamAuth) Authenticate(r *http.Request) (stream.Principal, error) {
	p, err := a.s.principal(nil, r)
	if err != nil {
		return stream.Principal{}, err
	}
	if err := a.s.requirePledge(p); err != nil {
		return stream.Principal{}, err
	}
	return stream.Principal{User: p.User, Role: string(p.Role)}, nil
}

func (s *Server) setCookie(w http.ResponseWriter, tok auth.Token) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: tok.Value, Path: "/", Expires: tok.Expires,
		MaxAge: int(tok.Expires.Sub(s.now()) / time.Second), HttpOnly: true,
		Secure: s.cfg.TLS(), SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.TLS(), SameSite: http.SameSiteStrictMode})
}

func (s *Server) setting(key, def string) string {
	v, ok, err := s.store.Setting(key)
	if err != nil || !ok {
		return def
	}
	return v
}

func (s *Server) getBanner(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"banner": s.setting(settingBanner, s.cfg.LoginBanner)})
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	p, tok, err := s.auth.Login(r.Context(), req.Username, req.Password, r.RemoteAddr)
	switch {
	case err == nil:
		s.metrics.login("success")
	case errors.Is(err, auth.ErrLocked):
		s.metrics.login("locked")
		return errStatus(http.StatusTooManyRequests, "this account is locked after repeated failed logins; try again later or ask an administrator")
	case errors.Is(err, auth.ErrRateLimited):
		s.metrics.login("rate_limited")
		return errStatus(http.StatusTooManyRequests, "too many login attempts from this terminal; wait a minute")
	case errors.Is(err, auth.ErrBadCredentials):
		s.metrics.login("bad_credentials")
		return errStatus(http.StatusUnauthorized, "user name or password is wrong")
	default:
		return err
	}
	s.setCookie(w, tok)
	writeJSON(w, http.StatusOK, map[string]string{"user": p.User, "role": string(p.Role)})
	return nil
}

// postLogout signs the user out at every terminal: every login of the user
// ends (one logout record each), then their browser, whose other viewer is
// told (docs/protocol.md, How a session ends).
func (s *Server) postLogout(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
	err := s.auth.Logout(p)
	s.clearCookie(w)
	s.sess.End(p.User, session.ReasonLogout)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
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
	writeJSON(w, http.StatusOK, map[string]any{
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
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	if req.Version != "" && !isPledgeVersion(req.Version) {
		return errStatus(http.StatusBadRequest, "version: must be the pledgeVersion from GET /api/session (64 hex digits)")
	}
	_, current, err := s.currentPledge()
	if err != nil {
		return err
	}
	if req.Version != "" && req.Version != current {
		return errStatus(http.StatusConflict, "the pledge changed since it was shown: read the new text and accept it")
	}
	if err := s.auth.AcceptPledge(p.User, current); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "pledgeVersion": current})
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
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	err := s.auth.CompleteSetup(req.Token, req.Username, req.Password)
	switch {
	case errors.Is(err, auth.ErrSetupTokenInvalid), errors.Is(err, auth.ErrSetupNotNeeded):
		return &httpError{Status: http.StatusForbidden, Msg: "the set-up token is wrong, expired or already used", Err: err}
	case errors.Is(err, auth.ErrWeakPassword), errors.Is(err, auth.ErrBadUsername):
		return &httpError{Status: http.StatusBadRequest, Msg: err.Error()}
	case err != nil:
		return err
	}
	s.log.Info("first administrator created", "user", strings.ToLower(req.Username))
	writeJSON(w, http.StatusCreated, map[string]string{"user": strings.ToLower(req.Username), "role": string(auth.Admin)})
	return nil
}

type settingsBody struct {
	Banner string `json:"banner"`
	Pledge string `json:"pledge"`
}

func (s *Server) getSettings(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	writeJSON(w, http.StatusOK, settingsBody{
		Banner: s.setting(settingBanner, s.cfg.LoginBanner),
		Pledge: s.setting(settingPledge, defaultPledge),
	})
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req settingsBody
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Banner) > 4000 {
		return errStatus(http.StatusBadRequest, "banner: at most 4000 bytes")
	}
	if strings.TrimSpace(req.Pledge) == "" || len(req.Pledge) > 4000 {
		return errStatus(http.StatusBadRequest, "pledge: must not be empty, at most 4000 bytes")
	}
	before := settingsBody{Banner: s.setting(settingBanner, s.cfg.LoginBanner), Pledge: s.setting(settingPledge, defaultPledge)}
	// The record is durable before the change, as for the site policy: the
	// pledge decides who may use the browser.
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(r.Context(), sitepolicy.CommitTimeout)
	defer cancel()
	if _, err := s.audit.Commit(ctx, audit.PolicyChange(s.now(), actorOf(r, p), "login banner and pledge", string(b), string(a))); err != nil {
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
	writeJSON(w, http.StatusOK, req)
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
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	user := r.PathValue("user")
	if !s.sess.End(user, session.ReasonAdmin) {
		return errStatus(http.StatusNotFound, "that user has no session")
	}
	s.log.Info("session ended by administrator", "by", p.User, "user", user)
	s.audit.Record(audit.KillSwitch(s.now(), actorOf(r, p), "end_user_sessions", user, ""))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}
