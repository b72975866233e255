package egress

import "errors"

// Why a connection's peer was refused. They are wrapped, with the
// details, by the error that admit returns with ErrNotOwner.
var (
	// errOtherGroup: the peer is not in the owner's process group.
	errOtherGroup = errors.New("peer is not in the browser's process group")
	// errNotDescendant: with no owner yet, the peer is neither this
	// process nor one of its descendants.
	errNotDescendant = errors.New("peer is not a process this broker started")
	// errRefuseAll: SetOwner was given no process group.
	errRefuseAll = errors.New("listener refuses every connection")
	// errNoSocket: the peer's socket was not found; it may have closed.
	errNoSocket = errors.New("peer socket not found")
)

// peer is the process found holding the other end of a connection.
type peer struct {
	pid, pgid int
}
