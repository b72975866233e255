package egress

import (
	"errors"
	"fmt"
	"net"
)

// errNotLoopback: on an isolated listener, the peer is not on loopback.
var errNotLoopback = errors.New("peer is not on the namespace's loopback")

// listen returns isolated, or a fresh listener on 127.0.0.1.
func listen(isolated net.Listener) (net.Listener, error) {
	if isolated != nil {
		return isolated, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// admitIsolated admits a connection to an isolated listener
// (ListenerOptions.Isolated). Its socket is inside a network namespace that
// holds only loopback and only the session's browser, so a connection can
// come from nowhere else: no process of the host namespace can reach that
// loopback, and the browser has no other interface. The peer cannot be
// traced to a process (the kernel's socket lookup, made from the host
// namespace, does not see the namespace's sockets); instead its address
// must be loopback, and SetOwner with a non-positive group still refuses
// every connection.
func (l *Listener) admitIsolated(c *trackedConn) error {
	var err error
	if l.owner.Load() < 0 {
		err = errRefuseAll
	} else if ap := addrPortOf(c.RemoteAddr()); !ap.Addr().Unmap().IsLoopback() {
		err = fmt.Errorf("peer %s: %w", ap, errNotLoopback)
	}
	if err != nil {
		l.p.report(Event{Session: l.session, Rule: RuleNotOwner, Reason: ReasonNotOwner})
		l.p.cfg.Logger.Warn("egress refused a connection", "session", l.session, "peer", c.RemoteAddr().String(), "err", err)
		c.Close()
		return fmt.Errorf("%w: %w", ErrNotOwner, err)
	}
	return nil
}
