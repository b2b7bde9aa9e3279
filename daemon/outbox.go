package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"deskd/mail"
	"deskd/store"
)

// sendGrace is how long a send in flight may go on after shutdown began:
// SIGTERM must end the process within 10 s.
const sendGrace = 7 * time.Second

// outboxWorkers is how many mails are handed to the SMTP server at once.
// The relay's own flush to disk dominates a send; a few connections in
// parallel overlap those waits.
const outboxWorkers = 4

// runOutbox delivers queued mails until ctx ends. It sleeps until the next
// entry is due or ingest queues one (kick), so an idle daemon does nothing.
// Ingest never waits on it: a down SMTP server only grows the queue. At
// shutdown it stops handing out work and waits for the sends in flight.
func (d *Daemon) runOutbox(ctx context.Context) {
	jobs := make(chan *store.OutboxEntry)
	finished := make(chan uint64, outboxWorkers)
	var wg sync.WaitGroup
	for range outboxWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				d.deliver(ctx, e)
				finished <- e.ID
			}
		}()
	}
	defer func() {
		// Let the workers finish what they hold; drain their reports so
		// none blocks on a full channel.
		close(jobs)
		go func() { wg.Wait(); close(finished) }()
		for range finished {
		}
	}()

	// inFlight keeps an entry from being handed out twice while a worker
	// still holds it (its record says queued until the attempt is stored).
	inFlight := map[uint64]bool{}
	for ctx.Err() == nil {
		var due []*store.OutboxEntry
		err := d.db.View(func(tx *store.Tx) error {
			var err error
			due, err = tx.DueOutbox(d.now(), outboxWorkers*4+len(inFlight))
			return err
		})
		if err != nil {
			d.log.Error("read outbox", "err", err)
		}
		handedOut := 0
		for _, e := range due {
			if inFlight[e.ID] {
				continue
			}
			sent := false
			for !sent {
				select {
				case jobs <- e:
					inFlight[e.ID], sent = true, true
					handedOut++
				case id := <-finished:
					delete(inFlight, id)
				case <-ctx.Done():
					return
				}
			}
		}
		if handedOut > 0 {
			continue
		}
		wait := time.Hour
		_ = d.db.View(func(tx *store.Tx) error {
			next, ok, err := tx.NextOutboxDue()
			if err == nil && ok {
				wait = max(next.Sub(d.now()), 0)
			}
			return err
		})
		if len(inFlight) > 0 && wait == 0 {
			// Everything due is with a worker: wait for one to finish.
			wait = time.Hour
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-d.kick:
		case id := <-finished:
			delete(inFlight, id)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliver makes one attempt at e and records the outcome. The send uses
// the entry's stored bytes, so a retry carries the same Message-ID.
func (d *Daemon) deliver(ctx context.Context, e *store.OutboxEntry) {
	rt := d.rt.Load()
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	// Finish the send in flight at shutdown, but not forever.
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(sendGrace, cancel)
		context.AfterFunc(sendCtx, func() { t.Stop() })
	})
	defer stop()

	err := rt.sender.Send(sendCtx, e.EnvelopeFrom, e.Recipients, e.Raw)
	now := d.now()
	e.Attempts++
	final := false
	var rejected map[string]error
	switch {
	case err == nil:
		e.State, e.SentAt, e.LastError, final = store.OutboxSent, now, "", true
	case !mail.IsTemporary(err):
		var re *mail.RecipientsError
		if errors.As(err, &re) && len(re.Rejected) < len(e.Recipients) {
			// Delivered to the others: the mail is sent; the rejected
			// addresses are remembered below.
			e.State, e.SentAt = store.OutboxSent, now
		} else {
			e.State = store.OutboxFailed
		}
		var se *mail.SendError
		switch {
		case re != nil:
			rejected = re.Rejected
		case errors.As(err, &se) && se.Op == "rcpt":
			// The only recipient was refused for good.
			rejected = map[string]error{}
			for _, r := range e.Recipients {
				rejected[r] = err
			}
		}
		e.LastError, final = err.Error(), true
	case now.Sub(e.CreatedAt) >= rt.opts.GiveUpAfter:
		e.State, e.LastError, final = store.OutboxFailed, "gave up: "+err.Error(), true
	default:
		e.LastError = err.Error()
		e.NextAttempt = now.Add(retryDelay(e.Attempts, rt.opts.RetryInitial, rt.opts.RetryMax))
	}
	if err := d.db.Update(func(tx *store.Tx) error {
		for addr := range rejected {
			// A permanent refusal: no automatic mail to it for a while.
			if err := tx.SetUndeliverable(addr, now.Add(rt.opts.Policy.UndeliverableFor), "smtp: "+rejected[addr].Error()); err != nil {
				return err
			}
		}
		return tx.PutOutbox(e)
	}); err != nil {
		// The mail may have gone out; it will be sent again with the same
		// Message-ID, which receivers and our own dedupe recognise.
		d.log.Error("record outbox attempt", "outbox", e.ID, "err", err)
	}
	log := d.log.With("outbox", e.ID, "case", e.CaseID, "kind", e.Kind, "msgid", e.MessageID, "attempt", e.Attempts)
	switch {
	case err == nil:
		log.Info("mail sent", "to", e.Recipients)
	case final:
		log.Error("mail not delivered", "state", e.State, "err", err)
	default:
		log.Warn("send failed, will retry", "err", err, "next", e.NextAttempt)
	}
	if rt.opts.OnSent != nil {
		rt.opts.OnSent(SendReport{OutboxID: e.ID, CaseID: e.CaseID, Kind: e.Kind, MessageID: e.MessageID, To: e.Recipients, Err: err, Final: final})
	}
}

// retryDelay doubles from initial up to maxDelay.
func retryDelay(attempts int, initial, maxDelay time.Duration) time.Duration {
	if initial <= 0 {
		initial = time.Minute
	}
	if maxDelay < initial {
		maxDelay = initial
	}
	d := initial
	for i := 1; i < attempts && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}
