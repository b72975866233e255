package stream

import (
	"fmt"
	"net"
)

// notSentLowat is how many bytes of a viewer's writes may wait unsent in
// the kernel before a write blocks (TCP_NOTSENT_LOWAT): about a quarter of
// a frame of a text page.
const notSentLowat = 64 << 10

// tuneConn sets the TCP options of a viewer's connection, under TLS or not.
//
// TCP_NODELAY sends a frame's last segment at once instead of holding it
// for the viewer's acknowledgement. Go sets it on every TCP connection; it
// is set again here so that a listener that changed it cannot delay frames.
//
// TCP_NOTSENT_LOWAT (Linux) makes a write return only when all but
// notSentLowat bytes of it have left the machine. Without it a slow link
// fills the socket buffer, megabytes deep, with seconds of frames that the
// viewer's latest-wins mailbox can no longer drop: on a 20 Mbit/s link the
// frames reached the viewer four times older.
func tuneConn(c net.Conn) error {
	tc, ok := tcpConn(c)
	if !ok {
		return nil
	}
	if err := tc.SetNoDelay(true); err != nil {
		return fmt.Errorf("set TCP_NODELAY: %w", err)
	}
	return setNotSentLowat(tc, notSentLowat)
}

// tcpConn returns the TCP connection under c, which may be a TLS
// connection.
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	for range 4 {
		switch x := c.(type) {
		case *net.TCPConn:
			return x, true
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}
