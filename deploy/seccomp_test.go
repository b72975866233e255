package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// seccompProfile is the subset of the seccomp profile format that Docker,
// containerd (Kubernetes' Localhost profiles), CRI-O and the OCI runtimes
// (runc's linux.seccomp) all read the same way. Docker-only fields such as
// includes, excludes, archMap or comment are refused by the strict parse in
// seccompRead.
type seccompProfile struct {
	DefaultAction   string        `json:"defaultAction"`
	DefaultErrnoRet *uint         `json:"defaultErrnoRet"`
	Architectures   []string      `json:"architectures"`
	Syscalls        []seccompRule `json:"syscalls"`
}

type seccompRule struct {
	Names    []string     `json:"names"`
	Action   string       `json:"action"`
	ErrnoRet *uint        `json:"errnoRet"`
	Args     []seccompArg `json:"args"`
}

type seccompArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

// seccompENOSYS is the errno a refused call gets.
const seccompENOSYS = 38

// seccompRead parses the shipped profile strictly.
func seccompRead(t *testing.T) seccompProfile {
	t.Helper()
	b, err := os.ReadFile(containerProfilePath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p seccompProfile
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: %v", containerProfilePath, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the profile", containerProfilePath)
	}
	return p
}

// seccompAllowed returns the system calls a profile allows, with or
// without conditions on their arguments.
func seccompAllowed(p seccompProfile) map[string]bool {
	out := map[string]bool{}
	for _, r := range p.Syscalls {
		if r.Action == "SCMP_ACT_ALLOW" {
			for _, n := range r.Names {
				out[n] = true
			}
		}
	}
	return out
}

// seccompDecide returns what the profile does with a call: "allow", or the
// errno it fails with. It follows libseccomp's semantics for this profile's
// shape: a call matches a rule when every argument condition holds, and
// the call is allowed when an allowing rule matches.
func seccompDecide(p seccompProfile, name string, args [6]uint64) (allow bool, errno uint) {
	errno = *p.DefaultErrnoRet
	for _, r := range p.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		match := true
		for _, a := range r.Args {
			v := args[a.Index]
			var ok bool
			switch a.Op {
			case "SCMP_CMP_EQ":
				ok = v == a.Value
			case "SCMP_CMP_NE":
				ok = v != a.Value
			case "SCMP_CMP_MASKED_EQ":
				ok = v&a.Value == a.ValueTwo
			}
			match = match && ok
		}
		if !match {
			continue
		}
		if r.Action == "SCMP_ACT_ALLOW" {
			return true, 0
		}
		errno = *r.ErrnoRet
	}
	return false, errno
}

// TestSeccompProfileFormat checks that the profile is valid in the format
// every container engine reads, and denies by default.
func TestSeccompProfileFormat(t *testing.T) {
	p := seccompRead(t)
	if p.DefaultAction != "SCMP_ACT_ERRNO" || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != seccompENOSYS {
		t.Errorf("default: %s errno %v, want SCMP_ACT_ERRNO with ENOSYS (%d): the profile must deny what it does not name",
			p.DefaultAction, p.DefaultErrnoRet, seccompENOSYS)
	}
	if !slices.Equal(p.Architectures, []string{"SCMP_ARCH_X86_64"}) {
		t.Errorf("architectures %q: the profile was derived on x86_64 only", p.Architectures)
	}
	known := seccompKnownNames(t)
	unconditional := map[string]bool{}
	for i, r := range p.Syscalls {
		if len(r.Names) == 0 {
			t.Errorf("rule %d names no system call", i)
		}
		switch {
		case r.Action == "SCMP_ACT_ALLOW" && r.ErrnoRet == nil:
		case r.Action == "SCMP_ACT_ERRNO" && r.ErrnoRet != nil && len(r.Args) == 0:
		default:
			t.Errorf("rule %d %q: action %s (errnoRet %v): want SCMP_ACT_ALLOW, or SCMP_ACT_ERRNO with an errnoRet and no args",
				i, r.Names, r.Action, r.ErrnoRet)
		}
		for _, a := range r.Args {
			if a.Index > 5 || !slices.Contains([]string{"SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_MASKED_EQ"}, a.Op) {
				t.Errorf("rule %d %q: argument condition %+v: want index 0–5 and EQ, NE or MASKED_EQ", i, r.Names, a)
			}
		}
		for _, n := range r.Names {
			if known != nil && !known[n] {
				t.Errorf("rule %d: %q is not a system call on x86_64", i, n)
			}
			if len(r.Args) == 0 {
				if unconditional[n] {
					t.Errorf("%s is named twice without conditions", n)
				}
				unconditional[n] = true
			}
		}
	}
}

// seccompKnownNames returns the x86_64 system call names from the kernel's
// headers (Debian: linux-libc-dev), or nil when they are not installed.
func seccompKnownNames(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
	if err != nil {
		t.Logf("cannot check the names against the kernel's list: %v", err)
		return nil
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#define __NR_(\w+) \d+$`).FindAllSubmatch(b, -1) {
		out[string(m[1])] = true
	}
	return out
}

// Namespace flags of clone and unshare (linux/sched.h).
const (
	cloneNewTime   = 0x00000080
	cloneNewNS     = 0x00020000
	cloneNewCgroup = 0x02000000
	cloneNewUTS    = 0x04000000
	cloneNewIPC    = 0x08000000
	cloneNewUser   = 0x10000000
	cloneNewPID    = 0x20000000
	cloneNewNet    = 0x40000000
	sigchld        = 17
	// cloneThread is what glibc and Go pass to start a thread.
	cloneThread = 0x003d0f00
)

// TestSeccompProfileDecisions checks what the profile decides for the calls
// that matter: what Chromium's sandbox and the broker need is allowed, the
// namespaces and sockets they do not need are refused, and the dangerous
// families are refused whatever their arguments.
func TestSeccompProfileDecisions(t *testing.T) {
	p := seccompRead(t)
	for _, tc := range []struct {
		name  string
		call  string
		args  [6]uint64
		allow bool
	}{
		{"a thread", "clone", [6]uint64{cloneThread}, true},
		{"a child process", "clone", [6]uint64{sigchld}, true},
		{"Chromium's sandboxed zygote", "clone", [6]uint64{cloneNewUser | cloneNewPID | cloneNewNet | sigchld}, true},
		{"Chromium's user namespace probe", "clone", [6]uint64{cloneNewUser | sigchld}, true},
		{"a mount namespace", "clone", [6]uint64{cloneNewUser | cloneNewNS | sigchld}, false},
		{"a UTS namespace", "clone", [6]uint64{cloneNewUser | cloneNewUTS | sigchld}, false},
		{"an IPC namespace", "clone", [6]uint64{cloneNewUser | cloneNewIPC | sigchld}, false},
		{"a cgroup namespace", "clone", [6]uint64{cloneNewUser | cloneNewCgroup | sigchld}, false},
		{"clone3 (flags out of seccomp's sight)", "clone3", [6]uint64{}, false},
		{"unshare of a user namespace", "unshare", [6]uint64{cloneNewUser}, true},
		{"unshare of a mount namespace", "unshare", [6]uint64{cloneNewUser | cloneNewNS}, false},
		{"unshare of a network namespace", "unshare", [6]uint64{cloneNewNet}, false},
		{"unshare of a PID namespace", "unshare", [6]uint64{cloneNewPID}, false},
		{"unshare of a time namespace", "unshare", [6]uint64{cloneNewTime}, false},
		{"a unix socket", "socket", [6]uint64{1, 1}, true},
		{"an IPv4 socket", "socket", [6]uint64{2, 1}, true},
		{"an IPv6 socket", "socket", [6]uint64{10, 2}, true},
		{"rtnetlink", "socket", [6]uint64{16, 3, 0}, true},
		{"sock_diag netlink", "socket", [6]uint64{16, 2, 4}, true},
		{"uevent netlink", "socket", [6]uint64{16, 3, 15}, true},
		{"netfilter netlink", "socket", [6]uint64{16, 3, 12}, false},
		{"generic netlink", "socket", [6]uint64{16, 3, 16}, false},
		{"a packet socket", "socket", [6]uint64{17, 3}, false},
		{"an AF_ALG socket", "socket", [6]uint64{38, 5}, false},
		{"a vsock socket", "socket", [6]uint64{40, 1}, false},
		{"IPv4 with junk in the upper bits", "socket", [6]uint64{1<<32 | 2, 1}, false},
		{"chroot", "chroot", [6]uint64{}, true},
		{"seccomp", "seccomp", [6]uint64{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow, errno := seccompDecide(p, tc.call, tc.args)
			if allow != tc.allow {
				t.Errorf("%s(%#x): allowed %v, want %v", tc.call, tc.args[:3], allow, tc.allow)
			}
			if !allow && errno != seccompENOSYS {
				t.Errorf("%s refused with errno %d, want ENOSYS (%d)", tc.call, errno, seccompENOSYS)
			}
		})
	}
	for _, call := range seccompRefused {
		if allow, _ := seccompDecide(p, call, [6]uint64{}); allow {
			t.Errorf("%s is allowed; deploy/seccomp/README.md says it is refused", call)
		}
		for _, r := range p.Syscalls {
			if slices.Contains(r.Names, call) && r.Action == "SCMP_ACT_ALLOW" && len(r.Args) > 0 {
				t.Errorf("%s is allowed under conditions %+v; it must be refused whatever its arguments", call, r.Args)
			}
		}
	}
}

// seccompRefused are the dangerous families the README lists as refused.
var seccompRefused = []string{
	"mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"setns", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
	"keyctl", "add_key", "request_key", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"userfaultfd", "open_by_handle_at", "name_to_handle_at", "reboot", "swapon", "swapoff", "settimeofday",
	"clock_settime", "clock_adjtime", "adjtimex", "io_uring_setup", "io_uring_enter", "io_uring_register", "acct",
	"quotactl", "syslog", "iopl", "ioperm", "personality", "setuid", "setgid", "setreuid", "setregid", "setresuid",
	"setresgid", "setgroups", "setfsuid", "setfsgid", "mknod", "mknodat", "chown", "fchown", "fchownat", "lchown",
	"sethostname", "setdomainname", "vhangup", "lookup_dcookie", "fanotify_init", "mbind", "set_mempolicy",
	"move_pages", "migrate_pages", "execveat", "splice", "tee", "vmsplice",
}

// seccompReadmeTableNames returns the system calls named in the first cell
// of the table rows of the README's section that starts with heading.
func seccompReadmeTableNames(t *testing.T, readme, heading string) map[string]bool {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("deploy/seccomp/README.md has no section %q", heading)
	}
	section := readme[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	out := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "|") {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(cells[1], -1) {
			out[m[1]] = true
		}
	}
	return out
}

// TestSeccompReadmeExplainsEveryCall checks that deploy/seccomp/README.md
// explains exactly the calls the profile allows, in the tables of "## What
// is allowed", and lists in the tables of "## What is refused" every call
// the profile refuses by name and every dangerous family member, so that the
// explanation cannot drift from the profile.
func TestSeccompReadmeExplainsEveryCall(t *testing.T) {
	p := seccompRead(t)
	b, err := os.ReadFile("seccomp/README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	explained := seccompReadmeTableNames(t, readme, "## What is allowed")
	refused := seccompReadmeTableNames(t, readme, "## What is refused")
	allowed := map[string]bool{}
	for _, r := range p.Syscalls {
		for _, n := range r.Names {
			switch {
			case r.Action == "SCMP_ACT_ALLOW":
				allowed[n] = true
				if !explained[n] {
					t.Errorf("%s is allowed by the profile but not explained in a table of README.md's \"What is allowed\"", n)
				}
			case !refused[n]:
				t.Errorf("%s is refused by name in the profile but not explained in a table of README.md's \"What is refused\"", n)
			}
		}
	}
	for n := range explained {
		if !allowed[n] {
			t.Errorf("README.md's \"What is allowed\" explains %s, which the profile does not allow", n)
		}
	}
	for _, n := range seccompRefused {
		if !refused[n] {
			t.Errorf("%s is refused but README.md's \"What is refused\" does not say so", n)
		}
	}
	for n := range refused {
		if allowed[n] {
			t.Errorf("README.md's \"What is refused\" lists %s, which the profile allows", n)
		}
	}
}
