//go:build !linux

package egress

import (
	"errors"
	"net/netip"
)

// errPeerUnsupported: peers cannot be traced on this system.
var errPeerUnsupported = errors.New("cannot trace a connection's process on this system")

// lookupPeer cannot trace a peer outside Linux: every connection is
// refused.
func lookupPeer(_, _ netip.AddrPort, _, _, _ int) (peer, error) {
	return peer{}, errPeerUnsupported
}
