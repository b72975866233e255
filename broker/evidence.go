package broker

import "github.com/shoji-rbi/shoji/broker/audit"

// EvidenceManifest describes an evidence bundle. The bundle is written by
// audit.WriteEvidence; this name stays for the broker's callers and tests.
type EvidenceManifest = audit.EvidenceManifest
