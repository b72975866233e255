package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// TestEndLoginsRecordsEachLogin: every cause ends all of the user's logins,
// at every terminal, with one logout record per login carrying the cause
// and the login's terminal; another user's login stays; a second end finds
// nothing and records nothing.
func TestEndLoginsRecordsEachLogin(t *testing.T) {
	for _, reason := range []string{EndLogout, EndIdle, EndLifetime, EndAdmin} {
		t.Run(reason, func(t *testing.T) {
			mem := audit.NewMemory()
			e := newEnv(t, func(c *Config) { c.Audit = mem })
			e.addUsers(t)
			var toks []Token
			var ids []string
			for _, addr := range []string{"192.0.2.1:5000", "192.0.2.2:6000"} {
				p, tok, err := e.svc.Login(context.Background(), "bob", bobPW, addr)
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
				ids = append(ids, p.SessionID)
				e.clock.Advance(time.Minute) // the first login is the older
			}
			_, other := e.login(t, "alice", alicePW)
			before := len(mem.Events())

			var err error
			n := 0
			if reason == EndLogout {
				p, verr := e.svc.Verify(toks[0].Value)
				if verr != nil {
					t.Fatal(verr)
				}
				err, n = e.svc.Logout(p), 2
			} else {
				n, err = e.svc.EndLogins("bob", reason)
			}
			if err != nil || n != 2 {
				t.Fatalf("ending bob's logins: %d, %v; want 2", n, err)
			}
			for i, tok := range toks {
				if _, err := e.svc.Verify(tok.Value); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("login %d still valid: %v", i, err)
				}
			}
			if _, err := e.svc.Verify(other.Value); err != nil {
				t.Errorf("another user's login ended: %v", err)
			}
			want := []audit.Event{
				audit.Logout(e.clock.Now(), audit.Actor{User: "bob", Role: "clinician", Terminal: "192.0.2.1", Session: ids[0]}, reason),
				audit.Logout(e.clock.Now(), audit.Actor{User: "bob", Role: "clinician", Terminal: "192.0.2.2", Session: ids[1]}, reason),
			}
			got := mem.Events()[before:]
			if d := cmp.Diff(want, got, cmpopts.IgnoreFields(audit.Event{}, "Seq", "Prev")); d != "" {
				t.Errorf("logout records (-want +got):\n%s", d)
			}
			if n, err := e.svc.EndLogins("bob", reason); n != 0 || err != nil {
				t.Errorf("second end: %d, %v; want 0, nil", n, err)
			}
			if after := len(mem.Events()); after != before+2 {
				t.Errorf("%d records after the second end, want %d", after, before+2)
			}
		})
	}
}

func TestEndLoginsNeedsReason(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	_, tok := e.login(t, "bob", bobPW)
	if _, err := e.svc.EndLogins("bob", ""); err == nil {
		t.Error("EndLogins without a reason succeeded")
	}
	if _, err := e.svc.Verify(tok.Value); err != nil {
		t.Errorf("a refused EndLogins ended a login: %v", err)
	}
}
