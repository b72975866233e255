// Package diskusage measures what a path holds on disk, for the records
// the broker writes before it removes files (a previous run's browser
// profiles, quarantined files).
package diskusage

import (
	"io/fs"
	"path/filepath"
)

// Of counts the regular files at or below path (path itself when it is
// one) and their bytes. Symbolic links are not followed; what cannot be
// read is not counted.
func Of(path string) (files, size int64) {
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			files++
			size += fi.Size()
		}
		return nil
	})
	return files, size
}
