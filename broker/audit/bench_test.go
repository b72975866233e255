package audit

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCommit measures durable appends: each Commit returns after the
// fsync that covers its record. With parallel callers, group commit shares
// one fsync among many records.
// The signed variants write a checkpoint every 1000 records, as the broker
// does with audit.checkpoint_key set.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []struct {
		name     string
		parallel bool
		key      *SigningKey
	}{
		{"serial", false, nil}, {"parallel", true, nil},
		{"serial-signed", false, testKey(1)}, {"parallel-signed", true, testKey(1)},
	} {
		parallel := c.parallel
		b.Run(c.name, func(b *testing.B) {
			f, err := OpenFile(b.TempDir(), FileOptions{CheckpointKey: c.key, CheckpointEvery: 1000})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			ev := Navigation(time.Now(), Actor{User: "bench", Session: "s"}, "https://guidelines.example.jp/sepsis")
			ctx := context.Background()
			if !parallel {
				for b.Loop() {
					if _, err := f.Commit(ctx, ev); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.Commit(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRecord measures the non-blocking append that navigation and
// other records use.
func BenchmarkRecord(b *testing.B) {
	f, err := OpenFile(b.TempDir(), FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ev := Navigation(time.Now(), Actor{User: "bench", Session: "s"}, "https://guidelines.example.jp/sepsis")
	for b.Loop() {
		f.Record(ev)
	}
}
