package auth

import (
	"fmt"
	"strings"
)

// Role is what a user may do in shoji. Every user has exactly one.
type Role string

// The roles. Their string values are what the store, the CLI and the JWT
// "role" claim carry.
const (
	// Clinician browses the Internet through an isolated browser.
	Clinician Role = "clinician"
	// Approver approves or rejects held transfers and site requests.
	Approver Role = "approver"
	// Admin manages users, policy and sessions.
	Admin Role = "admin"
	// Auditor reads and exports the audit trail.
	Auditor Role = "auditor"
)

// Roles lists every valid role in a stable order.
var Roles = []Role{Clinician, Approver, Admin, Auditor}

// ParseRole returns the Role named by s (case-insensitive, surrounding spaces
// ignored). The error for an unknown name names it and lists the valid ones.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.Valid() {
		return r, nil
	}
	names := make([]string, len(Roles))
	for i, v := range Roles {
		names[i] = string(v)
	}
	return "", fmt.Errorf("%w %q: valid roles are %s", ErrUnknownRole, s, strings.Join(names, ", "))
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	switch r {
	case Clinician, Approver, Admin, Auditor:
		return true
	}
	return false
}

// String returns the role's name.
func (r Role) String() string { return string(r) }
