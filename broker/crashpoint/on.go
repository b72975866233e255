//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Enabled reports whether this binary was built with crash points.
const Enabled = true

// armed maps each point named in EnvVar to the hit that fires it (1 for
// the first); hits counts the hits of each armed point so far.
var (
	mu    sync.Mutex
	armed map[string]int
	hits  = map[string]int{}
)

func init() {
	var err error
	if armed, err = Parse(os.Getenv(EnvVar)); err != nil {
		fmt.Fprintf(os.Stderr, "crashpoint: %s: %v\n", EnvVar, err)
		os.Exit(2)
	}
}

// Hit kills this process with SIGKILL, after writing "crashpoint NAME" to
// standard error, when EnvVar names the point and this is the hit it
// names. It never returns then.
func Hit(name string) {
	mu.Lock()
	n, ok := armed[name]
	if ok {
		hits[name]++
		ok = hits[name] == n
	}
	mu.Unlock()
	if !ok {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint %s\n", name)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	for {
		// The signal is on its way; nothing after the point may run.
		time.Sleep(time.Hour)
	}
}
