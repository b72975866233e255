package stream

import (
	"fmt"
	"net"
	"syscall"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT of <linux/tcp.h>, which package
// syscall does not name.
const tcpNotSentLowat = 25

func setNotSentLowat(c *net.TCPConn, n int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("set TCP_NOTSENT_LOWAT: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
	}); err != nil {
		return fmt.Errorf("set TCP_NOTSENT_LOWAT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set TCP_NOTSENT_LOWAT: %w", serr)
	}
	return nil
}
