package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation/isolationtest"
)

// lockedBuffer is a log sink that tests read while the broker writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestScanningOffIsLoud(t *testing.T) {
	for _, tc := range []struct {
		name  string
		clamd string
		warn  bool
	}{
		{"no clamd", "", true},
		{"clamd", "tcp:127.0.0.1:3310", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Data = t.TempDir()
			cfg.Listen = "127.0.0.1:0"
			cfg.Transfer.Clamd = tc.clamd
			logs := &lockedBuffer{}
			srv, err := New(context.Background(), cfg, Options{
				Logger: slog.New(slog.NewTextHandler(logs, nil)), Out: io.Discard, Launcher: &isolationtest.Launcher{},
			})
			if err != nil {
				t.Fatal(err)
			}
			warnings := srv.StartWarnings()
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			const says = "transfer.clamd is empty: files are NOT scanned for malware"
			if got := strings.Contains(logs.String(), "level=WARN msg=\"WARNING: "+says); got != tc.warn {
				t.Errorf("start-up log has the scanning warning: %v, want %v\n%s", got, tc.warn, logs.String())
			}
			if got := len(warnings) == 1 && strings.Contains(warnings[0], says); got != tc.warn {
				t.Errorf("StartWarnings() = %q", warnings)
			}
			if got := len(cfg.Warnings()); got != len(warnings) {
				t.Errorf("Config.Warnings() has %d, StartWarnings() %d", got, len(warnings))
			}
			var recorded []audit.Event
			for e, err := range audit.Scan(filepath.Join(cfg.Data, "audit"), audit.Filter{Type: audit.TypeStartWarning}) {
				if err != nil {
					t.Fatal(err)
				}
				recorded = append(recorded, e)
			}
			if got := len(recorded) == 1 && recorded[0].What == "scanning_off" && strings.Contains(recorded[0].Reason, says); got != tc.warn {
				t.Errorf("start_warning records = %+v; want one (scanning_off) %v", recorded, tc.warn)
			}
		})
	}
}
