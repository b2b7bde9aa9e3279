package daemon

import (
	"context"
	"fmt"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// The daemon's side of the store's report index (store/caseclock.go):
// the figures it keeps beside each case, the reader BuildReport uses, and
// the refresh of figures computed under other clocks.
//
// The figures are written with the case, by putCase in the transaction
// that changes it, rather than lazily by the report: the index then never
// disagrees with its case (every state change one transaction), a report
// stays a read-only transaction (the CLI's on a stopped store too), and
// the cost is one replay per case change, which deskd already pays for
// the deadlines. Only cases nobody writes any more need a second road:
// after the migration that created the index, or when the calendar or
// targets changed, the refresh (refreshClockFigures) recomputes them in
// the background, a batch per transaction; until it is done the report
// replays those cases, so it is only slower, never different.

// caseFigures are c's figures for the report index at now under clocks
// (stamp is sla.FiguresStamp(clocks)): the encoded figures once they can no
// longer change (sla.Status.Final: every clock stopped, which closing
// does), else none, so that the report replays the case at its own now.
// They are evaluated at the case's latest event when that lies after now,
// so that they hold from asOf on whatever the daemon's clock says.
func caseFigures(clocks *sla.Clocks, stamp string, c *cases.Case, now time.Time) store.ClockFigures {
	sc, ok := cases.SLACase(c)
	if !ok {
		return store.ClockFigures{Stamp: stamp} // a machine's case: the index flags it
	}
	asOf := figuresAsOf(sc, now)
	clock := clocks.For(c.Customer)
	return figuresFrom(stamp, c, evaluation{at: asOf, sc: sc, clock: clock, st: clock.Evaluate(sc, asOf), ok: true})
}

// figuresAsOf is the instant a case's figures are evaluated at: now, or
// its latest event when that lies later.
func figuresAsOf(sc *sla.Case, now time.Time) time.Time {
	asOf := now
	for _, e := range sc.Events {
		if e.At.After(asOf) {
			asOf = e.At
		}
	}
	return asOf
}

// figuresFrom is caseFigures from an evaluation at figuresAsOf.
func figuresFrom(stamp string, c *cases.Case, ev evaluation) store.ClockFigures {
	fig := store.ClockFigures{Stamp: stamp}
	if ev.ok && ev.st.Final() {
		fig.Data = sla.AppendFigures(nil, &sla.ReportCase{Plan: c.Plan, Subject: c.Subject, Status: ev.st}, ev.at)
	}
	return fig
}

// reportReader feeds a ReportBuilder from the report index.
type reportReader struct {
	tx       *store.Tx
	clocks   *sla.Clocks
	stamp    string
	customer string
	now      time.Time
	b        *sla.ReportBuilder
	onCase   func()
	// lo and hi bound the clock starts of the cases being added: [lo,
	// hi), lo zero for no bound.
	lo, hi time.Time
	// month is the report month's start: only its cases' subjects are
	// shown.
	month time.Time
	rc    sla.ReportCase
	dec   sla.FigureDecoder
	names map[string]string // customer names, one string each
}

func newReportReader(tx *store.Tx, clocks *sla.Clocks, customer string, month, now time.Time, b *sla.ReportBuilder, onCase func()) *reportReader {
	return &reportReader{
		tx: tx, clocks: clocks, stamp: sla.FiguresStamp(clocks), customer: customer,
		month: month, now: now, b: b, onCase: onCase, names: map[string]string{},
	}
}

// read adds the cases whose clock started in [lo, hi), then earlier ones,
// a year at a time, while the builder says they could matter.
func (r *reportReader) read(lo, hi time.Time) error {
	first, ok, err := r.tx.FirstClockReceived()
	if err != nil || !ok {
		return err
	}
	for {
		floor := receiptFloor(r.clocks, lo)
		all := first.IsZero() || !floor.After(first)
		if all {
			// Everything before is read as well: the cases without a
			// receipt too, whose clock never started.
			floor, lo = time.Time{}, time.Time{}
		}
		r.lo, r.hi = lo, hi
		if err := r.tx.ForEachClockEntry(floor, hi, r.entry); err != nil {
			return err
		}
		if all || !r.b.NeedsBefore(lo) {
			return nil
		}
		hi, lo = lo, lo.AddDate(0, -sla.HistoryMonths, 0)
	}
}

// entry adds one indexed case: from its figures when they are current,
// else replayed.
func (r *reportReader) entry(e *store.ClockEntry) error {
	if r.onCase != nil {
		r.onCase()
	}
	if e.Machine || (r.customer != "" && string(e.Customer) != r.customer) {
		return nil
	}
	rc := &r.rc
	rc.ID = e.ID
	name, ok := r.names[string(e.Customer)]
	if !ok {
		name = string(e.Customer)
		r.names[name] = name
	}
	rc.Customer = name
	cached := false
	if len(e.Data) > 0 && string(e.Stamp) == r.stamp {
		asOf, err := r.dec.Decode(e.Data, rc, r.month)
		if err != nil {
			return fmt.Errorf("case %d: %w", e.ID, err)
		}
		cached = !r.now.Before(asOf)
	}
	if !cached {
		c, err := r.tx.Case(e.ID)
		if err != nil {
			return err
		}
		if c == nil {
			return fmt.Errorf("report index names case %d, which does not exist", e.ID)
		}
		sc, ok := cases.SLACase(c)
		if !ok {
			return nil
		}
		rc.Plan, rc.Subject = c.Plan, c.Subject
		rc.Status = r.clocks.For(c.Customer).Evaluate(sc, r.now)
	}
	if start := rc.Status.Start; start.Before(r.lo) || !start.Before(r.hi) {
		return nil // another round's
	}
	r.b.Add(rc)
	return nil
}

// receiptFloor is an instant before which no case whose clock starts at
// or after t was received: every calendar has working time between it
// and t, and a mail received before that working time starts its clock
// at the latest there (R8, R11b), before t. A week covers weekends and
// holidays; longer closures widen it. Zero means from the first case.
func receiptFloor(clocks *sla.Clocks, t time.Time) time.Time {
	cals := []*sla.Calendar{clocks.Default.Calendar}
	for _, k := range clocks.PerCustomer {
		if k != nil && k.Calendar != nil {
			cals = append(cals, k.Calendar)
		}
	}
	for back := 7 * 24 * time.Hour; back <= 8*366*24*time.Hour; back *= 2 {
		f, ok := t.Add(-back), true
		for _, cal := range cals {
			ok = ok && cal.Between(f, t) > 0
		}
		if ok {
			return f
		}
	}
	return time.Time{}
}

// A refresh transaction recomputes up to refreshBatch cases and stops
// after refreshHold: the writer is held for tens of milliseconds at a
// time, so ingest waits little, while the cost of a commit (which grows
// with the store: bbolt writes its freelist each time) is shared by
// hundreds of cases.
const (
	refreshBatch = 5000
	refreshHold  = 50 * time.Millisecond
)

// refreshLogEvery is how often (in cases) a long refresh logs progress.
const refreshLogEvery = 100_000

// refreshClockFigures recomputes, in the background, the figures of every
// index entry whose stamp is not the clocks' (after the migration that
// built the index, after a change of calendar or targets), a batch per
// transaction, and records the stamp when it went over the whole index;
// a start with that stamp recorded reads nothing. It gives up when ctx
// ends or the clocks change again (the next run starts over).
func (d *Daemon) refreshClockFigures(ctx context.Context) error {
	rt := d.rt.Load()
	stamp := rt.stamp
	var done bool
	if err := d.db.View(func(tx *store.Tx) error {
		v, err := tx.ClockFiguresVersion()
		done = v == stamp
		return err
	}); err != nil || done {
		return err
	}
	began := time.Now()
	var after []byte
	n := 0
	for {
		if ctx.Err() != nil || d.rt.Load().stamp != stamp {
			return ctx.Err()
		}
		now := d.now()
		var last []byte
		var count int
		var more bool
		err := d.db.Update(func(tx *store.Tx) error {
			stale, err := tx.StaleClockEntries(stamp, after, refreshBatch)
			if err != nil {
				return err
			}
			more, count, last = len(stale) == refreshBatch, 0, after
			held := time.Now()
			for _, e := range stale {
				if count > 0 && time.Since(held) > refreshHold {
					more = true // the rest in the next transaction
					break
				}
				c, err := tx.Case(e.ID)
				if err != nil {
					return err
				}
				if c == nil {
					return fmt.Errorf("report index names case %d, which does not exist", e.ID)
				}
				if err := tx.PutClockFigures(c, caseFigures(rt.clocks, stamp, c, now)); err != nil {
					return err
				}
				count, last = count+1, e.Key
			}
			if !more {
				return tx.SetClockFiguresVersion(stamp)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("refresh report figures: %w", err)
		}
		if n/refreshLogEvery != (n+count)/refreshLogEvery {
			d.log.Info("report figures refreshing", "cases", n+count, "sla_version", stamp)
		}
		n += count
		after = last
		if !more {
			d.log.Info("report figures refreshed", "cases", n, "sla_version", stamp, "took", time.Since(began).Round(time.Millisecond))
			return nil
		}
	}
}

// runClockRefresh runs refreshClockFigures at start and after each reload
// that changed the clocks (figuresKick).
func (d *Daemon) runClockRefresh(ctx context.Context) {
	for {
		if err := d.refreshClockFigures(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("report figures not refreshed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.figuresKick:
		}
	}
}
