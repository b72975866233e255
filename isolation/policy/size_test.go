package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		str  string // String of the result
	}{
		{"0", 0, "0"},
		{"4096", 4096, "4KiB"},
		{"1234", 1234, "1234B"},
		{"1234B", 1234, "1234B"},
		{"25MiB", 25 << 20, "25MiB"},
		{"25 MiB", 25 << 20, "25MiB"},
		{" 25mib ", 25 << 20, "25MiB"},
		{"500KB", 500_000, "500KB"},
		{"500kb", 500_000, "500KB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"4GiB", 4 << 30, "4GiB"},
		{"2KiB", 2048, "2KiB"},
		{"3MB", 3_000_000, "3MB"},
		{"1GB", 1_000_000_000, "1GB"},
		{"1024MiB", 1 << 30, "1GiB"},
		{"1TiB", 1 << 40, "1TiB"},
		{"2TB", 2e12, "2TB"},
		{"007KiB", 7 << 10, "7KiB"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("Size(%d).String() = %q, want %q", got, s, tt.str)
		}
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("ParseSize(%q) = %d, %v; want %d back", got.String(), back, err, got)
		}
	}

	bad := []struct{ in, want string }{
		{"", "want a whole number"},
		{"MiB", "want a whole number"},
		{"1.5GiB", "want a whole number"},
		{"-1", "negative"},
		{"-5MiB", "negative"},
		{"10 parsecs", `unknown unit "parsecs"`},
		{"10M", `unknown unit "M"`},
		{"10K", `unknown unit "K"`},
		{"5MiB5", `unknown unit "MiB5"`},
		{"1 000", `unknown unit "000"`},
		{"0x10", `unknown unit "x10"`},
		{"99999999999999999999", "too large"},
		{"9000000TiB", "too large"},
	}
	for _, tt := range bad {
		if got, err := ParseSize(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeHuman(t *testing.T) {
	for in, want := range map[Size]string{
		0: "0 bytes", 512: "512 bytes", 1536: "1.5 KiB", 100 * MiB: "100 MiB",
		120*MiB + 1: "120 MiB", 3 * GiB / 2: "1.5 GiB",
	} {
		if got := in.human(); got != want {
			t.Errorf("Size(%d).human() = %q, want %q", in, got, want)
		}
	}
}

func TestSizeEncoding(t *testing.T) {
	type doc struct {
		Max Size `yaml:"max" json:"max"`
	}
	for in, want := range map[string]Size{
		"max: 25MiB\n":     25 * MiB,
		"max: 1048576\n":   MiB,
		"max: \"500KB\"\n": 500_000,
	} {
		var d doc
		if err := yaml.Unmarshal([]byte(in), &d); err != nil || d.Max != want {
			t.Errorf("yaml %q = %d, %v; want %d", in, d.Max, err, want)
		}
	}
	for _, in := range []string{"max: [1]\n", "max: 1.5GiB\n", "max: -3\n"} {
		var d doc
		err := yaml.Unmarshal([]byte(in), &d)
		if err == nil || !strings.Contains(err.Error(), "line 1: ") {
			t.Errorf("yaml %q: err = %v, want an error naming line 1", in, err)
		}
	}
	out, err := yaml.Marshal(doc{Max: 100 * MiB})
	if err != nil || string(out) != "max: 100MiB\n" {
		t.Errorf("yaml.Marshal = %q, %v; want \"max: 100MiB\\n\"", out, err)
	}

	j, err := json.Marshal(doc{Max: 500_000})
	if err != nil || string(j) != `{"max":"500KB"}` {
		t.Errorf("json.Marshal = %s, %v", j, err)
	}
	for in, want := range map[string]Size{`{"max":"500KB"}`: 500_000, `{"max":2048}`: 2 * KiB, `{"max":null}`: 7} {
		d := doc{Max: 7}
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.Max != want {
			t.Errorf("json %s = %d, %v; want %d", in, d.Max, err, want)
		}
	}
	for _, in := range []string{`{"max":"1.5GiB"}`, `{"max":-1}`, `{"max":true}`, `{"max":1.5}`} {
		var d doc
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("json %s: accepted as %d", in, d.Max)
		}
	}
}
