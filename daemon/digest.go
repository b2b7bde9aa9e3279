package daemon

import (
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

// digestDueAt is when a digest whose last one went out at lastSent may
// go: at once when none ever did, a digest period after it otherwise.
func digestDueAt(lastSent time.Time, period time.Duration) time.Time {
	if lastSent.IsZero() {
		return lastSent
	}
	return lastSent.Add(period)
}

// addNotices adds a decision's R1 notices to the named contacts' digests
// in tx, and sends each digest that is due.
func (d *Daemon) addNotices(tx *store.Tx, rt *runtime, notices []cases.ContactNotice, now time.Time) ([]mailResult, error) {
	var sent []mailResult
	for _, n := range notices {
		dg, err := tx.AddNotice(n.To, n.Notice)
		if err != nil {
			return nil, err
		}
		if digestDueAt(dg.LastSent, rt.noticeDigest()).After(now) {
			continue // the escalation loop sends it (nextDigest)
		}
		s, err := d.sendDigest(tx, rt, n.To.Email, now)
		if err != nil {
			return nil, err
		}
		sent = append(sent, s...)
	}
	return sent, nil
}

// sendDigest queues the pending notices of the named contact addr as one
// mail to them and marks them sent. A contact who bounced, or who
// reached the budget of this kind, gets none: the notices are dropped and
// logged, as they would be if sent (R1 asks to tell them, not to pester a
// dead mailbox).
func (d *Daemon) sendDigest(tx *store.Tx, rt *runtime, addr string, now time.Time) ([]mailResult, error) {
	dg, err := tx.NoticeDigest(addr)
	if err != nil {
		return nil, err
	}
	if dg == nil || len(dg.Pending) == 0 {
		return nil, nil
	}
	if err := tx.MarkDigestSent(addr, now); err != nil {
		return nil, err
	}
	why, err := rt.engine.AutoBlocked(cases.MailUnauthorised, dg.Contact.Email, txLookup{tx}, now)
	if err != nil {
		return nil, err
	}
	if why != "" {
		d.log.Warn("R1 notice digest not sent", "contact", dg.Contact.Email, "why", why, "notices", len(dg.Pending))
		return []mailResult{{kind: cases.MailUnauthorised, problem: why}}, nil
	}
	return d.queueMails(tx, rt, nil, []*cases.OutMail{cases.DigestMail(dg.Contact, dg.Pending)}, now)
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
	err = d.db.Update(func(tx *store.Tx) error {
		n = 0
		due, err := tx.NoticeDigestsSentBy(now.Add(-rt.noticeDigest()))
		if err != nil {
			return err
		}
		for _, addr := range due {
			sent, err := d.sendDigest(tx, rt, addr, now)
			if err != nil {
				return err
			}
			for _, s := range sent {
				if s.messageID != "" {
					n++
				}
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
// when none is pending. One key of the store's notice_due says it, so
// the escalation loop can ask after every commit.
func (d *Daemon) nextDigest(rt *runtime) (next time.Time, ok bool, err error) {
	err = d.db.View(func(tx *store.Tx) error {
		var lastSent time.Time
		lastSent, ok, err = tx.NextNoticeDigest()
		next = digestDueAt(lastSent, rt.noticeDigest())
		return err
	})
	return next, ok, err
}
