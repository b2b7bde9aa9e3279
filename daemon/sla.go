package daemon

import (
	"context"
	"math"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
	"deskd/templates"
)

// The SLA side of the daemon: the store's deadline index is fed by
// deadlinesOf, handed to PutCase in every transaction that changes a
// case (putCase), and the
// escalation loop sleeps until the index's next entry (or a kick after a
// change), then sends what is due in one transaction per round: the mail
// in the outbox and the event that marks it sent, so each warning and
// breach goes out exactly once per case, kind and target, across
// restarts too (R11d).

// defaultClocks are the agreement's clocks (R11 calendar, R7/R9/R10
// targets) for options that bring none, e.g. tests.
func defaultClocks(opts Options) *sla.Clocks {
	if opts.SLAClocks != nil {
		return opts.SLAClocks
	}
	loc, err := time.LoadLocation("Europe/Amsterdam") // R11
	if err != nil {
		loc = time.UTC
	}
	targets := opts.SLA
	if targets.Resolution == nil && targets.FirstResponse == nil {
		targets = sla.Default()
	}
	return &sla.Clocks{Default: &sla.Clock{Calendar: sla.DefaultCalendar(loc), Targets: targets}}
}

// slaStatus replays c's clock at now; ok is false for a case no SLA
// figure counts (a machine's).
func (rt *runtime) slaStatus(c *cases.Case, now time.Time) (st sla.Status, clock *sla.Clock, ok bool) {
	ev := rt.evaluate(c, now)
	return ev.st, ev.clock, ev.ok
}

// evaluation is a case's SLA clock replayed once at an instant. A case
// write derives its deadline entries, its report figures and its list
// line from one (putCase), so the replay runs once per write, not three
// times.
type evaluation struct {
	at    time.Time
	sc    *sla.Case
	clock *sla.Clock
	st    sla.Status
	ok    bool // false: a machine's case, no clock
}

// evaluate replays c's clock at at.
func (rt *runtime) evaluate(c *cases.Case, at time.Time) evaluation {
	return evaluateWith(rt.clocks, c, at)
}

// evaluateWith replays c's clock from clocks at at; nil clocks give no
// clock, as for a machine's case.
func evaluateWith(clocks *sla.Clocks, c *cases.Case, at time.Time) evaluation {
	ev := evaluation{at: at}
	if clocks == nil {
		return ev
	}
	if ev.sc, ev.ok = cases.SLACase(c); ev.ok {
		ev.clock = clocks.For(c.Customer)
		ev.st = ev.clock.Evaluate(ev.sc, at)
	}
	return ev
}

// deadlinesOf are c's entries in the store's deadline index at now: the
// alerts c's clock still calls for, each under its key. A closed case
// calls for none. The daemon hands them to PutCase with the case (putCase).
func (rt *runtime) deadlinesOf(c *cases.Case, now time.Time) []store.Deadline {
	if c.Status == cases.StatusClosed {
		return nil
	}
	return deadlinesFrom(c, rt.evaluate(c, now))
}

// deadlinesFrom is deadlinesOf from an evaluation of an open or pending
// case at now.
func deadlinesFrom(c *cases.Case, ev evaluation) []store.Deadline {
	if !ev.ok {
		return nil
	}
	alerts := ev.clock.Alerts(&ev.st, cases.SLASent(c))
	out := make([]store.Deadline, 0, len(alerts))
	for _, a := range alerts {
		out = append(out, store.Deadline{At: ev.clock.SendAt(a, &ev.st, ev.at), Kind: a.Key()})
	}
	return out
}

// reindexDeadlines rebuilds the whole index (open and pending cases only)
// when the clocks' fingerprint differs from the one it was built under: a
// store from an older deskd, another calendar or other targets (a reload,
// a new configuration), or a store filled by another writer. An
// unchanged configuration reads no case, so a start costs the same with a
// million cases as with none. Entries computed at an earlier time are
// never late: SendAt only moves an overdue alert later, and the
// escalation loop re-evaluates every due case before it sends.
func (d *Daemon) reindexDeadlines() error {
	rt := d.rt.Load()
	version := rt.clocks.Fingerprint()
	var current bool
	if err := d.db.View(func(tx *store.Tx) error {
		v, err := tx.DeadlineVersion()
		current = v == version
		return err
	}); err != nil || current {
		return err
	}
	var n int
	now := d.now()
	err := d.db.Update(func(tx *store.Tx) error {
		var err error
		if n, err = tx.ReindexDeadlines(func(c *cases.Case) []store.Deadline { return rt.deadlinesOf(c, now) }); err != nil {
			return err
		}
		return tx.SetDeadlineVersion(version)
	})
	if err == nil {
		d.log.Info("sla deadline index rebuilt", "entries", n, "sla_version", version)
	}
	return err
}

// CheckDeadlines wakes the escalation loop, which then sends whatever is
// due by the daemon's clock. Tests that move Options.Now forward call it.
func (d *Daemon) CheckDeadlines() {
	select {
	case d.slaKick <- struct{}{}:
	default:
	}
}

// maxEscalationSleep bounds a sleep of the escalation loop, so that a jump
// of the wall clock (a suspended VM) is noticed within it.
const maxEscalationSleep = time.Minute

// runEscalations is the escalation loop: it sends the SLA's alerts and
// the digests of R1 notices when they fall due.
func (d *Daemon) runEscalations(ctx context.Context) {
	for {
		if err := d.escalate(); err != nil {
			d.log.Error("sla escalation round failed; retrying", "err", err)
		}
		// The digests of R1 notices (digest.go) are timed mail too.
		if err := d.sendDueDigests(); err != nil {
			d.log.Error("R1 notice digest round failed; retrying", "err", err)
		}
		wait := maxEscalationSleep
		if next, ok, err := d.nextDigest(d.rt.Load()); err != nil {
			d.log.Error("R1 notice digests unreadable", "err", err)
		} else if w := next.Sub(d.now()); ok && w < wait {
			wait = w
		}
		err := d.db.View(func(tx *store.Tx) error {
			next, ok, err := tx.NextDeadline()
			if ok {
				if w := next.At.Sub(d.now()); w < wait {
					wait = w
				}
			}
			return err
		})
		if err != nil {
			d.log.Error("sla deadline index unreadable", "err", err)
		}
		if wait <= 0 {
			// Still due after a round: something keeps it from being
			// handled (it is logged); do not spin on it.
			wait = maxEscalationSleep
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.slaKick:
		case <-t.C:
		}
		t.Stop()
	}
}

// alertSent is one alert queued in a round, for the log and the metrics
// after the commit.
type alertSent struct {
	caseID uint64
	alert  sla.Alert
	to     []string
}

// escalate sends every alert that is due, in one transaction.
func (d *Daemon) escalate() error {
	rt := d.rt.Load()
	now := d.now()
	// Most wake-ups find nothing due: a read transaction costs no write
	// to the disk, an empty read-write one would.
	var anything bool
	if err := d.db.View(func(tx *store.Tx) error {
		next, ok, err := tx.NextDeadline()
		anything = ok && !next.At.After(now)
		return err
	}); err != nil || !anything {
		return err
	}
	var sent []alertSent
	err := d.db.Update(func(tx *store.Tx) error {
		sent = sent[:0]
		due, err := tx.DueDeadlines(now)
		if err != nil {
			return err
		}
		seen := map[uint64]bool{}
		for _, dl := range due {
			if seen[dl.CaseID] {
				continue
			}
			seen[dl.CaseID] = true
			c, err := tx.Case(dl.CaseID)
			if err != nil {
				return err
			}
			if c == nil {
				continue
			}
			if err := d.escalateCase(tx, rt, c, now, &sent); err != nil {
				return err
			}
			// Stored even when nothing went out: the index then drops
			// an entry the case no longer calls for.
			if err := d.putCase(tx, rt, c, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range sent {
		if s.alert.Kind == sla.AlertWarning {
			d.slaWarned(s.alert.Target)
		} else {
			d.slaBreached(s.alert.Target)
		}
		d.log.Info("sla "+s.alert.Kind, "case", s.caseID, "target", s.alert.Target, "limit", s.alert.Limit, "to", s.to)
	}
	if len(sent) > 0 {
		d.wakeOutbox()
	}
	return nil
}

// escalateCase queues c's due alerts and marks each sent on the case.
func (d *Daemon) escalateCase(tx *store.Tx, rt *runtime, c *cases.Case, now time.Time, sent *[]alertSent) error {
	if c.Status == cases.StatusClosed {
		return nil
	}
	st, clock, ok := rt.slaStatus(c, now)
	if !ok {
		return nil
	}
	for _, a := range clock.Alerts(&st, cases.SLASent(c)) {
		if clock.SendAt(a, &st, now).After(now) {
			continue // not yet, or not at this hour (R11d)
		}
		var to []string
		switch {
		case a.Kind == sla.AlertWarning:
			to = rt.opts.Policy.StaffNotify
		case a.Tier2() && len(rt.opts.EscalationTier2) > 0:
			to = rt.opts.EscalationTier2
		default:
			to = rt.opts.Escalation
		}
		*sent = append(*sent, alertSent{caseID: c.ID, alert: a, to: to})
		m := c.Escalate(a, to, rt.opts.Policy.StaffLanguage, rt.opts.Policy.SupportAddress, now)
		if m == nil {
			d.log.Warn("sla "+a.Kind+" has nobody to go to (staff.notify / staff.escalation empty)", "case", c.ID, "target", a.Target)
			continue
		}
		if _, err := d.queueMails(tx, rt, c, []*cases.OutMail{m}, now); err != nil {
			return err
		}
	}
	return nil
}

// slaFields fills the SLA figures of a mail about c: the alert a warning
// or breach is about, or the resolution target a priority mail states
// (R7, R4), in the mail's language and the customer's zone.
func slaFields(rt *runtime, c *cases.Case, m *cases.OutMail, now time.Time, data *templates.CaseData) {
	st, clock, ok := rt.slaStatus(c, now)
	if !ok {
		return
	}
	loc, lang := clock.Calendar.Location(), m.Language
	share := clock.WarnShare
	if share <= 0 || share >= 1 {
		share = 0.75
	}
	data.WarnShare = int(math.Round(share * 100))
	if a := m.SLAAlert; a != nil {
		data.Target = a.Target
		data.TargetLimit = templates.FormatWorking(a.Limit, lang)
		for _, t := range st.Targets() {
			if t.Name != a.Target {
				continue
			}
			data.Due = templates.FormatWhen(t.Due, loc, lang)
			data.Elapsed = templates.FormatWorking(t.Elapsed, lang)
			if a.Kind == sla.AlertBreach && t.Elapsed > t.Limit {
				data.Over = templates.FormatWorking(t.Elapsed-t.Limit, lang)
			}
		}
	}
	if m.Kind == cases.MailPrioritySet {
		// The customer reads the agreement's names (R7 table), and
		// whether their own proposal was followed.
		data.Priority = templates.PriorityName(st.Priority, lang)
		data.ProposedPriority = templates.PriorityName(string(c.ProposedPriority), lang)
	}
	if m.Kind == cases.MailPrioritySet && st.Resolution != nil {
		data.ResolutionTarget = templates.FormatWorking(st.Resolution.Limit, lang)
		data.ResolutionDue = templates.FormatWhen(st.Resolution.Due, loc, lang)
	}
}

// firstResponseDue is the instant R9's target falls due for a new case,
// in words for the acknowledgement ("" when its plan has none).
func firstResponseDue(rt *runtime, c *cases.Case, lang string, now time.Time) string {
	st, clock, ok := rt.slaStatus(c, now)
	if !ok || st.FirstResponse == nil {
		return ""
	}
	return templates.FormatWhen(st.FirstResponse.Due, clock.Calendar.Location(), lang)
}
