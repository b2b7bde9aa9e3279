package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"deskd/cases"
	"deskd/internal/cluster"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
	"deskd/templates"
)

// The ingest of one mail, as named steps (handle):
//
//  1. recognise: parse what the IMAP source fetched (mail.Parse applies
//     the size limit, with the one quarantine reason it has);
//  2. in one store transaction (ingestTx), after the IMAP checkpoint:
//     decide (dedupe, quarantine, or the engine's cases.Decision: the
//     decided work) and commit (write that work: the message, the
//     case with its SLA deadlines, the mails on the one road, the R1
//     digests, the bounces), which returns the outcome;
//  3. finish: log the outcome, wake the loops, tell the caller; the IMAP
//     source then moves the mail, only after the commit.
//
// Deliver runs the same steps for a mail that comes from elsewhere (the
// customer portal), without the IMAP checkpoint and the move.
//
// A backlog takes the same steps in groups (handleBatch, a group commit):
// recognise each mail, start reading the store pages their commit will
// touch beside it (preload.go), then one store transaction (commitBatch
// running ingestBatchTx) in which each mail in turn is decided and
// committed, each seeing the ones before it; then finish each, and the
// IMAP source moves the group. bbolt has no savepoints, so a mail whose
// step fails (an error or a panic) rolls the whole transaction back: the
// group is committed again without it, and it takes the one-mail road
// (handle), with its retries and its quarantine. Nothing leaves the
// inbox before the transaction holding its decision is on disk, and a
// mail of a committed group seen again after a crash is a duplicate to
// dedupe like any other.

// arrival is one inbound mail as recognised: what was fetched, what the
// parser made of it, and why it cannot be decided (nil when it can).
type arrival struct {
	f    *mail.Fetched
	in   *cases.Inbound
	perr error
}

// decided is the work one mail implies, ready to commit: exactly one of
// dup (seen before: nothing to write), quarantine (the reason it belongs
// in no case) or dec (the engine's decision; dec.Quarantine may still
// send it to quarantine with mails to staff) is set.
type decided struct {
	a          *arrival
	dup        *outcome
	quarantine string
	dec        *cases.Decision
}

// outcome is what the commit did with one mail: the report for logs,
// metrics and OnDecision, and where the IMAP source moves the mail.
type outcome struct {
	rep  Report
	disp mail.Disposition
}

// handle takes one fetched mail through the steps above. Only when the
// commit succeeded does it tell the source to move the mail out of the
// inbox.
func (d *Daemon) handle(ctx context.Context, f *mail.Fetched) (disp mail.Disposition) {
	rt := d.rt.Load()
	log := d.log.With("uid", f.UID)
	started := time.Now()
	defer func() {
		// A bug must cost one mail a trip to quarantine, never the daemon.
		if p := recover(); p != nil {
			log.Error("panic while handling mail", "panic", p, "stack", string(debug.Stack()))
			disp = d.quarantineAfterPanic(f, fmt.Sprint(p))
		}
	}()
	a := recognise(rt, f)
	log = log.With("msgid", a.in.MessageID)
	now := d.now()
	var o outcome
	err := d.db.Update(func(tx *store.Tx) (err error) {
		o, err = d.ingestTx(tx, rt, a, now, log)
		return err
	})
	if err != nil {
		return d.commitFailed(f, a.in, a.report(), err, log)
	}
	d.failures.forget(a.in.DedupeKey)
	d.finish(rt, o.rep, started, log)
	return o.disp
}

// Deliver takes one locally built RFC 5322 message (a customer's reply
// typed into the customer portal) through the very steps an IMAP mail
// takes: recognise, decide, commit in one transaction, log. receivedAt
// is when deskd received it, the start of the SLA clock (R11b). It
// returns the decision's report; Report.Decision is "duplicate" for a
// message delivered before (the same Message-ID and text), "quarantine"
// (with Report.Reason) for one that belongs in no case. An error means
// nothing was written: the caller may deliver the same bytes again.
func (d *Daemon) Deliver(raw []byte, receivedAt time.Time) (rep Report, err error) {
	rt := d.rt.Load()
	log := d.log.With("source", "deliver")
	started := time.Now()
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic while handling mail", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("deliver: internal error: %v", p)
		}
	}()
	a := recognise(rt, &mail.Fetched{Raw: raw, Size: int64(len(raw)), InternalDate: receivedAt})
	log = log.With("msgid", a.in.MessageID)
	now := d.now()
	var o outcome
	err = d.db.Update(func(tx *store.Tx) (err error) {
		o, err = d.ingestTx(tx, rt, a, now, log)
		return err
	})
	if err != nil {
		return a.report(), fmt.Errorf("deliver: %w", err)
	}
	d.finish(rt, o.rep, started, log)
	return o.rep, nil
}

// handleBatch takes a group of fetched mails (in UID order) through the
// steps above in one store transaction and returns where each goes. A
// group of one is handle.
func (d *Daemon) handleBatch(ctx context.Context, fs []*mail.Fetched) []mail.Disposition {
	out := make([]mail.Disposition, len(fs))
	if len(fs) == 1 {
		out[0] = d.handle(ctx, fs[0])
		return out
	}
	started := time.Now()
	rest := make([]int, 0, len(fs)) // indexes into fs still to commit together
	as := make([]*arrival, len(fs))
	for i, f := range fs {
		a, ok := d.recogniseSafely(f)
		if !ok {
			out[i] = d.handle(ctx, f) // it panics again there, and is quarantined
			continue
		}
		as[i] = a
		rest = append(rest, i)
	}
	// The store reads what the group's commit will touch beside it, so
	// that a cold page cache costs the commit less (preload.go).
	stopPreload := d.preload(d.rt.Load(), as)
	defer stopPreload()
	for len(rest) > 1 {
		rt := d.rt.Load()
		group := make([]*arrival, len(rest))
		for k, i := range rest {
			group[k] = as[i]
		}
		outs, err := d.commitBatch(rt, group, d.now())
		var pe *poisonError
		if errors.As(err, &pe) {
			// One mail spoiled the transaction: the others go again
			// without it, it goes alone.
			i := rest[pe.index]
			d.log.Warn("mail failed inside a group commit; the group is committed without it", "uid", fs[i].UID, "err", pe.err)
			out[i] = d.handle(ctx, fs[i])
			rest = slices.Delete(rest, pe.index, pe.index+1)
			for _, j := range rest {
				as[j] = recognise(rt, fs[j]) // decide may have changed what it was given
			}
			continue
		}
		if err != nil {
			// The transaction itself failed (the disk, the store): each
			// mail alone, with its own retries and quarantine.
			d.log.Error("group commit failed; committing its mails one by one", "mails", len(rest), "err", err)
			break
		}
		d.log.Info("group committed", "mails", len(rest), "took", time.Since(started).Round(time.Microsecond))
		for k, i := range rest {
			a := as[i]
			d.failures.forget(a.in.DedupeKey)
			d.finish(rt, outs[k].rep, started, d.log.With("uid", a.f.UID, "msgid", a.in.MessageID))
			out[i] = outs[k].disp
		}
		return out
	}
	for _, i := range rest {
		out[i] = d.handle(ctx, fs[i])
	}
	return out
}

// commitBatch is the group commit: one store transaction (ingestBatchTx)
// deciding and committing every arrival in turn. It returns their outcomes
// in order, or a *poisonError naming the arrival that failed (nothing
// was written), or another error from the transaction itself.
func (d *Daemon) commitBatch(rt *runtime, as []*arrival, now time.Time) (outs []outcome, err error) {
	err = d.db.Update(func(tx *store.Tx) (err error) {
		outs, err = d.ingestBatchTx(tx, rt, as, now)
		return err
	})
	return outs, err
}

// ingestBatchTx decides and commits each arrival in tx, in order, each
// seeing what the ones before it wrote. It stops at the first that fails,
// with a *poisonError naming it (a panic included); tx must then be rolled
// back, since part of that mail's work may be written.
func (d *Daemon) ingestBatchTx(tx *store.Tx, rt *runtime, as []*arrival, now time.Time) ([]outcome, error) {
	outs := make([]outcome, len(as))
	for i, a := range as {
		o, err := d.ingestOneInBatch(tx, rt, a, now)
		if err != nil {
			return nil, &poisonError{index: i, err: err}
		}
		outs[i] = o
	}
	return outs, nil
}

// ingestOneInBatch is ingestTx, with a panic turned into an error: the
// transaction is rolled back by the caller either way.
func (d *Daemon) ingestOneInBatch(tx *store.Tx, rt *runtime, a *arrival, now time.Time) (o outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return d.ingestTx(tx, rt, a, now, d.log.With("uid", a.f.UID, "msgid", a.in.MessageID))
}

// poisonError is a group commit spoiled by one of its mails.
type poisonError struct {
	index int
	err   error
}

func (e *poisonError) Error() string { return fmt.Sprintf("mail %d of the group: %v", e.index, e.err) }
func (e *poisonError) Unwrap() error { return e.err }

// recogniseSafely is recognise, reporting a panic (the parser's) as false.
func (d *Daemon) recogniseSafely(f *mail.Fetched) (a *arrival, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			a, ok = nil, false
		}
	}()
	return recognise(d.rt.Load(), f), true
}

// recognise parses a fetched mail. The size limit is mail.Parse's: a mail
// the source fetched only the header of (f.HeaderOnly) has its real size
// in f.Size.
func recognise(rt *runtime, f *mail.Fetched) *arrival {
	in, perr := mail.Parse(f.Raw, f.InternalDate, mail.ParseOptions{MaxBytes: rt.opts.MaxMessageBytes, Size: f.Size})
	in.UID = f.UID
	if len(f.Raw) == 0 && f.Size > 0 && !f.HeaderOnly {
		// The server sent none of the message's bytes (an IMAP server
		// that cannot parse what it stored may do that). Quarantine it
		// under a key of its own: all empty fetches hash alike.
		in.DedupeKey = fmt.Sprintf("imap:%s:%d:%d", f.Mailbox, f.UIDValidity, f.UID)
		perr = fmt.Errorf("server returned 0 of %d bytes", f.Size)
	}
	return &arrival{f: f, in: in, perr: perr}
}

// report is the start of a's report: who wrote what.
func (a *arrival) report() Report {
	return Report{UID: a.f.UID, MessageID: a.in.MessageID, DedupeKey: a.in.DedupeKey, From: a.in.From.Email, Subject: a.in.Subject, Fetched: a.f.FetchedAt}
}

// ingestTx is the transaction of one mail: the IMAP checkpoint (for a
// mail from IMAP), then decide and commit.
func (d *Daemon) ingestTx(tx *store.Tx, rt *runtime, a *arrival, now time.Time, log *slog.Logger) (outcome, error) {
	if f := a.f; f.Mailbox != "" {
		if validity, _, err := tx.Checkpoint(f.Mailbox); err != nil {
			return outcome{}, err
		} else if validity != 0 && validity != f.UIDValidity {
			// The server renumbered the mailbox (RFC 3501 §2.3.1.1): the
			// source already looks at every message on each connection,
			// and dedupe recognises what was handled before.
			log.Warn("UIDVALIDITY changed; every message in the mailbox is looked at again", "mailbox", f.Mailbox, "was", validity, "now", f.UIDValidity)
		}
		if err := tx.SetCheckpoint(f.Mailbox, f.UIDValidity, f.UID); err != nil {
			return outcome{}, err
		}
	}
	w, err := d.decide(tx, rt, a, now)
	if err != nil {
		return outcome{}, err
	}
	return d.commit(tx, rt, w, now)
}

// decide says what a mail is, reading tx: seen before (dedupe), bound for
// quarantine, or the engine's decision. It writes nothing.
func (d *Daemon) decide(tx *store.Tx, rt *runtime, a *arrival, now time.Time) (*decided, error) {
	in := a.in
	// The same mail seen again (To and Cc, a redelivery, a crash before
	// the move) is one record: recognise it and only move it.
	m, err := tx.Message(in.DedupeKey)
	if err != nil {
		return nil, err
	}
	if m != nil && m.Text != in.Text && a.perr == nil {
		// The same Message-ID on a mail with other content is not a
		// redelivery (those differ at most in their trace headers):
		// keep it too, under a key of its own, rather than lose it.
		in.DedupeKey = variantKey(in.DedupeKey, a.f.Raw)
		if m, err = tx.Message(in.DedupeKey); err != nil {
			return nil, err
		}
	}
	if m != nil {
		o := &outcome{rep: a.report(), disp: mail.Processed}
		o.rep.Decision, o.rep.CaseID = "duplicate", m.CaseID
		return &decided{a: a, dup: o}, nil
	}
	if q, err := tx.Quarantined(in.DedupeKey); err != nil {
		return nil, err
	} else if q != nil {
		o := &outcome{rep: a.report(), disp: mail.Quarantine}
		o.rep.Decision, o.rep.Reason = "duplicate", "already quarantined: "+q.Reason
		return &decided{a: a, dup: o}, nil
	}
	if a.perr != nil {
		return &decided{a: a, quarantine: reasonOf(a.perr)}, nil
	}
	dec, err := rt.engine.Decide(in, txLookup{tx}, now)
	if err != nil {
		return nil, fmt.Errorf("decide: %w", err)
	}
	return &decided{a: a, dec: dec}, nil
}

// commit writes the decided work of one mail in tx and returns the
// outcome: the quarantine record, or the message, the mails (the one
// road), the R1 digests, the bounced addresses and the case with its SLA
// deadlines. It is the one step that writes; several mails' decided work
// may be committed in one transaction, each decided after the previous
// one's commit.
func (d *Daemon) commit(tx *store.Tx, rt *runtime, w *decided, now time.Time) (outcome, error) {
	a, in := w.a, w.a.in
	if w.dup != nil {
		return *w.dup, nil // nothing to write: the checkpoint was
	}
	rep := a.report()
	if w.dec == nil {
		rep.Decision, rep.Reason = "quarantine", w.quarantine
		return outcome{rep: rep, disp: mail.Quarantine}, tx.PutQuarantine(quarantineRecord(in, a.f, w.quarantine, now), a.f.Raw)
	}
	dec := w.dec
	rep.Role, rep.Changes, rep.Suspicious = dec.Sender.Role, dec.Changes, dec.Sender.Suspicious
	if dec.Quarantine != "" {
		// Staff keywords that name no case: the mail belongs nowhere,
		// and the staff member is told why.
		rep.Decision, rep.Reason = "quarantine", dec.Quarantine
		sent, err := d.queueMails(tx, rt, nil, dec.Mails, now)
		if err != nil {
			return outcome{}, err
		}
		rep.noteSent(sent)
		return outcome{rep: rep, disp: mail.Quarantine}, tx.PutQuarantine(quarantineRecord(in, a.f, dec.Quarantine, now), a.f.Raw)
	}
	rep.Decision, rep.CaseID, rep.NoAck, rep.Reason = string(dec.Outcome), dec.Case.ID, dec.NoAck, dec.Thread
	if err := tx.PutMessage(dec.Message, a.f.Raw); err != nil {
		return outcome{}, err
	}
	if d.commitFault != nil {
		if err := d.commitFault(a); err != nil {
			return outcome{}, err
		}
	}
	sent, err := d.queueMails(tx, rt, dec.Case, dec.Mails, now)
	if err != nil {
		return outcome{}, err
	}
	rep.noteSent(sent)
	if sent, err = d.addNotices(tx, rt, dec.Notices, now); err != nil {
		return outcome{}, err
	}
	rep.noteSent(sent)
	for _, addr := range dec.Undeliverable {
		until := now.Add(rt.opts.Policy.UndeliverableFor)
		if err := tx.SetUndeliverable(addr, until, "bounce "+in.MessageID); err != nil {
			return outcome{}, err
		}
	}
	return outcome{rep: rep, disp: mail.Processed}, d.putCase(tx, rt, dec.Case, now)
}

// finish logs a committed outcome, wakes the outbox and the escalation
// loop when it gave them work, and counts it.
func (d *Daemon) finish(rt *runtime, rep Report, started time.Time, log *slog.Logger) {
	attrs := []any{"decision", rep.Decision, "case", rep.CaseID}
	if rep.Role != "" {
		attrs = append(attrs, "role", rep.Role)
	}
	if rep.Reason != "" {
		attrs = append(attrs, "reason", rep.Reason)
	}
	if rep.Ack != "" {
		attrs = append(attrs, "ack", rep.Ack)
	}
	if rep.NoAck != "" {
		attrs = append(attrs, "no_ack", rep.NoAck)
	}
	if len(rep.Mails) > 0 {
		attrs = append(attrs, "mails", rep.Mails)
	}
	if len(rep.Changes) > 0 {
		attrs = append(attrs, "changes", rep.Changes)
	}
	if rep.Suspicious != "" {
		// A mail that claimed a staff address and failed authentication:
		// worth an operator's look (a forged From:).
		log.Warn("suspicious: staff address without authentication; treated as a customer mail", "from", rep.From, "why", rep.Suspicious)
	}
	if rep.Decision == "quarantine" {
		log.Warn("mail quarantined", attrs...)
	} else {
		log.Info("mail decided", attrs...)
	}
	if rep.Ack != "" || len(rep.Mails) > 0 {
		d.wakeOutbox()
	}
	if rep.CaseID != 0 {
		d.CheckDeadlines() // the case's deadlines may have moved
	}
	d.observeDecision(rep, time.Since(started))
	if rt.opts.OnDecision != nil {
		rt.opts.OnDecision(rep)
	}
}

// noteSent adds what the road did to the report: the acknowledgement's
// Message-ID, or why it did not go; the other mails queued.
func (r *Report) noteSent(sent []mailResult) {
	for _, s := range sent {
		switch {
		case s.kind == cases.MailAck && s.messageID != "":
			r.Ack = s.messageID
		case s.kind == cases.MailAck:
			r.NoAck = s.problem
		case s.messageID != "":
			r.Mails = append(r.Mails, string(s.kind)+" "+s.messageID)
		}
	}
}

// maxCommitFailures is how often one mail may fail to commit before it is
// quarantined: a mail that always fails (a store error of its own) must
// not sit in the inbox for ever, retried at every scan.
const maxCommitFailures = 3

// commitFailed handles a failed commit: the mail stays in the inbox for
// the next scan, unless it failed too often, then it goes to quarantine
// with the error as its reason (when even that cannot be stored, the
// store itself is broken and the mail stays where it is).
func (d *Daemon) commitFailed(f *mail.Fetched, in *cases.Inbound, rep Report, err error, log *slog.Logger) mail.Disposition {
	if errors.Is(err, cluster.ErrNotLeader) {
		// This node stopped leading (cluster.go): not the mail's fault,
		// and the next leader takes it from the inbox.
		log.Warn("not the cluster leader any more; mail stays in the inbox", "err", err)
		return mail.Leave
	}
	n := d.failures.add(in.DedupeKey)
	if n < maxCommitFailures {
		log.Error("commit failed; mail stays in the inbox for the next scan", "err", err, "failures", n)
		return mail.Leave
	}
	reason := fmt.Sprintf("commit failed %d times: %s", n, clip(err.Error(), maxReason))
	qerr := d.db.Update(func(tx *store.Tx) error {
		return tx.PutQuarantine(quarantineRecord(in, f, reason, d.now()), f.Raw)
	})
	if qerr != nil {
		log.Error("commit failed and quarantine failed; mail stays in the inbox", "err", err, "quarantine_err", qerr, "failures", n)
		return mail.Leave
	}
	d.failures.forget(in.DedupeKey)
	log.Error("mail quarantined after repeated commit failures", "reason", reason)
	rep.Decision, rep.Reason = "quarantine", reason
	d.observeDecision(rep, 0)
	if opts := d.rt.Load().opts; opts.OnDecision != nil {
		opts.OnDecision(rep)
	}
	return mail.Quarantine
}

// maxReason is the longest error text kept in a quarantine reason: an
// error may quote the mail's key, which can be as long as the mail.
const maxReason = 300

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// failureCounts counts failed commits per dedupe key. It lives in memory:
// after a restart a mail gets its tries again, which is what a restart
// that fixed the cause wants.
type failureCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (fc *failureCounts) add(key string) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.n == nil {
		fc.n = map[string]int{}
	}
	fc.n[key]++
	return fc.n[key]
}

func (fc *failureCounts) forget(key string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	delete(fc.n, key)
}

// variantKey is the dedupe key of a mail that reuses another mail's
// Message-ID with different content.
func variantKey(key string, raw []byte) string {
	sum := sha256.Sum256(raw)
	return key + "#" + hex.EncodeToString(sum[:8])
}

// firstResponseText names the R9 target of plan in the customer's
// language ("" when the plan has none; the template then leaves it out).
func firstResponseText(targets sla.Targets, plan, lang string) string {
	d, ok := targets.FirstResponseFor(plan)
	if !ok {
		return ""
	}
	return templates.FormatWorkingHours(d, lang)
}

// reasonOf is the quarantine reason of a mail that cannot be decided:
// mail.TooLarge's own, "parse: ..." for a mail the parser could not
// make sense of, or the error.
func reasonOf(err error) string {
	var pe *mail.ParseError
	switch {
	case errors.Is(err, mail.ErrTooLarge) && errors.As(err, &pe):
		return pe.Reason
	case errors.As(err, &pe):
		return "parse: " + pe.Reason
	}
	return err.Error()
}

func quarantineRecord(in *cases.Inbound, f *mail.Fetched, reason string, now time.Time) *store.QuarantineRecord {
	return &store.QuarantineRecord{
		Key:       in.DedupeKey,
		MessageID: in.MessageID,
		Reason:    reason,
		From:      in.From.Email,
		Subject:   in.Subject,
		UID:       f.UID,
		At:        now,
		Size:      int(f.Size),
		Truncated: f.HeaderOnly,
	}
}

// quarantineAfterPanic records a mail whose handling panicked, keyed by a
// hash of its bytes (the parse may be what panicked).
func (d *Daemon) quarantineAfterPanic(f *mail.Fetched, what string) mail.Disposition {
	key := mail.DedupeKey("", f.Raw)
	err := d.db.Update(func(tx *store.Tx) error {
		if q, err := tx.Quarantined(key); err != nil || q != nil {
			return err
		}
		return tx.PutQuarantine(&store.QuarantineRecord{Key: key, Reason: "internal error: " + what, UID: f.UID, At: d.now(), Size: len(f.Raw)}, f.Raw)
	})
	if err != nil {
		d.log.Error("cannot record quarantine; mail stays in the inbox", "uid", f.UID, "err", err)
		return mail.Leave
	}
	return mail.Quarantine
}

// txLookup answers the engine's questions from the transaction that will
// commit its decision.
type txLookup struct{ tx *store.Tx }

func (l txLookup) CaseByMessageID(id string) (*cases.Case, error) {
	n, ok, err := l.tx.CaseIDForMessageID(id)
	if err != nil || !ok {
		return nil, err
	}
	return l.tx.Case(n)
}

func (l txLookup) CaseByID(id uint64) (*cases.Case, error) { return l.tx.Case(id) }
func (l txLookup) NextCaseID() (uint64, error)             { return l.tx.NextCaseID() }
func (l txLookup) AutoMailsSince(kind cases.MailKind, addr string, since time.Time) (int, error) {
	return l.tx.AutoMailCount(string(kind), addr, since)
}
func (l txLookup) UndeliverableUntil(addr string) (time.Time, error) {
	return l.tx.UndeliverableUntil(addr)
}
