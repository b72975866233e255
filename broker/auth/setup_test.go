package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSetupToken(t *testing.T) {
	e := newEnv(t, nil)
	if needs, err := e.svc.NeedsSetup(); err != nil || !needs {
		t.Fatalf("NeedsSetup on an empty store = %v, %v", needs, err)
	}
	if err := e.svc.CompleteSetup("", "root", "a long admin password"); !errors.Is(err, ErrSetupTokenInvalid) {
		t.Errorf("CompleteSetup before any token = %v", err)
	}
	first, err := e.svc.IssueSetupToken()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := base64.RawURLEncoding.DecodeString(first); err != nil || len(b) != 32 {
		t.Errorf("token %q is not 32 bytes of base64url", first)
	}
	if strings.Contains(e.logs.String(), first) {
		t.Error("set-up token logged")
	}
	tok, err := e.svc.IssueSetupToken()
	if err != nil {
		t.Fatal(err)
	}

	// A token that differs in its last character (one in 64 tokens ends
	// in "A" already).
	wrong := tok[:len(tok)-1] + "A"
	if wrong == tok {
		wrong = tok[:len(tok)-1] + "B"
	}
	steps := []struct {
		name, token, user, password string
		wantErr                     error
	}{
		{"replaced token", first, "root", "a long admin password", ErrSetupTokenInvalid},
		{"wrong token", wrong, "root", "a long admin password", ErrSetupTokenInvalid},
		{"weak password keeps the token", tok, "root", "short", ErrWeakPassword},
		{"bad name keeps the token", tok, "root user", "a long admin password", ErrBadUsername},
		{"success", tok, "Root", "a long admin password", nil},
		{"used token", tok, "root2", "a long admin password", ErrSetupTokenInvalid},
	}
	for _, s := range steps {
		if err := e.svc.CompleteSetup(s.token, s.user, s.password); !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: CompleteSetup = %v, want %v", s.name, err, s.wantErr)
		}
	}
	u, err := e.svc.User("root")
	if err != nil || u.Role != Admin {
		t.Fatalf("set-up admin = %+v, %v", u, err)
	}
	e.login(t, "root", "a long admin password")
	if needs, _ := e.svc.NeedsSetup(); needs {
		t.Error("NeedsSetup after set-up")
	}
	if _, err := e.svc.IssueSetupToken(); !errors.Is(err, ErrSetupNotNeeded) {
		t.Errorf("IssueSetupToken with an admin = %v, want ErrSetupNotNeeded", err)
	}
}

func TestSetupTokenExpires(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.svc.IssueSetupToken()
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if err := e.svc.CompleteSetup(tok, "root", "a long admin password"); !errors.Is(err, ErrSetupTokenInvalid) {
		t.Errorf("expired token = %v, want ErrSetupTokenInvalid", err)
	}
}

func TestSetupTokenDiesWhenAdminExists(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.svc.IssueSetupToken()
	if err != nil {
		t.Fatal(err)
	}
	// Someone ran `shoji user add --role admin` meanwhile.
	if err := e.svc.AddUser("alice", Admin, alicePW); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CompleteSetup(tok, "root", "a long admin password"); !errors.Is(err, ErrSetupTokenInvalid) {
		t.Errorf("CompleteSetup with an admin present = %v, want ErrSetupTokenInvalid", err)
	}
	if err := e.svc.DisableUser("alice"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("DisableUser(alice) = %v", err)
	}
	if err := e.svc.CompleteSetup(tok, "root", "a long admin password"); !errors.Is(err, ErrSetupTokenInvalid) {
		t.Errorf("token revived: %v", err)
	}
}
