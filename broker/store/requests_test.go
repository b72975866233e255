package store

import (
	"errors"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/record"
	"github.com/shoji-rbi/shoji/broker/siterequest"
)

func TestSiteRequests(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if list, err := s.ListSiteRequests(nil); err != nil || len(list) != 0 {
		t.Fatalf("empty store: %v %v", list, err)
	}
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	a, err := s.CreateSiteRequest(siterequest.Request{User: "nurse", Host: "a.example", Reason: "guideline", Created: t0})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateSiteRequest(siterequest.Request{User: "doc", Host: "b.example", Reason: "EBM", Created: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.ID == b.ID || a.State != siterequest.Pending {
		t.Fatalf("created %+v %+v", a, b)
	}
	list, _ := s.ListSiteRequests(nil)
	if len(list) != 2 || list[0].ID != b.ID {
		t.Fatalf("list not newest first: %+v", list)
	}
	refuse := errors.New("own request")
	if _, err := s.UpdateSiteRequest(a.ID, func(r *siterequest.Request) error { r.State = siterequest.Approved; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("refusal not returned: %v", err)
	}
	if got, _ := s.SiteRequestByID(a.ID); got.State != siterequest.Pending {
		t.Fatalf("a refused update changed the request: %+v", got)
	}
	if _, err := s.UpdateSiteRequest(a.ID, func(r *siterequest.Request) error { r.State = siterequest.Approved; r.DecidedBy = "boss"; return nil }); err != nil {
		t.Fatal(err)
	}
	pending, _ := s.ListSiteRequests(func(r siterequest.Request) bool { return r.State == siterequest.Pending })
	if len(pending) != 1 || pending[0].ID != b.ID {
		t.Fatalf("pending = %+v", pending)
	}
	if _, err := s.SiteRequestByID("nope"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}
