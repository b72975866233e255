package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
)

// racers is how many goroutines the concurrency checks start at once.
const racers = 8

// jst is a zone other than UTC, so that the checks see whether a backend
// keeps instants rather than wall clocks.
var jst = time.FixedZone("JST", 9*60*60)

// t0 is the checks' reference time: not in UTC and with nanoseconds.
var t0 = time.Date(2026, 4, 1, 9, 0, 0, 123456789, jst)

// diff compares two records: times by instant, nil and empty slices alike.
func diff(want, got any) string { return cmp.Diff(want, got, cmpopts.EquateEmpty()) }

// race runs fn(0) … fn(n-1) in n goroutines released at the same moment
// and returns their errors by index once all have returned.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winners counts the nil errors and checks that every other one is want.
func winners(f *faults, what string, errs []error, want error) int {
	n := 0
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, want):
			f.addf("%s: racer %d: got %v, want nil or %v", what, i, err, want)
		}
	}
	return n
}

func checkLifecycle(e *env) error {
	var f faults
	if err := e.b.Check(); err != nil {
		f.addf("Check on an open backend: %v", err)
	}
	if err := e.b.Close(); err != nil {
		f.addf("Close: %v", err)
	}
	if err := e.b.Check(); err == nil {
		f.addf("Check after Close returned nil, want an error")
	}
	if err := e.b.Close(); err != nil {
		f.addf("second Close: %v, want nil", err)
	}
	return f.err()
}

func checkUsersCRUD(e *env) error {
	var f faults
	b := e.b
	if _, err := b.GetUser("nobody"); !errors.Is(err, record.ErrNotFound) {
		f.addf("GetUser(missing): %v, want record.ErrNotFound", err)
	}
	if err := b.CreateUser(auth.User{Role: "clinician"}); err == nil {
		f.addf("CreateUser with an empty name succeeded")
	}
	alice := auth.User{Name: "alice", Role: "clinician", PasswordHash: "h1", CreatedAt: t0, UpdatedAt: t0}
	if err := b.CreateUser(alice); err != nil {
		f.addf("CreateUser: %v", err)
		return f.err()
	}
	if got, err := b.GetUser("alice"); err != nil || diff(alice, got) != "" {
		f.addf("GetUser after CreateUser: %v, -want +got:\n%s", err, diff(alice, got))
	}
	if err := b.CreateUser(auth.User{Name: "alice", Role: "admin"}); !errors.Is(err, record.ErrExists) {
		f.addf("CreateUser(taken name): %v, want record.ErrExists", err)
	}
	if got, _ := b.GetUser("alice"); got.Role != "clinician" {
		f.addf("a refused CreateUser changed the user: role %q", got.Role)
	}

	later := t0.Add(time.Hour)
	if err := b.UpdateUser("alice", func(u *auth.User) error {
		u.Role, u.PledgeAcceptedAt, u.PledgeVersion, u.UpdatedAt = "admin", later, "v1", later
		return nil
	}); err != nil {
		f.addf("UpdateUser: %v", err)
	}
	want := alice
	want.Role, want.PledgeAcceptedAt, want.PledgeVersion, want.UpdatedAt = "admin", later, "v1", later
	if got, err := b.GetUser("alice"); err != nil || diff(want, got) != "" {
		f.addf("GetUser after UpdateUser: %v, -want +got:\n%s", err, diff(want, got))
	}

	refuse := errors.New("refused by fn")
	if err := b.UpdateUser("alice", func(u *auth.User) error {
		u.Role, u.Disabled = "auditor", true
		return refuse
	}); !errors.Is(err, refuse) {
		f.addf("UpdateUser whose fn fails: %v, want fn's error", err)
	}
	if err := b.UpdateUser("alice", func(u *auth.User) error { u.Name = "mallory"; u.Role = "auditor"; return nil }); err == nil {
		f.addf("UpdateUser that renames succeeded")
	}
	if _, err := b.GetUser("mallory"); !errors.Is(err, record.ErrNotFound) {
		f.addf("a refused rename created the new name: %v", err)
	}
	if got, _ := b.GetUser("alice"); diff(want, got) != "" {
		f.addf("a failed UpdateUser wrote, -want +got:\n%s", diff(want, got))
	}
	called := false
	if err := b.UpdateUser("nobody", func(*auth.User) error { called = true; return nil }); !errors.Is(err, record.ErrNotFound) {
		f.addf("UpdateUser(missing): %v, want record.ErrNotFound", err)
	}
	if called {
		f.addf("UpdateUser(missing) called fn")
	}
	return f.err()
}

func checkUsersList(e *env) error {
	var f faults
	b := e.b
	if list, err := b.ListUsers(); err != nil || len(list) != 0 {
		f.addf("ListUsers on an empty backend: %v %v", list, err)
	}
	users := []auth.User{
		{Name: "carol", Role: "admin"},
		{Name: "Zed", Role: "admin", Disabled: true},
		{Name: "alice", Role: "clinician"},
		{Name: "bob", Role: "admin"},
	}
	for _, u := range users {
		if err := b.CreateUser(u); err != nil {
			f.addf("CreateUser(%s): %v", u.Name, err)
			return f.err()
		}
	}
	list, err := b.ListUsers()
	if err != nil {
		f.addf("ListUsers: %v", err)
	}
	var names []string
	for _, u := range list {
		names = append(names, u.Name)
	}
	if want := []string{"Zed", "alice", "bob", "carol"}; !slices.Equal(names, want) {
		f.addf("ListUsers order = %q, want %q (by name, byte order)", names, want)
	}
	for role, want := range map[string]int{"admin": 2, "clinician": 1, "auditor": 0} {
		if n, err := b.CountUsersWithRole(role); err != nil || n != want {
			f.addf("CountUsersWithRole(%s) = %d, %v, want %d (disabled users not counted)", role, n, err, want)
		}
	}
	return f.err()
}

func checkUsersConcurrentCreate(e *env) error {
	var f faults
	roles := make([]string, racers)
	errs := race(racers, func(i int) error {
		roles[i] = "role" + strings.Repeat("x", i)
		return e.b.CreateUser(auth.User{Name: "same", Role: roles[i]})
	})
	if n := winners(&f, "CreateUser", errs, record.ErrExists); n != 1 {
		f.addf("%d of %d concurrent CreateUser of one name succeeded, want exactly 1", n, racers)
	}
	got, err := e.b.GetUser("same")
	if err != nil {
		f.addf("GetUser after the race: %v", err)
	}
	for i, err := range errs {
		if err == nil && got.Role != roles[i] {
			f.addf("stored role %q is not the winner's %q", got.Role, roles[i])
		}
	}
	return f.err()
}

func checkUsersConcurrentUpdate(e *env) error {
	var f faults
	if err := e.b.CreateUser(auth.User{Name: "counter", Role: "clinician"}); err != nil {
		f.addf("CreateUser: %v", err)
		return f.err()
	}
	errs := race(racers, func(int) error {
		return e.b.UpdateUser("counter", func(u *auth.User) error { u.PasswordHash += "x"; return nil })
	})
	for i, err := range errs {
		if err != nil {
			f.addf("UpdateUser racer %d: %v", i, err)
		}
	}
	if got, _ := e.b.GetUser("counter"); len(got.PasswordHash) != racers {
		f.addf("after %d concurrent UpdateUser the field has %d of their changes: updates were lost", racers, len(got.PasswordHash))
	}
	return f.err()
}

func checkLoginsCRUD(e *env) error {
	var f faults
	b := e.b
	if _, err := b.GetLogin("nope"); !errors.Is(err, record.ErrNotFound) {
		f.addf("GetLogin(missing): %v, want record.ErrNotFound", err)
	}
	if err := b.PutLogin(auth.Login{User: "alice"}); err == nil {
		f.addf("PutLogin with an empty ID succeeded")
	}
	if err := b.PutLogin(auth.Login{ID: "l0"}); err == nil {
		f.addf("PutLogin with an empty user succeeded")
	}
	if _, err := b.GetLogin("l0"); !errors.Is(err, record.ErrNotFound) {
		f.addf("a refused PutLogin stored a login: %v", err)
	}
	l := auth.Login{ID: "l1", User: "alice", Created: t0, Expires: t0.Add(8 * time.Hour), RemoteAddr: "192.0.2.7"}
	if err := b.PutLogin(l); err != nil {
		f.addf("PutLogin: %v", err)
		return f.err()
	}
	if got, err := b.GetLogin("l1"); err != nil || diff(l, got) != "" {
		f.addf("GetLogin after PutLogin: %v, -want +got:\n%s", err, diff(l, got))
	}
	l.Expires = t0.Add(9 * time.Hour)
	if err := b.PutLogin(l); err != nil {
		f.addf("PutLogin replacing: %v", err)
	}
	if got, _ := b.GetLogin("l1"); diff(l, got) != "" {
		f.addf("PutLogin did not replace, -want +got:\n%s", diff(l, got))
	}
	if err := b.DeleteLogin("l1"); err != nil {
		f.addf("DeleteLogin: %v", err)
	}
	if _, err := b.GetLogin("l1"); !errors.Is(err, record.ErrNotFound) {
		f.addf("GetLogin after DeleteLogin: %v, want record.ErrNotFound", err)
	}
	if err := b.DeleteLogin("l1"); err != nil {
		f.addf("DeleteLogin(missing): %v, want nil", err)
	}
	return f.err()
}

func checkLoginsTake(e *env) error {
	var f faults
	b := e.b
	logins := []auth.Login{
		{ID: "a2", User: "alice", Created: t0.Add(2 * time.Minute)},
		{ID: "a0", User: "alice", Created: t0},
		{ID: "b0", User: "bob", Created: t0},
		{ID: "a1", User: "alice", Created: t0.Add(time.Minute)},
		{ID: "c0", User: "carol", Created: t0},
	}
	for _, l := range logins {
		if err := b.PutLogin(l); err != nil {
			f.addf("PutLogin(%s): %v", l.ID, err)
			return f.err()
		}
	}
	taken, err := b.TakeLoginsOf("alice")
	if err != nil {
		f.addf("TakeLoginsOf: %v", err)
	}
	if ids := loginIDs(taken); !slices.Equal(ids, []string{"a0", "a1", "a2"}) {
		f.addf("TakeLoginsOf = %q, want a0 a1 a2 (oldest first)", ids)
	}
	for _, id := range []string{"a0", "a1", "a2"} {
		if _, err := b.GetLogin(id); !errors.Is(err, record.ErrNotFound) {
			f.addf("GetLogin(%s) after TakeLoginsOf: %v, want record.ErrNotFound", id, err)
		}
	}
	if again, err := b.TakeLoginsOf("alice"); err != nil || len(again) != 0 {
		f.addf("second TakeLoginsOf = %q, %v, want none", loginIDs(again), err)
	}
	ids, err := b.DeleteLoginsOf("bob")
	if err != nil || !slices.Equal(ids, []string{"b0"}) {
		f.addf("DeleteLoginsOf(bob) = %q, %v, want [b0]", ids, err)
	}
	if ids, err := b.DeleteLoginsOf("nobody"); err != nil || len(ids) != 0 {
		f.addf("DeleteLoginsOf(user without logins) = %q, %v, want none", ids, err)
	}
	if _, err := b.GetLogin("c0"); err != nil {
		f.addf("another user's login is gone: %v", err)
	}
	return f.err()
}

func loginIDs(ls []auth.Login) []string {
	ids := []string{}
	for _, l := range ls {
		ids = append(ids, l.ID)
	}
	return ids
}

func checkLoginsConcurrentTake(e *env) error {
	var f faults
	const n = 20
	for i := range n {
		l := auth.Login{ID: "l" + strings.Repeat("i", i+1), User: "alice", Created: t0.Add(time.Duration(i) * time.Second)}
		if err := e.b.PutLogin(l); err != nil {
			f.addf("PutLogin: %v", err)
			return f.err()
		}
	}
	got := make([][]auth.Login, racers)
	errs := race(racers, func(i int) error {
		var err error
		got[i], err = e.b.TakeLoginsOf("alice")
		return err
	})
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			f.addf("TakeLoginsOf racer %d: %v", i, err)
		}
		for _, l := range got[i] {
			seen[l.ID]++
		}
	}
	if len(seen) != n {
		f.addf("concurrent TakeLoginsOf returned %d distinct logins, want all %d", len(seen), n)
	}
	for id, k := range seen {
		if k > 1 {
			f.addf("login %s was taken %d times, want once", id, k)
		}
	}
	return f.err()
}

func checkLoginsPrune(e *env) error {
	var f faults
	now := t0.Add(time.Hour).UTC() // the same instants in another zone
	logins := []auth.Login{
		{ID: "past", User: "alice", Expires: now.Add(-time.Nanosecond)},
		{ID: "now", User: "alice", Expires: now.In(jst)},
		{ID: "future", User: "alice", Expires: now.Add(time.Nanosecond)},
	}
	for _, l := range logins {
		if err := e.b.PutLogin(l); err != nil {
			f.addf("PutLogin(%s): %v", l.ID, err)
			return f.err()
		}
	}
	if err := e.b.PruneLogins(now); err != nil {
		f.addf("PruneLogins: %v", err)
	}
	for id, kept := range map[string]bool{"past": false, "now": false, "future": true} {
		_, err := e.b.GetLogin(id)
		switch {
		case kept && err != nil:
			f.addf("PruneLogins removed login %q expiring after now: %v", id, err)
		case !kept && !errors.Is(err, record.ErrNotFound):
			f.addf("PruneLogins kept login %q expiring at or before now: %v", id, err)
		}
	}
	return f.err()
}

func checkSettings(e *env) error {
	var f faults
	b := e.b
	if v, ok, err := b.Setting("banner"); err != nil || ok || v != "" {
		f.addf("Setting(missing) = %q, %v, %v, want \"\", false, nil", v, ok, err)
	}
	if err := b.SetSetting("", "x"); err == nil {
		f.addf("SetSetting with an empty key succeeded")
	}
	for _, v := range []string{"院内専用 — internal use", "second value"} {
		if err := b.SetSetting("banner", v); err != nil {
			f.addf("SetSetting: %v", err)
		}
		if got, ok, err := b.Setting("banner"); err != nil || !ok || got != v {
			f.addf("Setting after SetSetting(%q) = %q, %v, %v", v, got, ok, err)
		}
	}
	if err := b.SetSetting("banner", ""); err != nil {
		f.addf("SetSetting(empty value): %v", err)
	}
	if got, ok, err := b.Setting("banner"); err != nil || !ok || got != "" {
		f.addf("Setting of a key set to \"\" = %q, %v, %v, want \"\", true, nil", got, ok, err)
	}
	if _, ok, _ := b.Setting("pledge"); ok {
		f.addf("SetSetting of one key created another")
	}
	// Several keys at once: all or none.
	if err := b.SetSettings(map[string]string{"banner": "both", "pledge": "both"}); err != nil {
		f.addf("SetSettings: %v", err)
	}
	for _, k := range []string{"banner", "pledge"} {
		if got, ok, err := b.Setting(k); err != nil || !ok || got != "both" {
			f.addf("Setting(%q) after SetSettings = %q, %v, %v, want \"both\"", k, got, ok, err)
		}
	}
	if err := b.SetSettings(map[string]string{"banner": "half", "": "bad"}); err == nil {
		f.addf("SetSettings with an empty key succeeded")
	}
	if got, _, _ := b.Setting("banner"); got != "both" {
		f.addf("a refused SetSettings changed banner to %q: it must write all keys or none", got)
	}
	return f.err()
}
