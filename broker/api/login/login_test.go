package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/session"
)

var epoch = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// fakeTokens accepts the token "valid" for bob.
type fakeTokens struct{}

func (fakeTokens) Verify(token string) (auth.Principal, error) {
	if token != "valid" {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return auth.Principal{User: "bob", Role: auth.Clinician}, nil
}
func (fakeTokens) ShouldRenew(auth.Principal) bool { return false }
func (fakeTokens) Renew(auth.Principal) (auth.Token, error) {
	return auth.Token{}, errors.New("no renewal")
}

// fakeAccounts answers Login by user name: "locked", "limited" and "wrong"
// fail as auth does, "broken" with another error.
type fakeAccounts struct{ logoutErr error }

func (fakeAccounts) Login(_ context.Context, user, _, _ string) (auth.Principal, auth.Token, error) {
	switch user {
	case "locked":
		return auth.Principal{}, auth.Token{}, fmt.Errorf("login: %w", auth.ErrLocked)
	case "limited":
		return auth.Principal{}, auth.Token{}, auth.ErrRateLimited
	case "wrong":
		return auth.Principal{}, auth.Token{}, auth.ErrBadCredentials
	case "broken":
		return auth.Principal{}, auth.Token{}, errors.New("disk gone")
	}
	return auth.Principal{User: user, Role: auth.Clinician}, auth.Token{Value: "valid", Expires: epoch.Add(time.Hour)}, nil
}
func (a fakeAccounts) Logout(auth.Principal) error              { return a.logoutErr }
func (fakeAccounts) CompleteSetup(string, string, string) error { return nil }

// fakeNotices answers Accept with err.
type fakeNotices struct{ err error }

func (fakeNotices) Banner() string { return "Authorised staff only" }
func (fakeNotices) Status(string) (auth.PledgeStatus, error) {
	return auth.PledgeStatus{Text: "I promise.", Version: auth.PledgeVersion("I promise.")}, nil
}
func (n fakeNotices) Accept(_, shown string) (string, error) {
	if n.err != nil {
		return "", n.err
	}
	return auth.PledgeVersion("I promise."), nil
}

// fakeSessions records the sessions ended.
type fakeSessions struct{ ended []string }

func (s *fakeSessions) End(user string, r session.Reason) bool {
	s.ended = append(s.ended, user+":"+string(r))
	return true
}

type fixture struct {
	mux      *http.ServeMux
	outcomes []string
	sessions *fakeSessions
}

func newFixture(accounts Accounts, notices Notices) *fixture {
	f := &fixture{mux: http.NewServeMux(), sessions: &fakeSessions{}}
	log := slog.New(slog.DiscardHandler)
	g := &api.Guard{Log: log, Tokens: fakeTokens{}, Pledge: func(auth.Principal) error { return nil },
		Now: func() time.Time { return epoch }}
	(&Handlers{Accounts: accounts, Notices: notices, Sessions: f.sessions, Guard: g, Log: log,
		LoginOutcome: func(o string) { f.outcomes = append(f.outcomes, o) }}).Register(f.mux)
	return f
}

// do sends a request with the session cookie and a JSON body and returns
// the status and the decoded body.
func (f *fixture) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.AddCookie(&http.Cookie{Name: api.CookieName, Value: "valid"})
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
	}
	return rec.Code, m
}

func TestRequirePledge(t *testing.T) {
	disk := errors.New("disk gone")
	tests := []struct {
		name       string
		err        error
		wantStatus int // 0: the error passes as is
	}{
		{"accepted", nil, 0},
		{"not accepted", fmt.Errorf("bob: %w", auth.ErrPledgeRequired), http.StatusForbidden},
		{"store unreadable", disk, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := RequirePledge(ruleFunc(func(auth.Principal) error { return tt.err }))
			err := check(auth.Principal{User: "bob"})
			var ae *api.Error
			if tt.wantStatus == 0 {
				if !errors.Is(err, tt.err) || errors.As(err, &ae) {
					t.Fatalf("check = %v, want %v as is", err, tt.err)
				}
				return
			}
			if !errors.As(err, &ae) || ae.Status != tt.wantStatus || !ae.PledgeRequired || ae.Msg != pledgeRequiredMsg {
				t.Fatalf("check = %#v, want a %d refusal that asks for the pledge", err, tt.wantStatus)
			}
		})
	}
}

type ruleFunc func(auth.Principal) error

func (f ruleFunc) Require(p auth.Principal) error { return f(p) }

func TestLoginAnswers(t *testing.T) {
	tests := []struct {
		user        string
		wantStatus  int
		wantError   string
		wantOutcome []string
	}{
		{"bob", http.StatusOK, "", []string{OutcomeSuccess}},
		{"locked", http.StatusTooManyRequests, "this account is locked after repeated failed logins; try again later or ask an administrator", []string{OutcomeLocked}},
		{"limited", http.StatusTooManyRequests, "too many login attempts from this terminal; wait a minute", []string{OutcomeRateLimited}},
		{"wrong", http.StatusUnauthorized, "user name or password is wrong", []string{OutcomeBadCredentials}},
		{"broken", http.StatusInternalServerError, "internal error", nil},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			f := newFixture(fakeAccounts{}, fakeNotices{})
			status, body := f.do(t, http.MethodPost, "/api/login", `{"username":"`+tt.user+`","password":"pw"}`)
			if status != tt.wantStatus || tt.wantError != "" && body["error"] != tt.wantError {
				t.Fatalf("POST /api/login = %d %v, want %d %q", status, body, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus == http.StatusOK && (body["user"] != "bob" || body["role"] != "clinician") {
				t.Fatalf("POST /api/login body = %v", body)
			}
			if !slices.Equal(f.outcomes, tt.wantOutcome) {
				t.Fatalf("outcomes = %q, want %q", f.outcomes, tt.wantOutcome)
			}
		})
	}
}

func TestPledgeAnswers(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantError  string
	}{
		{"accepted", nil, http.StatusOK, ""},
		{"malformed", auth.ErrMalformedPledgeVersion, http.StatusBadRequest, "version: must be the pledgeVersion from GET /api/session (64 hex digits)"},
		{"changed", auth.ErrPledgeChanged, http.StatusConflict, "the pledge changed since it was shown: read the new text and accept it"},
		{"store", errors.New("disk gone"), http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(fakeAccounts{}, fakeNotices{err: tt.err})
			status, body := f.do(t, http.MethodPost, "/api/pledge", `{"version":""}`)
			if status != tt.wantStatus || tt.wantError != "" && body["error"] != tt.wantError {
				t.Fatalf("POST /api/pledge = %d %v, want %d %q", status, body, tt.wantStatus, tt.wantError)
			}
			if tt.err == nil && body["pledgeVersion"] != auth.PledgeVersion("I promise.") {
				t.Fatalf("POST /api/pledge body = %v", body)
			}
		})
	}
}

// TestLogoutEndsSession: the browser ends at logout even when ending the
// logins failed.
func TestLogoutEndsSession(t *testing.T) {
	for _, logoutErr := range []error{nil, errors.New("disk gone")} {
		f := newFixture(fakeAccounts{logoutErr: logoutErr}, fakeNotices{})
		status, _ := f.do(t, http.MethodPost, "/api/logout", "")
		want := http.StatusOK
		if logoutErr != nil {
			want = http.StatusInternalServerError
		}
		if status != want || !slices.Equal(f.sessions.ended, []string{"bob:" + string(session.ReasonLogout)}) {
			t.Fatalf("logout (Logout error %v) = %d, ended %q", logoutErr, status, f.sessions.ended)
		}
	}
}
