package netns

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

func platformAvailable() error { return nil }

// Listen opens a TCP listener on address (e.g. "127.0.0.1:0") inside the
// namespace. The listener is used from the caller's namespace like any
// other: only its socket lives in the namespace, so only the namespace's
// processes can connect to it.
func (n *NS) Listen(address string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	res := make(chan result, 1) // one send; never blocks
	go func() {
		// The thread enters the namespace for the socket call only. If it
		// cannot return to its own namespace it stays locked, and the
		// runtime ends it with this goroutine.
		runtime.LockOSThread()
		ln, back, err := n.listenOnThread(address)
		if back {
			runtime.UnlockOSThread()
		}
		res <- result{ln, err}
	}()
	r := <-res
	return r.ln, r.err
}

// listenOnThread does Listen's work on a locked thread; back reports
// whether the thread is in its original namespace again.
func (n *NS) listenOnThread(address string) (ln net.Listener, back bool, err error) {
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, true, fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(n.Path())
	if err != nil {
		return nil, true, fmt.Errorf("open network namespace %s: %w", n.name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("enter network namespace %s: %w", n.name, err)
	}
	ln, err = net.Listen("tcp", address)
	if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return nil, false, fmt.Errorf("leave network namespace %s: %w", n.name, serr)
	}
	if err != nil {
		return nil, true, fmt.Errorf("listen in network namespace %s: %w", n.name, err)
	}
	return ln, true, nil
}
