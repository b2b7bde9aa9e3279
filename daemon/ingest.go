package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
	"deskd/templates"
)

// handle decides one fetched mail and commits everything it implies in one
// transaction: the message, the case, its indexes, the outgoing mails and
// the IMAP checkpoint. Only when that commit succeeded does it tell the
// source to move the mail out of the inbox.
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

	in, perr := mail.Parse(f.Raw, f.InternalDate, mail.ParseOptions{MaxBytes: rt.opts.MaxMessageBytes})
	in.UID = f.UID
	if len(f.Raw) == 0 && f.Size > 0 && !f.HeaderOnly {
		// The server sent none of the message's bytes (an IMAP server
		// that cannot parse what it stored may do that). Quarantine it
		// under a key of its own: all empty fetches hash alike.
		in.DedupeKey = fmt.Sprintf("imap:%s:%d:%d", f.Mailbox, f.UIDValidity, f.UID)
		perr = fmt.Errorf("server returned 0 of %d bytes", f.Size)
	}
	if f.HeaderOnly {
		in.Size = int(f.Size)
		perr = fmt.Errorf("too large: %d bytes (max_message_bytes %d)", f.Size, rt.opts.MaxMessageBytes)
	}
	log = log.With("msgid", in.MessageID)
	now := d.now()
	rep := Report{UID: f.UID, MessageID: in.MessageID, DedupeKey: in.DedupeKey, From: in.From.Email, Subject: in.Subject}

	err := d.db.Update(func(tx *store.Tx) error {
		rep.Decision, rep.CaseID, rep.Reason, rep.Ack, rep.NoAck, rep.Role = "", 0, "", "", "", ""
		rep.Mails, rep.Changes, rep.Suspicious = nil, nil, ""
		if validity, _, err := tx.Checkpoint(f.Mailbox); err != nil {
			return err
		} else if validity != 0 && validity != f.UIDValidity {
			// The server renumbered the mailbox (RFC 3501 §2.3.1.1): the
			// source already looks at every message on each connection,
			// and dedupe recognises what was handled before.
			log.Warn("UIDVALIDITY changed; every message in the mailbox is looked at again", "mailbox", f.Mailbox, "was", validity, "now", f.UIDValidity)
		}
		if err := tx.SetCheckpoint(f.Mailbox, f.UIDValidity, f.UID); err != nil {
			return err
		}
		// The same mail seen again (To and Cc, a redelivery, a crash
		// before the move) is one record: recognise it and only move it.
		m, err := tx.Message(in.DedupeKey)
		if err != nil {
			return err
		}
		if m != nil && m.Text != in.Text && perr == nil {
			// The same Message-ID on a mail with other content is not a
			// redelivery (those differ at most in their trace headers):
			// keep it too, under a key of its own, rather than lose it.
			in.DedupeKey = variantKey(in.DedupeKey, f.Raw)
			rep.DedupeKey = in.DedupeKey
			if m, err = tx.Message(in.DedupeKey); err != nil {
				return err
			}
		}
		if m != nil {
			rep.Decision, rep.CaseID, disp = "duplicate", m.CaseID, mail.Processed
			return nil
		}
		if q, err := tx.Quarantined(in.DedupeKey); err != nil {
			return err
		} else if q != nil {
			rep.Decision, rep.Reason, disp = "duplicate", "already quarantined: "+q.Reason, mail.Quarantine
			return nil
		}
		if perr != nil {
			rep.Decision, rep.Reason, disp = "quarantine", reasonOf(perr), mail.Quarantine
			return tx.PutQuarantine(quarantineRecord(in, f, rep.Reason, now), f.Raw)
		}
		dec, err := rt.engine.Decide(in, txLookup{tx}, now)
		if err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		rep.Role, rep.Changes, rep.Suspicious = dec.Sender.Role, dec.Changes, dec.Sender.Suspicious
		if dec.Quarantine != "" {
			// Staff keywords that name no case: the mail belongs
			// nowhere, and the staff member is told why.
			rep.Decision, rep.Reason, disp = "quarantine", dec.Quarantine, mail.Quarantine
			sent, err := d.queueMails(tx, rt, nil, dec.Mails, now)
			if err != nil {
				return err
			}
			rep.noteSent(sent)
			return tx.PutQuarantine(quarantineRecord(in, f, dec.Quarantine, now), f.Raw)
		}
		rep.Decision, rep.CaseID, rep.NoAck, rep.Reason = string(dec.Outcome), dec.Case.ID, dec.NoAck, dec.Thread
		if err := tx.PutMessage(dec.Message, f.Raw); err != nil {
			return err
		}
		sent, err := d.queueMails(tx, rt, dec.Case, dec.Mails, now)
		if err != nil {
			return err
		}
		rep.noteSent(sent)
		if sent, err = d.addNotices(tx, rt, dec.Notices, now); err != nil {
			return err
		}
		rep.noteSent(sent)
		for _, addr := range dec.Undeliverable {
			until := now.Add(rt.opts.Policy.UndeliverableFor)
			if err := tx.SetUndeliverable(addr, until, "bounce "+in.MessageID); err != nil {
				return err
			}
		}
		disp = mail.Processed
		return d.putCase(tx, rt, dec.Case, now)
	})
	if err != nil {
		return d.commitFailed(f, in, rep, err, log)
	}
	d.failures.forget(in.DedupeKey)
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
	return disp
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
	n := d.failures.add(in.DedupeKey)
	if n < maxCommitFailures {
		log.Error("commit failed; mail stays in the inbox for the next scan", "err", err, "failures", n)
		return mail.Leave
	}
	reason := fmt.Sprintf("commit failed %d times: %v", n, err)
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

func reasonOf(err error) string {
	var pe *mail.ParseError
	if errors.As(err, &pe) {
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
