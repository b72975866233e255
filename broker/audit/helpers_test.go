package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var jsonUnmarshal = json.Unmarshal

// clock is a test clock that moves one second at each reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// openTest opens a File in dir with the test clock, closed at cleanup.
func openTest(t *testing.T, dir string, maxBytes int64) *File {
	t.Helper()
	f, err := OpenFile(dir, FileOptions{MaxBytes: maxBytes, Now: newClock().Now})
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// sampleEvent is the i-th of a varied set of events.
func sampleEvent(c *clock, i int) Event {
	a := Actor{User: fmt.Sprintf("u%d", i%5), Role: "clinician", Terminal: "10.0.0.7", Session: fmt.Sprintf("s%d", i%3)}
	at := c.Now()
	switch i % 6 {
	case 0:
		return Navigation(at, a, fmt.Sprintf("https://Guide.Example.jp/page/%d?q=a&b=<c>", i))
	case 1:
		return Deny(at, a, "ads.example.com", "https://ads.example.com/x", "not-allowed", "not in the allowlist")
	case 2:
		return TransferStep(at, a, Transfer{ID: fmt.Sprintf("t%d", i/6), Direction: DirectionDownload, Name: "結果.pdf",
			Size: int64(1000 + i), SHA256: strings.Repeat("ab", 32), Source: "https://files.example.jp/r.pdf", State: "released"})
	case 3:
		return ClipboardText(at, a, DirectionCopy, "patient note line "+fmt.Sprint(i), "allowed", "")
	case 4:
		return PolicyChange(at, a, "profile default", "rules: []\n", "rules:\n  - pattern: example.jp\n")
	default:
		return Login(at, a)
	}
}

// writeTrail commits n sample events to a new trail in dir and closes it.
func writeTrail(t *testing.T, dir string, n int, maxBytes int64) {
	t.Helper()
	f, err := OpenFile(dir, FileOptions{MaxBytes: maxBytes, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	for i := range n {
		if _, err := f.Commit(context.Background(), sampleEvent(c, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// lines reads a file's lines without newlines.
func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	data := append(bytes.Join(ls, []byte("\n")), '\n')
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func trailFile(dir string, index int) string { return filepath.Join(dir, fileName(index)) }

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
