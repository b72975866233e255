// Package scan checks files that cross shoji's transfer channel for malware
// (XFER-4). The Scanner interface is what the transfer channel depends on;
// Clamd implements it by speaking clamd's INSTREAM protocol.
//
// A scan either answers (clean or infected) or fails. A failure means the
// content could not be scanned — the daemon is down, too slow, refused the
// size, or answered something unexpected — and the caller must hold the
// file: scanning fails closed.
package scan

import (
	"context"
	"io"
)

// Result is the verdict of one scan.
type Result struct {
	// Infected reports that the scanner found malware.
	Infected bool
	// Signature names what was found, e.g. "Shoji.Test.Malware.UNOFFICIAL";
	// empty when clean.
	Signature string
	// Engine names the scanner and its signature version as the scanner
	// reports it, e.g. "ClamAV 1.4.6/27400/Mon Nov 23 08:00:00 2026", for
	// the transfer ledger.
	Engine string
}

// Scanner scans content for malware.
type Scanner interface {
	// Scan reads r to the end and says whether it is infected. An error
	// means the content could not be scanned (daemon down, timeout, size
	// limit, protocol error): the caller must hold the file (fail closed).
	Scan(ctx context.Context, r io.Reader) (Result, error)
}
