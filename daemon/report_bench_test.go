package daemon

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// BenchmarkBuildReport100k: the month's report over a store of 100,000
// cases spread over twelve months (what `deskd report` does on a stopped
// store or in the daemon), written with their report figures as the
// daemon writes them (putCase), beside what it replaced in the same run:
// the replay of every case (replayReport), and reading and decoding every
// case once.
//
//	go test -run '^$' -bench BuildReport100k -benchtime 3x ./daemon/
func BenchmarkBuildReport100k(b *testing.B) {
	const n = 100_000
	db, err := store.Open(filepath.Join(b.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	clocks := defaultClocks(Options{})
	stamp := sla.FiguresStamp(clocks)
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, amsterdam)
	start := time.Date(2025, 12, 1, 0, 0, 0, 0, amsterdam)
	prios := []cases.Priority{cases.PriorityUrgent, cases.PriorityHigh, cases.PriorityMedium, cases.PriorityLow}
	err = db.Update(func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			id, err := tx.NextCaseID()
			if err != nil {
				return err
			}
			// Spread over twelve months, at any hour.
			recv := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
			c := &cases.Case{
				ID: id, Subject: fmt.Sprintf("case %d", id), Status: cases.StatusOpen,
				Priority: prios[rng.IntN(len(prios))], Customer: fmt.Sprintf("customer-%d", rng.IntN(40)),
				Plan: []string{"Premium", "Business", "Basic"}[rng.IntN(3)], Requester: cases.Address{Email: "x@example.test"},
				CreatedAt: recv, UpdatedAt: recv, ReceivedAt: recv,
				Events: []cases.Event{{At: recv, Type: cases.EventReceived}},
			}
			c.Events = append(c.Events, cases.Event{At: recv.Add(time.Duration(rng.IntN(20)) * time.Hour), Type: cases.EventStaffResponse})
			if rng.IntN(10) < 8 {
				closed := recv.Add(time.Duration(rng.IntN(300)) * time.Hour)
				c.Status, c.ClosedAt = cases.StatusClosed, closed
				c.Events = append(c.Events, cases.Event{At: closed, Type: cases.EventClosed})
			}
			if err := tx.PutCaseFigures(c, caseFigures(clocks, stamp, c, now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("report", func(b *testing.B) {
		for b.Loop() {
			err := db.View(func(tx *store.Tx) error {
				r, err := BuildReport(tx, clocks, ReportArgs{Month: "2026-11"}, now, nil)
				if err == nil && len(r.Customers) != 40 {
					err = fmt.Errorf("%d customers", len(r.Customers))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	})
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			err := db.View(func(tx *store.Tx) error {
				r, err := replayReport(tx, clocks, ReportArgs{Month: "2026-11"}, now)
				if err == nil && len(r.Customers) != 40 {
					err = fmt.Errorf("%d customers", len(r.Customers))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	})
	b.Run("read-every-case", func(b *testing.B) {
		for b.Loop() {
			count := 0
			err := db.View(func(tx *store.Tx) error {
				return tx.ForEachCase("", func(*cases.Case) error { count++; return nil })
			})
			if err != nil || count != n {
				b.Fatal(err, count)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	})
}
