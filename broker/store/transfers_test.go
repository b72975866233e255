package store

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/shoji-rbi/shoji/broker/transfer"
)

// onDisk is a ledger entry and a destination as broker versions before the
// types moved to broker/transfer wrote them. Data directories in use hold
// such records, so their encoding must never change.
const (
	transferOnDisk = `{"id":"t1","direction":"download","user":"nurse","role":"clinician","terminal":"10.0.0.5","session":"s1","profile":"ward",` +
		`"name":"検査結果.pdf","pageName":"検査結果.pdf","source":"https://lab.example/r.pdf","size":1234,"received":1234,` +
		`"sha256":"abc","mime":"application/pdf","class":"pdf","state":"held","reason":"why","rule":"r1","scan":"clean",` +
		`"inspection":"macros","justification":"needed","approver":"boss","comment":"ok","decided":"2026-04-01T10:00:00Z",` +
		`"created":"2026-04-01T09:00:00Z","updated":"2026-04-01T10:00:00Z","expired":"2026-04-02T09:00:00Z","saved":2,` +
		`"sent":[{"destination":"lab","file":"a.pdf","by":"boss","at":"2026-04-01T11:00:00Z"}]}`
	destinationOnDisk = `{"name":"lab","description":"検査部","dir":"/srv/lab","addedBy":"root","added":"2026-04-01T09:00:00Z"}`
)

// TestTransferEncodingOnDisk: a ledger entry and a destination are stored
// with the field names and state values they always had, and records
// written before are read back whole.
func TestTransferEncodingOnDisk(t *testing.T) {
	s, _ := openTemp(t)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	tr := transfer.Transfer{
		ID: "t1", Direction: transfer.Download, User: "nurse", Role: "clinician", Terminal: "10.0.0.5", Session: "s1", Profile: "ward",
		Name: "検査結果.pdf", PageName: "検査結果.pdf", Source: "https://lab.example/r.pdf", Size: 1234, Received: 1234,
		SHA256: "abc", MIME: "application/pdf", Class: "pdf", State: transfer.Held, Reason: "why", Rule: "r1", Scan: "clean",
		Inspection: "macros", Justification: "needed", Approver: "boss", Comment: "ok", Decided: at(1),
		Created: at(0), Updated: at(1), Expired: at(24), Saved: 2,
		Sent: []transfer.Sent{{Destination: "lab", File: "a.pdf", By: "boss", At: at(2)}},
	}
	d := transfer.Destination{Name: "lab", Description: "検査部", Dir: "/srv/lab", AddedBy: "root", Added: at(0)}
	if err := s.CreateTransfer(tr); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDestination(d); err != nil {
		t.Fatal(err)
	}
	raw := func(bucket []byte, key string) string {
		var v string
		if err := s.db.View(func(tx *bolt.Tx) error {
			v = string(tx.Bucket(bucket).Get([]byte(key)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := raw(bucketTransfers, "t1"); got != transferOnDisk {
		t.Errorf("transfer on disk:\n got %s\nwant %s", got, transferOnDisk)
	}
	if got := raw(bucketDestinations, "lab"); got != destinationOnDisk {
		t.Errorf("destination on disk:\n got %s\nwant %s", got, destinationOnDisk)
	}

	// Records written by an earlier version read back whole.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketTransfers).Put([]byte("t2"), []byte(strings.Replace(transferOnDisk, `"id":"t1"`, `"id":"t2"`, 1))); err != nil {
			return err
		}
		return tx.Bucket(bucketDestinations).Put([]byte("lab2"), []byte(strings.Replace(destinationOnDisk, `"name":"lab"`, `"name":"lab2"`, 1)))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Transfer("t2")
	if err != nil {
		t.Fatal(err)
	}
	want := tr
	want.ID = "t2"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transfer read back (-want +got):\n%s", diff)
	}
	dests, err := s.Destinations()
	if err != nil {
		t.Fatal(err)
	}
	d2 := d
	d2.Name = "lab2"
	if diff := cmp.Diff([]transfer.Destination{d, d2}, dests); diff != "" {
		t.Errorf("destinations read back (-want +got):\n%s", diff)
	}
}

// TestListTransfersUndecodable: a ledger record that cannot be decoded
// fails the listing and the read of it with an error that names the
// transfer, instead of being skipped (the broker's Recover then leaves the
// quarantine alone).
func TestListTransfersUndecodable(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CreateTransfer(transfer.Transfer{ID: "good", State: transfer.Released, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTransfers).Put([]byte("garbage"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListTransfers(nil); err == nil {
		t.Errorf("ListTransfers over an undecodable record: %v, no error", list)
	}
	if _, err := s.Transfer("garbage"); err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Errorf("Transfer of an undecodable record: %v", err)
	}
}
