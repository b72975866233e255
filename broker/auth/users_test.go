package auth

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoji-rbi/shoji/broker/audit"
)

func TestAddUserErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	tests := []struct {
		name, user string
		role       Role
		password   string
		wantErr    error
		wantIn     string
	}{
		{"taken", "alice", Clinician, "another password", ErrUserExists, `"alice"`},
		{"taken, other case", "ALICE", Clinician, "another password", ErrUserExists, `"alice"`},
		{"bad name", "no spaces allowed", Clinician, "another password", ErrBadUsername, "a-z"},
		{"bad role", "dave", "surgeon", "another password", ErrUnknownRole, `"surgeon"`},
		{"weak password", "dave", Clinician, "short", ErrWeakPassword, "at least 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.svc.AddUser(tt.user, tt.role, tt.password)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("AddUser = %v, want %v mentioning %s", err, tt.wantErr, tt.wantIn)
			}
		})
	}
	if _, err := e.svc.User("dave"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("a failed AddUser left user dave behind: %v", err)
	}
}

func TestListUsersAndPledge(t *testing.T) {
	trail := audit.NewMemory()
	e := newEnv(t, func(c *Config) { c.Audit = trail })
	e.addUsers(t)
	e.clock.Advance(time.Hour)
	if err := e.svc.AddUser("Auditor.1", Auditor, "auditor's password"); err != nil {
		t.Fatal(err)
	}
	p, tok := e.login(t, "bob", bobPW)
	if p.PledgeVersion != "" {
		t.Errorf("new user has accepted the pledge: %+v", p)
	}
	if err := e.svc.AcceptPledge("bob", "v1"); err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.Verify(tok.Value); err != nil || p.PledgeVersion != "v1" {
		t.Errorf("after AcceptPledge(v1) Verify = %+v, %v; want version v1", p, err)
	}
	if err := e.svc.AcceptPledge("bob", "v2"); err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.Verify(tok.Value); err != nil || p.PledgeVersion != "v2" {
		t.Errorf("after AcceptPledge(v2) Verify = %+v, %v; want version v2", p, err)
	}
	if err := e.svc.AcceptPledge("nobody", "v1"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("AcceptPledge(nobody) = %v, want ErrNoSuchUser", err)
	}
	if err := e.svc.AcceptPledge("bob", ""); !errors.Is(err, ErrBadPledgeVersion) {
		t.Errorf("AcceptPledge without a version = %v, want ErrBadPledgeVersion", err)
	}
	var pledges [][2]string
	for _, ev := range trail.Events() {
		if ev.Type == audit.TypeUserChange && ev.What == "pledge" {
			pledges = append(pledges, [2]string{ev.Before, ev.After})
		}
	}
	if diff := cmp.Diff([][2]string{{"", "accepted v1"}, {"v1", "accepted v2"}}, pledges); diff != "" {
		t.Errorf("pledge audit records (before, after) (-want +got):\n%s", diff)
	}
	got, err := e.svc.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	want := []UserInfo{
		{Name: "alice", Role: Admin, CreatedAt: epoch},
		{Name: "auditor.1", Role: Auditor, CreatedAt: epoch.Add(time.Hour)},
		{Name: "bob", Role: Clinician, CreatedAt: epoch, PledgeVersion: "v2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}
	u, err := e.svc.User("BOB")
	if err != nil || u.Name != "bob" || u.PledgeVersion != "v2" {
		t.Errorf("User(BOB) = %+v, %v", u, err)
	}
}

func TestDisableUserEndsSessions(t *testing.T) {
	var (
		mu       sync.Mutex
		disabled []string
		ended    []string
	)
	e := newEnv(t, func(c *Config) {
		c.OnUserDisabled = func(user string) {
			mu.Lock()
			defer mu.Unlock()
			disabled = append(disabled, user)
		}
		c.OnLoginsEnded = func(user string, ids []string) {
			mu.Lock()
			defer mu.Unlock()
			ended = append(ended, ids...)
		}
	})
	e.addUsers(t)
	p1, tok1 := e.login(t, "bob", bobPW)
	p2, tok2 := e.login(t, "bob", bobPW)
	_, aliceTok := e.login(t, "alice", alicePW)

	if err := e.svc.DisableUser("Bob"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	slices.Sort(ended)
	wantEnded := []string{p1.SessionID, p2.SessionID}
	slices.Sort(wantEnded)
	if diff := cmp.Diff([]string{"bob"}, disabled); diff != "" {
		t.Errorf("OnUserDisabled calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantEnded, ended); diff != "" {
		t.Errorf("OnLoginsEnded ids (-want +got):\n%s", diff)
	}
	mu.Unlock()
	for _, tok := range []Token{tok1, tok2} {
		if _, err := e.svc.Verify(tok.Value); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a disabled user = %v, want ErrInvalidToken", err)
		}
	}
	if _, err := e.svc.Verify(aliceTok.Value); err != nil {
		t.Errorf("alice's token died with bob's: %v", err)
	}
	if err := attempt2(e, "bob", bobPW); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled user login = %v, want ErrBadCredentials", err)
	}
	if u, _ := e.svc.User("bob"); !u.Disabled {
		t.Error("bob not shown disabled")
	}

	if err := e.svc.DisableUser("alice"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("disabling the last admin = %v, want ErrLastAdmin", err)
	}
	if _, err := e.svc.Verify(aliceTok.Value); err != nil {
		t.Errorf("refused DisableUser still ended alice's session: %v", err)
	}
	if err := e.svc.DisableUser("nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("DisableUser(nobody) = %v, want ErrNoSuchUser", err)
	}

	if err := e.svc.EnableUser("bob"); err != nil {
		t.Fatal(err)
	}
	e.login(t, "bob", bobPW)
}

func TestSetPassword(t *testing.T) {
	e := newEnv(t, nil)
	e.addUsers(t)
	if err := e.svc.SetPassword("bob", "short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("SetPassword weak = %v, want ErrWeakPassword", err)
	}
	if err := e.svc.SetPassword("nobody", "a long new password"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("SetPassword(nobody) = %v, want ErrNoSuchUser", err)
	}
	if err := e.svc.SetPassword("bob", "a long new password"); err != nil {
		t.Fatal(err)
	}
	if err := attempt2(e, "bob", bobPW); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after SetPassword = %v", err)
	}
	e.login(t, "bob", "a long new password")
}
