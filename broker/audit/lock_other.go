//go:build !unix

package audit

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/lock. Without flock the directory is not locked
// against a second process.
func lockDir(dir string) (*os.File, error) {
	lf, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock audit directory: %w", err)
	}
	return lf, nil
}
