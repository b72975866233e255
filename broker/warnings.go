package broker

import (
	"context"

	"github.com/shoji-rbi/shoji/broker/audit"
)

// A start warning is a weakness of the configuration that the broker runs
// with anyway: it is logged as a WARNING and recorded in the audit trail
// (type start_warning) at every start, so that neither the operator nor
// the auditor can miss it, and StartWarnings lists it for a self-check.

// startWarning is one weakness: what names it in the trail, text says what
// it means and what to do.
type startWarning struct {
	what string
	text string
}

// warningScanningOff is the start warning for an empty transfer.clamd.
const warningScanningOff = "scanning_off"

// configWarnings are the weaknesses of cfg.
func configWarnings(cfg Config) []startWarning {
	var out []startWarning
	if cfg.Transfer.Clamd == "" {
		out = append(out, startWarning{warningScanningOff,
			"transfer.clamd is empty: files are NOT scanned for malware; downloads and uploads are released " +
				"on the site policy alone (and an approver where the policy asks for one). " +
				"Set transfer.clamd to a ClamAV daemon (docs/transfer.md), unless another scanner checks every file " +
				"on its way to the terminal."})
	}
	return out
}

// warnAtStart logs every weakness of the configuration and records it in
// the audit trail, durably before the broker serves.
func (s *Server) warnAtStart(ctx context.Context) {
	for _, w := range configWarnings(s.cfg) {
		s.warnings = append(s.warnings, w.text)
		s.log.Warn("WARNING: " + w.text)
		cctx, cancel := context.WithTimeout(ctx, auditWait)
		if _, err := s.audit.Commit(cctx, audit.StartWarning(s.now(), w.what, w.text)); err != nil {
			s.log.Error("record a start warning in the audit trail", "what", w.what, "err", err)
		}
		cancel()
	}
}

// Warnings returns the weaknesses of the configuration that a broker
// started with it warns about, one sentence each for an administrator;
// empty when none. A self-check (`shoji check`) can list them without
// starting a broker.
func (c Config) Warnings() []string {
	var out []string
	for _, w := range configWarnings(c) {
		out = append(out, w.text)
	}
	return out
}

// StartWarnings returns what the broker warned about at start (in the log
// and the audit trail), one sentence each for an administrator; empty
// when nothing. A self-check (`shoji check`) lists them as warnings.
func (s *Server) StartWarnings() []string { return append([]string(nil), s.warnings...) }
