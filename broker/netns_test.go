package broker

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/shoji-rbi/shoji/isolation/netns"
)

func TestNetNSConfig(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    bool
		wantErr bool
	}{
		{"", false, false},
		{"true", true, false},
		{"0", false, false},
		{"maybe", false, true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			cfg := DefaultConfig()
			err := cfg.ApplyEnv(func(k string) string {
				if k == "SHOJI_NETNS" {
					return tc.env
				}
				return ""
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("ApplyEnv: %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "SHOJI_NETNS") {
				t.Errorf("error %q does not name SHOJI_NETNS", err)
			}
			if cfg.NetNS != tc.want {
				t.Errorf("NetNS = %v, want %v", cfg.NetNS, tc.want)
			}
		})
	}
}

// TestNetNSRefusedWhereUnavailable checks the error where namespaces
// cannot be used (not root, not Linux); as root on Linux it checks that
// they can.
func TestNetNSRefusedWhereUnavailable(t *testing.T) {
	_, err := newNamespaces(slog.New(slog.DiscardHandler))
	if avail := netns.Available(); avail == nil {
		if err != nil {
			t.Fatalf("newNamespaces: %v", err)
		}
		return
	}
	if !errors.Is(err, netns.ErrUnavailable) || !strings.Contains(err.Error(), "netns") {
		t.Errorf("newNamespaces = %v, want an error naming netns wrapping ErrUnavailable", err)
	}
}

// TestNetNSLaunchWithoutNamespaceFails checks that a browser whose session
// has no namespace is not started in the broker's.
func TestNetNSLaunchWithoutNamespaceFails(t *testing.T) {
	n := &namespaces{log: slog.New(slog.DiscardHandler), current: map[string]*netns.NS{}, live: map[*netns.NS]struct{}{}}
	if got := n.commandPrefix("nosuch"); len(got) == 0 || got[0] != missingNamespace[0] {
		t.Errorf("commandPrefix for a session without a namespace = %q, want %q", got, missingNamespace)
	}
}
