package siterequest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/approval"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// memStore is an in-memory Store.
type memStore struct {
	mu   sync.Mutex
	reqs map[string]Request
	n    int
}

func (m *memStore) CreateSiteRequest(r Request) (Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	r.ID, r.State = fmt.Sprintf("r%d", m.n), Pending
	if m.reqs == nil {
		m.reqs = map[string]Request{}
	}
	m.reqs[r.ID] = r
	return r, nil
}

func (m *memStore) SiteRequestByID(id string) (Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.reqs[id]
	if !ok {
		return Request{}, fmt.Errorf("site request %q: %w", id, record.ErrNotFound)
	}
	return r, nil
}

func (m *memStore) UpdateSiteRequest(id string, fn func(*Request) error) (Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.reqs[id]
	if !ok {
		return Request{}, fmt.Errorf("site request %q: %w", id, record.ErrNotFound)
	}
	if err := fn(&r); err != nil {
		return Request{}, err
	}
	r.ID = id
	m.reqs[id] = r
	return r, nil
}

func (m *memStore) ListSiteRequests(match func(Request) bool) ([]Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Request{}
	for _, r := range m.reqs {
		if match == nil || match(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// memPolicies is an in-memory sitepolicy.Store.
type memPolicies struct {
	mu      sync.Mutex
	doc     []byte
	version int
}

func (m *memPolicies) Policy() ([]byte, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.doc, m.version, nil
}

func (m *memPolicies) PutPolicy(doc []byte, ifVersion int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ifVersion != m.version {
		return 0, record.ErrConflict
	}
	m.doc, m.version = doc, m.version+1
	return m.version, nil
}

// sink keeps the audit events it is given.
type sink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *sink) Commit(_ context.Context, e audit.Event) (audit.Event, error) {
	s.Record(e)
	return e, nil
}

func (s *sink) Record(e audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *sink) Close() error { return nil }

// of returns the events of the type.
func (s *sink) of(t audit.Type) []audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Event
	for _, e := range s.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// fixture is a Service over in-memory storage and the real site-policy
// service, whose policy has the profiles "ward" (the default) and
// "research".
type fixture struct {
	svc      *Service
	store    *memStore
	policy   *sitepolicy.Service
	audit    *sink
	notified []Request
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: &memStore{}, audit: &sink{}}
	now := func() time.Time { return t0 }
	f.policy = sitepolicy.New(sitepolicy.Options{Store: &memPolicies{}, Audit: f.audit, Now: now})
	if err := f.policy.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.policy.Change("admin1", 0, func(d *policy.Document) error {
		d.Profiles = []policy.Profile{{Name: "ward", Mode: policy.ModeAllowlist}, {Name: "research", Mode: policy.ModeAllowlist}}
		d.Default = "ward"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc = &Service{
		Store: f.store, Policy: f.policy, Audit: f.audit, Now: now,
		Notify: func(r Request) { f.notified = append(f.notified, r) },
	}
	return f
}

var nurse = audit.Actor{User: "nurse", Role: "clinician", Terminal: "10.0.0.5"}
var boss = audit.Actor{User: "boss", Role: "approver", Terminal: "10.0.0.9"}

// request makes a request of the nurse's for host.
func (f *fixture) request(t *testing.T, host, url string) Request {
	t.Helper()
	r, err := f.svc.Create(nurse, host, url, "guideline for the ward")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rules returns the patterns of the profile's rules.
func (f *fixture) rules(profile string) []string {
	var out []string
	for _, r := range f.policy.Current().Document().Profile(profile).Rules {
		out = append(out, r.Pattern)
	}
	return out
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name, host, url, reason string
		wantErr                 string // "" for success
	}{
		{"ok", " Journal.Example.ORG. ", "https://journal.example.org/a", "guideline", ""},
		{"empty host", "", "", "guideline", `host "": not a host name`},
		{"not a host", "a b", "", "guideline", `host "a b": not a host name`},
		{"no reason", "a.example", "", "  ", "reason: say why you need the site (at most 2000 bytes)"},
		{"long reason", "a.example", "", strings.Repeat("x", MaxReasonBytes+1), "reason: say why you need the site (at most 2000 bytes)"},
		{"long url", "a.example", "https://a.example/" + strings.Repeat("x", MaxURLBytes), "guideline", "url: too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r, err := f.svc.Create(nurse, tt.host, tt.url, tt.reason)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || err.Error() != tt.wantErr {
					t.Fatalf("Create = %v, want ErrInvalid saying %q", err, tt.wantErr)
				}
				if list, _ := f.store.ListSiteRequests(nil); len(list) != 0 || len(f.audit.of(audit.TypeSiteRequest)) != 0 {
					t.Errorf("a refused request was stored (%v) or audited", list)
				}
				return
			}
			want := Request{ID: r.ID, User: "nurse", Host: "journal.example.org", URL: tt.url, Reason: tt.reason,
				Profile: "ward", State: Pending, Created: t0}
			if err != nil || r != want {
				t.Fatalf("Create = %+v, %v, want %+v", r, err, want)
			}
			if ev := f.audit.of(audit.TypeSiteRequest); len(ev) != 1 || ev[0].Host != "journal.example.org" || ev[0].Actor != nurse {
				t.Errorf("audit records %+v, want one site request by the nurse", ev)
			}
		})
	}
}

// TestCreateProfileOfTerminal: a request is made under the profile the
// requester browses with, which an emergency profile for the terminal's
// group decides.
func TestCreateProfileOfTerminal(t *testing.T) {
	f := newFixture(t)
	if _, err := f.policy.Change("admin1", -1, func(d *policy.Document) error {
		d.Groups = []policy.Group{{Name: "er", Terminals: []string{"10.9.0.0/16"}}}
		d.Emergencies = []policy.Emergency{{Group: "er", Profile: "research", Reason: "drill", By: "admin1", Expires: t0.Add(time.Hour)}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc.Terminal = func(user string) (netip.Addr, bool) {
		return netip.MustParseAddr("10.9.1.1"), user == "nurse"
	}
	if r := f.request(t, "a.example", ""); r.Profile != "research" {
		t.Errorf("profile = %q, want the emergency profile research", r.Profile)
	}
}

// TestApproveOwnRefused: nobody approves or rejects their own request,
// whatever their role; the request stays pending and the policy unchanged.
func TestApproveOwnRefused(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, "a.example", "")
	version := f.policy.Current().Version()
	self := audit.Actor{User: "nurse", Role: "admin"}
	_, err := f.svc.Approve(self, r.ID, Approval{Profile: "ward"})
	if !errors.Is(err, approval.ErrOwnRequest) || err.Error() != "you cannot decide your own request; another approver must" {
		t.Fatalf("approving one's own request: %v, want approval.ErrOwnRequest", err)
	}
	if _, err := f.svc.Reject(self, r.ID, "no"); !errors.Is(err, approval.ErrOwnRequest) {
		t.Fatalf("rejecting one's own request: %v, want approval.ErrOwnRequest", err)
	}
	if got, _ := f.store.SiteRequestByID(r.ID); got.State != Pending || got.DecidedBy != "" {
		t.Errorf("request after refused decisions: %+v, want pending", got)
	}
	if v := f.policy.Current().Version(); v != version || len(f.rules("ward")) != 0 {
		t.Errorf("policy at version %d with ward rules %v, want version %d unchanged", v, f.rules("ward"), version)
	}
	if len(f.audit.of(audit.TypeSiteDecision)) != 0 || len(f.notified) != 0 {
		t.Errorf("a refused decision was audited or notified")
	}
}

// TestApproveDecidedRefused: a decided request is not decided again; the
// refusal says how it was decided.
func TestApproveDecidedRefused(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, "a.example", "")
	if _, err := f.svc.Reject(boss, r.ID, "use the library's copy"); err != nil {
		t.Fatal(err)
	}
	other := audit.Actor{User: "chief", Role: "admin"}
	_, err := f.svc.Approve(other, r.ID, Approval{Profile: "ward"})
	if !errors.Is(err, ErrDecided) || err.Error() != "the request was already rejected" {
		t.Fatalf("approving a rejected request: %v, want ErrDecided saying it was rejected", err)
	}
	if _, err := f.svc.Reject(other, r.ID, "again"); !errors.Is(err, ErrDecided) {
		t.Fatalf("rejecting a rejected request: %v, want ErrDecided", err)
	}
	if len(f.rules("ward")) != 0 {
		t.Errorf("ward rules %v after a refused approval, want none", f.rules("ward"))
	}
	if got, _ := f.store.SiteRequestByID(r.ID); got.State != Rejected || got.DecidedBy != "boss" {
		t.Errorf("request = %+v, want rejected by boss", got)
	}
}

// TestApprove: an approval adds the site to the chosen profile with its
// expiry and a note naming the request, records the decision, audits it
// and tells the requester.
func TestApprove(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, "a.example", "https://a.example:8443/guide")
	expires := t0.Add(30 * 24 * time.Hour)
	got, err := f.svc.Approve(boss, r.ID, Approval{Profile: "research", Expires: expires.In(time.FixedZone("JST", 9*3600)).Format(time.RFC3339), Comment: "for a month"})
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.State, want.Profile, want.Expires, want.Comment, want.DecidedBy, want.Decided = Approved, "research", expires, "for a month", "boss", t0
	if got != want {
		t.Fatalf("Approve = %+v, want %+v", got, want)
	}
	if stored, _ := f.store.SiteRequestByID(r.ID); stored != want {
		t.Errorf("stored %+v, want %+v", stored, want)
	}
	rules := f.policy.Current().Document().Profile("research").Rules
	if len(rules) != 1 || rules[0].Pattern != "a.example:8443" || !rules[0].Expires.Equal(expires) || rules[0].AddedBy != "boss" ||
		rules[0].Note != "site request "+r.ID+" by nurse: guideline for the ward" {
		t.Errorf("research rules = %+v, want a.example:8443 until %v added by boss with a note of the request", rules, expires)
	}
	if ev := f.audit.of(audit.TypeSiteDecision); len(ev) != 1 || ev[0].Outcome != "approved" || ev[0].Target != "nurse" || ev[0].Actor != boss {
		t.Errorf("decision records %+v, want one approval of the nurse's request by boss", ev)
	}
	if len(f.audit.of(audit.TypePolicyChange)) != 2 {
		t.Errorf("policy change records %d, want 2 (the fixture's and the approval's)", len(f.audit.of(audit.TypePolicyChange)))
	}
	if len(f.notified) != 1 || f.notified[0] != want {
		t.Errorf("notified %+v, want the approved request", f.notified)
	}

	// A second request for the same site adds no second rule.
	r2 := f.request(t, "a.example", "https://a.example:8443/other")
	if _, err := f.svc.Approve(boss, r2.ID, Approval{Profile: "research"}); err != nil {
		t.Fatal(err)
	}
	if got := f.rules("research"); len(got) != 1 {
		t.Errorf("research rules %v after a second approval of the site, want one", got)
	}
}

// TestApproveInvalid: a bad approval is refused before anything changes.
func TestApproveInvalid(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		ap      Approval
		class   error
		wantMsg string
	}{
		{"past expiry", "", Approval{Profile: "ward", Expires: "2020-01-01T00:00:00Z"}, ErrInvalid, "expires: want a future RFC 3339 time, e.g. 2027-01-31T00:00:00+09:00"},
		{"bad expiry", "", Approval{Profile: "ward", Expires: "tomorrow"}, ErrInvalid, "expires: want a future RFC 3339 time, e.g. 2027-01-31T00:00:00+09:00"},
		{"long comment", "", Approval{Profile: "ward", Comment: strings.Repeat("x", MaxCommentBytes+1)}, ErrInvalid, "comment: too long"},
		{"no such profile", "", Approval{Profile: "icu"}, ErrInvalid, `profile "icu": no such profile`},
		{"no such request", "nope", Approval{Profile: "ward"}, record.ErrNotFound, "no such request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.request(t, "a.example", "")
			id := r.ID
			if tt.id != "" {
				id = tt.id
			}
			_, err := f.svc.Approve(boss, id, tt.ap)
			if !errors.Is(err, tt.class) || err.Error() != tt.wantMsg {
				t.Fatalf("Approve = %v, want %v saying %q", err, tt.class, tt.wantMsg)
			}
			if got, _ := f.store.SiteRequestByID(r.ID); got.State != Pending || len(f.rules("ward")) != 0 {
				t.Errorf("after a refused approval: request %+v, ward rules %v", got, f.rules("ward"))
			}
		})
	}
}

// TestApproveConcurrent: of approvers deciding one request at once,
// exactly one wins; the others are told it was decided.
func TestApproveConcurrent(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, "a.example", "")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Approve(audit.Actor{User: fmt.Sprintf("approver%d", i)}, r.ID, Approval{Profile: "ward"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrDecided):
			t.Errorf("a losing approval: %v, want ErrDecided", err)
		}
	}
	if won != 1 || len(f.rules("ward")) != 1 {
		t.Errorf("%d approvals won, ward rules %v; want one and one", won, f.rules("ward"))
	}
}

func TestReject(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, "a.example", "")
	for _, comment := range []string{"", "  ", strings.Repeat("x", MaxCommentBytes+1)} {
		if _, err := f.svc.Reject(boss, r.ID, comment); !errors.Is(err, ErrInvalid) || err.Error() != "comment: say why the request is rejected" {
			t.Errorf("Reject with comment of %d bytes: %v, want ErrInvalid", len(comment), err)
		}
	}
	if _, err := f.svc.Reject(boss, "nope", "no"); !errors.Is(err, record.ErrNotFound) || err.Error() != "no such request" {
		t.Errorf("Reject of a missing request: %v, want record.ErrNotFound", err)
	}
	got, err := f.svc.Reject(boss, r.ID, "use the library's copy")
	want := r
	want.State, want.Comment, want.DecidedBy, want.Decided = Rejected, "use the library's copy", "boss", t0
	if err != nil || got != want {
		t.Fatalf("Reject = %+v, %v, want %+v", got, err, want)
	}
	if ev := f.audit.of(audit.TypeSiteDecision); len(ev) != 1 || ev[0].Outcome != "rejected" || ev[0].Comment != "use the library's copy" {
		t.Errorf("decision records %+v, want one rejection with its comment", ev)
	}
	if len(f.notified) != 1 || f.notified[0] != want {
		t.Errorf("notified %+v, want the rejected request", f.notified)
	}
	if len(f.rules("ward")) != 0 {
		t.Errorf("a rejection added rules %v", f.rules("ward"))
	}
}

func TestListAndMine(t *testing.T) {
	f := newFixture(t)
	a := f.request(t, "a.example", "")
	b, err := f.svc.Create(boss, "b.example", "", "EBM")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Reject(boss, a.ID, "no"); err != nil {
		t.Fatal(err)
	}
	ids := func(rs []Request) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		state State
		want  []string
	}{
		{"", []string{a.ID, b.ID}},
		{Pending, []string{b.ID}},
		{Rejected, []string{a.ID}},
		{Approved, nil},
	}
	for _, tt := range tests {
		list, err := f.svc.List(tt.state)
		if err != nil || !slices.Equal(ids(list), tt.want) {
			t.Errorf("List(%q) = %v, %v, want %v", tt.state, ids(list), err, tt.want)
		}
	}
	if _, err := f.svc.List("decided"); !errors.Is(err, ErrInvalid) || err.Error() != "state: want pending, approved, rejected or nothing" {
		t.Errorf("List(decided): %v, want ErrInvalid", err)
	}
	if mine, err := f.svc.Mine("nurse"); err != nil || !slices.Equal(ids(mine), []string{a.ID}) {
		t.Errorf("Mine(nurse) = %v, %v, want %v", ids(mine), err, a.ID)
	}
	if got := f.svc.Profiles(); !slices.Equal(got, []string{"ward", "research"}) {
		t.Errorf("Profiles = %v", got)
	}
}

func TestPattern(t *testing.T) {
	tests := []struct{ host, url, want string }{
		{"a.example", "", "a.example"},
		{"a.example", "https://a.example/x", "a.example"},
		{"a.example", "https://a.example:443/x", "a.example"},
		{"a.example", "http://a.example:80/x", "a.example"},
		{"a.example", "https://a.example:8443/x", "a.example:8443"},
		{"a.example", "http://A.Example:8080/", "a.example:8080"},
		{"a.example", "https://other.example:8443/", "a.example"},
		{"a.example", "://bad", "a.example"},
	}
	for _, tt := range tests {
		if got := Pattern(Request{Host: tt.host, URL: tt.url}); got != tt.want {
			t.Errorf("Pattern(%q, %q) = %q, want %q", tt.host, tt.url, got, tt.want)
		}
	}
}
