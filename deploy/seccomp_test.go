package deploy

import "testing"

// seccompAllowed returns the system calls a profile allows, with or without
// conditions on their arguments.
func seccompAllowed(t *testing.T, profile map[string]any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	rules, _ := profile["syscalls"].([]any)
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		if rule["action"] != "SCMP_ACT_ALLOW" {
			continue
		}
		names, _ := rule["names"].([]any)
		for _, n := range names {
			s, _ := n.(string)
			out[s] = true
		}
	}
	return out
}
