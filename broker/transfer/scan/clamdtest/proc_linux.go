package clamdtest

import "syscall"

// sysProcAttr makes the kernel kill clamd when the test binary dies, so a
// crashed test leaves no daemon behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
