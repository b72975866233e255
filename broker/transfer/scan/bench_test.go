package scan_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/shoji-rbi/shoji/broker/transfer/scan"
	"github.com/shoji-rbi/shoji/broker/transfer/scan/clamdtest"
)

// BenchmarkClamdScan measures one INSTREAM scan by a real clamd (with only
// the test signature: real signature sets make clamd slower per byte).
func BenchmarkClamdScan(b *testing.B) {
	d := clamdtest.Start(b)
	c, err := scan.NewClamd(d.Addr, scan.ClamdOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64 << 10, 1 << 20, 8<<20 - 1024} {
		data := bytes.Repeat([]byte("clinical guideline text "), size/24+1)[:size]
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.Scan(context.Background(), bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
