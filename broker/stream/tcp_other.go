//go:build !linux

package stream

import "net"

// setNotSentLowat does nothing: TCP_NOTSENT_LOWAT is a Linux option.
func setNotSentLowat(*net.TCPConn, int) error { return nil }
