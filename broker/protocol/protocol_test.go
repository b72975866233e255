package protocol

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/shoji-rbi/shoji/broker/transfer"
	"github.com/shoji-rbi/shoji/isolation"
)

// samples holds one message of every payload type, with its fields set.
var samples = []Message{
	Ready{Version: Version, User: "u", Role: "clinician", SessionID: "s1", Profile: "clinical", IdleTimeoutSec: 900, MaxLifetimeSec: 3600, Notice: "n"},
	State{State: isolation.State{URL: "https://a.example/", Title: "t", Host: "a.example", Tabs: []isolation.Tab{{ID: "t1", Active: true}}}, Trusted: true},
	Dialog{Dialog: isolation.Dialog{ID: "d1", TabID: "t1", Kind: "prompt", Message: "m", DefaultPrompt: "x", URL: "https://a.example/"}},
	DialogClosed{ID: "d1"},
	Caret{Caret: isolation.Caret{X: 1, Y: 2, Height: 3}},
	Status{State: "ended", Reason: "idle", Message: "m"},
	Error{Message: "<b>&"},
	AccessRequest{Host: "a.example", URL: "https://a.example/"},
	SiteRequest{ID: "r1", Host: "a.example", State: "approved", Comment: "c"},
	Clipboard{Text: "日本語"},
	Transfer{Transfer: transfer.Transfer{ID: "x1", Direction: "download", Name: "a.pdf", Size: 10, State: "released"}},
	FileChooser{Chooser: transfer.Chooser{ID: "c1", URL: "https://a.example/", Host: "a.example", Allowed: true, Drop: true}},
}

// TestSamplesCoverServerTypes proves that every type the server sends has
// a payload type, and no two payload types claim the same type.
func TestSamplesCoverServerTypes(t *testing.T) {
	var got []Type
	for _, m := range samples {
		got = append(got, m.MessageType())
	}
	if !slices.Equal(got, ServerTypes) {
		t.Errorf("payload types %v, want one per ServerTypes %v", got, ServerTypes)
	}
}

// TestEncodeIsPayloadPlusType proves that Encode writes exactly the
// payload's JSON object with "type" added (the wire format the broker
// always had), and that no payload has a "type" field of its own.
func TestEncodeIsPayloadPlusType(t *testing.T) {
	for _, m := range samples {
		t.Run(string(m.MessageType()), func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("Encode wrote %s: %v", b, err)
			}
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if _, ok := want["type"]; ok {
				t.Fatalf("payload %T has a \"type\" field of its own: %s", m, raw)
			}
			want["type"] = string(m.MessageType())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Encode = %s, want the fields %v", b, want)
			}
		})
	}
}

// TestEncodeExact pins the bytes of a few messages.
func TestEncodeExact(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want string
	}{
		{DialogClosed{ID: "d1"}, `{"type":"dialogClosed","id":"d1"}`},
		{Status{State: "live"}, `{"type":"status","state":"live"}`},
		{Error{Message: "<x>"}, `{"type":"error","message":"\u003cx\u003e"}`},
		{Caret{Caret: isolation.Caret{X: 1.5, Y: 2, Height: 16}}, `{"type":"caret","x":1.5,"y":2,"h":16}`},
		{empty{}, `{"type":"empty"}`},
	} {
		b, err := Encode(tc.m)
		if err != nil {
			t.Errorf("Encode(%T): %v", tc.m, err)
			continue
		}
		if string(b) != tc.want {
			t.Errorf("Encode(%T) = %s, want %s", tc.m, b, tc.want)
		}
	}
}

// TestEncodeRefusesNonObjects proves a payload that is not a JSON object
// is an error naming the message type, not a broken message.
func TestEncodeRefusesNonObjects(t *testing.T) {
	for _, m := range []Message{notObject{"a"}, unencodable{make(chan int)}} {
		if b, err := Encode(m); err == nil {
			t.Errorf("Encode(%T) = %s, want an error", m, b)
		}
	}
}

type empty struct{}

func (empty) MessageType() Type { return "empty" }

type notObject []string

func (notObject) MessageType() Type { return "list" }

type unencodable struct {
	C chan int `json:"c"`
}

func (unencodable) MessageType() Type { return "chan" }

// keys returns the sorted members of set.
func keys(set map[Type]bool) []Type { return slices.Sorted(maps.Keys(set)) }
