package diskusage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOf(t *testing.T) {
	root := t.TempDir()
	write := func(rel string, n int) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a", 10)
	write("sub/b", 20)
	write("sub/deeper/c", 5)
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path        string
		files, size int64
	}{
		{root, 3, 35},
		{filepath.Join(root, "sub"), 2, 25},
		{filepath.Join(root, "a"), 1, 10},
		{filepath.Join(root, "link"), 0, 0},
		{filepath.Join(root, "missing"), 0, 0},
	} {
		if files, size := Of(tc.path); files != tc.files || size != tc.size {
			t.Errorf("Of(%s) = %d files, %d bytes; want %d, %d", tc.path, files, size, tc.files, tc.size)
		}
	}
}
