// Command genv1 writes store/testdata/schema-v1.db: a small store in schema
// version 1, the layout before the case_customer index (schema 2). It was run
// once with the store package of schema 1; the file it made is kept, not
// regenerated, because the current store package writes the current schema.
// Run with a later store package it would make a current-schema file, so it
// checks the version it wrote and refuses anything but 1.
//
//	go run ./store/testdata/genv1 store/testdata/schema-v1.db
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"deskd/cases"
	"deskd/store"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: genv1 OUT.db")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "genv1:", err)
		os.Exit(1)
	}
}

// raw makes a plausible RFC 5322 message of a few KB; deterministic so the
// fixture's contents can be checked by tests.
func raw(caseID uint64, n int, from, subject string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", from)
	fmt.Fprintf(&b, "From: %s\r\nTo: support@desk.example\r\n", from)
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Message-ID: <c%d-m%d@example.org>\r\n", caseID, n)
	b.WriteString("Date: Mon, 02 Nov 2026 09:15:00 +0100\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "Line %d of message %d in case %d: het werkt niet, could you look? é ü\r\n", i, n, caseID)
	}
	return b.Bytes()
}

func run(out string) error {
	tmp, err := os.MkdirTemp("", "genv1")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "v1.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	t0 := time.Date(2026, 11, 2, 8, 15, 0, 0, time.UTC)
	type spec struct {
		customer string
		status   cases.Status
		msgs     int
	}
	specs := []spec{
		{"acme", cases.StatusOpen, 2},
		{"globex", cases.StatusPending, 1},
		{"acme", cases.StatusClosed, 3},
		{"initech", cases.StatusOpen, 1},
		{"acme", cases.StatusOpen, 1},
		{"", cases.StatusOpen, 1}, // default customer (stranger)
	}
	err = db.Update(func(tx *store.Tx) error {
		for i, s := range specs {
			id, err := tx.NextCaseID()
			if err != nil {
				return err
			}
			at := t0.Add(time.Duration(i) * time.Hour)
			from := fmt.Sprintf("user%d@%s.example", i, strings.TrimSpace(s.customer+"x"))
			c := &cases.Case{
				ID:         id,
				Subject:    fmt.Sprintf("Problem %d with the VPN", id),
				Status:     s.status,
				Priority:   cases.PriorityHigh,
				Kind:       cases.KindIncident,
				Customer:   s.customer,
				Plan:       "gold",
				Language:   "nl",
				Requester:  cases.Address{Name: fmt.Sprintf("User %d", i), Email: from},
				Parties:    []string{from},
				CreatedAt:  at,
				UpdatedAt:  at.Add(time.Hour),
				ReceivedAt: at,
			}
			if s.status == cases.StatusClosed {
				c.ClosedAt = at.Add(2 * time.Hour)
			}
			for n := 1; n <= s.msgs; n++ {
				mid := fmt.Sprintf("c%d-m%d@example.org", id, n)
				r := raw(id, n, from, c.Subject)
				m := &cases.Message{
					Key:         "mid:" + mid,
					CaseID:      id,
					Direction:   cases.DirectionIn,
					Role:        cases.RoleCustomer,
					MessageID:   mid,
					From:        cases.Address{Email: from},
					To:          []cases.Address{{Email: "support@desk.example"}},
					Subject:     c.Subject,
					Date:        at.Add(time.Duration(n) * time.Minute),
					Text:        "het werkt niet\n",
					Attachments: []cases.Attachment{{Filename: "log.txt", ContentType: "text/plain", Size: 12}},
					UID:         uint32(10*id) + uint32(n),
					Size:        len(r),
				}
				if err := tx.PutMessage(m, r); err != nil {
					return err
				}
				c.MessageKeys = append(c.MessageKeys, m.Key)
				c.Events = append(c.Events, cases.Event{At: m.Date, Type: cases.EventReceived, By: from, MessageID: mid})
			}
			if err := tx.PutCase(c); err != nil {
				return err
			}
		}
		if err := tx.SetCheckpoint("INBOX", 1700000000, 61); err != nil {
			return err
		}
		if err := tx.Enqueue(&store.OutboxEntry{
			CaseID:       1,
			Kind:         "ack",
			MessageID:    "ack-1@desk.example",
			EnvelopeFrom: "support@desk.example",
			Recipients:   []string{"user0@acme.example"},
			Raw:          []byte("From: support@desk.example\r\nTo: user0@acme.example\r\nSubject: [#1] received\r\n\r\nWe have your mail.\r\n"),
			CreatedAt:    t0.Add(time.Minute),
		}); err != nil {
			return err
		}
		if err := tx.PutQuarantine(&store.QuarantineRecord{
			Key:       "sha256:00ff",
			MessageID: "broken@example.org",
			Reason:    "parse: malformed MIME",
			From:      "someone@example.org",
			Subject:   "???",
			UID:       99,
			At:        t0.Add(3 * time.Hour),
			Size:      22,
		}, []byte("Subject: ???\r\n\r\n\x00\xff")); err != nil {
			return err
		}
		if err := tx.RecordAutoMail("User0@Acme.example", t0.Add(time.Minute)); err != nil {
			return err
		}
		if err := tx.SetUndeliverable("gone@globex.example", t0.Add(72*time.Hour), "550 5.1.1 user unknown"); err != nil {
			return err
		}
		_, err := tx.HMACKey()
		return err
	})
	if err != nil {
		db.Close()
		return err
	}
	// Compact: WriteTo writes only the pages in use.
	f, err := os.Create(out)
	if err != nil {
		db.Close()
		return err
	}
	if _, err := db.WriteTo(f); err != nil {
		f.Close()
		db.Close()
		return err
	}
	if err := f.Close(); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return checkVersion(out)
}

// checkVersion refuses a file that is not schema version 1.
func checkVersion(path string) error {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer bdb.Close()
	return bdb.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte("meta")).Get([]byte("schema_version"))
		if !bytes.Equal(v, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
			os.Remove(path)
			return fmt.Errorf("wrote schema version %x, not 1: this generator only makes the v1 fixture", v)
		}
		return nil
	})
}
