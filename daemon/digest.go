package daemon

import (
	"sync"
	"time"

	"deskd/cases"
	"deskd/store"
)

// The digest of R1 notices. Someone of a customer who is not one of its
// named contacts writes in: the named contacts are told (R1), but at
// most once per contact per Options.NoticeDigest, in one mail listing
// every writer and case since the last one, so that a burst of
// colleagues' questions costs each contact one notice. A contact's
// digest (store.NoticeDigest) changes only in the transaction that adds
// a notice (the inbound mail's) or queues the digest (that one, or a
// round of the escalation loop, which also sleeps until the next digest
// is due), so a restart neither loses a notice nor sends one twice.

// defaultNoticeDigest is limits.notice_digest's default.
const defaultNoticeDigest = time.Hour

// noticeDigest is the configured digest period.
func (rt *runtime) noticeDigest() time.Duration {
	if rt.opts.NoticeDigest > 0 {
		return rt.opts.NoticeDigest
	}
	return defaultNoticeDigest
}

// digestDue reports whether dg's pending notices may go out at now: the
// first ever at once, later ones a digest period after the last.
func digestDue(dg *store.NoticeDigest, period time.Duration, now time.Time) bool {
	return len(dg.Pending) > 0 && (dg.LastSent.IsZero() || !now.Before(dg.LastSent.Add(period)))
}

// addNotices adds a decision's R1 notices to the named contacts' digests
// in tx, and sends each digest that is due.
func (d *Daemon) addNotices(tx *store.Tx, rt *runtime, notices []cases.ContactNotice, now time.Time) ([]mailResult, error) {
	var sent []mailResult
	for _, n := range notices {
		dg, err := tx.NoticeDigest(n.To.Email)
		if err != nil {
			return nil, err
		}
		if dg == nil {
			dg = &store.NoticeDigest{}
		}
		dg.Contact = n.To
		dg.Pending = append(dg.Pending, n.Notice)
		if digestDue(dg, rt.noticeDigest(), now) {
			s, err := d.sendDigest(tx, rt, dg, now)
			if err != nil {
				return nil, err
			}
			sent = append(sent, s...)
		}
		if err := tx.PutNoticeDigest(dg); err != nil {
			return nil, err
		}
		if len(dg.Pending) > 0 {
			d.digests.earlier(rt.noticeDigest(), dg.LastSent.Add(rt.noticeDigest()))
		}
	}
	return sent, nil
}

// sendDigest queues dg's pending notices as one mail to its contact and
// marks them sent. A contact who bounced, or who reached the budget of
// this kind, gets none: the notices are dropped and logged, as they
// would be if sent (R1 asks to tell them, not to pester a dead mailbox).
func (d *Daemon) sendDigest(tx *store.Tx, rt *runtime, dg *store.NoticeDigest, now time.Time) ([]mailResult, error) {
	notices := dg.Pending
	dg.Pending, dg.LastSent = nil, now
	why, err := rt.engine.AutoBlocked(cases.MailUnauthorised, dg.Contact.Email, txLookup{tx}, now)
	if err != nil {
		return nil, err
	}
	if why != "" {
		d.log.Warn("R1 notice digest not sent", "contact", dg.Contact.Email, "why", why, "notices", len(notices))
		return []mailResult{{kind: cases.MailUnauthorised, problem: why}}, nil
	}
	return d.queueMails(tx, rt, nil, []*cases.OutMail{cases.DigestMail(dg.Contact, notices)}, now)
}

// sendDueDigests sends every digest that is due, in one transaction.
func (d *Daemon) sendDueDigests() error {
	rt := d.rt.Load()
	now := d.now()
	next, ok, err := d.nextDigest(rt)
	if err != nil || !ok || next.After(now) {
		return err
	}
	var n int
	defer d.digests.forget() // what is pending changed
	err = d.db.Update(func(tx *store.Tx) error {
		n = 0
		all, err := tx.PendingNoticeDigests()
		if err != nil {
			return err
		}
		for _, dg := range all {
			if !digestDue(dg, rt.noticeDigest(), now) {
				continue
			}
			sent, err := d.sendDigest(tx, rt, dg, now)
			if err != nil {
				return err
			}
			for _, s := range sent {
				if s.messageID != "" {
					n++
				}
			}
			if err := tx.PutNoticeDigest(dg); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && n > 0 {
		d.log.Info("R1 notice digests queued", "mails", n)
		d.wakeOutbox()
	}
	return err
}

// nextDigest is when the earliest pending digest is due; ok is false
// when none is pending. It reads the digests only when d.digests does not
// know.
func (d *Daemon) nextDigest(rt *runtime) (next time.Time, ok bool, err error) {
	period := rt.noticeDigest()
	next, ok, known, gen := d.digests.get(period)
	if known {
		return next, ok, nil
	}
	err = d.db.View(func(tx *store.Tx) error {
		all, err := tx.PendingNoticeDigests()
		for _, dg := range all {
			at := dg.LastSent.Add(period)
			if !ok || at.Before(next) {
				next, ok = at, true
			}
		}
		return err
	})
	if err == nil {
		d.digests.set(gen, period, next, ok)
	}
	return next, ok, err
}

// digestClock remembers when the earliest pending digest falls due. The
// escalation loop runs after every commit, and finding that out by
// decoding every digest was a third of ingest's CPU while notices waited.
// It may be early, never late: a transaction that adds a notice moves it
// earlier before it commits (a rollback leaves it early, which costs one
// read of the digests), a round that sends digests forgets it, and a
// reading of the digests is kept only if nothing moved it meanwhile (gen).
type digestClock struct {
	mu     sync.Mutex
	gen    uint64
	known  bool
	period time.Duration // the digest period the reading was made with
	next   time.Time
	any    bool
}

// get returns the remembered earliest due time for period, whether it is
// known, and the generation a new reading must be stored with.
func (c *digestClock) get(period time.Duration) (next time.Time, any, known bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	known = c.known && c.period == period
	return c.next, c.any, known, c.gen
}

// set stores a reading made at generation gen, unless something changed
// the digests since.
func (c *digestClock) set(gen uint64, period time.Duration, next time.Time, any bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.known, c.period, c.next, c.any = true, period, next, any
	}
}

// earlier notes a digest pending from at on.
func (c *digestClock) earlier(period time.Duration, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch {
	case !c.known || c.period != period:
		c.known = false
	case !c.any || at.Before(c.next):
		c.next, c.any = at, true
	}
}

// forget drops what is remembered: the next question reads the digests.
func (c *digestClock) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.known = false
}
