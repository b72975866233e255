// Package audittrail is the auditor's HTTP API (docs/audit.md): the audit
// records, filtered, paged, counted and exported as CSV; the state of the
// hash chain; the transfer ledger; and evidence bundles (audit.WriteEvidence).
// Auditors only: the people whose actions are recorded do not read or
// export the record. Every export is itself recorded.
package audittrail

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
)

// Handlers serve the auditor's API. Every field is required.
type Handlers struct {
	// Guard authenticates requests and checks the auditor role.
	Guard *api.Guard
	// Dir is the audit chain's directory (DATA/audit).
	Dir string
	// Audit records the exports.
	Audit audit.Sink
	// Ledger is the transfer ledger, for the ledger view and the bundles.
	Ledger audit.Ledger
	// Log logs exports that broke off after their answer began.
	Log *slog.Logger
	// Now is the clock of the export records and the bundles' names.
	Now func() time.Time
}

// Register adds the auditor's API to mux.
func (h *Handlers) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/audit/events", h.Guard.Role(auth.Auditor, h.events))
	mux.Handle("GET /api/audit/events.csv", h.Guard.Role(auth.Auditor, h.csv))
	mux.Handle("GET /api/audit/counts", h.Guard.Role(auth.Auditor, h.counts))
	mux.Handle("GET /api/audit/status", h.Guard.Role(auth.Auditor, h.status))
	mux.Handle("GET /api/audit/transfers", h.Guard.Role(auth.Auditor, h.transfers))
	mux.Handle("GET /api/audit/evidence", h.Guard.Role(auth.Auditor, h.evidence))
}

// filter reads the common query parameters.
func filter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	var f audit.Filter
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, api.Status(http.StatusBadRequest, fmt.Sprintf("%s %q: want an RFC 3339 time such as 2026-11-23T09:00:00+09:00", p.key, v))
			}
			*p.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, api.Status(http.StatusBadRequest, "to is before from")
	}
	f.User = q.Get("user")
	f.Type = audit.Type(q.Get("type"))
	f.Host = strings.ToLower(q.Get("host"))
	f.SHA256 = strings.ToLower(q.Get("sha256"))
	for _, v := range []string{f.User, string(f.Type), f.Host, f.SHA256} {
		if len(v) > 256 {
			return f, api.Status(http.StatusBadRequest, "a filter value is longer than 256 bytes")
		}
	}
	return f, nil
}

// events answers the newest matching records first, limit at a time;
// before (a seq) pages to older ones.
func (h *Handlers) events(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	limit := 200
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 5000 {
			return api.Status(http.StatusBadRequest, "limit: want 1 to 5000")
		}
	}
	var before uint64
	if v := r.URL.Query().Get("before"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil {
			return api.Status(http.StatusBadRequest, "before: want a record number")
		}
	}
	// Keep the newest limit matches in a ring.
	ring := make([]audit.Event, 0, limit)
	next, matched := 0, 0
	for e, err := range audit.Scan(h.Dir, f) {
		if err != nil {
			return fmt.Errorf("read audit trail: %w", err)
		}
		if before != 0 && e.Seq >= before {
			break
		}
		matched++
		if len(ring) < limit {
			ring = append(ring, e)
			continue
		}
		ring[next] = e
		next = (next + 1) % limit
	}
	out := make([]audit.Event, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		out = append(out, ring[(next+i)%len(ring)])
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"events": out, "more": matched > len(ring)})
	return nil
}

// csv answers the matching records as CSV and records the export.
func (h *Handlers) csv(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="shoji-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	h.Audit.Record(audit.Export(h.Now(), api.Actor(r, p), "csv", r.URL.RawQuery))
	if err := audit.WriteCSV(w, audit.Scan(h.Dir, f)); err != nil {
		h.Log.Error("audit: CSV export broke off", "err", err)
	}
	return nil
}

// counts answers the counts of the matching records (audit.Count).
func (h *Handlers) counts(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	c, err := audit.Count(h.Dir, f)
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, c)
	return nil
}

// status answers whether the hash chain verifies, its head, and its
// checkpoints.
func (h *Handlers) status(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	rep, err := audit.Verify(h.Dir)
	out := map[string]any{
		"ok": err == nil, "records": rep.Records, "files": len(rep.Files),
		"head": map[string]any{"seq": rep.HeadSeq, "hash": rep.HeadHash}, "note": rep.Note,
	}
	if err != nil {
		out["error"] = err.Error()
	}
	// The checkpoints' signatures are checked with the public key, by
	// shoji audit verify --key; here they are counted.
	out["checkpoints"], out["unsigned"] = rep.Checkpoints, rep.Unsigned
	if c := rep.LastCheckpoint; c != nil {
		out["last_checkpoint"] = map[string]any{"seq": c.Seq, "time": c.Time, "reason": c.Reason, "key_id": c.KeyID}
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// transfers answers the transfer ledger's entries of the filter's period,
// user and hash.
func (h *Handlers) transfers(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	part, err := h.Ledger.Extract(f)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, part.Transfers)
	return nil
}

// evidence answers an evidence bundle (IR-2) as a ZIP, once its export is
// recorded.
func (h *Handlers) evidence(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	if _, err := h.Audit.Commit(r.Context(), audit.Export(h.Now(), api.Actor(r, p), "evidence", r.URL.RawQuery)); err != nil {
		return fmt.Errorf("audit the export: %w", err)
	}
	name := "shoji-evidence-" + h.Now().UTC().Format("20060102-150405") + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := audit.WriteEvidence(w, h.Dir, h.Ledger, f, p.User, h.Now()); err != nil {
		h.Log.Error("audit: evidence export broke off", "err", err)
	}
	return nil
}
