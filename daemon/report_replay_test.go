package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"deskd/cases"
	"deskd/internal/gen"
	"deskd/sla"
	"deskd/store"
)

// replayReport is the report as deskd built it before the report index:
// every case read and replayed at now, all handed to sla.BuildReport. It
// is the reference BuildReport must equal.
func replayReport(tx *store.Tx, clocks *sla.Clocks, args ReportArgs, now time.Time) (*sla.Report, error) {
	year, month, err := ParseMonth(args.Month)
	if err != nil {
		return nil, err
	}
	loc := clocks.Default.Calendar.Location()
	var rcs []sla.ReportCase
	err = tx.ForEachCase("", func(c *cases.Case) error {
		sc, ok := cases.SLACase(c)
		if !ok {
			return nil
		}
		rcs = append(rcs, sla.ReportCase{
			ID: c.ID, Customer: c.Customer, Plan: c.Plan, Subject: c.Subject,
			Status: clocks.For(c.Customer).Evaluate(sc, now),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := sla.BuildReport(sla.ReportOptions{
		Year: year, Month: month, Location: loc, Now: now, Customer: args.Customer, Clocks: clocks,
	}, rcs)
	return &r, nil
}

// reportJSON is the report as the admin socket sends it.
func reportJSON(t *testing.T, r *sla.Report) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// indexState counts the report index's entries with figures current
// under stamp, and all entries.
func indexState(t *testing.T, db *store.DB, stamp string) (current, all int) {
	t.Helper()
	err := db.View(func(tx *store.Tx) error {
		return tx.ForEachClockEntry(time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), func(e *store.ClockEntry) error {
			all++
			if string(e.Stamp) == stamp && len(e.Data) > 0 {
				current++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return current, all
}

// The report from the index (figures kept for closed cases, open ones
// replayed, months read only as far back as R13's runs need) is byte for
// byte the report of a replay of every case (R4, R12, R13), on a
// generated store: for several months and customers, before the figures
// exist (right after generation, as after the migration), after the
// daemon's refresh, after cases changed through the daemon, and under
// other clocks (stale stamps): a customer's closure across a month end
// (R8) and targets so tight that every month misses, so the compensation
// runs back to the first case.
func TestReportEqualsReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deskd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(context.Background(), db, gen.Options{
		Cases: 1500, Customers: 8, End: end, OpenShare: 0.1, Seed: 7, Batch: 500,
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	now := end.Add(72 * time.Hour)
	d, err := Open(Options{StorePath: path, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.DB().Close()

	// The store's last month (open cases), a middle one, its first and
	// the month before it; the whole desk, the big customer and one
	// without cases.
	months := []string{"2026-12", "2026-11", "2025-06", "2023-11", "2023-10"}
	customers := []string{"", "Customer 001", "Nobody"}
	compare := func(stage string, clocks *sla.Clocks) {
		t.Helper()
		for _, m := range months {
			for _, cust := range customers {
				args := ReportArgs{Month: m, Customer: cust}
				err := d.DB().View(func(tx *store.Tx) error {
					fast, err := BuildReport(tx, clocks, args, now, nil)
					if err != nil {
						return err
					}
					full, err := replayReport(tx, clocks, args, now)
					if err != nil {
						return err
					}
					if f, r := reportJSON(t, fast), reportJSON(t, full); !bytes.Equal(f, r) {
						t.Errorf("%s: report %s %q differs from the replay:\nfast   %s\nreplay %s", stage, m, cust, f, r)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("%s: %s %q: %v", stage, m, cust, err)
				}
			}
		}
	}
	rt := d.rt.Load()
	if cur, all := indexState(t, d.DB(), rt.stamp); cur != 0 || all != 1500 {
		t.Fatalf("generated store: %d of %d entries with figures, want 0 of 1500", cur, all)
	}
	compare("before the refresh", rt.clocks)
	if ok, err := d.Settled(); err != nil || ok {
		t.Fatalf("a generated store settled before its refresh: %v, %v", ok, err)
	}

	if err := d.refreshClockFigures(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Settled(); err != nil || ok {
		t.Fatalf("settled with the case list lines not rebuilt: %v, %v", ok, err)
	}
	if err := d.rebuildCaseLines(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitSettled(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur, all := indexState(t, d.DB(), rt.stamp)
	if cur < all*8/10 || cur == all {
		t.Fatalf("after the refresh: %d of %d entries with figures, want the closed ones", cur, all)
	}
	compare("after the refresh", rt.clocks)

	// Cases change through the daemon: a closed case reopened, another
	// one's priority raised after it closed (R11c), an open one closed.
	err = d.DB().Update(func(tx *store.Tx) error {
		for id, change := range map[uint64]func(c *cases.Case){
			40: func(c *cases.Case) {
				c.Status = cases.StatusOpen
				c.Events = append(c.Events, cases.Event{At: now.Add(-time.Hour), Type: cases.EventReopened})
			},
			700: func(c *cases.Case) {
				c.Priority = cases.PriorityUrgent
				c.Events = append(c.Events, cases.Event{At: now.Add(-time.Hour), Type: cases.EventPrioritySet})
			},
			1499: func(c *cases.Case) {
				c.Status = cases.StatusClosed
				c.Events = append(c.Events, cases.Event{At: now.Add(-time.Hour), Type: cases.EventClosed})
			},
		} {
			c, err := tx.Case(id)
			if err != nil {
				return err
			}
			change(c)
			if err := d.putCase(tx, rt, c, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	compare("after changes", rt.clocks)

	// Other clocks: every stamp is stale. Customer 002 closes from mid
	// December to late January, so mails of December start their clocks
	// in January (R8); the default targets are so tight that every month
	// misses and R13's run goes back to the first case.
	loc := rt.clocks.Default.Calendar.Location()
	var closure []sla.Date
	for day := time.Date(2025, 12, 10, 0, 0, 0, 0, loc); day.Before(time.Date(2026, 1, 26, 0, 0, 0, 0, loc)); day = day.AddDate(0, 0, 1) {
		closure = append(closure, sla.Date{Year: day.Year(), Month: day.Month(), Day: day.Day()})
	}
	tight := sla.Default()
	tight.Resolution = map[string]sla.Tier{}
	for p, tier := range sla.Default().Resolution {
		tight.Resolution[p] = sla.Tier{Tier1: tier.Tier1 / 20, Tier2: tier.Tier2 / 20}
	}
	other := &sla.Clocks{
		Default:     &sla.Clock{Calendar: rt.clocks.Default.Calendar, Targets: tight},
		PerCustomer: map[string]*sla.Clock{"Customer 002": {Calendar: rt.clocks.Default.Calendar.With(closure, nil), Targets: sla.Default()}},
	}
	months = append(months, "2026-01")
	customers = append(customers, "Customer 002")
	compare("other clocks", other)
	var longest int
	d.DB().View(func(tx *store.Tx) error {
		r, err := BuildReport(tx, other, ReportArgs{Month: "2026-11"}, now, nil)
		for _, c := range r.Customers {
			longest = max(longest, c.Compensation.MissedMonths)
		}
		return err
	})
	if longest < 30 {
		t.Errorf("the longest run of missed months is %d: the tight targets should make it reach the first case", longest)
	}
}
