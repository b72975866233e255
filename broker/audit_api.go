package broker

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoji-rbi/shoji/broker/api"
	"github.com/shoji-rbi/shoji/broker/audit"
	"github.com/shoji-rbi/shoji/broker/auth"
	"github.com/shoji-rbi/shoji/broker/store"
	"github.com/shoji-rbi/shoji/broker/transfer"
)

// auditRoutes adds the auditor's API (docs/audit.md). Auditors only: the
// people whose actions are recorded do not read or export the record.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.Handle("GET /api/audit/events", s.guard.Role(auth.Auditor, s.auditEvents))
	mux.Handle("GET /api/audit/events.csv", s.guard.Role(auth.Auditor, s.auditCSV))
	mux.Handle("GET /api/audit/counts", s.guard.Role(auth.Auditor, s.auditCounts))
	mux.Handle("GET /api/audit/status", s.guard.Role(auth.Auditor, s.auditStatus))
	mux.Handle("GET /api/audit/transfers", s.guard.Role(auth.Auditor, s.auditTransfers))
	mux.Handle("GET /api/audit/evidence", s.guard.Role(auth.Auditor, s.auditEvidence))
}

// auditDir is where the audit chain lives.
func (s *Server) auditDir() string { return filepath.Join(s.cfg.Data, "audit") }

// auditFilter reads the common query parameters.
func auditFilter(r *http.Request) (audit.Filter, error) {
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

// auditEvents answers the newest matching records first, limit at a time;
// before (a seq) pages to older ones.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := auditFilter(r)
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
	for e, err := range audit.Scan(s.auditDir(), f) {
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

func (s *Server) auditCSV(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="shoji-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	s.audit.Record(audit.Export(s.now(), api.Actor(r, p), "csv", r.URL.RawQuery))
	if err := audit.WriteCSV(w, audit.Scan(s.auditDir(), f)); err != nil {
		s.log.Error("audit: CSV export broke off", "err", err)
	}
	return nil
}

func (s *Server) auditCounts(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	c, err := audit.Count(s.auditDir(), f)
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	api.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) auditStatus(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	rep, err := audit.Verify(s.auditDir())
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

// ledgerMatch selects the transfers of the filter's period, user and hash.
func ledgerMatch(f audit.Filter) func(*transfer.Transfer) bool {
	return func(t *transfer.Transfer) bool {
		return (f.User == "" || t.User == f.User) &&
			(f.From.IsZero() || !t.Created.Before(f.From)) &&
			(f.To.IsZero() || t.Created.Before(f.To)) &&
			(f.SHA256 == "" || t.SHA256 == f.SHA256)
	}
}

func (s *Server) auditTransfers(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	list, err := s.store.ListTransfers(ledgerMatch(f))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

// auditEvidence answers an evidence bundle (IR-2) as a ZIP.
func (s *Server) auditEvidence(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	if _, err := s.audit.Commit(r.Context(), audit.Export(s.now(), api.Actor(r, p), "evidence", r.URL.RawQuery)); err != nil {
		return fmt.Errorf("audit the export: %w", err)
	}
	name := "shoji-evidence-" + s.now().UTC().Format("20060102-150405") + ".zip"
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := WriteEvidence(w, s.cfg.Data, s.store, f, p.User, s.now()); err != nil {
		s.log.Error("audit: evidence export broke off", "err", err)
	}
	return nil
}

// EvidenceManifest describes an evidence bundle: what was asked for, and
// the SHA-256 of every other file in it.
type EvidenceManifest struct {
	Created  time.Time         `json:"created"`
	By       string            `json:"by"`
	From     time.Time         `json:"from,omitzero"`
	To       time.Time         `json:"to,omitzero"`
	User     string            `json:"user,omitempty"`
	Records  int               `json:"records"`
	Ledger   int               `json:"transfers"`
	Files    int               `json:"quarantinedFiles"`
	Chain    string            `json:"chain"`
	Contents map[string]string `json:"sha256"`
	Missing  []string          `json:"missing,omitempty"`
}

// WriteEvidence writes an evidence bundle for the filter's period and user
// to w as a ZIP (IR-2): the matching audit records (records.jsonl), the
// whole audit chain as it is on disk so that it can be verified
// independently (chain/), the transfer ledger (transfers.json), the
// quarantined files still kept (files/ID), and manifest.json with the
// SHA-256 of each.
func WriteEvidence(w io.Writer, dataDir string, st *store.Store, f audit.Filter, by string, now time.Time) error {
	dir := filepath.Join(dataDir, "audit")
	zw := zip.NewWriter(w)
	m := EvidenceManifest{Created: now.UTC(), By: by, From: f.From, To: f.To, User: f.User, Contents: map[string]string{}}
	add := func(name string, write func(io.Writer) error) error {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		h := sha256.New()
		if err := write(io.MultiWriter(fw, h)); err != nil {
			return fmt.Errorf("evidence %s: %w", name, err)
		}
		m.Contents[name] = hex.EncodeToString(h.Sum(nil))
		return nil
	}
	err := add("records.jsonl", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for e, err := range audit.Scan(dir, f) {
			if err != nil {
				return err
			}
			m.Records++
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rep, err := audit.Verify(dir); err != nil {
		m.Chain = "BROKEN: " + err.Error()
	} else {
		m.Chain = fmt.Sprintf("intact: %d records, head %d %s", rep.Records, rep.HeadSeq, rep.HeadHash)
	}
	chain, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, path := range chain {
		if err := add("chain/"+filepath.Base(path), copyFrom(path)); err != nil {
			return err
		}
	}
	var ledger []transfer.Transfer
	if st != nil {
		ledger, err = st.ListTransfers(ledgerMatch(f))
		if err != nil {
			return err
		}
	}
	m.Ledger = len(ledger)
	if err := add("transfers.json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ledger)
	}); err != nil {
		return err
	}
	for _, t := range ledger {
		path := filepath.Join(dataDir, "quarantine", "files", t.ID)
		if t.Direction == transfer.Upload {
			path = filepath.Join(dataDir, "quarantine", "uploads", t.ID, t.Name)
		}
		if _, err := os.Stat(path); err != nil {
			if t.Expired.IsZero() && t.State != transfer.Rejected && t.State != transfer.Canceled {
				m.Missing = append(m.Missing, t.ID)
			}
			continue
		}
		if err := add("files/"+t.ID, copyFrom(path)); err != nil {
			return err
		}
		m.Files++
	}
	mw, err := zw.Create("manifest.json")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	return zw.Close()
}

// copyFrom returns a writer func that copies the file at path.
func copyFrom(path string) func(io.Writer) error {
	return func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}
