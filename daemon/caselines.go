package daemon

import (
	"context"
	"encoding/json"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// The case list's lines (store/caseline.go): every open or pending case's
// line of `deskd cases list`, written in the transaction that changes the
// case (putCase) and rebuilt for all of them when the SLA clocks change
// (runCaseLines), so that listing the open cases reads no history and
// replays no clock while its lines are true (issue 11).

// linesLayout versions the lines beside the clocks they were computed
// with: "2" since a line true forever is stored as such (store.lineNanos;
// before, its end wrapped around to 1970 and the line was never used).
// A store whose lines carry another version rebuilds them at start.
const linesLayout = "2"

// linesVersion is what the lines computed with clocks are recorded
// under (store.Tx.SetCaseLineVersion).
func linesVersion(clocks *sla.Clocks) string { return clocks.Fingerprint() + "/" + linesLayout }

// putCaseLine renews c's list line in tx, as of now.
func putCaseLine(tx *store.Tx, c *cases.Case, ev evaluation) error {
	if c.Status == cases.StatusClosed {
		return nil // PutCase dropped its line; closed cases have none
	}
	s, until := summarizeEvaluated(c, ev)
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	return tx.PutCaseLine(c.ID, ev.at, until, b)
}

// linesBatch is how many cases one transaction of a rebuild renews: the
// writer is held for a few tens of milliseconds at a time.
const linesBatch = 500

// runCaseLines rebuilds the lines at start and after every reload
// (d.linesKick) when the clocks differ from those the lines were computed
// with, until ctx ends.
func (d *Daemon) runCaseLines(ctx context.Context) {
	for {
		if err := d.rebuildCaseLines(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("case list lines not rebuilt (listings replay every case meanwhile)", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.linesKick:
		}
	}
}

func (d *Daemon) rebuildCaseLines(ctx context.Context) error {
	rt := d.rt.Load()
	version := linesVersion(rt.clocks)
	var ids []uint64
	current := false
	err := d.db.ViewContext(ctx, func(tx *store.Tx) error {
		v, err := tx.CaseLineVersion()
		if err != nil || v == version {
			current = true
			return err
		}
		for _, st := range []cases.Status{cases.StatusOpen, cases.StatusPending} {
			if err := tx.ForEachCaseIDAfter(st, 0, func(id uint64) error {
				ids = append(ids, id)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || current {
		return err
	}
	start := time.Now()
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := ids[:min(linesBatch, len(ids))]
		ids = ids[len(batch):]
		now := d.now()
		if err := d.db.Update(func(tx *store.Tx) error {
			for _, id := range batch {
				c, err := tx.Case(id)
				if err != nil {
					return err
				}
				if c != nil {
					if err := putCaseLine(tx, c, rt.evaluate(c, now)); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if d.rt.Load() != rt {
		return nil // a reload meanwhile: its kick rebuilds again
	}
	if err := d.db.Update(func(tx *store.Tx) error { return tx.SetCaseLineVersion(version) }); err != nil {
		return err
	}
	d.log.Info("case list lines rebuilt", "took", time.Since(start).Round(time.Millisecond), "sla_version", version)
	return nil
}
