package crashpoint

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a list of crash points, "NAME" or "NAME@N" separated by
// commas, into the hit that fires each (1 for the first).
func Parse(spec string) (map[string]int, error) {
	out := map[string]int{}
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, nth, found := strings.Cut(entry, "@")
		n := 1
		if found {
			var err error
			if n, err = strconv.Atoi(nth); err != nil || n < 1 {
				return nil, fmt.Errorf("entry %q: the hit after @ must be a number from 1", entry)
			}
		}
		if name == "" || strings.ContainsAny(name, " \t@") {
			return nil, fmt.Errorf("entry %q: want NAME or NAME@N", entry)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("entry %q: %s is named twice", entry, name)
		}
		out[name] = n
	}
	return out, nil
}
