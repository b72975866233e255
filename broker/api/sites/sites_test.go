package sites

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/sitepolicy"
	"github.com/shoji-rbi/shoji/broker/siterequest"
	"github.com/shoji-rbi/shoji/isolation/policy"
)

// TestErrorStatuses: each refusal of the domain services is answered with
// its status and the services' message; anything else stays an internal
// error whose cause is not shown.
func TestErrorStatuses(t *testing.T) {
	svc := sitepolicy.New(sitepolicy.Options{Store: nil})
	k := &sitepolicy.KillSwitch{Policy: svc}
	_, blockErr := k.Block(audit.Actor{User: "a"}, "", "x")
	unblockErr := k.Unblock(audit.Actor{User: "a"}, "evil.example")
	reqs := &siterequest.Service{Policy: svc}
	_, listErr := reqs.List("decided")
	_, rejectErr := reqs.Reject(audit.Actor{User: "a"}, "r1", "")
	internal := fmt.Errorf("read site request: %w", errors.New("disk on fire"))
	tests := []struct {
		name   string
		err    error
		status int // 0: not an *api.Error
		msg    string
	}{
		{"conflict", sitepolicy.ErrConflict, http.StatusPreconditionFailed, "the policy was changed by someone else; reload it and try again"},
		{"invalid policy", fmt.Errorf("profile %q: %w", "x", policy.ErrInvalid), http.StatusBadRequest, `profile "x": invalid policy`},
		{"bad block", blockErr, http.StatusBadRequest, `host "": not a host name`},
		{"not blocked", unblockErr, http.StatusNotFound, "evil.example is not blocked"},
		{"bad state", listErr, http.StatusBadRequest, "state: want pending, approved, rejected or nothing"},
		{"bad comment", rejectErr, http.StatusBadRequest, "comment: say why the request is rejected"},
		{"internal", internal, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := requestError(tt.err)
			var he *api.Error
			if !errors.As(got, &he) {
				if tt.status != 0 {
					t.Fatalf("requestError(%v) = %v, want status %d", tt.err, got, tt.status)
				}
				return
			}
			if tt.status == 0 || he.Status != tt.status || he.Msg != tt.msg {
				t.Errorf("requestError(%v) = %d %q, want %d %q", tt.err, he.Status, he.Msg, tt.status, tt.msg)
			}
		})
	}
}
