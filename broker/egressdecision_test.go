package broker

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/isolation"
	"github.com/shoji-rbi/shoji/isolation/egress"
)

// TestEgressBackgroundNotARefusal checks how the broker takes the egress
// proxy's refusals: one of the browser's own background requests
// (egress.Event.Background) is counted apart and neither counted as denied
// nor recorded in the audit trail, while a page's refusal of the very host
// Chromium's service really has is counted and recorded.
func TestEgressBackgroundNotARefusal(t *testing.T) {
	f := newAPI(t, nil)
	now := time.Now()
	f.srv.egressDecision(egress.Event{Session: "s-1", Method: "CONNECT", Host: "accounts." + isolation.BackgroundDomain, Port: 443,
		Rule: egress.RuleBackground, Reason: egress.ReasonBackground, Background: true, Time: now})
	f.srv.egressDecision(egress.Event{Session: "s-1", Method: "CONNECT", Host: "accounts.google.com", Port: 443,
		Rule: egress.RuleDefaultDeny, Reason: egress.ReasonNotInAllowlist, Time: now})

	metrics := f.metrics()
	for _, want := range []string{"shoji_egress_background_dropped_total 1\n", "shoji_egress_requests_denied_total 1\n"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
	// Records are written in order: once the page's refusal is on disk, a
	// record of the background request would be too.
	waitAudit(t, f, func(e audit.Event) bool { return e.Type == audit.TypeDeny && e.Host == "accounts.google.com" })
	for e, err := range audit.Scan(filepath.Join(f.srv.cfg.Data, "audit"), audit.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.Host, isolation.BackgroundDomain) || strings.Contains(e.What, isolation.BackgroundDomain) {
			t.Errorf("the background request was recorded: %+v", e)
		}
		if e.Host == "accounts.google.com" && e.Outcome != "" {
			t.Errorf("the page's refusal is marked %q", e.Outcome)
		}
	}
}

// metrics returns the broker's /metrics text.
func (f *apiFixture) metrics() string {
	f.t.Helper()
	resp, err := http.Get(f.ts.URL + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}
