package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

var epoch = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// fakeTokens accepts the token "admin" for alice, an admin.
type fakeTokens struct{}

func (fakeTokens) Verify(token string) (auth.Principal, error) {
	if token != "admin" {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return auth.Principal{User: "alice", Role: auth.Admin}, nil
}
func (fakeTokens) ShouldRenew(auth.Principal) bool { return false }
func (fakeTokens) Renew(auth.Principal) (auth.Token, error) {
	return auth.Token{}, errors.New("no renewal")
}

// fakeNotices keeps the texts and answers Change with err.
type fakeNotices struct {
	texts auth.NoticeTexts
	err   error
	by    audit.Actor
}

func (n *fakeNotices) Texts() auth.NoticeTexts { return n.texts }
func (n *fakeNotices) Change(_ context.Context, by audit.Actor, next auth.NoticeTexts) error {
	if n.err != nil {
		return n.err
	}
	n.texts, n.by = next, by
	return nil
}

// fakeSessions has one running session, nurse's.
type fakeSessions struct{ ended []string }

func (*fakeSessions) List() []session.Info {
	return []session.Info{{ID: "s1", User: "nurse", Role: "clinician", Terminal: netip.MustParseAddr("10.0.0.5"),
		Started: epoch, State: session.State("running")}}
}
func (s *fakeSessions) End(user string, r session.Reason) bool {
	if user != "nurse" {
		return false
	}
	s.ended = append(s.ended, user+":"+string(r))
	return true
}

// profiles puts every clinician in the "clinical" profile.
type profiles struct{}

func (profiles) ProfileFor(_, role string, _ netip.Addr) string {
	if role == "clinician" {
		return "clinical"
	}
	return "default"
}

type fixture struct {
	mux      *http.ServeMux
	notices  *fakeNotices
	sessions *fakeSessions
	trail    *audit.Memory
}

func newFixture(changeErr error) *fixture {
	f := &fixture{mux: http.NewServeMux(), notices: &fakeNotices{texts: auth.NoticeTexts{Banner: "b0", Pledge: "p0"}, err: changeErr},
		sessions: &fakeSessions{}, trail: audit.NewMemory()}
	log := slog.New(slog.DiscardHandler)
	now := func() time.Time { return epoch }
	g := &api.Guard{Log: log, Tokens: fakeTokens{}, Pledge: func(auth.Principal) error { return nil }, Now: now}
	(&Handlers{Notices: f.notices, Sessions: f.sessions, Profiles: func() Profiler { return profiles{} },
		Audit: f.trail, Guard: g, Log: log, Now: now}).Register(f.mux)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = "192.0.2.9:4000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.AddCookie(&http.Cookie{Name: api.CookieName, Value: "admin"})
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
	}
	return rec.Code
}

func TestSettings(t *testing.T) {
	f := newFixture(nil)
	var got settingsBody
	if code := f.do(t, http.MethodGet, "/api/admin/settings", "", &got); code != http.StatusOK || got != (settingsBody{"b0", "p0"}) {
		t.Fatalf("GET settings = %d %+v", code, got)
	}
	if code := f.do(t, http.MethodPut, "/api/admin/settings", `{"banner":"b1","pledge":"p1"}`, &got); code != http.StatusOK || got != (settingsBody{"b1", "p1"}) {
		t.Fatalf("PUT settings = %d %+v", code, got)
	}
	if f.notices.texts != (auth.NoticeTexts{Banner: "b1", Pledge: "p1"}) || f.notices.by != (audit.Actor{User: "alice", Role: "admin", Terminal: "192.0.2.9"}) {
		t.Fatalf("Change got %+v by %+v", f.notices.texts, f.notices.by)
	}
}

func TestSettingsRefused(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantError  string
	}{
		{"invalid", &auth.NoticeError{Field: "pledge", Problem: "must not be empty, at most 4000 bytes"}, http.StatusBadRequest, "pledge: must not be empty, at most 4000 bytes"},
		{"audit down", errors.New("the audit trail is unavailable, the settings were not changed"), http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(tt.err)
			var body api.ErrorBody
			code := f.do(t, http.MethodPut, "/api/admin/settings", `{"banner":"b1","pledge":""}`, &body)
			if code != tt.wantStatus || body.Error != tt.wantError {
				t.Fatalf("PUT settings = %d %q, want %d %q", code, body.Error, tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	f := newFixture(nil)
	var rows []sessionRow
	if code := f.do(t, http.MethodGet, "/api/admin/sessions", "", &rows); code != http.StatusOK {
		t.Fatalf("GET sessions = %d", code)
	}
	want := []sessionRow{{ID: "s1", User: "nurse", Role: "clinician", Started: epoch, State: "running", Profile: "clinical", Terminal: "10.0.0.5"}}
	if d := cmp.Diff(want, rows); d != "" {
		t.Fatalf("GET sessions (-want +got):\n%s", d)
	}

	var body api.ErrorBody
	if code := f.do(t, http.MethodDelete, "/api/admin/sessions/ghost", "", &body); code != http.StatusNotFound || body.Error != "that user has no session" {
		t.Fatalf("DELETE a session nobody has = %d %q", code, body.Error)
	}
	if n := len(f.trail.Events()); n != 0 {
		t.Fatalf("ending no session recorded %d events", n)
	}
	var ok map[string]bool
	if code := f.do(t, http.MethodDelete, "/api/admin/sessions/nurse", "", &ok); code != http.StatusOK || !ok["ok"] {
		t.Fatalf("DELETE nurse's session = %d %v", code, ok)
	}
	if d := cmp.Diff([]string{"nurse:" + string(session.ReasonAdmin)}, f.sessions.ended); d != "" {
		t.Fatalf("sessions ended (-want +got):\n%s", d)
	}
	events := f.trail.Events()
	if len(events) != 1 || events[0].Type != audit.TypeKillSwitch || events[0].Actor.User != "alice" || events[0].Target != "nurse" || !events[0].Time.Equal(epoch) {
		t.Fatalf("audit trail = %+v, want one kill switch by alice on nurse at %v", events, epoch)
	}
}
