package audittrail

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
)

// TestStatusCheckpoints checks that the auditor's status shows the
// checkpoints of a trail written with a checkpoint key.
func TestStatusCheckpoints(t *testing.T) {
	root := t.TempDir()
	keyPath := filepath.Join(root, "etc", "audit-checkpoint.key")
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := audit.GenerateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "audit")
	sink, err := audit.OpenFile(dir, audit.FileOptions{CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	h := &Handlers{Dir: dir, Audit: sink, Now: time.Now}
	rec := httptest.NewRecorder()
	if err := h.status(rec, httptest.NewRequest("GET", "/api/audit/status", nil), auth.Principal{}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK             bool   `json:"ok"`
		Checkpoints    int    `json:"checkpoints"`
		Unsigned       uint64 `json:"unsigned"`
		LastCheckpoint struct {
			Seq    uint64 `json:"seq"`
			Reason string `json:"reason"`
			KeyID  string `json:"key_id"`
		} `json:"last_checkpoint"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !got.OK || got.Checkpoints != 1 || got.LastCheckpoint.Reason != audit.CheckpointOpen || got.LastCheckpoint.KeyID == "" {
		t.Errorf("status %s: want the open checkpoint", rec.Body)
	}
}

// TestFilterRefusals checks that every bad query parameter is refused with
// 400 and a message naming it, and that a good one is read.
func TestFilterRefusals(t *testing.T) {
	for _, tc := range []struct {
		query, want string
	}{
		{"from=yesterday", `from "yesterday": want an RFC 3339 time`},
		{"to=2026-13-01T00:00:00Z", `to "2026-13-01T00:00:00Z": want an RFC 3339 time`},
		{"from=2026-11-23T10:00:00Z&to=2026-11-23T09:00:00Z", "to is before from"},
		{"user=" + strings.Repeat("a", 257), "longer than 256 bytes"},
		{"sha256=" + strings.Repeat("A", 257), "longer than 256 bytes"},
	} {
		_, err := filter(httptest.NewRequest("GET", "/api/audit/events?"+tc.query, nil))
		var he *api.Error
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(he.Msg, tc.want) {
			t.Errorf("%.40s: %v; want 400 %q", tc.query, err, tc.want)
		}
	}
	f, err := filter(httptest.NewRequest("GET", "/api/audit/events?user=nurse&host=Guide.Example.JP&sha256=AB&type=transfer&from=2026-11-23T09:00:00%2B09:00", nil))
	want := audit.Filter{User: "nurse", Host: "guide.example.jp", SHA256: "ab", Type: audit.Type("transfer"),
		From: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	if err != nil || f.User != want.User || f.Host != want.Host || f.SHA256 != want.SHA256 || f.Type != want.Type || !f.From.Equal(want.From) {
		t.Errorf("filter = %+v, %v; want %+v", f, err, want)
	}
}
