package crashpoint

import (
	"maps"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    map[string]int
		wantErr string
	}{
		{"", map[string]int{}, ""},
		{"a", map[string]int{"a": 1}, ""},
		{" a , b@3 ,", map[string]int{"a": 1, "b": 3}, ""},
		{"policy.before_store@2", map[string]int{"policy.before_store": 2}, ""},
		{"a@0", nil, `entry "a@0": the hit after @ must be a number from 1`},
		{"a@x", nil, `entry "a@x": the hit after @ must be a number from 1`},
		{"a@1@2", nil, `entry "a@1@2"`},
		{"@2", nil, `entry "@2": want NAME or NAME@N`},
		{"a b", nil, `entry "a b": want NAME or NAME@N`},
		{"a,a@2", nil, `entry "a@2": a is named twice`},
	} {
		got, err := Parse(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want an error with %q", tc.spec, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func TestPointsAreValid(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Points {
		if _, err := Parse(p); err != nil || seen[p] {
			t.Errorf("point %q: %v (duplicate %v)", p, err, seen[p])
		}
		seen[p] = true
	}
}
