//go:build !linux

package egress

// runHelper runs no helper process: the helpers test socket ownership,
// which only Linux reports.
func runHelper() (code int, ok bool) { return 0, false }
