//go:build linux

package egress

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

// lookupPeer finds the process that holds the client end of the accepted
// connection from remote to local, and returns it if the listener accepts
// it: a process of the group owner when owner > 0, or the process ancestor
// or one of its descendants when owner == 0. owner < 0 refuses everything.
// hint is a pid to try first; it only orders the search.
//
// The client's socket is found by its addresses (sock_diag netlink, or
// /proc/net/tcp where that is missing), and the process by the socket's
// inode among its open files. Only the candidates are searched, never the
// whole of /proc's open files, so a stranger's connection costs no more
// than the owner's.
func lookupPeer(local, remote netip.AddrPort, owner, ancestor, hint int) (peer, error) {
	if owner < 0 {
		return peer{}, errRefuseAll
	}
	// The client's socket has the addresses the other way round.
	ino, err := socketInode(remote, local)
	if err != nil {
		return peer{}, err
	}
	link := "socket:[" + strconv.FormatUint(ino, 10) + "]"
	if owner > 0 {
		return ownerPeer(link, owner, hint)
	}
	return descendantPeer(link, ancestor, hint)
}

// ownerPeer looks for link among the open files of the group owner's
// processes.
func ownerPeer(link string, owner, hint int) (peer, error) {
	if hint > 0 && holds(hint, link) {
		if st, ok := readStat(hint); ok && st.pgid == owner {
			return peer{hint, owner}, nil
		}
	}
	procs, err := scanProcs()
	if err != nil {
		return peer{}, err
	}
	for _, st := range procs {
		if st.pgid != owner || st.pid == hint || !holds(st.pid, link) {
			continue
		}
		// Read again after the match: the pid cannot have been taken by
		// another group's process that holds the same socket.
		if now, ok := readStat(st.pid); ok && now.pgid == owner {
			return peer{st.pid, owner}, nil
		}
	}
	return peer{}, fmt.Errorf("no process of group %d holds %s: %w", owner, link, errOtherGroup)
}

// descendantPeer looks for link among the open files of ancestor and its
// descendants.
func descendantPeer(link string, ancestor, hint int) (peer, error) {
	if hint > 0 && hint != ancestor && holds(hint, link) && isDescendant(hint, ancestor) {
		if st, ok := readStat(hint); ok {
			return peer{hint, st.pgid}, nil
		}
	}
	if holds(ancestor, link) {
		if st, ok := readStat(ancestor); ok {
			return peer{ancestor, st.pgid}, nil
		}
	}
	procs, err := scanProcs()
	if err != nil {
		return peer{}, err
	}
	children := make(map[int][]procStat, len(procs))
	for _, st := range procs {
		children[st.ppid] = append(children[st.ppid], st)
	}
	queue := []int{ancestor}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, st := range children[pid] {
			if st.pid != hint && holds(st.pid, link) {
				return peer{st.pid, st.pgid}, nil
			}
			queue = append(queue, st.pid)
		}
	}
	return peer{}, fmt.Errorf("no descendant of process %d holds %s: %w", ancestor, link, errNotDescendant)
}

// isDescendant reports whether pid is a descendant of ancestor, walking
// its parents.
func isDescendant(pid, ancestor int) bool {
	for range 64 {
		st, ok := readStat(pid)
		if !ok || st.ppid <= 0 {
			return false
		}
		if st.ppid == ancestor {
			return true
		}
		pid = st.ppid
	}
	return false
}

// holds reports whether process pid has link ("socket:[INODE]") among its
// open files. A process that is gone or not readable holds nothing.
func holds(pid int, link string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return false
	}
	buf := make([]byte, 64)
	path := make([]byte, 0, len(dir)+12)
	for _, n := range names {
		path = append(append(path[:0], dir...), n...)
		k, err := syscall.Readlink(string(path), buf)
		if err == nil && k == len(link) && string(buf[:k]) == link {
			return true
		}
	}
	return false
}

// procStat is what lookupPeer needs from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgid int
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(pid, b)
}

// parseProcStat parses the parent and the process group from the text of
// /proc/PID/stat: "pid (comm) state ppid pgrp ...", where comm may hold
// spaces and ')'.
func parseProcStat(pid int, b []byte) (procStat, bool) {
	j := bytes.LastIndexByte(b, ')')
	if j < 0 || j+2 >= len(b) {
		return procStat{}, false
	}
	f := bytes.Fields(b[j+2:])
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, pgid: pgid}, true
}

// scanProcs reads the stat of every process.
func scanProcs() ([]procStat, error) {
	f, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	procs := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			procs = append(procs, st)
		}
	}
	return procs, nil
}

// socketInode returns the inode of the TCP socket with the local address
// local and the remote address remote. It asks the kernel through
// sock_diag, and reads /proc/net/tcp and tcp6 when that fails.
func socketInode(local, remote netip.AddrPort) (uint64, error) {
	if ino, err := diagInode(local, remote); err == nil {
		return ino, nil
	}
	return procNetInode(local, remote)
}

// Netlink sock_diag constants (linux/sock_diag.h, linux/inet_diag.h).
const (
	sockDiagByFamily = 20
	diagReqLen       = 16 + 56 // nlmsghdr + inet_diag_req_v2
	diagMsgLen       = 72      // inet_diag_msg
)

// errDiagMismatch is an answer that is not about the socket asked for.
var errDiagMismatch = errors.New("sock_diag answered about another socket")

// diagInode looks the socket up with one exact sock_diag query, as an IPv4
// socket and, for an IPv4 address, as an IPv6 socket with mapped addresses.
func diagInode(local, remote netip.AddrPort) (uint64, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return 0, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("sock_diag timeout: %w", err)
	}
	l, r := local.Addr(), remote.Addr()
	if l.Is4() && r.Is4() {
		ino, err := diagQuery(fd, syscall.AF_INET, local, remote)
		if err == nil {
			return ino, nil
		}
		l, r = netip.AddrFrom16(l.As16()), netip.AddrFrom16(r.As16())
	}
	return diagQuery(fd, syscall.AF_INET6, netip.AddrPortFrom(l, local.Port()), netip.AddrPortFrom(r, remote.Port()))
}

// diagQuery sends one SOCK_DIAG_BY_FAMILY request for the socket and reads
// its inode from the answer.
func diagQuery(fd int, family uint8, local, remote netip.AddrPort) (uint64, error) {
	req := make([]byte, diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], diagReqLen)
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1)
	r := req[16:]
	r[0], r[1] = family, syscall.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	putSockID(r[8:], local, remote)
	ne.PutUint32(r[8+40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(r[8+44:], 0xffffffff)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag send: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("sock_diag receive: %w", err)
	}
	buf = buf[:n]
	if len(buf) < 16 {
		return 0, fmt.Errorf("sock_diag: short answer of %d bytes", len(buf))
	}
	switch typ := ne.Uint16(buf[4:]); typ {
	case syscall.NLMSG_ERROR:
		if len(buf) < 20 {
			return 0, errors.New("sock_diag: short error")
		}
		errno := -int32(ne.Uint32(buf[16:]))
		if errno == int32(syscall.ENOENT) {
			return 0, errNoSocket
		}
		return 0, fmt.Errorf("sock_diag: %w", syscall.Errno(errno))
	case sockDiagByFamily:
	default:
		return 0, fmt.Errorf("sock_diag: unexpected message type %d", typ)
	}
	msg := buf[16:]
	if len(msg) < diagMsgLen {
		return 0, fmt.Errorf("sock_diag: short message of %d bytes", len(msg))
	}
	if !diagMatches(msg, local, remote) {
		return 0, errDiagMismatch
	}
	ino := uint64(ne.Uint32(msg[68:]))
	if ino == 0 {
		return 0, errNoSocket // an orphan: no process holds it
	}
	return ino, nil
}

// diagMatches reports whether an inet_diag_msg is about the socket with the
// local and remote address, whichever family it has.
func diagMatches(msg []byte, local, remote netip.AddrPort) bool {
	var src, dst netip.Addr
	switch msg[0] {
	case syscall.AF_INET:
		src, dst = netip.AddrFrom4([4]byte(msg[8:12])), netip.AddrFrom4([4]byte(msg[24:28]))
	case syscall.AF_INET6:
		src, dst = netip.AddrFrom16([16]byte(msg[8:24])), netip.AddrFrom16([16]byte(msg[24:40]))
	default:
		return false
	}
	return binary.BigEndian.Uint16(msg[4:]) == local.Port() && binary.BigEndian.Uint16(msg[6:]) == remote.Port() &&
		src.Unmap() == local.Addr().Unmap() && dst.Unmap() == remote.Addr().Unmap()
}

// putSockID writes the ports and addresses of inet_diag_sockid.
func putSockID(b []byte, local, remote netip.AddrPort) {
	binary.BigEndian.PutUint16(b[0:], local.Port())
	binary.BigEndian.PutUint16(b[2:], remote.Port())
	putAddr(b[4:20], local.Addr())
	putAddr(b[20:36], remote.Addr())
}

// putAddr writes an address in network order: 4 bytes for IPv4, 16 for
// IPv6.
func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// procNetInode finds the socket in /proc/net/tcp, or with IPv4-mapped
// addresses in /proc/net/tcp6.
func procNetInode(local, remote netip.AddrPort) (uint64, error) {
	l, r := local.Addr(), remote.Addr()
	if l.Is4() && r.Is4() {
		ino, err := scanNetTCP("/proc/net/tcp", procNetAddr(local), procNetAddr(remote))
		if !errors.Is(err, errNoSocket) {
			return ino, err
		}
		l, r = netip.AddrFrom16(l.As16()), netip.AddrFrom16(r.As16())
	}
	return scanNetTCP("/proc/net/tcp6", procNetAddr(netip.AddrPortFrom(l, local.Port())), procNetAddr(netip.AddrPortFrom(r, remote.Port())))
}

// procNetAddr formats an address and port as /proc/net/tcp{,6} shows them:
// each 32-bit word of the address as a hexadecimal number in host order.
func procNetAddr(ap netip.AddrPort) string {
	var b []byte
	if a := ap.Addr(); a.Is4() {
		v := a.As4()
		b = fmt.Appendf(b, "%08X", binary.NativeEndian.Uint32(v[:]))
	} else {
		v := a.As16()
		for i := 0; i < 16; i += 4 {
			b = fmt.Appendf(b, "%08X", binary.NativeEndian.Uint32(v[i:]))
		}
	}
	return string(fmt.Appendf(b, ":%04X", ap.Port()))
}

// scanNetTCP returns the inode of the line of file with the local and
// remote address.
func scanNetTCP(file, local, remote string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("read sockets: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 10 || string(fields[1]) != local || string(fields[2]) != remote {
			continue
		}
		ino, err := strconv.ParseUint(string(fields[9]), 10, 64)
		if err != nil || ino == 0 {
			return 0, errNoSocket
		}
		return ino, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	return 0, errNoSocket
}
