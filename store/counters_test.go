package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"deskd/cases"
)

func storeCounts(t *testing.T, db *DB) (c, m int) {
	t.Helper()
	view(t, db, func(tx *Tx) error {
		var err error
		c, m, err = tx.Counts()
		return err
	})
	return c, m
}

// The migration to schema 5 counts the fixture's cases and messages once;
// from then on PutCase and PutMessage count what they add, and nothing
// they update.
func TestCountersMigrateAndKeep(t *testing.T) {
	path := copyFixture(t)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wantC, wantM int
	view(t, db, func(tx *Tx) error {
		wantC = tx.tx.Bucket([]byte(bucketCases)).Stats().KeyN
		wantM = tx.tx.Bucket([]byte(bucketMessages)).Stats().KeyN
		return nil
	})
	if c, m := storeCounts(t, db); c != wantC || m != wantM || c != 6 {
		t.Fatalf("after migration: %d cases, %d messages; want %d, %d (6 cases in the fixture)", c, m, wantC, wantM)
	}
	update(t, db, func(tx *Tx) error {
		id, _ := tx.NextCaseID()
		c := newCase(id, cases.StatusOpen)
		if err := tx.PutCase(c); err != nil {
			return err
		}
		if err := tx.PutMessage(newMessage("mid:new-1", id), []byte("raw")); err != nil {
			return err
		}
		// An update of either is no new record.
		c.Status = cases.StatusClosed
		if err := tx.PutCase(c); err != nil {
			return err
		}
		return tx.PutMessage(newMessage("mid:new-1", id), nil)
	})
	if c, m := storeCounts(t, db); c != wantC+1 || m != wantM+1 {
		t.Errorf("after one new case and message: %d, %d; want %d, %d", c, m, wantC+1, wantM+1)
	}
	// A rolled-back transaction counts nothing.
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		id, _ := tx.NextCaseID()
		if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if c, _ := storeCounts(t, db); c != wantC+1 {
		t.Errorf("after a rollback: %d cases, want %d", c, wantC+1)
	}
}

// A walk in a ViewContext stops with the context's error once it ends.
func TestForEachCaseStopsWithContext(t *testing.T) {
	db := openTest(t)
	update(t, db, func(tx *Tx) error {
		for i := 0; i < 10; i++ {
			id, _ := tx.NextCaseID()
			if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
				return err
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	err := db.ViewContext(ctx, func(tx *Tx) error {
		return tx.ForEachCase(cases.StatusOpen, func(*cases.Case) error {
			seen++
			if seen == 3 {
				cancel()
			}
			return nil
		})
	})
	if !errors.Is(err, context.Canceled) || seen != 3 {
		t.Errorf("walk after cancel: %v after %d cases; want context.Canceled after 3", err, seen)
	}
	// --after: the page after case 7 of every case.
	var ids []uint64
	view(t, db, func(tx *Tx) error {
		return tx.ForEachCaseAfter("", 7, func(c *cases.Case) error { ids = append(ids, c.ID); return nil })
	})
	if len(ids) != 3 || ids[0] != 8 {
		t.Errorf("after 7: %v", ids)
	}
}

// A case's list line is true from its from to its until, and PutCase
// drops it: no line outlives a change its writer did not renew it for.
func TestCaseLineDroppedByPutCase(t *testing.T) {
	db := openTest(t)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	update(t, db, func(tx *Tx) error {
		id, _ := tx.NextCaseID()
		if err := tx.PutCase(newCase(id, cases.StatusOpen)); err != nil {
			return err
		}
		return tx.PutCaseLine(id, t0, t0.Add(time.Hour), []byte(`{"id":1}`))
	})
	view(t, db, func(tx *Tx) error {
		for at, want := range map[time.Time]bool{t0.Add(-time.Second): false, t0: true, t0.Add(59 * time.Minute): true, t0.Add(time.Hour): false} {
			if line, ok := tx.CaseLine(1, at); ok != want || (ok && string(line) != `{"id":1}`) {
				t.Errorf("line at %v: %q %v, want %v", at, line, ok, want)
			}
		}
		return nil
	})
	update(t, db, func(tx *Tx) error {
		c, _ := tx.Case(1)
		c.Subject = "changed"
		return tx.PutCase(c)
	})
	view(t, db, func(tx *Tx) error {
		if _, ok := tx.CaseLine(1, t0); ok {
			t.Error("the line survived a PutCase")
		}
		return nil
	})
}
