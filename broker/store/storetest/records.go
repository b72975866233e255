package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

func checkPolicyCAS(e *env) error {
	var f faults
	b := e.b
	if doc, v, err := b.Policy(); err != nil || doc != nil || v != 0 {
		f.addf("Policy on an empty backend = %q, %d, %v, want nil, 0, nil", doc, v, err)
	}
	if _, err := b.PutPolicy(nil, 0); err == nil {
		f.addf("PutPolicy with an empty document succeeded")
	}
	if v, err := b.PutPolicy([]byte("one"), 0); err != nil || v != 1 {
		f.addf("first PutPolicy = %d, %v, want 1, nil", v, err)
	}
	for _, stale := range []int{0, 2, 7} {
		if _, err := b.PutPolicy([]byte("stale"), stale); !errors.Is(err, record.ErrConflict) {
			f.addf("PutPolicy(ifVersion %d) at version 1: %v, want record.ErrConflict", stale, err)
		}
	}
	if doc, v, err := b.Policy(); err != nil || string(doc) != "one" || v != 1 {
		f.addf("Policy after refused puts = %q, %d, %v, want \"one\", 1", doc, v, err)
	}
	if v, err := b.PutPolicy([]byte("two"), 1); err != nil || v != 2 {
		f.addf("PutPolicy(ifVersion 1) = %d, %v, want 2, nil", v, err)
	}
	if doc, v, err := b.Policy(); err != nil || string(doc) != "two" || v != 2 {
		f.addf("Policy = %q, %d, %v, want \"two\", 2", doc, v, err)
	}
	return f.err()
}

func checkPolicyCopies(e *env) error {
	var f faults
	in := []byte("document")
	if _, err := e.b.PutPolicy(in, 0); err != nil {
		f.addf("PutPolicy: %v", err)
		return f.err()
	}
	in[0] = 'X'
	out, _, _ := e.b.Policy()
	if string(out) != "document" {
		f.addf("changing the slice passed to PutPolicy changed the stored document to %q", out)
	}
	if len(out) > 0 {
		out[0] = 'Y'
	}
	if again, _, _ := e.b.Policy(); string(again) != "document" {
		f.addf("changing the slice Policy returned changed the stored document to %q", again)
	}
	return f.err()
}

func checkPolicyConcurrentWriters(e *env) error {
	var f faults
	if _, err := e.b.PutPolicy([]byte("base"), 0); err != nil {
		f.addf("PutPolicy: %v", err)
		return f.err()
	}
	versions := make([]int, racers)
	errs := race(racers, func(i int) error {
		var err error
		versions[i], err = e.b.PutPolicy(fmt.Appendf(nil, "racer %d", i), 1)
		return err
	})
	if n := winners(&f, "PutPolicy", errs, record.ErrConflict); n != 1 {
		f.addf("%d of %d concurrent PutPolicy(ifVersion 1) succeeded, want exactly 1", n, racers)
	}
	doc, v, err := e.b.Policy()
	if err != nil || v != 2 {
		f.addf("Policy after the race = version %d, %v, want 2", v, err)
	}
	for i, err := range errs {
		if err == nil && (versions[i] != 2 || string(doc) != fmt.Sprintf("racer %d", i)) {
			f.addf("winner %d got version %d and the stored document is %q, want 2 and its own", i, versions[i], doc)
		}
	}
	return f.err()
}

func checkPolicyAtomic(e *env) error {
	var f faults
	const writes = 30
	var done atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				doc, v, err := e.b.Policy()
				if err == nil && (v != 0 || doc != nil) && string(doc) != fmt.Sprintf("rev %d", v) {
					err = fmt.Errorf("read document %q with version %d: the two are from different writes", doc, v)
				}
				if err != nil {
					mu.Lock()
					f.addf("concurrent Policy: %v", err)
					mu.Unlock()
					return
				}
			}
		})
	}
	for v := range writes {
		if _, err := e.b.PutPolicy(fmt.Appendf(nil, "rev %d", v+1), v); err != nil {
			mu.Lock()
			f.addf("PutPolicy(ifVersion %d): %v", v, err)
			mu.Unlock()
			break
		}
	}
	done.Store(true)
	wg.Wait()
	return f.err()
}

func checkRequestsCRUD(e *env) error {
	var f faults
	b := e.b
	if _, err := b.SiteRequestByID("nope"); !errors.Is(err, record.ErrNotFound) {
		f.addf("SiteRequestByID(missing): %v, want record.ErrNotFound", err)
	}
	in := siterequest.Request{ID: "chosen", State: siterequest.Approved, User: "nurse", Host: "a.example", URL: "https://a.example/", Reason: "guideline", Created: t0}
	r, err := b.CreateSiteRequest(in)
	if err != nil {
		f.addf("CreateSiteRequest: %v", err)
		return f.err()
	}
	if r.ID == "" || r.ID == "chosen" || r.State != siterequest.Pending {
		f.addf("CreateSiteRequest returned ID %q state %q, want a fresh ID and pending", r.ID, r.State)
	}
	if got, err := b.SiteRequestByID(r.ID); err != nil || diff(r, got) != "" {
		f.addf("SiteRequestByID after create: %v, -want +got:\n%s", err, diff(r, got))
	}
	if r2, err := b.CreateSiteRequest(in); err != nil || r2.ID == r.ID {
		f.addf("second CreateSiteRequest = ID %q, %v, want another fresh ID", r2.ID, err)
	}
	refuse := errors.New("refused by fn")
	if _, err := b.UpdateSiteRequest(r.ID, func(x *siterequest.Request) error { x.State = siterequest.Rejected; return refuse }); !errors.Is(err, refuse) {
		f.addf("UpdateSiteRequest whose fn fails: %v, want fn's error", err)
	}
	decided := t0.Add(time.Hour)
	got, err := b.UpdateSiteRequest(r.ID, func(x *siterequest.Request) error {
		x.ID, x.State, x.DecidedBy, x.Decided = "renamed", siterequest.Approved, "boss", decided
		return nil
	})
	want := r
	want.State, want.DecidedBy, want.Decided = siterequest.Approved, "boss", decided
	if err != nil || diff(want, got) != "" {
		f.addf("UpdateSiteRequest returned %v, -want +got:\n%s", err, diff(want, got))
	}
	if stored, _ := b.SiteRequestByID(r.ID); diff(want, stored) != "" {
		f.addf("stored request after UpdateSiteRequest, -want +got:\n%s", diff(want, stored))
	}
	if _, err := b.UpdateSiteRequest("nope", func(*siterequest.Request) error { return nil }); !errors.Is(err, record.ErrNotFound) {
		f.addf("UpdateSiteRequest(missing): %v, want record.ErrNotFound", err)
	}
	return f.err()
}

func checkRequestsList(e *env) error {
	var f faults
	b := e.b
	if list, err := b.ListSiteRequests(nil); err != nil || list == nil || len(list) != 0 {
		f.addf("ListSiteRequests on an empty backend = %#v, %v, want an empty non-nil list", list, err)
	}
	for i, h := range []time.Duration{2, 0, 1} {
		user := "nurse"
		if i == 0 {
			user = "doctor"
		}
		if _, err := b.CreateSiteRequest(siterequest.Request{User: user, Host: fmt.Sprintf("h%d.example", h), Created: t0.Add(h * time.Hour)}); err != nil {
			f.addf("CreateSiteRequest: %v", err)
			return f.err()
		}
	}
	list, err := b.ListSiteRequests(nil)
	if hosts := requestHosts(list); err != nil || !slices.Equal(hosts, []string{"h2.example", "h1.example", "h0.example"}) {
		f.addf("ListSiteRequests(nil) = %q, %v, want newest first", hosts, err)
	}
	list, err = b.ListSiteRequests(func(r siterequest.Request) bool { return r.User == "nurse" })
	if hosts := requestHosts(list); err != nil || !slices.Equal(hosts, []string{"h1.example", "h0.example"}) {
		f.addf("ListSiteRequests(nurse) = %q, %v, want h1 h0", hosts, err)
	}
	if list, err := b.ListSiteRequests(func(siterequest.Request) bool { return false }); err != nil || list == nil || len(list) != 0 {
		f.addf("ListSiteRequests matching none = %#v, %v, want an empty non-nil list", list, err)
	}
	return f.err()
}

func requestHosts(rs []siterequest.Request) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Host)
	}
	return out
}

func checkRequestsConcurrentDecide(e *env) error {
	var f faults
	r, err := e.b.CreateSiteRequest(siterequest.Request{User: "nurse", Host: "a.example", Created: t0})
	if err != nil {
		f.addf("CreateSiteRequest: %v", err)
		return f.err()
	}
	decided := errors.New("already decided")
	errs := race(racers, func(i int) error {
		_, err := e.b.UpdateSiteRequest(r.ID, func(x *siterequest.Request) error {
			if x.State != siterequest.Pending {
				return decided
			}
			x.State, x.DecidedBy = siterequest.Approved, fmt.Sprintf("approver %d", i)
			return nil
		})
		return err
	})
	if n := winners(&f, "UpdateSiteRequest", errs, decided); n != 1 {
		f.addf("%d of %d concurrent decisions on one pending request succeeded, want exactly 1", n, racers)
	}
	return f.err()
}

func checkTransfersCRUD(e *env) error {
	var f faults
	b := e.b
	if err := b.CreateTransfer(transfer.Transfer{Name: "a.pdf"}); err == nil {
		f.addf("CreateTransfer with an empty ID succeeded")
	}
	if _, err := b.Transfer("nope"); !errors.Is(err, record.ErrNotFound) {
		f.addf("Transfer(missing): %v, want record.ErrNotFound", err)
	}
	tr := transfer.Transfer{
		ID: transfer.NewID(), Direction: transfer.Download, User: "nurse", Role: "clinician",
		Name: "検査結果.pdf", Size: 1234, State: transfer.Receiving, Created: t0, Updated: t0,
		Sent: []transfer.Sent{{Destination: "lab", File: "x.pdf", By: "boss", At: t0}},
	}
	if err := b.CreateTransfer(tr); err != nil {
		f.addf("CreateTransfer: %v", err)
		return f.err()
	}
	tr.Sent[0].By = "changed after the write"
	want := tr
	want.Sent = []transfer.Sent{{Destination: "lab", File: "x.pdf", By: "boss", At: t0}}
	if got, err := b.Transfer(tr.ID); err != nil || diff(want, got) != "" {
		f.addf("Transfer after CreateTransfer: %v, -want +got:\n%s", err, diff(want, got))
	}
	if err := b.CreateTransfer(transfer.Transfer{ID: tr.ID, Name: "other"}); !errors.Is(err, record.ErrExists) {
		f.addf("CreateTransfer(taken ID): %v, want record.ErrExists", err)
	}
	refuse := errors.New("refused by fn")
	if _, err := b.UpdateTransfer(tr.ID, func(x *transfer.Transfer) error { x.State = transfer.Released; return refuse }); !errors.Is(err, refuse) {
		f.addf("UpdateTransfer whose fn fails: %v, want fn's error", err)
	}
	got, err := b.UpdateTransfer(tr.ID, func(x *transfer.Transfer) error {
		x.ID, x.State, x.SHA256 = "renamed", transfer.Released, "abc"
		x.Sent = append(x.Sent, transfer.Sent{Destination: "ward", By: "boss", At: t0.Add(time.Hour)})
		return nil
	})
	want.State, want.SHA256 = transfer.Released, "abc"
	want.Sent = append(want.Sent, transfer.Sent{Destination: "ward", By: "boss", At: t0.Add(time.Hour)})
	if err != nil || diff(want, got) != "" {
		f.addf("UpdateTransfer returned %v, -want +got:\n%s", err, diff(want, got))
	}
	if stored, _ := b.Transfer(tr.ID); diff(want, stored) != "" {
		f.addf("stored transfer after UpdateTransfer, -want +got:\n%s", diff(want, stored))
	}
	if _, err := b.UpdateTransfer("nope", func(*transfer.Transfer) error { return nil }); !errors.Is(err, record.ErrNotFound) {
		f.addf("UpdateTransfer(missing): %v, want record.ErrNotFound", err)
	}
	return f.err()
}

func checkTransfersList(e *env) error {
	var f faults
	b := e.b
	if list, err := b.ListTransfers(nil); err != nil || list == nil || len(list) != 0 {
		f.addf("ListTransfers on an empty backend = %#v, %v, want an empty non-nil list", list, err)
	}
	for _, h := range []int{1, 3, 0, 2} {
		state := transfer.Released
		if h%2 == 1 {
			state = transfer.Held
		}
		tr := transfer.Transfer{ID: fmt.Sprintf("t%d", h), State: state, Created: t0.Add(time.Duration(h) * time.Hour)}
		if err := b.CreateTransfer(tr); err != nil {
			f.addf("CreateTransfer: %v", err)
			return f.err()
		}
	}
	list, err := b.ListTransfers(nil)
	if ids := transferIDs(list); err != nil || !slices.Equal(ids, []string{"t3", "t2", "t1", "t0"}) {
		f.addf("ListTransfers(nil) = %q, %v, want newest first", ids, err)
	}
	list, err = b.ListTransfers(func(t *transfer.Transfer) bool { return t.State == transfer.Held })
	if ids := transferIDs(list); err != nil || !slices.Equal(ids, []string{"t3", "t1"}) {
		f.addf("ListTransfers(held) = %q, %v, want t3 t1", ids, err)
	}
	return f.err()
}

func transferIDs(ts []transfer.Transfer) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func checkTransfersConcurrentUpdate(e *env) error {
	var f faults
	id := transfer.NewID()
	if err := e.b.CreateTransfer(transfer.Transfer{ID: id, State: transfer.Released, Created: t0}); err != nil {
		f.addf("CreateTransfer: %v", err)
		return f.err()
	}
	errs := race(racers, func(int) error {
		_, err := e.b.UpdateTransfer(id, func(t *transfer.Transfer) error { t.Saved++; return nil })
		return err
	})
	for i, err := range errs {
		if err != nil {
			f.addf("UpdateTransfer racer %d: %v", i, err)
		}
	}
	if got, _ := e.b.Transfer(id); got.Saved != racers {
		f.addf("after %d concurrent UpdateTransfer Saved = %d: updates were lost", racers, got.Saved)
	}
	return f.err()
}

func checkDestinations(e *env) error {
	var f faults
	b := e.b
	if list, err := b.Destinations(); err != nil || list == nil || len(list) != 0 {
		f.addf("Destinations on an empty backend = %#v, %v, want an empty non-nil list", list, err)
	}
	if err := b.DeleteDestination("nope"); !errors.Is(err, record.ErrNotFound) {
		f.addf("DeleteDestination(missing): %v, want record.ErrNotFound", err)
	}
	for _, n := range []string{"lab", "Ward", "archive"} {
		if err := b.PutDestination(transfer.Destination{Name: n, Dir: "/srv/" + n, Added: t0}); err != nil {
			f.addf("PutDestination(%s): %v", n, err)
			return f.err()
		}
	}
	replaced := transfer.Destination{Name: "lab", Dir: "/srv/lab2", Description: "新しい", AddedBy: "boss", Added: t0.Add(time.Hour)}
	if err := b.PutDestination(replaced); err != nil {
		f.addf("PutDestination replacing: %v", err)
	}
	list, err := b.Destinations()
	var names []string
	for _, d := range list {
		names = append(names, d.Name)
		if d.Name == "lab" && diff(replaced, d) != "" {
			f.addf("PutDestination did not replace, -want +got:\n%s", diff(replaced, d))
		}
	}
	if err != nil || !slices.Equal(names, []string{"Ward", "archive", "lab"}) {
		f.addf("Destinations = %q, %v, want by name (byte order)", names, err)
	}
	if err := b.DeleteDestination("lab"); err != nil {
		f.addf("DeleteDestination: %v", err)
	}
	if list, _ := b.Destinations(); len(list) != 2 {
		f.addf("Destinations after delete has %d entries, want 2", len(list))
	}
	return f.err()
}

func checkJournal(e *env) error {
	var f faults
	b := e.b
	if list, err := b.JournalEntries(); err != nil || len(list) != 0 {
		f.addf("JournalEntries on an empty backend = %v, %v", list, err)
	}
	if err := b.PutJournalEntry(store.JournalEntry{User: "nurse"}); err == nil {
		f.addf("PutJournalEntry with an empty session succeeded")
	}
	if err := b.PutJournalEntry(store.JournalEntry{Session: "s0"}); err == nil {
		f.addf("PutJournalEntry with an empty user succeeded")
	}
	entries := []store.JournalEntry{
		{Session: "s2", User: "a", Started: t0.Add(time.Hour)},
		{Session: "s3", User: "b", Started: t0},
		{Session: "s1", User: "c", Role: "clinician", Terminal: "ward-3", Started: t0},
	}
	for _, je := range entries {
		if err := b.PutJournalEntry(je); err != nil {
			f.addf("PutJournalEntry(%s): %v", je.Session, err)
			return f.err()
		}
	}
	ended := entries[0]
	ended.Ended = "browser crashed"
	if err := b.PutJournalEntry(ended); err != nil {
		f.addf("PutJournalEntry replacing: %v", err)
	}
	want := []store.JournalEntry{entries[2], entries[1], ended}
	if got, err := b.JournalEntries(); err != nil || diff(want, got) != "" {
		f.addf("JournalEntries (oldest first, then by session): %v, -want +got:\n%s", err, diff(want, got))
	}
	if err := b.DeleteJournalEntry("s3"); err != nil {
		f.addf("DeleteJournalEntry: %v", err)
	}
	if err := b.DeleteJournalEntry("s3"); err != nil {
		f.addf("DeleteJournalEntry(missing): %v, want nil", err)
	}
	if got, _ := b.JournalEntries(); len(got) != 2 {
		f.addf("JournalEntries after delete has %d entries, want 2", len(got))
	}
	return f.err()
}

func checkTime(e *env) error {
	var f faults
	now := time.Now() // carries a monotonic reading, which is not kept
	u := auth.User{Name: "t", Role: "clinician", CreatedAt: now, UpdatedAt: t0}
	if err := e.b.CreateUser(u); err != nil {
		f.addf("CreateUser: %v", err)
		return f.err()
	}
	got, err := e.b.GetUser("t")
	if err != nil {
		f.addf("GetUser: %v", err)
	}
	if !got.CreatedAt.Equal(now) || !got.UpdatedAt.Equal(t0) {
		f.addf("times came back as %v and %v, want the instants %v and %v", got.CreatedAt, got.UpdatedAt, now, t0)
	}
	if !got.PledgeAcceptedAt.IsZero() {
		f.addf("a zero time came back as %v", got.PledgeAcceptedAt)
	}
	return f.err()
}

func checkPersistence(e *env) error {
	if e.reopen == nil {
		return fmt.Errorf("no Reopen hook: %w", errSkip)
	}
	var f faults
	b := e.b
	u := auth.User{Name: "alice", Role: "admin", CreatedAt: t0}
	l := auth.Login{ID: "l1", User: "alice", Created: t0, Expires: t0.Add(time.Hour)}
	tr := transfer.Transfer{ID: "t1", Name: "a.pdf", State: transfer.Held, Created: t0}
	d := transfer.Destination{Name: "lab", Dir: "/srv/lab"}
	je := store.JournalEntry{Session: "s1", User: "alice", Started: t0}
	steps := []error{
		b.CreateUser(u), b.PutLogin(l), b.SetSetting("banner", "hello"), b.CreateTransfer(tr),
		b.PutDestination(d), b.PutJournalEntry(je),
	}
	if _, err := b.PutPolicy([]byte("doc"), 0); err != nil {
		steps = append(steps, err)
	}
	r, err := b.CreateSiteRequest(siterequest.Request{User: "alice", Host: "a.example", Created: t0})
	steps = append(steps, err)
	if err := errors.Join(steps...); err != nil {
		f.addf("writing before reopen: %v", err)
		return f.err()
	}

	b = e.reopen(e.t, b)
	if got, err := b.GetUser("alice"); err != nil || diff(u, got) != "" {
		f.addf("user after reopen: %v %s", err, diff(u, got))
	}
	if got, err := b.GetLogin("l1"); err != nil || diff(l, got) != "" {
		f.addf("login after reopen: %v %s", err, diff(l, got))
	}
	if v, ok, err := b.Setting("banner"); err != nil || !ok || v != "hello" {
		f.addf("setting after reopen = %q, %v, %v", v, ok, err)
	}
	if doc, v, err := b.Policy(); err != nil || string(doc) != "doc" || v != 1 {
		f.addf("policy after reopen = %q, %d, %v", doc, v, err)
	}
	if got, err := b.SiteRequestByID(r.ID); err != nil || diff(r, got) != "" {
		f.addf("site request after reopen: %v %s", err, diff(r, got))
	}
	if got, err := b.Transfer("t1"); err != nil || diff(tr, got) != "" {
		f.addf("transfer after reopen: %v %s", err, diff(tr, got))
	}
	if got, err := b.Destinations(); err != nil || diff([]transfer.Destination{d}, got) != "" {
		f.addf("destinations after reopen: %v %s", err, diff([]transfer.Destination{d}, got))
	}
	if got, err := b.JournalEntries(); err != nil || diff([]store.JournalEntry{je}, got) != "" {
		f.addf("journal after reopen: %v %s", err, diff([]store.JournalEntry{je}, got))
	}
	return f.err()
}
