package approval

import (
	"errors"
	"testing"
)

// TestCheckDecider: nobody decides their own request; anyone else may, as
// far as this rule goes (roles are checked by the caller).
func TestCheckDecider(t *testing.T) {
	tests := []struct {
		requester, decider string
		want               error
	}{
		{"nurse1", "nurse1", ErrOwnRequest},
		{"nurse1", "approver1", nil},
		{"approver1", "nurse1", nil},
		{"", "", ErrOwnRequest},
		{"看護師", "看護師", ErrOwnRequest},
		{"看護師", "医師", nil},
	}
	for _, tt := range tests {
		if err := CheckDecider(tt.requester, tt.decider); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("CheckDecider(%q, %q) = %v, want %v", tt.requester, tt.decider, err, tt.want)
		}
	}
}
