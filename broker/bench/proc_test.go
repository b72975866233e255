package bench

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may set.
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 12 0 98765 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{PID: 4242, PPID: 1, PGID: 4242, Start: 98765, CPU: 175 * clockTick}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "12 no parens S 1", "12 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = nil error", bad)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	p, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.PPID != os.Getppid() || p.Start == 0 {
		t.Errorf("readStat(self) = %+v", p)
	}
	if _, err := rss(os.Getpid()); err != nil {
		t.Errorf("rss(self): %v", err)
	}
	if _, err := pss(os.Getpid()); err != nil {
		t.Errorf("pss(self): %v", err)
	}
}

func TestDescendants(t *testing.T) {
	all := []procStat{{PID: 1}, {PID: 10, PPID: 1}, {PID: 11, PPID: 10}, {PID: 12, PPID: 11}, {PID: 20, PPID: 1}, {PID: 13, PPID: 10}}
	var got []int
	for _, p := range descendants(all, 10) {
		got = append(got, p.PID)
	}
	slices.Sort(got)
	if want := []int{11, 12, 13}; !slices.Equal(got, want) {
		t.Errorf("descendants of 10 = %v, want %v", got, want)
	}
}

func TestCPUBetween(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b cpuSample
		want time.Duration
	}{
		{"threads agree with ticks", cpuSample{ticks: 100 * time.Millisecond, threads: 101 * time.Millisecond},
			cpuSample{ticks: 130 * time.Millisecond, threads: 134 * time.Millisecond}, 33 * time.Millisecond},
		{"a thread ended: ticks", cpuSample{ticks: 100 * time.Millisecond, threads: 101 * time.Millisecond},
			cpuSample{ticks: 200 * time.Millisecond, threads: 120 * time.Millisecond}, 100 * time.Millisecond},
		{"no thread counts", cpuSample{ticks: 100 * time.Millisecond}, cpuSample{ticks: 150 * time.Millisecond}, 50 * time.Millisecond},
	} {
		if got := cpuBetween(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: cpuBetween = %v, want %v", tc.name, got, tc.want)
		}
	}
}
