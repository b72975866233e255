package session

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// cgroupLayout builds a proc and sys tree in a temporary directory: files
// maps a path below the root ("proc/self/cgroup",
// "sys/fs/cgroup/memory/memory.limit_in_bytes") to its content.
func cgroupLayout(t *testing.T, files map[string]string) ProcStats {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ProcStats{Root: filepath.Join(root, "proc"), FSRoot: root, hostCPUs: layoutCPUs}
}

// layoutCPUs is the host's CPU count in a cgroupLayout: more than any
// quota the tests set, whatever machine runs them.
const layoutCPUs = 8

// hostFiles are a host with 20 GiB available, a load of 1.00, and the
// mounts every layout has besides its cgroup trees.
func hostFiles(files map[string]string) map[string]string {
	out := map[string]string{
		"proc/meminfo": "MemTotal:       32000000 kB\nMemAvailable:   20971520 kB\n",
		"proc/loadavg": "1.00 0.50 0.25 1/100 1000\n",
	}
	for k, v := range files {
		out[k] = v
	}
	return out
}

const (
	mountRoot = "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	// mountV2 is a cgroup v2 tree at /sys/fs/cgroup, as in a container
	// with its own cgroup namespace or on a unified host.
	mountV2 = mountRoot + "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	// mountHybrid is this development machine's layout: v1 trees for the
	// controllers, an empty v2 tree at /sys/fs/cgroup/unified.
	mountHybrid = mountRoot +
		"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
		"32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n" +
		"33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n" +
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	cgroupHybrid = "9:name=systemd:/\n4:memory:/process_api/609dad2e\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"
	v1Unlimited  = "9223372036854771712\n"
)

func TestCgroupMemory(t *testing.T) {
	const gib = int64(1) << 30
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		says  string // in Source
	}{
		{"no cgroup file: the host", nil, 20 * gib, "host MemAvailable"},
		{
			"v2 nested, the parent is tighter",
			map[string]string{
				"proc/self/cgroup":    "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo": mountV2,
				// The container's own cgroup has no limit; its pod has 8 GiB,
				// of which 7.9 GiB are in use and 0.3 GiB reclaimable cache.
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.max":     "max\n",
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "1073741824\n",
				"sys/fs/cgroup/kubepods/pod1/ctr/memory.stat":    "anon 1000\ninactive_file 0\n",
				"sys/fs/cgroup/kubepods/pod1/memory.max":         "8589934592\n",
				"sys/fs/cgroup/kubepods/pod1/memory.current":     "8482560409\n",
				"sys/fs/cgroup/kubepods/pod1/memory.stat":        "anon 7000\nactive_file 5\ninactive_file 322122547\n",
				"sys/fs/cgroup/kubepods/memory.max":              "17179869184\n",
				"sys/fs/cgroup/kubepods/memory.current":          "8482560409\n",
				"sys/fs/cgroup/kubepods/memory.stat":             "inactive_file 322122547\n",
			},
			8589934592 - (8482560409 - 322122547),
			"cgroup memory limit 8 GiB, 7.6 GiB used not counting 307 MiB of reclaimable file cache",
		},
		{
			"v2 in its own namespace",
			map[string]string{
				"proc/self/cgroup":                   "0::/\n",
				"proc/self/mountinfo":                mountV2,
				"sys/fs/cgroup/memory.max":           "2147483648\n",
				"sys/fs/cgroup/memory.current":       "1073741824\n",
				"sys/fs/cgroup/memory.stat":          "inactive_file 0\n",
				"sys/fs/cgroup/unrelated/memory.max": "1\n",
			},
			gib, "cgroup memory limit 2 GiB, 1 GiB used",
		},
		{
			"v2 unlimited: the host",
			map[string]string{
				"proc/self/cgroup":    "0::/system.slice/shoji.service\n",
				"proc/self/mountinfo": mountV2,
				"sys/fs/cgroup/system.slice/shoji.service/memory.max":     "max\n",
				"sys/fs/cgroup/system.slice/shoji.service/memory.current": "1000\n",
				"sys/fs/cgroup/system.slice/memory.max":                   "max\n",
			},
			20 * gib, "host MemAvailable",
		},
		{
			"v2 limit above what the host has: the host",
			map[string]string{
				"proc/self/cgroup":                 "0::/big\n",
				"proc/self/mountinfo":              mountV2,
				"sys/fs/cgroup/big/memory.max":     "107374182400\n",
				"sys/fs/cgroup/big/memory.current": "0\n",
				"sys/fs/cgroup/big/memory.stat":    "inactive_file 0\n",
			},
			20 * gib, "host MemAvailable",
		},
		{
			"v1 hybrid as on this machine, limited",
			map[string]string{
				"proc/self/cgroup":    cgroupHybrid,
				"proc/self/mountinfo": mountHybrid,
				"sys/fs/cgroup/memory/process_api/609dad2e/memory.limit_in_bytes": "4294967296\n",
				"sys/fs/cgroup/memory/process_api/609dad2e/memory.usage_in_bytes": "3221225472\n",
				"sys/fs/cgroup/memory/process_api/609dad2e/memory.stat":           "cache 100\ninactive_file 5\ntotal_inactive_file 1073741824\n",
				"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":          v1Unlimited,
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                      v1Unlimited,
				"sys/fs/cgroup/unified/cgroup.controllers":                        "",
			},
			2 * gib, "cgroup memory limit 4 GiB, 2 GiB used not counting 1 GiB of reclaimable file cache",
		},
		{
			"v1 hybrid as on this machine, unlimited: the host",
			map[string]string{
				"proc/self/cgroup":    cgroupHybrid,
				"proc/self/mountinfo": mountHybrid,
				"sys/fs/cgroup/memory/process_api/609dad2e/memory.limit_in_bytes": v1Unlimited,
				"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":          v1Unlimited,
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                      v1Unlimited,
			},
			20 * gib, "host MemAvailable",
		},
		{
			"v1 in a container: the mount shows the container's cgroup",
			map[string]string{
				"proc/self/cgroup":                           "4:memory:/docker/abc\n1:cpu,cpuacct:/docker/abc\n",
				"proc/self/mountinfo":                        mountRoot + "34 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
				"sys/fs/cgroup/memory/memory.usage_in_bytes": "536870912\n",
				"sys/fs/cgroup/memory/memory.stat":           "total_inactive_file 0\n",
			},
			512 << 20, "cgroup memory limit 1 GiB, 512 MiB used",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := cgroupLayout(t, hostFiles(tc.files))
			mem, err := ps.Memory()
			if err != nil {
				t.Fatal(err)
			}
			if mem.Available != tc.want || !strings.Contains(mem.Source, tc.says) {
				t.Errorf("Memory() = %d (%s); want %d (%s)", mem.Available, mem.Source, tc.want, tc.says)
			}
		})
	}
}

func TestCgroupCPUs(t *testing.T) {
	host := layoutCPUs
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int
		says  string
	}{
		{"no cgroup: the host", nil, host, "host"},
		{
			"v2 quota of half a CPU on the parent rounds up to 1",
			map[string]string{
				"proc/self/cgroup":                        "0::/kubepods/pod1/ctr\n",
				"proc/self/mountinfo":                     mountV2,
				"sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "150000 100000\n",
				"sys/fs/cgroup/kubepods/pod1/cpu.max":     "50000 100000\n",
				"sys/fs/cgroup/kubepods/cpu.max":          "max 100000\n",
			},
			1, "cgroup CPU quota 50000µs per 100000µs",
		},
		{
			"v2 quota above the host's CPUs: the host",
			map[string]string{
				"proc/self/cgroup":      "0::/\n",
				"proc/self/mountinfo":   mountV2,
				"sys/fs/cgroup/cpu.max": "100000000 100000\n",
			},
			host, "host",
		},
		{
			"v1 hybrid as on this machine, -1",
			map[string]string{
				"proc/self/cgroup":                    cgroupHybrid,
				"proc/self/mountinfo":                 mountHybrid,
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "-1\n",
				"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
			},
			host, "host",
		},
		{
			"v1 quota of one CPU",
			map[string]string{
				"proc/self/cgroup":    "1:cpu,cpuacct:/shoji\n0::/\n",
				"proc/self/mountinfo": mountRoot + "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
				"sys/fs/cgroup/cpu,cpuacct/shoji/cpu.cfs_quota_us":  "100000\n",
				"sys/fs/cgroup/cpu,cpuacct/shoji/cpu.cfs_period_us": "100000\n",
			},
			1, "cgroup CPU quota 100000µs per 100000µs",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := cgroupLayout(t, hostFiles(tc.files))
			load, err := ps.Load()
			if err != nil {
				t.Fatal(err)
			}
			if load.CPUs != tc.want || !strings.Contains(load.Source, tc.says) || load.PerCPU != 1/float64(tc.want) {
				t.Errorf("Load() = %+v; want %d CPUs (%s)", load, tc.want, tc.says)
			}
		})
	}
}

func TestCgroupMalformed(t *testing.T) {
	v2 := func(name, content string) map[string]string {
		files := map[string]string{
			"proc/self/cgroup":                   "0::/shoji\n",
			"proc/self/mountinfo":                mountV2,
			"sys/fs/cgroup/shoji/memory.max":     "1073741824\n",
			"sys/fs/cgroup/shoji/memory.current": "0\n",
			"sys/fs/cgroup/shoji/memory.stat":    "inactive_file 0\n",
			"sys/fs/cgroup/shoji/cpu.max":        "max 100000\n",
		}
		files[name] = content
		return files
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		cpu   bool
		says  string
	}{
		{"memory.max", v2("sys/fs/cgroup/shoji/memory.max", "lots\n"), false, `sys/fs/cgroup/shoji/memory.max: "lots" is not "max" or a number of bytes`},
		{"memory.current", v2("sys/fs/cgroup/shoji/memory.current", "-5\n"), false, `sys/fs/cgroup/shoji/memory.current: "-5" is not a number`},
		{"memory.stat without inactive_file", v2("sys/fs/cgroup/shoji/memory.stat", "anon 5\n"), false, "sys/fs/cgroup/shoji/memory.stat: no inactive_file line"},
		{"cpu.max", v2("sys/fs/cgroup/shoji/cpu.max", "100000\n"), true, `sys/fs/cgroup/shoji/cpu.max: "100000": want "QUOTA PERIOD"`},
		{"proc self cgroup", v2("proc/self/cgroup", "garbage\n"), false, `proc/self/cgroup: line "garbage"`},
		{"mountinfo", v2("proc/self/mountinfo", "1 2 3\n"), false, `proc/self/mountinfo: line "1 2 3"`},
		{
			"v1 cfs_quota_us",
			map[string]string{
				"proc/self/cgroup":                   cgroupHybrid,
				"proc/self/mountinfo":                mountHybrid,
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "unlimited\n",
			},
			true, `sys/fs/cgroup/cpu/cpu.cfs_quota_us: "unlimited" is not -1`,
		},
		{
			"v1 memory.limit_in_bytes",
			map[string]string{
				"proc/self/cgroup":    cgroupHybrid,
				"proc/self/mountinfo": mountHybrid,
				"sys/fs/cgroup/memory/process_api/609dad2e/memory.limit_in_bytes": "4G\n",
			},
			false, `sys/fs/cgroup/memory/process_api/609dad2e/memory.limit_in_bytes: "4G" is not a number`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := cgroupLayout(t, hostFiles(tc.files))
			var err error
			if tc.cpu {
				_, err = ps.Load()
			} else {
				_, err = ps.Memory()
			}
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v; want one saying %s", err, tc.says)
			}
		})
	}
}

// TestCgroupOfThisMachine reads the cgroups this test runs in: whatever
// the layout, it must be understood.
func TestCgroupOfThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skip("no /proc/self/cgroup")
	}
	mem, err := ProcStats{}.Memory()
	if err != nil {
		t.Fatal(err)
	}
	load, err := ProcStats{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("memory available %d MiB (%s); %d CPUs (%s)", mem.Available>>20, mem.Source, load.CPUs, load.Source)
	if mem.Available <= 0 || load.CPUs <= 0 || load.CPUs > runtime.NumCPU() {
		t.Errorf("Memory() = %+v, Load() = %+v", mem, load)
	}
}
