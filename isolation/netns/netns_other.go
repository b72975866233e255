//go:build !linux

package netns

import (
	"fmt"
	"net"
	"runtime"
)

func platformAvailable() error {
	return fmt.Errorf("%w: not Linux (%s)", ErrUnavailable, runtime.GOOS)
}

// Listen is not available outside Linux.
func (n *NS) Listen(string) (net.Listener, error) { return nil, ErrUnavailable }
