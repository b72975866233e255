package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/broker/record"
)

func TestLoginOutcomes(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	if err := e.svc.AddUser("carol", Clinician, "carol's password"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DisableUser("carol"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, password string
		wantErr              error
		wantOutcome          string
	}{
		{"success", "bob", bobPW, nil, "success"},
		{"name is case-insensitive", "BOB", bobPW, nil, "success"},
		{"wrong password", "bob", "not bob's password", ErrBadCredentials, "bad_credentials"},
		{"unknown user", "nobody", bobPW, ErrBadCredentials, "bad_credentials"},
		{"disabled user", "carol", "carol's password", ErrBadCredentials, "bad_credentials"},
		{"invalid name", "bob's long password", bobPW, ErrBadCredentials, "bad_credentials"},
		{"empty", "", "", ErrBadCredentials, "bad_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.logs.String())
			p, tok, err := e.svc.Login(context.Background(), tt.user, tt.password, "192.0.2.7:4444")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Login err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if p.User != "bob" || p.Role != Clinician || p.SessionID == "" || tok.Value == "" {
					t.Errorf("Login = %+v, %+v", p, tok)
				}
				if want := epoch.Add(15 * time.Minute); !tok.Expires.Equal(want) || !p.TokenExpires.Equal(want) {
					t.Errorf("token expires %v, want %v", tok.Expires, want)
				}
				if want := epoch.Add(12 * time.Hour); !p.LoginExpires.Equal(want) {
					t.Errorf("login expires %v, want %v", p.LoginExpires, want)
				}
				l, err := e.st.GetLogin(p.SessionID)
				if err != nil || l.User != "bob" || l.RemoteAddr != "192.0.2.7" {
					t.Errorf("stored login = %+v, %v", l, err)
				}
			}
			logs := e.logs.String()[before:]
			var rec map[string]any
			if err := json.Unmarshal([]byte(strings.SplitN(logs, "\n", 2)[0]), &rec); err != nil {
				t.Fatalf("log %q: %v", logs, err)
			}
			if rec["event"] != "login" || rec["outcome"] != tt.wantOutcome || rec["remote"] != "192.0.2.7" {
				t.Errorf("log record %v, want event=login outcome=%s remote=192.0.2.7", rec, tt.wantOutcome)
			}
			if tt.password != "" && strings.Contains(logs, tt.password) {
				t.Errorf("log contains the password: %s", logs)
			}
			if tok.Value != "" && strings.Contains(logs, tok.Value) {
				t.Errorf("log contains the token: %s", logs)
			}
		})
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	ctx := context.Background()
	attempt := func(pw string) error {
		_, _, err := e.svc.Login(ctx, "bob", pw, "192.0.2.1")
		return err
	}

	// Four failures and a success: the success resets the count.
	for range 4 {
		if err := attempt("wrong password!"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure: err = %v", err)
		}
	}
	if err := attempt(bobPW); err != nil {
		t.Fatalf("login after 4 failures: %v", err)
	}

	// Five failures within the window lock the name, even for the right
	// password.
	for i := range 5 {
		e.clock.Advance(time.Minute)
		if err := attempt("wrong password!"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: err = %v", i+1, err)
		}
	}
	if !strings.Contains(e.logs.String(), `"event":"lockout"`) {
		t.Error("no lockout event logged")
	}
	// The first counted failure was at +1m, so the lock holds until +16m.
	for _, at := range []time.Duration{0, 10*time.Minute + 59*time.Second} {
		e.clock.Advance(at)
		if err := attempt(bobPW); !errors.Is(err, ErrLocked) {
			t.Fatalf("right password while locked: err = %v, want ErrLocked", err)
		}
	}
	// Another user is not affected.
	if err := attempt2(e, "alice", alicePW); err != nil {
		t.Errorf("alice locked out by bob's failures: %v", err)
	}
	e.clock.Advance(time.Second)
	if err := attempt(bobPW); err != nil {
		t.Fatalf("login after the window: %v", err)
	}
}

func attempt2(e *env, user, pw string) error {
	_, _, err := e.svc.Login(context.Background(), user, pw, "198.51.100.1")
	return err
}

func TestLockoutUnknownUserLooksTheSame(t *testing.T) {
	e := newEnv(t, nil)
	for range 5 {
		if err := attempt2(e, "ghost", "some password!"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("err = %v", err)
		}
	}
	if err := attempt2(e, "ghost", "some password!"); !errors.Is(err, ErrLocked) {
		t.Fatalf("unknown user after 5 failures: err = %v, want ErrLocked like a real one", err)
	}
}

func TestLockoutConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n) // one per goroutine: never blocks
	for range n {
		wg.Go(func() { errs <- attempt2(e, "bob", "guess guess guess") })
	}
	wg.Wait()
	close(errs)
	counts := map[error]int{}
	for err := range errs {
		switch {
		case errors.Is(err, ErrBadCredentials):
			counts[ErrBadCredentials]++
		case errors.Is(err, ErrLocked):
			counts[ErrLocked]++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if counts[ErrBadCredentials] != 5 || counts[ErrLocked] != n-5 {
		t.Errorf("concurrent guesses: %d checked, %d locked; want 5 and %d", counts[ErrBadCredentials], counts[ErrLocked], n-5)
	}
}

func TestEnableAndSetPasswordLiftLockout(t *testing.T) {
	for _, tt := range []struct {
		name   string
		unlock func(*Service) error
		pw     string
	}{
		{"SetPassword", func(s *Service) error { return s.SetPassword("bob", "a brand new password") }, "a brand new password"},
		{"EnableUser", func(s *Service) error { return s.EnableUser("bob") }, bobPW},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.addUsers(t)
			for range 5 {
				_ = attempt2(e, "bob", "wrong wrong wrong")
			}
			if err := attempt2(e, "bob", bobPW); !errors.Is(err, ErrLocked) {
				t.Fatalf("err = %v, want ErrLocked", err)
			}
			if err := tt.unlock(e.svc); err != nil {
				t.Fatal(err)
			}
			if err := attempt2(e, "bob", tt.pw); err != nil {
				t.Errorf("login after %s: %v", tt.name, err)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimitPerMinute = 3 })
	e.addUsers(t)
	try := func(remote string) error {
		_, _, err := e.svc.Login(context.Background(), "bob", bobPW, remote)
		return err
	}
	steps := []struct {
		advance time.Duration
		remote  string
		wantErr error
	}{
		{0, "203.0.113.5:1000", nil},
		{0, "203.0.113.5:1001", nil},
		{0, "203.0.113.5:1002", nil},
		{0, "203.0.113.5:1003", ErrRateLimited}, // same host, other port
		{0, "203.0.113.5", ErrRateLimited},
		{0, "[2001:db8::1]:443", nil}, // another address has its own bucket
		{19 * time.Second, "203.0.113.5:1", ErrRateLimited},
		{time.Second, "203.0.113.5:1", nil}, // 20s refill one token at 3/min
		{0, "203.0.113.5:1", ErrRateLimited},
		{time.Hour, "203.0.113.5:1", nil},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		if err := try(s.remote); !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d (%s): err = %v, want %v", i, s.remote, err, s.wantErr)
		}
	}
	if !strings.Contains(e.logs.String(), `"outcome":"rate_limited"`) {
		t.Error("rate-limited attempt not logged")
	}
}

func TestRateLimitOff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimitPerMinute = -1 })
	e.addUsers(t)
	for i := range 40 {
		if err := attempt2(e, "bob", bobPW); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
}

func TestLoginContextCanceledWhileWaitingForHash(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentHashes = 1 })
	e.addUsers(t)
	e.svc.hashSem <- struct{}{} // occupy the only slot
	defer e.svc.releaseHash()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := e.svc.Login(ctx, "bob", bobPW, "192.0.2.1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestLoginUpgradesHash(t *testing.T) {
	e := newEnv(t, nil)
	old, err := HashPassword(bobPW, Params{Memory: 32, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(User{Name: "bob", Role: "clinician", PasswordHash: old}); err != nil {
		t.Fatal(err)
	}
	e.login(t, "bob", bobPW)
	u, _ := e.st.GetUser("bob")
	if !strings.Contains(u.PasswordHash, "$m=64,t=1,p=1$") {
		t.Errorf("hash not upgraded to the configured params: %s", u.PasswordHash)
	}
	e.login(t, "bob", bobPW)
}

func TestLoginPrunesExpiredSessions(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LoginLifetime = time.Hour; c.TokenTTL = time.Minute })
	e.addUsers(t)
	p1, _ := e.login(t, "bob", bobPW)
	e.clock.Advance(2 * time.Hour)
	e.login(t, "bob", bobPW)
	if _, err := e.st.GetLogin(p1.SessionID); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("expired login session not pruned: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{DataDir: "/x"}
	if err := c.CheckAndSetDefaults(); err != nil {
		t.Fatal(err)
	}
	got := []any{c.TokenTTL, c.LoginLifetime, c.LockoutThreshold, c.LockoutWindow, c.RateLimitPerMinute, c.SetupTokenTTL, c.Params}
	want := []any{15 * time.Minute, 12 * time.Hour, 5, 15 * time.Minute, 30, time.Hour, DefaultParams}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if c.Now == nil || c.Logger == nil || c.MaxConcurrentHashes < 1 {
		t.Error("Now, Logger or MaxConcurrentHashes not defaulted")
	}

	bad := []struct {
		cfg    Config
		wantIn string
	}{
		{Config{}, "DataDir"},
		{Config{DataDir: "/x", TokenTTL: -time.Second}, "TokenTTL"},
		{Config{DataDir: "/x", LoginLifetime: time.Millisecond}, "LoginLifetime"},
		{Config{DataDir: "/x", LockoutThreshold: -1}, "LockoutThreshold"},
		{Config{DataDir: "/x", Params: Params{Memory: 1, Time: 1, Threads: 1}}, "Params"},
		{Config{DataDir: "/x", MaxConcurrentHashes: -2}, "MaxConcurrentHashes"},
	}
	for _, tt := range bad {
		err := tt.cfg.CheckAndSetDefaults()
		if err == nil || !strings.Contains(err.Error(), tt.wantIn) {
			t.Errorf("CheckAndSetDefaults(%+v) = %v, want error naming %s", tt.cfg, err, tt.wantIn)
		}
	}
}
