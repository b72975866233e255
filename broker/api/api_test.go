package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/auth"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		msg                     string
	}{
		{"ok", "application/json", `{"name":"a"}`, 0, ""},
		{"charset", "application/json; charset=utf-8", `{"name":"a"}`, 0, ""},
		{"not JSON type", "text/plain", `{"name":"a"}`, 415, "request body must be application/json"},
		{"unknown field", "application/json", `{"nam":"a"}`, 400, `bad JSON: json: unknown field "nam"`},
		{"trailing", "application/json", `{"name":"a"} {}`, 400, "bad JSON: trailing data after the object"},
		{"broken", "application/json", `{"name":`, 400, "bad JSON: unexpected EOF"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "request body too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			var b body
			err := DecodeJSON(r, &b)
			if tc.status == 0 {
				if err != nil || b.Name != "a" {
					t.Fatalf("DecodeJSON = %v, %+v", err, b)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Msg != tc.msg {
				t.Fatalf("DecodeJSON error = %v, want %d %q", err, tc.status, tc.msg)
			}
		})
	}
}

// TestHandle: a refusal shows its message and logs its cause; any other
// error is a 500 whose cause is logged, never shown.
func TestHandle(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		name   string
		err    error
		status int
		shown  string
		logged string
	}{
		{"refusal", &Error{Status: 403, Msg: "no", Err: errors.New("cause-one")}, 403, "no", "cause-one"},
		{"wrapped refusal", errors.Join(errors.New("ctx"), Status(404, "gone")), 404, "gone", ""},
		{"internal", errors.New("secret path /var/lib"), 500, "internal error", "secret path /var/lib"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			rec := httptest.NewRecorder()
			Handle(log, func(http.ResponseWriter, *http.Request) error { return tc.err }).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			var body ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.status || body.Error != tc.shown {
				t.Errorf("got %d %q, want %d %q", rec.Code, body.Error, tc.status, tc.shown)
			}
			if !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log %q lacks %q", logs.String(), tc.logged)
			}
			if tc.status == 500 && strings.Contains(rec.Body.String(), "secret") {
				t.Errorf("the cause reached the client: %s", rec.Body.String())
			}
		})
	}
}

// tokens is a Verifier that knows one token per principal.
type tokens map[string]auth.Principal

func (v tokens) Verify(tok string) (auth.Principal, error) {
	p, ok := v[tok]
	if !ok {
		return auth.Principal{}, errors.New("unknown token")
	}
	return p, nil
}
func (tokens) ShouldRenew(auth.Principal) bool          { return false }
func (tokens) Renew(auth.Principal) (auth.Token, error) { return auth.Token{}, errors.New("no") }

// TestGuard: login, pledge and role are each enforced before the handler
// runs, in that order.
func TestGuard(t *testing.T) {
	g := &Guard{
		Log: slog.New(slog.DiscardHandler),
		Tokens: tokens{
			"admin":    {User: "a", Role: auth.Admin, PledgeVersion: "v1"},
			"nurse":    {User: "n", Role: auth.Clinician, PledgeVersion: "v1"},
			"unpledge": {User: "u", Role: auth.Admin},
		},
		Pledge: func(p auth.Principal) error {
			if p.PledgeVersion != "v1" {
				return &Error{Status: http.StatusForbidden, Msg: "accept the pledge", PledgeRequired: true}
			}
			return nil
		},
		Now: time.Now,
	}
	ran := 0
	h := func(w http.ResponseWriter, _ *http.Request, p auth.Principal) error {
		ran++
		WriteJSON(w, 200, map[string]string{"user": p.User})
		return nil
	}
	routes := map[string]http.Handler{
		"loggedIn": g.LoggedIn(h),
		"authed":   g.Authed(h),
		"admin":    g.Role(auth.Admin, h),
		"staff":    g.Roles(h, auth.Admin, auth.Approver),
	}
	for _, tc := range []struct {
		route, cookie string
		status        int
		pledge        bool
	}{
		{"loggedIn", "", 401, false},
		{"loggedIn", "forged", 401, false},
		{"loggedIn", "unpledge", 200, false},
		{"authed", "unpledge", 403, true},
		{"authed", "nurse", 200, false},
		{"admin", "nurse", 403, false},
		{"admin", "unpledge", 403, true},
		{"admin", "admin", 200, false},
		{"staff", "nurse", 403, false},
		{"staff", "admin", 200, false},
	} {
		ran = 0
		r := httptest.NewRequest("GET", "/", nil)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: CookieName, Value: tc.cookie})
		}
		rec := httptest.NewRecorder()
		routes[tc.route].ServeHTTP(rec, r)
		var body ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.PledgeRequired != tc.pledge || (ran == 1) != (tc.status == 200) {
			t.Errorf("%s with %q: %d %+v (handler ran %d), want %d pledgeRequired=%v", tc.route, tc.cookie, rec.Code, body, ran, tc.status, tc.pledge)
		}
	}
}

func TestTerminal(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5000":          "192.0.2.7",
		"[::ffff:192.0.2.7]:5000": "192.0.2.7",
		"[2001:db8::1]:443":       "2001:db8::1",
		"pipe":                    "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := Terminal(r); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	errMissing, errLate := errors.New("missing"), errors.New("late")
	classes := []Class{{Err: errMissing, Status: 404}, {Err: errLate, Status: 409}}
	if err := Classify(nil, classes...); err != nil {
		t.Errorf("Classify(nil) = %v", err)
	}
	other := errors.New("disk on fire")
	if err := Classify(other, classes...); err != other {
		t.Errorf("an error of no class became %v", err)
	}
	var e *Error
	err := Classify(fmt.Errorf("transfer 7: %w", errLate), classes...)
	if !errors.As(err, &e) || e.Status != 409 || e.Msg != "transfer 7: late" {
		t.Errorf("Classify = %#v, want 409 with the error's own text", err)
	}
}
