// Package crashpoint lets tests kill the broker at a named moment, to prove
// that it restarts from whatever that moment leaves on disk.
//
// Code marks a moment with a one-line call:
//
//	crashpoint.Hit("transfer.decide.before_ledger")
//
// In a normal build Hit is an empty function that the compiler removes. In a
// binary built with the build tag crashpoints (go build -tags crashpoints),
// Hit writes "crashpoint NAME" to standard error and kills its own process
// with SIGKILL when the environment variable SHOJI_CRASHPOINT names the
// point: a comma-separated list of NAME (the first hit) or NAME@N (the N-th
// hit). An entry that is neither stops the process at its start with an
// error naming it, so that a test never runs with a crash point it did not
// mean. The points in use are listed in Points.
package crashpoint

// EnvVar is the environment variable that names the crash points to fire.
const EnvVar = "SHOJI_CRASHPOINT"

// The crash points placed in the broker. Tests name them in EnvVar.
const (
	// PolicyBeforeStore is during a site policy change: after its audit
	// record is durable, before the store holds the new document.
	PolicyBeforeStore = "policy.before_store"
	// PolicyAfterStore is during a site policy change: after the store
	// holds the new document, before the running broker swaps it in.
	PolicyAfterStore = "policy.after_store"
	// DecideBeforeLedger is during an approver's decision on a held
	// file: after the decision's audit record is durable, before the
	// ledger holds it.
	DecideBeforeLedger = "transfer.decide.before_ledger"
	// DownloadQuarantined is when a finished download has been moved into
	// the quarantine, before the ledger says its checks run.
	DownloadQuarantined = "transfer.download.quarantined"
	// FinishBeforeLedger is when a transfer's checks are over and their
	// outcome is recorded in the trail, before the final ledger write.
	FinishBeforeLedger = "transfer.finish.before_ledger"
	// FinishAfterLedger is when the ledger holds a transfer's new state,
	// before anything else happens (the owner is told, a rejected file
	// deleted).
	FinishAfterLedger = "transfer.finish.after_ledger"
	// SessionStarted is when a browser session has started and its
	// session_start record is queued.
	SessionStarted = "session.started"
	// SessionEnded is when a browser session has ended and its
	// session_end record is queued.
	SessionEnded = "session.ended"
	// LeftoversRecorded is at start, when the browsers and profiles a
	// previous run left are recorded in the trail, before they are killed
	// and removed.
	LeftoversRecorded = "recovery.leftovers_recorded"
)

// Points lists every crash point placed in the broker.
var Points = []string{
	PolicyBeforeStore, PolicyAfterStore, DecideBeforeLedger, DownloadQuarantined,
	FinishBeforeLedger, FinishAfterLedger, SessionStarted, SessionEnded, LeftoversRecorded,
}
