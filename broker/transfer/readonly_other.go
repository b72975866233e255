//go:build !linux

package transfer

// readOnly reports false where statfs has no read-only flag to read; a
// send then fails with the error of the write.
func readOnly(string) bool { return false }
