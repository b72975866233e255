package transfer

import (
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
)

// TestWithRealClamd runs the download checks against a real clamd with the
// test signature: a clean file is released with the engine named, a file
// with the marker is rejected with the signature named, and while the
// daemon is down files are held.
func TestWithRealClamd(t *testing.T) {
	d := clamdtest.Start(t)
	sc, err := scan.NewClamd(d.Addr, scan.ClamdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *Config) { c.Scanner = sc })

	clean := h.download(t, alice, "clean.pdf", pdf, false)
	if clean.State != Released || !strings.Contains(clean.Scan, "ClamAV") {
		t.Errorf("clean file: %s, scan %q", clean.State, clean.Scan)
	}
	infected := h.download(t, alice, "infected.pdf", append(append([]byte{}, pdf...), clamdtest.TestMarker...), false)
	if infected.State != Rejected || !strings.Contains(infected.Reason, clamdtest.TestSignatureName) {
		t.Errorf("infected file: %s, reason %q", infected.State, infected.Reason)
	}
	d.Stop()
	down := h.download(t, alice, "later.pdf", pdf, false)
	if down.State != Held || !strings.HasPrefix(down.Scan, "not scanned") {
		t.Errorf("with clamd down: %s, scan %q", down.State, down.Scan)
	}
}
