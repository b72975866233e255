// Package admin holds the HTTP handlers of the administrator's settings and
// running sessions: the login banner and usage pledge (GET and PUT
// /api/admin/settings), the list of sessions, and ending one. The rules of
// the banner and the pledge are in broker/auth's Notices.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

// Notices is what the handlers need of the banner and the pledge
// (*auth.Notices).
type Notices interface {
	Texts() auth.NoticeTexts
	Change(ctx context.Context, by audit.Actor, next auth.NoticeTexts) error
}

// Sessions are the running browsing sessions (*session.Manager).
type Sessions interface {
	List() []session.Info
	End(user string, reason session.Reason) bool
}

// Profiler names the site-policy profile a session of the user, with the
// role, from the terminal browses under (*policy.Set).
type Profiler interface {
	ProfileFor(user, role string, terminal netip.Addr) string
}

// Recorder takes the audit record of an administrator ending a session
// (audit.Sink).
type Recorder interface {
	Record(e audit.Event)
}

// Handlers serve the admin settings and sessions API. Every field is
// required.
type Handlers struct {
	Notices  Notices
	Sessions Sessions
	// Profiles returns the site policy in force (*policy.Set), which names
	// the profile each session browses under.
	Profiles func() Profiler
	Audit    Recorder
	Guard    *api.Guard
	Log      *slog.Logger
	Now      func() time.Time
}

// Register adds the admin routes to mux; each needs the admin role.
func (h *Handlers) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/admin/settings", h.Guard.Role(auth.Admin, h.getSettings))
	mux.Handle("PUT /api/admin/settings", h.Guard.Role(auth.Admin, h.putSettings))
	mux.Handle("GET /api/admin/sessions", h.Guard.Role(auth.Admin, h.getSessions))
	mux.Handle("DELETE /api/admin/sessions/{user}", h.Guard.Role(auth.Admin, h.deleteSession))
}

// settingsBody is the body of GET and PUT /api/admin/settings.
type settingsBody struct {
	Banner string `json:"banner"`
	Pledge string `json:"pledge"`
}

func (h *Handlers) getSettings(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	t := h.Notices.Texts()
	api.WriteJSON(w, http.StatusOK, settingsBody{Banner: t.Banner, Pledge: t.Pledge})
	return nil
}

func (h *Handlers) putSettings(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req settingsBody
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	err := h.Notices.Change(r.Context(), api.Actor(r, p), auth.NoticeTexts{Banner: req.Banner, Pledge: req.Pledge})
	var invalid *auth.NoticeError
	if errors.As(err, &invalid) {
		return api.Status(http.StatusBadRequest, invalid.Error())
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, req)
	return nil
}

// sessionRow is one running session in GET /api/admin/sessions.
type sessionRow struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Role     string    `json:"role"`
	Started  time.Time `json:"started"`
	State    string    `json:"state"`
	Profile  string    `json:"profile"`
	Terminal string    `json:"terminal"`
}

func (h *Handlers) getSessions(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	out := []sessionRow{}
	set := h.Profiles()
	for _, i := range h.Sessions.List() {
		term := ""
		if i.Terminal.IsValid() {
			term = i.Terminal.String()
		}
		out = append(out, sessionRow{i.ID, i.User, i.Role, i.Started, string(i.State), set.ProfileFor(i.User, i.Role, i.Terminal), term})
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handlers) deleteSession(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	user := r.PathValue("user")
	if !h.Sessions.End(user, session.ReasonAdmin) {
		return api.Status(http.StatusNotFound, "that user has no session")
	}
	h.Log.Info("session ended by administrator", "by", p.User, "user", user)
	h.Audit.Record(audit.KillSwitch(h.Now(), api.Actor(r, p), "end_user_sessions", user, ""))
	api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}
