package siterequest

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRequestJSON: a request is stored and answered as the JSON the
// broker wrote before the type moved here, so existing data directories
// open unchanged and the API's answer is the same.
func TestRequestJSON(t *testing.T) {
	const stored = `{"id":"r1","user":"nurse","host":"a.example","url":"https://a.example/","reason":"guideline","profile":"ward","state":"approved","created":"2026-11-22T09:00:00Z","decidedBy":"boss","decided":"2026-11-22T10:00:00Z","comment":"ok","expires":"2027-01-31T00:00:00Z"}`
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	want := Request{ID: "r1", User: "nurse", Host: "a.example", URL: "https://a.example/", Reason: "guideline",
		Profile: "ward", State: Approved, Created: at, DecidedBy: "boss", Decided: at.Add(time.Hour), Comment: "ok",
		Expires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}
	var got Request
	if err := json.Unmarshal([]byte(stored), &got); err != nil || got != want {
		t.Fatalf("decoding a stored request = %+v, %v, want %+v", got, err, want)
	}
	if data, err := json.Marshal(want); err != nil || string(data) != stored {
		t.Errorf("encoding = %s, %v, want %s", data, err, stored)
	}
	pending := `{"id":"r2","user":"nurse","host":"a.example","url":"","reason":"x","profile":"","state":"pending","created":"2026-11-22T09:00:00Z"}`
	if data, err := json.Marshal(Request{ID: "r2", User: "nurse", Host: "a.example", Reason: "x", State: Pending, Created: at}); err != nil || string(data) != pending {
		t.Errorf("encoding a pending request = %s, %v, want %s (no decision fields)", data, err, pending)
	}
	for _, s := range []State{Pending, Approved, Rejected} {
		if !s.Valid() {
			t.Errorf("%q not Valid", s)
		}
	}
	for _, s := range []State{"", "Pending", "decided"} {
		if s.Valid() {
			t.Errorf("%q Valid", s)
		}
	}
}
