package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// TestCheckpointKeyAtStart checks how the broker takes its audit
// checkpoint key: a good key outside the data directory signs a trail that
// ends sealed; a key inside the data directory (directly or through a
// symbolic link), one others may read, or a file that is not a key stops
// the start with an error naming audit.checkpoint_key; no key is a
// warning; demo mode makes one beside the data directory.
func TestCheckpointKeyAtStart(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the checkpoint_key to configure, given the data
		// directory and a directory outside it.
		setup   func(t *testing.T, data, outside string) string
		demo    bool
		wantErr string // "" means the broker starts
		wantLog string
	}{
		{name: "no key", setup: func(*testing.T, string, string) string { return "" },
			wantLog: "no audit checkpoint key (audit.checkpoint_key) and no syslog copy (audit.syslog): nothing protects the end of the audit trail"},
		{name: "key outside the data directory", setup: func(t *testing.T, _, outside string) string {
			return genKey(t, filepath.Join(outside, "audit-checkpoint.key"))
		}, wantLog: "audit checkpoints are signed"},
		{name: "key inside the data directory", setup: func(t *testing.T, data, _ string) string {
			return genKey(t, filepath.Join(data, "audit-checkpoint.key"))
		}, wantErr: "audit.checkpoint_key " + "DATA/audit-checkpoint.key is inside the data directory"},
		{name: "link to a key inside the data directory", setup: func(t *testing.T, data, outside string) string {
			key := genKey(t, filepath.Join(data, "keys", "audit-checkpoint.key"))
			link := filepath.Join(outside, "audit-checkpoint.key")
			if err := os.Symlink(key, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, wantErr: "is inside the data directory"},
		{name: "key readable by others", setup: func(t *testing.T, _, outside string) string {
			key := genKey(t, filepath.Join(outside, "audit-checkpoint.key"))
			if err := os.Chmod(key, 0o644); err != nil {
				t.Fatal(err)
			}
			return key
		}, wantErr: "config: audit.checkpoint_key: OUTSIDE/audit-checkpoint.key has mode 0644"},
		{name: "garbage", setup: func(t *testing.T, _, outside string) string {
			key := filepath.Join(outside, "audit-checkpoint.key")
			if err := os.WriteFile(key, []byte("-----BEGIN NONSENSE-----\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return key
		}, wantErr: "config: audit.checkpoint_key: OUTSIDE/audit-checkpoint.key is not a PEM"},
		{name: "missing", setup: func(_ *testing.T, _, outside string) string {
			return filepath.Join(outside, "nothing-here.key")
		}, wantErr: "config: audit.checkpoint_key: lstat OUTSIDE/nothing-here.key: no such file"},
		{name: "demo without a key", demo: true, setup: func(*testing.T, string, string) string { return "" },
			wantLog: "audit checkpoints are signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			data, outside := filepath.Join(root, "data"), filepath.Join(root, "etc")
			for _, d := range []string{data, outside} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cfg := DefaultConfig()
			cfg.Data, cfg.Listen, cfg.Demo = data, "127.0.0.1:0", tt.demo
			cfg.Audit.CheckpointKey = tt.setup(t, data, outside)
			var logs, out bytes.Buffer
			srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Out: &out, Launcher: &isolationtest.Launcher{}})
			if tt.wantErr != "" {
				want := strings.NewReplacer("DATA", data, "OUTSIDE", outside).Replace(tt.wantErr)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("New = %v; want an error with %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log:\n%s\nwant %q", logs.String(), tt.wantLog)
			}
			pubPath := cfg.Audit.CheckpointKey + ".pub"
			if tt.demo {
				pubPath = data + ".checkpoint.key.pub"
				if !strings.Contains(out.String(), "shoji audit verify --data "+data+" --key "+pubPath) {
					t.Errorf("demo output does not tell how to verify:\n%s", out.String())
				}
			}
			rep, err := audit.Verify(filepath.Join(data, "audit"))
			if cfg.Audit.CheckpointKey == "" && !tt.demo {
				if err != nil || rep.Checkpoints != 0 {
					t.Errorf("without a key: Verify = %+v, %v; want no checkpoints", rep, err)
				}
				return
			}
			pub, err := audit.LoadPublicKey(pubPath)
			if err != nil {
				t.Fatal(err)
			}
			rep, err = audit.VerifyWith(filepath.Join(data, "audit"), audit.VerifyOptions{Keys: []*audit.PublicKey{pub}, RequireSealed: true})
			if err != nil || rep.Checkpoints < 2 || !rep.Sealed {
				t.Errorf("after a clean stop: VerifyWith = %+v, %v; want a sealed trail", rep, err)
			}
		})
	}
}

// genKey writes a checkpoint key to path and returns path.
func genKey(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStartOnAuditTrailOverTailBuffer starts the broker on a data
// directory whose audit file is larger than the tail reader's first read
// (64 KiB), which once made every start panic, and checks that it starts
// twice and the trail verifies.
func TestStartOnAuditTrailOverTailBuffer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Data, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	f, err := audit.OpenFile(filepath.Join(cfg.Data, "audit"), audit.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range 400 {
		f.Record(audit.Navigation(at.Add(time.Duration(i)*time.Second), audit.Actor{User: "bob"}, "https://guide.example.jp/"+strings.Repeat("x", 300)))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(cfg.Data, "audit", "audit-000001.jsonl")); err != nil || fi.Size() < 100<<10 {
		t.Fatalf("the trail: %v, %v; want more than 100 KiB", fi, err)
	}
	for range 2 {
		srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Out: io.Discard, Launcher: &isolationtest.Launcher{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := audit.Verify(filepath.Join(cfg.Data, "audit")); err != nil || rep.Records < 400 {
		t.Errorf("Verify = %d records, %v", rep.Records, err)
	}
}
