// Package cleanup removes what a killed process left behind.
package cleanup

import (
	"os"
	"time"
)

// RemoveAll removes dir like os.RemoveAll. A process killed a moment ago
// may still have written into the directory while it was being removed, so
// RemoveAll tries again for at most limit before it returns the last error.
func RemoveAll(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := os.RemoveAll(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
