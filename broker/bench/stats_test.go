package bench

import (
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"one value", []float64{7}, 50, 7},
		{"median of an even count interpolates", []float64{1, 2, 3, 4}, 50, 2.5},
		{"median of an odd count", []float64{1, 2, 9}, 50, 2},
		{"p0 is the minimum", []float64{3, 5, 8}, 0, 3},
		{"p100 is the maximum", []float64{3, 5, 8}, 100, 8},
		{"below 0 is the minimum", []float64{3, 5, 8}, -5, 3},
		{"above 100 is the maximum", []float64{3, 5, 8}, 150, 8},
		{"p95 of 1..100", hundred, 95, 95.05},
		{"p99 of 1..100", hundred, 99, 99.01},
		{"p25 between ranks", []float64{10, 20, 30, 40, 50}, 25, 20},
		{"p10 between ranks", []float64{10, 20, 30, 40, 50}, 10, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil, 50) = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	xs := []float64{30, 10, 20, 40}
	orig := slices.Clone(xs)
	got := Summarize(xs)
	want := Summary{N: 4, Min: 10, P50: 25, P95: 38.5, P99: 39.7, Max: 40, Mean: 25}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("Summarize(%v) (-want +got):\n%s", orig, diff)
	}
	if !slices.Equal(xs, orig) {
		t.Errorf("Summarize changed its input to %v", xs)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want the zero Summary", got)
	}
}

func TestSummaryGet(t *testing.T) {
	s := Summarize([]float64{1, 2, 3})
	for _, tc := range []struct {
		which  string
		want   float64
		wantOK bool
	}{
		{"p50", 2, true},
		{"p95", 2.9, true},
		{"p99", 2.98, true},
		{"p42", 0, false},
	} {
		got, ok := s.Get(tc.which)
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Get(%q) = %v, %v; want %v, %v", tc.which, got, ok, tc.want, tc.wantOK)
		}
	}
	if _, ok := (Summary{}).Get("p50"); ok {
		t.Error("an empty summary has a p50")
	}
}
