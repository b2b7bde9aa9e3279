package gen

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// TestGenerateSmallStore builds a small store and checks its shape against
// what Options asked for, through the store's own read paths.
func TestGenerateSmallStore(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "gen.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	end := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	opts := Options{Cases: 1000, Customers: 20, End: end, OpenShare: 0.05, Batch: 64}
	var batches int
	opts.Progress = func(int) { batches++ }
	st, err := Generate(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cases != 1000 || st.Open+st.Pending+st.Closed != 1000 {
		t.Fatalf("stats %+v", st)
	}
	if batches != 16 {
		t.Errorf("%d batches, want 16 (1000 cases by 64)", batches)
	}
	// 5% open or pending, drawn by coin among the latest 10%: allow the
	// binomial spread.
	if n := st.Open + st.Pending; n < 30 || n > 70 {
		t.Errorf("%d open or pending, want about 50", n)
	}
	err = db.View(func(tx *store.Tx) error {
		counts, err := tx.CountCases()
		if err != nil {
			return err
		}
		if counts[cases.StatusOpen] != st.Open || counts[cases.StatusPending] != st.Pending || counts[cases.StatusClosed] != st.Closed {
			t.Errorf("status index %v, stats %+v", counts, st)
		}
		customers := map[string]bool{}
		messages := 0
		start := end.Add(-3 * 365 * 24 * time.Hour)
		err = tx.ForEachCase("", func(c *cases.Case) error {
			customers[c.Customer] = true
			if c.ReceivedAt.Before(start) || c.ReceivedAt.After(end) {
				t.Errorf("case %d received %s, outside the span", c.ID, c.ReceivedAt)
			}
			if c.Status != cases.StatusClosed && c.ID <= 900 {
				t.Errorf("case %d is %s but not among the latest", c.ID, c.Status)
			}
			if c.Status == cases.StatusClosed && c.ClosedAt.IsZero() {
				t.Errorf("case %d closed without ClosedAt", c.ID)
			}
			// 1-3 mails of substance, plus the closing or pending command.
			if n := len(c.MessageKeys); n < 1 || n > 4 {
				t.Errorf("case %d has %d messages", c.ID, n)
			}
			msgs, err := tx.CaseMessages(c)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				raw, err := tx.Raw(m.Key)
				if err != nil {
					return err
				}
				if len(raw) == 0 || m.CaseID != c.ID {
					t.Errorf("case %d message %s: %d raw bytes, case %d", c.ID, m.Key, len(raw), m.CaseID)
				}
			}
			messages += len(msgs)
			return nil
		})
		if err != nil {
			return err
		}
		if messages != st.Messages {
			t.Errorf("%d messages stored, stats say %d", messages, st.Messages)
		}
		if len(customers) != 20 {
			t.Errorf("%d customers, want 20", len(customers))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGenerateReproducible: the same seed gives the same store.
func TestGenerateReproducible(t *testing.T) {
	end := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var subjects [2][]string
	for i := range subjects {
		db, err := store.Open(filepath.Join(t.TempDir(), "gen.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Generate(context.Background(), db, Options{Cases: 50, End: end, Seed: 7}); err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *store.Tx) error {
			return tx.ForEachCase("", func(c *cases.Case) error {
				subjects[i] = append(subjects[i], c.Customer+"|"+c.Subject+"|"+c.ReceivedAt.String()+"|"+string(c.Status))
				return nil
			})
		})
		db.Close()
	}
	if len(subjects[0]) != 50 {
		t.Fatalf("%d cases", len(subjects[0]))
	}
	for i := range subjects[0] {
		if subjects[0][i] != subjects[1][i] {
			t.Fatalf("case %d differs: %q vs %q", i+1, subjects[0][i], subjects[1][i])
		}
	}
}
