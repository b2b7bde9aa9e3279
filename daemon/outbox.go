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

// outboxWorkers is how many mails are handed to the SMTP server at once,
// each worker on a connection the sender keeps open between mails
// (smtp.idle_timeout). The relay's own work (its queue file, its flush to
// disk) dominates a send; several connections in parallel overlap those
// waits.
const outboxWorkers = 4

// outboxRecordBacklog is how many finished attempts may wait for the
// recorder's transaction before a worker waits too.
const outboxRecordBacklog = 1024

// outboxRecordGather is how long the recorder gathers finished attempts
// before it stores them. It delays only the record (and OnSent), never a
// mail: the relay has it already.
const outboxRecordGather = 50 * time.Millisecond

// ingestFirstBacklog is how many mails must wait in the inbox, found by
// the IMAP scan and not yet decided, before the outbox steps aside
// (ingestFirst): four groups of the default imap.commit_batch, more than
// a steady 50 mails/s ever queues.
const ingestFirstBacklog = 256

// ingestFirstFor bounds how long the outbox steps aside for one backlog:
// no acknowledgement waits longer than this for ingest.
const ingestFirstFor = 5 * time.Second

// ingestFirstPoll is how often a paused outbox looks at the backlog again.
const ingestFirstPoll = 20 * time.Millisecond

// ingestFirst tells the outbox loop to hand out nothing for now: a
// backlog waits in the inbox and has not waited ingestFirstFor yet.
// While a backlog is committed, the sends would take the CPU from it (the
// relay's work, and on one machine the IMAP server delivering what the
// relay hands it) and, through the recorder, the store's writer; on a
// cluster every record is one more Raft entry between two groups of
// decisions. The mails are safe first and answered a moment later: 2,000
// mails are committed in about 2 s instead of 3-5 s, and their
// acknowledgements start then. pausedSince is the loop's own (zero when
// not paused).
func (d *Daemon) ingestFirst(pausedSince *time.Time) bool {
	if d.ingestBacklog.Load() < ingestFirstBacklog {
		*pausedSince = time.Time{}
		return false
	}
	if pausedSince.IsZero() {
		*pausedSince = time.Now()
	}
	return time.Since(*pausedSince) < ingestFirstFor
}

// attempt is the outcome of one delivery attempt, waiting to be recorded.
type attempt struct {
	entry    *store.OutboxEntry // with its new state
	err      error
	final    bool
	rejected map[string]error // addresses refused for good
	at       time.Time
}

// runOutbox delivers queued mails until ctx ends. It sleeps until the next
// entry is due or ingest queues one (kick), so an idle daemon does nothing
// but beat: it wakes at least every HeartbeatEvery for the watchdog
// (liveness.go).
// Ingest never waits on it: a down SMTP server only grows the queue.
//
// Three parts: this loop hands out due entries; workers only talk SMTP; a
// recorder stores the outcomes, several in one transaction when several
// finished meanwhile (each commit costs the disk a flush, and ingest wants
// the writer too), so handing out never waits on the disk. A crash between
// a send and its record means the mail goes out again with the same
// Message-ID, which receivers recognise.
func (d *Daemon) runOutbox(ctx context.Context) {
	jobs := make(chan *store.OutboxEntry)
	// A worker hands its outcome over and takes the next mail at once:
	// the recorder may be waiting for the store's writer (ingest's group
	// commit holds it), and the relay should not wait for that.
	attempts := make(chan attempt, outboxRecordBacklog)
	recorded := make(chan []uint64, outboxRecordBacklog)
	stopped := make(chan struct{}) // closed when this loop hands out no more
	var workers sync.WaitGroup
	for range outboxWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for e := range jobs {
				attempts <- d.send(ctx, e)
			}
		}()
	}
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		for a := range attempts {
			// Gather what finishes in the next outboxRecordGather:
			// one commit (two flushes of the disk the relay flushes
			// its queue files to as well) for all of them.
			batch := []attempt{a}
			gather := time.NewTimer(outboxRecordGather)
			for more := true; more; {
				select {
				case a, ok := <-attempts:
					if !ok {
						more = false
						break
					}
					batch = append(batch, a)
				case <-gather.C:
					more = false
				}
			}
			gather.Stop()
			d.record(batch)
			ids := make([]uint64, len(batch))
			for i, a := range batch {
				ids[i] = a.entry.ID
			}
			select {
			case recorded <- ids:
			case <-stopped:
			}
		}
	}()
	defer func() {
		// At shutdown: hand out nothing more, let the workers finish the
		// sends they hold, and let the recorder store those.
		close(stopped)
		close(jobs)
		workers.Wait()
		close(attempts)
		<-recorderDone
		d.rt.Load().sender.Close() // QUIT on the kept connections
	}()

	// inFlight keeps an entry from being handed out again until the
	// outcome of its attempt is stored (its record says queued till then).
	inFlight := map[uint64]bool{}
	release := func(ids []uint64) {
		for _, id := range ids {
			delete(inFlight, id)
		}
	}
	every := d.rt.Load().heartbeatEvery()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var pausedSince time.Time // ingestFirst's
	for ctx.Err() == nil {
		d.beat("outbox")
		if d.ingestFirst(&pausedSince) {
			timer := time.NewTimer(ingestFirstPoll)
			select {
			case <-ctx.Done():
			case ids := <-recorded:
				release(ids)
			case <-timer.C:
			}
			timer.Stop()
			continue
		}
		var due []*store.OutboxEntry
		err := d.db.View(func(tx *store.Tx) error {
			var err error
			due, err = tx.DueOutboxSkipping(d.now(), outboxWorkers*4, func(id uint64) bool { return inFlight[id] })
			return err
		})
		if err != nil {
			d.log.Error("read outbox", "err", err)
		}
		handedOut := 0
		for _, e := range due {
			for handed := false; !handed; {
				select {
				case jobs <- e:
					inFlight[e.ID], handed = true, true
					handedOut++
				case ids := <-recorded:
					release(ids)
				case <-tick.C:
					// All workers busy (each send is bounded by the
					// SMTP timeout): still alive.
					d.beat("outbox")
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
			// Everything due is with a worker: wait for a record.
			wait = time.Hour
		}
		timer := time.NewTimer(min(wait, every))
		select {
		case <-ctx.Done():
		case <-d.kick:
		case ids := <-recorded:
			release(ids)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// send makes one attempt at e and works out its new state. The send uses
// the entry's stored bytes, so a retry carries the same Message-ID.
func (d *Daemon) send(ctx context.Context, e *store.OutboxEntry) attempt {
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
	a := attempt{entry: e, err: err, at: now}
	e.Attempts++
	switch {
	case err == nil:
		e.State, e.SentAt, e.LastError, a.final = store.OutboxSent, now, "", true
	case !mail.IsTemporary(err):
		var re *mail.RecipientsError
		if errors.As(err, &re) && len(re.Rejected) < len(e.Recipients) {
			// Delivered to the others: the mail is sent; the rejected
			// addresses are remembered.
			e.State, e.SentAt = store.OutboxSent, now
		} else {
			e.State = store.OutboxFailed
		}
		var se *mail.SendError
		switch {
		case re != nil:
			// Only refusals for good make an address undeliverable.
			for addr, why := range re.Rejected {
				if !mail.IsTemporary(why) {
					if a.rejected == nil {
						a.rejected = map[string]error{}
					}
					a.rejected[addr] = why
				}
			}
		case errors.As(err, &se) && se.Op == "rcpt":
			// The only recipient was refused for good.
			a.rejected = map[string]error{}
			for _, r := range e.Recipients {
				a.rejected[r] = err
			}
		}
		e.LastError, a.final = err.Error(), true
	case now.Sub(e.CreatedAt) >= rt.opts.GiveUpAfter:
		e.State, e.LastError, a.final = store.OutboxFailed, "gave up: "+err.Error(), true
	default:
		e.LastError = err.Error()
		e.NextAttempt = now.Add(retryDelay(e.Attempts, rt.opts.RetryInitial, rt.opts.RetryMax))
	}
	return a
}

// record stores the outcomes of finished attempts in one transaction, then
// logs them and tells OnSent.
func (d *Daemon) record(attempts []attempt) {
	rt := d.rt.Load()
	err := d.db.Update(func(tx *store.Tx) error {
		for _, a := range attempts {
			for addr, why := range a.rejected {
				// A permanent refusal: no automatic mail to it for a while.
				if err := tx.SetUndeliverable(addr, a.at.Add(rt.opts.Policy.UndeliverableFor), "smtp: "+why.Error()); err != nil {
					return err
				}
			}
			if err := tx.PutOutbox(a.entry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// The mails may have gone out; the entries stay queued and go out
		// again with the same Message-IDs.
		d.log.Error("record outbox attempts", "count", len(attempts), "err", err)
	}
	for _, a := range attempts {
		e := a.entry
		log := d.log.With("outbox", e.ID, "case", e.CaseID, "kind", e.Kind, "msgid", e.MessageID, "attempt", e.Attempts)
		switch {
		case a.err == nil:
			log.Info("mail sent", "to", e.Recipients)
		case a.final:
			log.Error("mail not delivered", "state", e.State, "err", a.err)
		default:
			log.Warn("send failed, will retry", "err", a.err, "next", e.NextAttempt)
		}
		sr := SendReport{OutboxID: e.ID, CaseID: e.CaseID, Kind: e.Kind, MessageID: e.MessageID, To: e.Recipients, Err: a.err, Final: a.final, At: a.at}
		d.observeSend(sr)
		if rt.opts.OnSent != nil {
			rt.opts.OnSent(sr)
		}
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
