package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. YAML and JSON write it as a whole number with
// an optional unit, "25MiB", "500KB", "1GiB", "4096", or as a plain integer
// of bytes. Units are B; KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB
// (powers of 1024). They are read case-insensitively and may follow a space.
// A Size is written back in the largest unit that divides it ("100MiB").
type Size int64

// Binary size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// sizeUnit is a unit Size reads and writes.
type sizeUnit struct {
	name string
	mult int64
}

// sizeUnits are the units Size reads, largest first, the order in which
// String tries them.
var sizeUnits = []sizeUnit{
	{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3}, {"B", 1},
}

// binaryUnits are the units human writes.
var binaryUnits = []sizeUnit{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// errSize is wrapped by ParseSize's errors.
var errSize = errors.New(`want a whole number of bytes, or one with a unit such as "25MiB", "500KB" or "1GiB"`)

// ParseSize reads a size as YAML and JSON write it: "25MiB", "500 KB",
// "1gib", "4096". It refuses fractions, negative numbers, unknown units and
// sizes that do not fit in an int64.
func ParseSize(s string) (Size, error) {
	in := strings.TrimSpace(s)
	digits := strings.IndexFunc(in, func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(in)
	}
	num, unit := in[:digits], strings.TrimSpace(in[digits:])
	switch {
	case strings.HasPrefix(in, "-"):
		return 0, fmt.Errorf("size %q is negative", s)
	case num == "" || strings.HasPrefix(unit, "."):
		return 0, fmt.Errorf("size %q: %w", s, errSize)
	}
	mult := int64(1)
	if unit != "" {
		mult = 0
		for _, u := range sizeUnits {
			if strings.EqualFold(unit, u.name) {
				mult = u.mult
				break
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("size %q: unknown unit %q: %w", s, unit, errSize)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n * mult), nil
}

// String writes the size in the largest unit that divides it: "100MiB",
// "500KB", "2TB", "1234B"; zero is "0".
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range sizeUnits {
		if int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B" // unreachable: B divides everything
}

// human writes a size for people: "120 MiB", "1.5 GiB", "512 bytes".
func (s Size) human() string {
	for _, u := range binaryUnits {
		if int64(s) >= u.mult {
			v := strconv.FormatFloat(float64(s)/float64(u.mult), 'f', 1, 64)
			return strings.TrimSuffix(v, ".0") + " " + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + " bytes"
}

// MarshalYAML writes the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML reads a size as ParseSize does, from a string or an
// integer.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: size: %v", n.Line, errSize)}}
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*s = v
	return nil
}

// MarshalJSON writes the size as a JSON string, as String does.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a size from a JSON string (as ParseSize) or number
// of bytes. null leaves it unchanged.
func (s *Size) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		str = string(data)
	}
	v, err := ParseSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
