package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"deskd/cases"
)

// TestPreloadWarmsWhatItNames checks Preload's one promise (issue 11: a
// commit after a backup or report evicted the page cache): once it ran,
// committing the hinted mails reads nothing from disk. The commit is what
// a new case costs the store: the dedupe lookup, the message and its raw
// mail, the Message-ID, the case in its customer's and its party's index,
// and an R1 notice to a named contact. The control commits other mails
// after the same eviction without a preload and must fault, which shows
// the eviction worked (a store on tmpfs would fail there).
func TestPreloadWarmsWhatItNames(t *testing.T) {
	db := openTest(t)
	const customers = 300
	who := func(i int) (customer, party, contact string) {
		n := i % customers
		return fmt.Sprintf("customer %03d", n), fmt.Sprintf("writer@c%03d.example", n), fmt.Sprintf("Contact@c%03d.example", n)
	}
	// commit stores one new mail as the daemon's commit of a new case
	// does, in the buckets the hints name.
	commit := func(tx *Tx, i int, key string) error {
		if m, err := tx.Message(key); err != nil || m != nil {
			return fmt.Errorf("dedupe %s: %v %v", key, m, err)
		}
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		customer, party, contact := who(i)
		c := newCase(id, cases.StatusClosed)
		c.Customer, c.Parties, c.MessageKeys = customer, []string{party}, []string{key}
		m := newMessage(key, id)
		m.Text = "The printer is on fire."
		raw := make([]byte, 700)
		_, _ = rand.Read(raw)
		if err := tx.PutMessage(m, []byte(hex.EncodeToString(raw))); err != nil {
			return err
		}
		if err := tx.PutCase(c); err != nil {
			return err
		}
		_, err = tx.AddNotice(cases.Address{Email: contact}, cases.Notice{CaseID: id, Subject: c.Subject, Customer: customer, At: t0})
		return err
	}
	newKey := func() string { return "mid:" + rand.Text() + "@preload.example" }
	// 12,000 mails with random Message-IDs, as real ones are, each a case
	// of one of 300 customers: every customer's and contact's range, and
	// the leaf a new Message-ID lands in, is a page among thousands.
	for start := 0; start < 12000; start += 2000 {
		update(t, db, func(tx *Tx) error {
			for i := start; i < start+2000; i++ {
				if err := commit(tx, i, newKey()); err != nil {
					return err
				}
			}
			return nil
		})
	}

	// run commits 100 new mails of 100 customers from first on, and
	// returns the major page faults it took.
	run := func(db *DB, first int, preload func([]IngestHint)) (faults int64) {
		keys := make([]string, 100)
		hints := make([]IngestHint, len(keys))
		for i := range keys {
			keys[i] = newKey()
			customer, party, contact := who(first + i)
			hints[i] = IngestHint{DedupeKey: keys[i], MessageIDs: []string{keys[i][len("mid:"):]},
				Customer: customer, Parties: []string{party}, Contacts: []string{contact}}
		}
		preload(hints)
		before := majorFaults(t)
		update(t, db, func(tx *Tx) error {
			for i, key := range keys {
				if err := commit(tx, first+i, key); err != nil {
					return err
				}
			}
			return nil
		})
		return majorFaults(t) - before
	}

	db = evicted(t, db)
	unhinted := run(db, 0, func([]IngestHint) {})
	db = evicted(t, db)
	hinted := run(db, 100, func(hs []IngestHint) {
		// Hints the store cannot use cost nothing and break nothing.
		hs = append(hs, IngestHint{}, IngestHint{MessageIDs: []string{"unknown@x"}, Contacts: []string{"", "nul\x00@x"}})
		db.Preload(context.Background(), hs)
	})
	t.Logf("major page faults committing 100 new cases after an eviction: %d without a preload, %d after it", unhinted, hinted)
	if unhinted < 100 {
		t.Fatalf("the control's commit took %d major faults: the eviction did not work (a store on tmpfs?)", unhinted)
	}
	if hinted*20 > unhinted {
		t.Errorf("after Preload, the commit of the hinted mails took %d major faults (without: %d)", hinted, unhinted)
	}

	// A cancelled preload reads nothing.
	db = evicted(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if after := run(db, 200, func(hs []IngestHint) { db.Preload(ctx, hs) }); after*2 < unhinted {
		t.Errorf("a cancelled preload warmed the cache: %d faults, %d without it", after, unhinted)
	}
}

// evicted closes db, drops its file's pages from the page cache and opens
// it again.
func evicted(t *testing.T, db *DB) *DB {
	t.Helper()
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// majorFaults is how many page faults of this process needed a disk read.
func majorFaults(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Majflt
}
