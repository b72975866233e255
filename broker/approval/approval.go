// Package approval holds the rules every approval in the broker follows,
// whatever is approved: a site request or a held file transfer.
package approval

import "errors"

// ErrOwnRequest is a decision by the person who made the request.
var ErrOwnRequest = errors.New("nobody decides their own request")

// CheckDecider returns ErrOwnRequest when decider is requester: nobody
// approves or rejects their own request; another approver must (XFER-5,
// ALLOW-1).
func CheckDecider(requester, decider string) error {
	if requester == decider {
		return ErrOwnRequest
	}
	return nil
}
