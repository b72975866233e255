package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// claimsOf decodes a token's claims without verifying it.
func claimsOf(t *testing.T, tok string) claims {
	t.Helper()
	var c claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, c claims, kid string, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	p, tok := e.login(t, "bob", bobPW)
	c := claimsOf(t, tok.Value)
	signer := e.svc.keys.Load().signer()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	// The claims carry what the contract says.
	if c.Issuer != "shoji" || !cmpStrings(c.Audience, "shoji-viewer") || c.Subject != "bob" ||
		c.Role != "clinician" || c.SID != p.SessionID || c.ID == "" || c.IssuedAt == nil || c.NotBefore == nil {
		t.Errorf("claims = %+v", c)
	}

	adminClaims := c
	adminClaims.Role = "admin"
	tampered := func() string {
		parts := strings.Split(tok.Value, ".")
		forged := sign(t, jwt.SigningMethodEdDSA, adminClaims, signer.kid, otherKey)
		return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	}
	wrongAud := c
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	wrongIss := c
	wrongIss.Issuer = "evil"
	noExp := c
	noExp.ExpiresAt = nil
	otherSID := c
	otherSID.SID = "0123456789abcdef0123456789abcdef"

	tests := []struct {
		name    string
		token   func() string
		advance time.Duration
		wantErr bool
		wantIn  string
	}{
		{name: "valid", token: func() string { return tok.Value }},
		{name: "valid near expiry", token: func() string { return tok.Value }, advance: 14 * time.Minute},
		{name: "expired", token: func() string { return tok.Value }, advance: 15 * time.Minute, wantErr: true, wantIn: "expired"},
		{name: "empty", token: func() string { return "" }, wantErr: true},
		{name: "garbage", token: func() string { return "not.a.jwt" }, wantErr: true},
		{name: "alg none", token: func() string {
			return sign(t, jwt.SigningMethodNone, adminClaims, signer.kid, jwt.UnsafeAllowNoneSignatureType)
		}, wantErr: true, wantIn: "signing method"},
		{name: "signed by another Ed25519 key", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, adminClaims, signer.kid, otherKey)
		}, wantErr: true, wantIn: "signature"},
		{name: "HS256 with the public key as secret", token: func() string {
			return sign(t, jwt.SigningMethodHS256, adminClaims, signer.kid, []byte(signer.pub))
		}, wantErr: true, wantIn: "signing method"},
		{name: "tampered payload", token: tampered, wantErr: true, wantIn: "signature"},
		{name: "unknown kid", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, c, "nope", signer.priv)
		}, wantErr: true, wantIn: "unknown kid"},
		{name: "no kid", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, c, "", signer.priv)
		}, wantErr: true, wantIn: "kid"},
		{name: "wrong audience", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, wrongAud, signer.kid, signer.priv)
		}, wantErr: true, wantIn: "aud"},
		{name: "wrong issuer", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, wrongIss, signer.kid, signer.priv)
		}, wantErr: true, wantIn: "iss"},
		{name: "no exp", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, noExp, signer.kid, signer.priv)
		}, wantErr: true, wantIn: "exp"},
		{name: "unknown sid", token: func() string {
			return sign(t, jwt.SigningMethodEdDSA, otherSID, signer.kid, signer.priv)
		}, wantErr: true, wantIn: "login session ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			defer e.clock.Advance(-tt.advance)
			got, err := e.svc.Verify(tt.token())
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want := Principal{User: "bob", Role: Clinician, SessionID: p.SessionID, TokenExpires: tok.Expires, LoginExpires: p.LoginExpires}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Verify (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify err = %v, want ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Verify err %q does not mention %q", err, tt.wantIn)
			}
		})
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func cmpStrings(got jwt.ClaimStrings, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestSessionRevocation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *env, p Principal) error
		wantIn string
	}{
		{"logout", func(e *env, p Principal) error { return e.svc.Logout(p) }, "login session ended"},
		{"disable user", func(e *env, p Principal) error { return e.svc.DisableUser("bob") }, "login session ended"},
		{"set password", func(e *env, p Principal) error { return e.svc.SetPassword("bob", "the new password") }, "login session ended"},
		{"disabled without ending sessions", func(e *env, p Principal) error {
			return e.st.UpdateUser("bob", func(u *User) error { u.Disabled = true; return nil })
		}, "disabled"},
		{"user deleted", func(e *env, p Principal) error {
			// The store has no delete; simulate a user that vanished by
			// pointing a live session at a name that does not exist.
			l, _ := e.st.GetLogin(p.SessionID)
			l.User = "ghost"
			return e.st.PutLogin(l)
		}, "belongs to another user"},
		{"login lifetime passed", func(e *env, p Principal) error {
			e.clock.Advance(12 * time.Hour)
			return nil
		}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.TokenTTL = 12 * time.Hour })
			e.addUsers(t)
			p, tok := e.login(t, "bob", bobPW)
			p2, tok2 := e.login(t, "bob", bobPW)
			if _, err := e.svc.Verify(tok.Value); err != nil {
				t.Fatal(err)
			}
			if err := tt.revoke(e, p); err != nil {
				t.Fatal(err)
			}
			_, err := e.svc.Verify(tok.Value)
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Verify after %s = %v, want ErrInvalidToken mentioning %q", tt.name, err, tt.wantIn)
			}
			if _, err := e.svc.Renew(p); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Renew after %s = %v, want ErrInvalidToken", tt.name, err)
			}
			// Every way of ending a login ends the user's other logins
			// too: a logout at one terminal signs the user out at all.
			// (The last two cases change only the first login.)
			_, err2 := e.svc.Verify(tok2.Value)
			if tt.name != "disabled without ending sessions" && tt.name != "user deleted" && !errors.Is(err2, ErrInvalidToken) {
				t.Errorf("%s left the user's other login %s valid: %v", tt.name, p2.SessionID, err2)
			}
		})
	}
}

func TestRoleChangeVisible(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	_, tok := e.login(t, "bob", bobPW)
	if err := e.svc.SetRole("bob", Approver); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Verify(tok.Value)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != Approver {
		t.Errorf("role after SetRole = %q, want approver", p.Role)
	}
	if err := e.svc.SetRole("bob", "surgeon"); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("SetRole(surgeon) = %v, want ErrUnknownRole", err)
	}
	if err := e.svc.SetRole("alice", Clinician); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("demoting the last admin = %v, want ErrLastAdmin", err)
	}
}

func TestRenew(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TokenTTL = 15 * time.Minute; c.LoginLifetime = 30 * time.Minute })
	e.addUsers(t)
	p, _ := e.login(t, "bob", bobPW)
	steps := []struct {
		advance     time.Duration
		shouldRenew bool
		wantExpires time.Duration // from epoch
	}{
		{7 * time.Minute, false, 0},
		{time.Minute, true, 23 * time.Minute},      // at +8m, 7m of 15m left
		{15 * time.Minute, true, 30 * time.Minute}, // at +23m, capped at the login's end
		{0, false, 0}, // the token now ends with the login: nothing to extend
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		if got := e.svc.ShouldRenew(p); got != s.shouldRenew {
			t.Fatalf("step %d: ShouldRenew = %v, want %v", i, got, s.shouldRenew)
		}
		if !s.shouldRenew {
			continue
		}
		tok, err := e.svc.Renew(p)
		if err != nil {
			t.Fatalf("step %d: Renew: %v", i, err)
		}
		if want := epoch.Add(s.wantExpires); !tok.Expires.Equal(want) {
			t.Errorf("step %d: renewed token expires %v, want %v", i, tok.Expires, want)
		}
		if p, err = e.svc.Verify(tok.Value); err != nil {
			t.Fatalf("step %d: Verify renewed: %v", i, err)
		}
		if claimsOf(t, tok.Value).SID != p.SessionID {
			t.Errorf("step %d: renewed token has another sid", i)
		}
	}
	e.clock.Advance(7 * time.Minute) // +30m: the login session's end
	if _, err := e.svc.Renew(p); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("Renew after the login's end = %v, want ErrInvalidToken", err)
	}
}

func TestKeyFile(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	path := filepath.Join(e.dir, KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	_, tok := e.login(t, "bob", bobPW)

	// A second Service on the same directory loads the same key.
	again, err := New(Config{DataDir: e.dir, Params: cheapParams, Now: e.clock.Now}, e.st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Verify(tok.Value); err != nil {
		t.Errorf("token from the first Service rejected by the second: %v", err)
	}

	// No temporary files are left behind.
	entries, _ := os.ReadDir(e.dir)
	for _, de := range entries {
		if strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("leftover temporary file %s", de.Name())
		}
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{DataDir: e.dir, Params: cheapParams}, e.st)
	if !errors.Is(err, ErrUnsafeKeyFile) || !strings.Contains(err.Error(), path) {
		t.Errorf("New with a 0644 key file = %v, want ErrUnsafeKeyFile naming %s", err, path)
	}
}

func TestKeyFileCorrupt(t *testing.T) {
	tests := []struct {
		name, content, wantIn string
	}{
		{"not json", "{", "parse key file"},
		{"no keys", `{"keys":[]}`, "no keys"},
		{"short seed", `{"keys":[{"kid":"a","ed25519_seed":"` + base64.StdEncoding.EncodeToString([]byte("short")) + `"}]}`, "ed25519_seed"},
		{"repeated kid", `{"keys":[{"kid":"a","ed25519_seed":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"},{"kid":"a","ed25519_seed":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}]}`, "repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if err := os.WriteFile(filepath.Join(e.dir, KeyFileName), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{DataDir: e.dir, Params: cheapParams}, e.st)
			if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("New = %v, want error mentioning %q", err, tt.wantIn)
			}
		})
	}
}

func TestRotateKey(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TokenTTL = time.Hour })
	e.addUsers(t)
	_, oldTok := e.login(t, "bob", bobPW)
	oldKid := kidOf(t, oldTok.Value)

	for i := 1; i <= 3; i++ {
		e.clock.Advance(time.Second)
		if err := e.svc.RotateKey(); err != nil {
			t.Fatal(err)
		}
		_, tok := e.login(t, "bob", bobPW)
		if kid := kidOf(t, tok.Value); kid == oldKid {
			t.Fatalf("rotation %d: new tokens still signed with kid %s", i, kid)
		}
		_, err := e.svc.Verify(oldTok.Value)
		switch {
		case i < 3 && err != nil:
			t.Errorf("rotation %d: old token rejected: %v", i, err)
		case i == 3 && !errors.Is(err, ErrInvalidToken):
			t.Errorf("rotation %d: token of a dropped key = %v, want ErrInvalidToken", i, err)
		}
	}
	if n := len(e.svc.keys.Load().keys); n != maxKeys {
		t.Errorf("%d keys kept, want %d", n, maxKeys)
	}
	// The rotated set is what a restart loads, newest signing.
	again, err := New(Config{DataDir: e.dir, Params: cheapParams, Now: e.clock.Now}, e.st)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.keys.Load().signer().kid, e.svc.keys.Load().signer().kid; got != want {
		t.Errorf("after restart signer is %s, want %s", got, want)
	}
	fi, _ := os.Stat(filepath.Join(e.dir, KeyFileName))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode after rotation %v", fi.Mode().Perm())
	}
}
