package transfer

import "syscall"

// stRdonly is ST_RDONLY of statfs(2): the file system is mounted
// read-only, for this process (a systemd unit's ProtectSystem= makes
// read-only bind mounts).
const stRdonly = 0x1

// readOnly reports whether dir is on a file system mounted read-only.
func readOnly(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Flags&stRdonly != 0
}
