package audit

import (
	"net"
	"syscall"
	"unsafe"
)

// unacked is how many bytes written to c its peer has not acknowledged
// yet (SIOCOUTQ: sent but unacknowledged, plus not yet sent).
func unacked(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int32
	var ioErr error
	err = raw.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioErr = e
		}
	})
	if err != nil {
		return 0, err
	}
	return int(n), ioErr
}
