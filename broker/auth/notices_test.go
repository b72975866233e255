package auth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// fakeViewers is a Viewers fake: the users with a running session, and
// whom the pledge was asked of again.
type fakeViewers struct {
	mu      sync.Mutex
	running []string
	asked   []string
}

func (v *fakeViewers) Users() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.running)
}

func (v *fakeViewers) AskPledge(user string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.asked = append(v.asked, user)
	return true
}

func (v *fakeViewers) Asked() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.asked)
}

// noticeEnv is a Notices on a fresh Service with alice and bob.
type noticeEnv struct {
	*env
	n       *Notices
	trail   *audit.Memory
	viewers *fakeViewers
}

func newNoticeEnv(t *testing.T) *noticeEnv {
	t.Helper()
	e := newEnv(t, nil)
	e.addUsers(t)
	ne := &noticeEnv{env: e, trail: audit.NewMemory(), viewers: &fakeViewers{}}
	ne.n = &Notices{Settings: e.st, Accounts: e.svc, DefaultBanner: "config banner", Audit: ne.trail,
		Viewers: ne.viewers, Now: e.clock.Now}
	return ne
}

func TestPledgeVersion(t *testing.T) {
	v := PledgeVersion(DefaultPledge)
	if !IsPledgeVersion(v) {
		t.Fatalf("IsPledgeVersion(PledgeVersion(DefaultPledge) = %q) = false", v)
	}
	if PledgeVersion(DefaultPledge+" ") == v {
		t.Fatal("two texts have one version")
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 65)} {
		if IsPledgeVersion(bad) {
			t.Errorf("IsPledgeVersion(%q) = true", bad)
		}
	}
}

// TestPledgeRule: a principal passes only with the version of the text in
// force; a new text needs a new acceptance; an unreadable store refuses.
func TestPledgeRule(t *testing.T) {
	e := newNoticeEnv(t)
	p, _ := e.login(t, "bob", bobPW)
	if err := e.n.Require(p); !errors.Is(err, ErrPledgeRequired) {
		t.Fatalf("Require before accepting = %v, want ErrPledgeRequired", err)
	}
	st, err := e.n.Status("bob")
	if err != nil || st.Accepted || st.Text != DefaultPledge || st.Version != PledgeVersion(DefaultPledge) {
		t.Fatalf("Status before accepting = %+v, %v", st, err)
	}
	got, err := e.n.Accept("bob", st.Version)
	if err != nil || got != st.Version {
		t.Fatalf("Accept(shown version) = %q, %v", got, err)
	}
	p, _ = e.login(t, "bob", bobPW)
	if err := e.n.Require(p); err != nil {
		t.Fatalf("Require after accepting: %v", err)
	}

	if err := e.n.Change(context.Background(), audit.Actor{User: "alice"}, NoticeTexts{Banner: "b", Pledge: "a new pledge"}); err != nil {
		t.Fatal(err)
	}
	if err := e.n.Require(p); !errors.Is(err, ErrPledgeRequired) {
		t.Fatalf("Require after the text changed = %v, want ErrPledgeRequired", err)
	}
	if _, err := e.n.Accept("bob", st.Version); !errors.Is(err, ErrPledgeChanged) {
		t.Fatalf("Accept(old version) = %v, want ErrPledgeChanged", err)
	}
	if _, err := e.n.Accept("bob", "not-a-version"); !errors.Is(err, ErrMalformedPledgeVersion) {
		t.Fatalf("Accept(malformed) = %v, want ErrMalformedPledgeVersion", err)
	}
	if got, err := e.n.Accept("bob", ""); err != nil || got != PledgeVersion("a new pledge") {
		t.Fatalf("Accept(\"\") = %q, %v, want the version in force", got, err)
	}

	e.st.failingSettings(errors.New("disk gone"))
	p, _ = e.login(t, "bob", bobPW)
	if err := e.n.Require(p); err == nil || errors.Is(err, ErrPledgeRequired) || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("Require with an unreadable store = %v, want the read error", err)
	}
	if _, err := e.n.Accept("bob", ""); err == nil {
		t.Fatal("Accept with an unreadable store succeeded")
	}
	if got := e.n.Texts(); got != (NoticeTexts{Banner: "config banner", Pledge: DefaultPledge}) {
		t.Fatalf("Texts with an unreadable store = %+v, want the defaults", got)
	}
}

func TestNoticeTextsValidate(t *testing.T) {
	long := strings.Repeat("あ", MaxNoticeBytes/3+1)
	tests := []struct {
		name  string
		texts NoticeTexts
		want  string
	}{
		{"ok", NoticeTexts{Banner: "", Pledge: "I promise."}, ""},
		{"longest", NoticeTexts{Banner: strings.Repeat("b", MaxNoticeBytes), Pledge: strings.Repeat("p", MaxNoticeBytes)}, ""},
		{"long banner", NoticeTexts{Banner: long, Pledge: "I promise."}, "banner: at most 4000 bytes"},
		{"empty pledge", NoticeTexts{Banner: "b"}, "pledge: must not be empty, at most 4000 bytes"},
		{"blank pledge", NoticeTexts{Pledge: " \n\t"}, "pledge: must not be empty, at most 4000 bytes"},
		{"long pledge", NoticeTexts{Pledge: long}, "pledge: must not be empty, at most 4000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.texts.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var ne *NoticeError
			if !errors.As(err, &ne) || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want *NoticeError %q", err, tt.want)
			}
		})
	}
}

// TestNoticesChange: the change is audited before it is made, both texts
// are stored, and only the running sessions whose users have not accepted
// the new text are asked again.
func TestNoticesChange(t *testing.T) {
	e := newNoticeEnv(t)
	next := NoticeTexts{Banner: "Authorised staff only", Pledge: "I will browse for work only."}
	if _, err := e.n.Accept("alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.Accept("bob", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcceptPledge("alice", PledgeVersion(next.Pledge)); err != nil {
		t.Fatal(err)
	}
	e.viewers.running = []string{"alice", "bob"}
	if err := e.n.Change(context.Background(), audit.Actor{User: "alice", Role: "admin"}, next); err != nil {
		t.Fatal(err)
	}
	if got := e.n.Texts(); got != next {
		t.Fatalf("Texts after Change = %+v, want %+v", got, next)
	}
	if got := e.viewers.Asked(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("asked again = %q, want only bob (alice accepted the new text)", got)
	}
	var change *audit.Event
	for _, ev := range e.trail.Events() {
		if ev.Type == audit.TypePolicyChange {
			change = &ev
		}
	}
	if change == nil || change.Actor.User != "alice" || change.What != "login banner and pledge" ||
		!strings.Contains(change.Before, `"banner":"config banner"`) || !strings.Contains(change.After, next.Pledge) {
		t.Fatalf("audit record of the change = %+v", change)
	}

	// The banner alone: nobody is asked again.
	e.viewers.asked = nil
	next.Banner = "New banner"
	if err := e.n.Change(context.Background(), audit.Actor{User: "alice"}, next); err != nil {
		t.Fatal(err)
	}
	if got := e.viewers.Asked(); len(got) != 0 {
		t.Fatalf("a banner change asked %q again", got)
	}
}

// TestNoticesChangeRefused: invalid texts and an unavailable audit trail
// change nothing.
func TestNoticesChangeRefused(t *testing.T) {
	e := newNoticeEnv(t)
	before := e.n.Texts()
	var ne *NoticeError
	if err := e.n.Change(context.Background(), audit.Actor{User: "alice"}, NoticeTexts{Banner: "b"}); !errors.As(err, &ne) || ne.Field != "pledge" {
		t.Fatalf("Change(empty pledge) = %v, want a *NoticeError for pledge", err)
	}
	if err := e.trail.Close(); err != nil {
		t.Fatal(err)
	}
	err := e.n.Change(context.Background(), audit.Actor{User: "alice"}, NoticeTexts{Banner: "b", Pledge: "p"})
	if !errors.Is(err, audit.ErrClosed) || !strings.Contains(err.Error(), "the settings were not changed") {
		t.Fatalf("Change with the audit trail closed = %v", err)
	}
	if got := e.n.Texts(); got != before {
		t.Fatalf("Texts after refused changes = %+v, want %+v", got, before)
	}
	if len(e.viewers.Asked()) != 0 {
		t.Fatal("a refused change asked viewers again")
	}
}
