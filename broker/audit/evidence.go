package audit

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

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

// Ledger is the transfer ledger as an evidence bundle and the auditor's
// API read it. The audit package does not know the ledger's types (the
// transfer package, which records into the audit trail, owns them): the
// caller supplies the ledger, as broker/transfer.EvidenceLedger does.
type Ledger interface {
	// Extract returns the ledger's entries that the filter's period, user
	// and hash select.
	Extract(f Filter) (LedgerExtract, error)
}

// LedgerExtract is the part of the transfer ledger a filter selects.
type LedgerExtract struct {
	// Transfers is the selected entries, oldest first, as the JSON value
	// written to transfers.json.
	Transfers any
	// Files has one element per selected entry, in the same order: where
	// the entry's quarantined file is kept.
	Files []LedgerFile
}

// LedgerFile is where one transfer's quarantined file is kept.
type LedgerFile struct {
	// ID is the transfer's ID; the file is files/ID in a bundle.
	ID string
	// Path is the file on disk.
	Path string
	// Kept says the ledger expects the file to be there still (the
	// transfer did not expire and was neither rejected nor canceled), so
	// that its absence is reported in the manifest's Missing.
	Kept bool
}

// WriteEvidence writes an evidence bundle for the filter's period and user
// to w as a ZIP (IR-2): the matching audit records (records.jsonl), the
// whole audit chain in dir as it is on disk so that it can be verified
// independently (chain/), the part of the transfer ledger the filter
// selects (transfers.json; null when ledger is nil), the quarantined files
// of those transfers still kept (files/ID), and manifest.json with the
// SHA-256 of each. by names who asked; now is the bundle's time.
func WriteEvidence(w io.Writer, dir string, ledger Ledger, f Filter, by string, now time.Time) error {
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
		for e, err := range Scan(dir, f) {
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
	if rep, err := Verify(dir); err != nil {
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
	var part LedgerExtract
	if ledger != nil {
		if part, err = ledger.Extract(f); err != nil {
			return fmt.Errorf("evidence transfers.json: %w", err)
		}
	}
	m.Ledger = len(part.Files)
	if err := add("transfers.json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(part.Transfers)
	}); err != nil {
		return err
	}
	for _, lf := range part.Files {
		if _, err := os.Stat(lf.Path); err != nil {
			if lf.Kept {
				m.Missing = append(m.Missing, lf.ID)
			}
			continue
		}
		if err := add("files/"+lf.ID, copyFrom(lf.Path)); err != nil {
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
