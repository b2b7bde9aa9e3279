package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"deskd/cases"
)

// BenchmarkPutCaseAndMessage is the ingest transaction for one new mail: the
// message with a 40 KiB raw, a new case, the msgid index, an ack in the
// outbox and the IMAP checkpoint, committed (and fsynced) per op.
func BenchmarkPutCaseAndMessage(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	raw := realisticRaw(40 << 10)
	ack := realisticRaw(3 << 10)
	uid := uint32(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		uid++
		err := db.Update(func(tx *Tx) error {
			id, err := tx.NextCaseID()
			if err != nil {
				return err
			}
			m := newMessage(fmt.Sprintf("mid:%d@acme.example", uid), id)
			m.UID = uid
			c := newCase(id, cases.StatusOpen)
			c.MessageKeys = []string{m.Key}
			if err := tx.PutMessage(m, raw); err != nil {
				return err
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
			if err := tx.Enqueue(&OutboxEntry{CaseID: id, Kind: "ack", MessageID: fmt.Sprintf("ack-%d@desk.example", id),
				EnvelopeFrom: "support@desk.example", Recipients: []string{"ann@acme.example"}, Raw: ack, CreatedAt: t0}); err != nil {
				return err
			}
			if err := tx.RecordAutoMail("ack", "ann@acme.example", t0.Add(time.Duration(uid)*time.Second)); err != nil {
				return err
			}
			return tx.SetCheckpoint("INBOX", 1, uid)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForEachCase lists 100,000 cases (a few years of a busy desk), all
// of them and only the open ones via the status index.
func BenchmarkForEachCase(b *testing.B) {
	const total = 100_000
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Built once: with sub-benchmarks this function body runs a single time.
	statuses := []cases.Status{cases.StatusClosed, cases.StatusClosed, cases.StatusClosed, cases.StatusClosed,
		cases.StatusClosed, cases.StatusClosed, cases.StatusClosed, cases.StatusClosed, cases.StatusPending, cases.StatusOpen}
	for start := uint64(1); start <= total; start += 5000 {
		err := db.Update(func(tx *Tx) error {
			for id := start; id < start+5000 && id <= total; id++ {
				c := newCase(id, statuses[id%uint64(len(statuses))])
				c.MessageKeys = append(c.MessageKeys, fmt.Sprintf("out:ack-%d@desk.example", id), fmt.Sprintf("mid:%d-2@acme.example", id))
				c.Events = append(c.Events,
					cases.Event{At: t0.Add(2 * time.Hour), Type: cases.EventStaffResponse, By: "eve@desk.example"},
					cases.Event{At: t0.Add(3 * time.Hour), Type: cases.EventCustomerReply, By: "ann@acme.example"},
					cases.Event{At: t0.Add(4 * time.Hour), Type: cases.EventClosed, By: "eve@desk.example"})
				if err := tx.PutCase(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, status := range []cases.Status{"", cases.StatusOpen} {
		name := string(status)
		if name == "" {
			name = "all"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				err := db.View(func(tx *Tx) error {
					return tx.ForEachCase(status, func(*cases.Case) error { n++; return nil })
				})
				if err != nil {
					b.Fatal(err)
				}
				if want := map[cases.Status]int{"": total, cases.StatusOpen: total / 10}[status]; n != want {
					b.Fatalf("listed %d cases, want %d", n, want)
				}
			}
		})
	}
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			if err := db.View(func(tx *Tx) error { _, err := tx.CountCases(); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
