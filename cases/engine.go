package cases

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Lookup is what the engine reads from the store while it decides. The
// daemon passes one bound to the same transaction that will commit the
// decision, so what the engine saw is what gets written.
type Lookup interface {
	// CaseByMessageID returns the case that holds (or sent) the message
	// with this normalised Message-ID, or nil.
	CaseByMessageID(messageID string) (*Case, error)
	// CaseByID returns case id, or nil.
	CaseByID(id uint64) (*Case, error)
	// NextCaseID is the number a new case gets.
	NextCaseID() (uint64, error)
	// AutoMailsSince counts the automatic mails of kind queued to addr
	// since then (each kind has its own budget).
	AutoMailsSince(kind MailKind, addr string, since time.Time) (int, error)
	// UndeliverableUntil is the end of addr's bounce quarantine, or zero.
	UndeliverableUntil(addr string) (time.Time, error)
}

// Outcome names what a decision did, for logs, metrics and the demo.
type Outcome string

const (
	OutcomeNewCase     Outcome = "new_case"
	OutcomeReply       Outcome = "reply"         // appended to an open case
	OutcomeReopened    Outcome = "reopened"      // a closed case, within the window
	OutcomeLinkedCase  Outcome = "linked_case"   // a closed case, past the window
	OutcomeAutoRecord  Outcome = "auto_recorded" // a machine's mail, on the case it refers to
	OutcomeMachineCase Outcome = "machine_case"  // a machine's mail that refers to nothing
)

// Decision is what one inbound mail means. The caller stores Message,
// sends Mails (recording each on Case with Case.RecordSent), adds Notices
// to the named contacts' digests, marks Undeliverable addresses and saves
// Case, all in one transaction.
type Decision struct {
	Outcome Outcome
	Sender  Sender
	Case    *Case // the case after the change
	NewCase bool
	Message *Message
	// NoAck says why a new case got no acknowledgement ("" when it got one
	// or when none was due).
	NoAck string
	// Undeliverable lists addresses a bounce of deskd's own mail reported.
	Undeliverable []string
	// Thread says how the mail was threaded ("in-reply-to", "token",
	// "new", "stranger quoted token 12", ...), for the log line.
	Thread string
	// Mails are the mails the decision sends: the acknowledgement (kind
	// MailAck, first when there is one), staff notifications, relays of
	// staff replies, confirmations, the closing mail, ... The caller
	// renders and queues them in the same transaction, every kind on the
	// same road.
	Mails []*OutMail
	// Notices are the lines this mail adds to named contacts' R1 digests
	// (someone who is not a named contact wrote in): the caller adds them
	// to each contact's pending digest and sends those that are due.
	Notices []ContactNotice
	// Quarantine, when set, says the mail belongs in no case (staff
	// keywords that name none): the caller quarantines it with this
	// reason, and Case and Message are nil. Mails may still carry the
	// error reply to the staff member.
	Quarantine string
	// Changes lists what staff keywords changed, for the log line.
	Changes []string
}

// Ack returns the acknowledgement among d's mails, or nil.
func (d *Decision) Ack() *OutMail {
	for _, m := range d.Mails {
		if m.Kind == MailAck {
			return m
		}
	}
	return nil
}

// Engine decides what inbound mail means. It is safe for concurrent use; it
// keeps no state between calls.
type Engine struct {
	policy *Policy
	tokens *Tokens
}

// NewEngine returns an engine for the policy.
func NewEngine(p *Policy) *Engine {
	return &Engine{policy: p, tokens: NewTokens(p.TokenPrefix)}
}

// Tokens returns the engine's subject-token finder.
func (e *Engine) Tokens() *Tokens { return e.tokens }

// Classify says who wrote in, as Decide will (Policy.Classify).
func (e *Engine) Classify(in *Inbound) Sender { return e.policy.Classify(in) }

// Decide threads one inbound mail and says what must happen. now is the
// moment of the decision; in.ReceivedAt (the server's INTERNALDATE) starts
// the SLA clock of a new case (R11b). Decide does not check for duplicates:
// the caller looks the dedupe key up first.
func (e *Engine) Decide(in *Inbound, lk Lookup, now time.Time) (*Decision, error) {
	p := e.policy
	d := &Decision{Sender: p.Classify(in)}
	target, thread, verified, err := e.thread(in, d.Sender, lk)
	if err != nil {
		return nil, err
	}
	d.Thread = thread
	machine := d.Sender.Role == RoleMachine || d.Sender.Role == RoleDeskd

	switch {
	case d.Sender.Role == RoleStaff:
		if err := e.staff(d, in, target, lk, now); err != nil {
			return nil, err
		}
		return d, nil
	case machine && target != nil:
		// RFC 3834: a machine's mail is recorded where it belongs and
		// changes nothing: no reopen, no customer reply, no answer.
		d.Outcome, d.Case = OutcomeAutoRecord, target
		if in.Auto.Bounce && verified {
			// Only a bounce that names one of our own, HMAC-checked
			// Message-IDs may silence an address; a forged bounce cannot.
			d.Undeliverable = bouncedRecipients(in, target)
		}
		e.append(d, in, now, EventAutoMail, strings.Join(in.Auto.Reasons, ","))
		return d, nil
	case machine:
		d.Outcome = OutcomeMachineCase
		if err := e.open(d, in, lk, now); err != nil {
			return nil, err
		}
		d.Case.Machine = true
		d.NoAck = "machine"
		if d.Sender.Role == RoleDeskd {
			d.NoAck = "loop"
		}
		return d, nil
	case target != nil && target.Status == StatusClosed:
		// The window is measured to the server's receipt, not to this
		// decision: a backlog after downtime must not turn reopens into
		// new cases.
		if arrival(in, now).Sub(target.ClosedAt) <= p.ReopenWindow {
			d.Outcome, d.Case = OutcomeReopened, target
			target.Status = StatusOpen
			target.ClosedAt = time.Time{}
			e.append(d, in, now, EventReopened, "")
			break
		}
		d.Outcome = OutcomeLinkedCase
		if err := e.open(d, in, lk, now); err != nil {
			return nil, err
		}
		d.Case.LinkedTo = target.ID
		d.Case.Events = append(d.Case.Events, Event{At: arrival(in, now), Type: EventLinked, Detail: fmt.Sprintf("continues case %d", target.ID)})
		if err := e.ack(d, in, lk, now); err != nil {
			return nil, err
		}
	case target != nil:
		d.Outcome, d.Case = OutcomeReply, target
		if target.Status == StatusPending {
			// R11c: the customer's real reply resumes the clock.
			target.Status = StatusOpen
		}
		e.append(d, in, now, EventCustomerReply, "")
	default:
		d.Outcome = OutcomeNewCase
		if err := e.open(d, in, lk, now); err != nil {
			return nil, err
		}
		if strings.HasPrefix(thread, "stranger") {
			if n, ok := e.tokens.Find(in.Subject); ok {
				d.Case.QuotedToken = n
			}
		}
		if err := e.ack(d, in, lk, now); err != nil {
			return nil, err
		}
	}
	// What is left is a person of the customer's side writing: a new
	// case, a reply, a reopen or a linked case.
	if err := e.customerMail(d, in, now); err != nil {
		return nil, err
	}
	return d, nil
}

// arrival is when the server received in (R11b), or now for a mail that
// carries no receipt time (tests, a server without INTERNALDATE).
func arrival(in *Inbound, now time.Time) time.Time {
	if in.ReceivedAt.IsZero() {
		return now
	}
	return in.ReceivedAt
}

// thread finds the case a mail belongs to, in the order the design asks:
// (1) a Message-ID in In-Reply-To/References (or, for a bounce, the
// Message-ID of the bounced mail) that deskd stored or sent; (2) the subject
// token. Either match counts only when the sender may write into that case
// (allowed); verified says the match came from one of deskd's own,
// HMAC-checked Message-IDs.
func (e *Engine) thread(in *Inbound, s Sender, lk Lookup) (c *Case, how string, verified bool, err error) {
	var ids []string
	if s.Role == RoleDeskd {
		// deskd's own mail coming back (a loop through a forwarder) names
		// its case in its own signed Message-ID.
		if e.policy.ownMessageID(in.MessageID) != 0 {
			ids = append(ids, in.MessageID)
		}
	}
	if in.Auto.BouncedMessageID != "" {
		ids = append(ids, in.Auto.BouncedMessageID)
	}
	ids = append(ids, in.InReplyTo...)
	// The last References entry is the direct parent (RFC 5322 §3.6.4):
	// try the nearest ancestors first.
	for i := len(in.References) - 1; i >= 0; i-- {
		ids = append(ids, in.References[i])
	}
	refused := ""
	for _, id := range ids {
		var cand *Case
		own := false
		if n := e.policy.ownMessageID(id); n != 0 {
			own = true
			if cand, err = lk.CaseByID(n); err != nil {
				return nil, "", false, err
			}
		}
		if cand == nil {
			if cand, err = lk.CaseByMessageID(id); err != nil {
				return nil, "", false, err
			}
		}
		if cand == nil {
			continue
		}
		if e.allowed(cand, s, own) {
			return cand, "references", own, nil
		}
		refused = fmt.Sprintf("stranger referenced case %d", cand.ID)
	}
	if n, ok := e.tokens.Find(in.Subject); ok {
		cand, err := lk.CaseByID(n)
		if err != nil {
			return nil, "", false, err
		}
		if cand != nil && e.allowed(cand, s, false) {
			return cand, "token", false, nil
		}
		return nil, fmt.Sprintf("stranger quoted token %d", n), false, nil
	}
	if refused != "" {
		return nil, refused, false, nil
	}
	return nil, "new", false, nil
}

// allowed says whether the sender may write into case c: a party of the
// case (anyone seen in From/To/Cc of its messages), a contact of the same
// configured customer, or staff. A machine answering one of deskd's own
// Message-IDs (ownRef) is allowed too: the HMAC proves it saw our mail.
func (e *Engine) allowed(c *Case, s Sender, ownRef bool) bool {
	switch {
	case s.Role == RoleStaff:
		return true
	case (s.Role == RoleMachine || s.Role == RoleDeskd) && ownRef:
		return true
	case slices.Contains(c.Parties, s.Email):
		return true
	case s.Customer != nil && s.Customer.Name == c.Customer && c.Customer != e.policy.DefaultCustomer:
		return true
	}
	return false
}

// open starts a new case for in.
func (e *Engine) open(d *Decision, in *Inbound, lk Lookup, now time.Time) error {
	id, err := lk.NextCaseID()
	if err != nil {
		return fmt.Errorf("next case id: %w", err)
	}
	cust := d.Sender.Customer
	if cust == nil {
		cust = e.policy.defaultCustomer()
	}
	received := arrival(in, now)
	subject := e.tokens.BaseSubject(StripKeywords(in.Subject))
	if subject == "" {
		subject = "(no subject)"
	}
	c := &Case{
		ID:           id,
		Subject:      subject,
		Status:       StatusOpen,
		Customer:     cust.Name,
		Plan:         cust.Plan,
		Language:     cust.Language,
		Requester:    in.From,
		Unauthorised: d.Sender.Role == RoleContact,
		CreatedAt:    now,
		ReceivedAt:   received,
	}
	if c.Language == "" {
		c.Language = e.policy.DefaultLanguage
	}
	if c.Plan == "" {
		c.Plan = e.policy.DefaultPlan
	}
	d.Case, d.NewCase = c, true
	e.append(d, in, now, EventReceived, "")
	return nil
}

// append records in as a message of d.Case with an event of type ev.
func (e *Engine) append(d *Decision, in *Inbound, now time.Time, ev, detail string) {
	c := d.Case
	d.Message = &Message{
		Key:         in.DedupeKey,
		CaseID:      c.ID,
		Direction:   DirectionIn,
		Role:        d.Sender.Role,
		MessageID:   in.MessageID,
		From:        in.From,
		To:          in.To,
		Cc:          in.Cc,
		Subject:     in.Subject,
		Date:        in.ReceivedAt,
		Text:        in.Text,
		Attachments: in.Attachments,
		AutoReasons: in.Auto.Reasons,
		UID:         in.UID,
		Size:        in.Size,
		Problems:    in.Problems,
	}
	if d.Message.Date.IsZero() {
		d.Message.Date = now
	}
	d.Message.Visibility = VisibilityCustomer
	if d.Sender.Role == RoleStaff {
		// A staff mail reaches the customer as a relay; the mail itself
		// is internal unless the staff member wrote to the customer
		// directly (staff() refines this).
		d.Message.Visibility = VisibilityInternal
	}
	c.MessageKeys = append(c.MessageKeys, in.DedupeKey)
	c.UpdatedAt = now
	// Events carry the server's receipt time, not the decision's: a
	// backlog worked off after downtime must not make a staff response
	// look late (R11b).
	c.Events = append(c.Events, Event{At: arrival(in, now), Type: ev, By: d.Sender.Email, MessageID: in.MessageID, Detail: detail})
	if d.Sender.Role == RoleMachine || d.Sender.Role == RoleDeskd {
		// A robot's address is no party: it must not gain the right to
		// write into the case, and its To/Cc are not the customer's.
		return
	}
	e.addParties(c, in.From)
	e.addParties(c, in.To...)
	e.addParties(c, in.Cc...)
}

// addParties records the customer side's addresses. Staff (and the
// lists staff mail goes to) are no party: they may write into any case
// anyway, and relays must never go to them.
func (e *Engine) addParties(c *Case, addrs ...Address) {
	for _, a := range addrs {
		addr := strings.ToLower(strings.TrimSpace(a.Email))
		if addr == "" || e.policy.staffSide(addr) || slices.Contains(c.Parties, addr) {
			continue
		}
		c.Parties = append(c.Parties, addr)
	}
}

// ack asks for an acknowledgement of the new case d.Case to the sender of
// in, unless the sender must not get one.
func (e *Engine) ack(d *Decision, in *Inbound, lk Lookup, now time.Time) error {
	if d.Sender.Role == RoleStaff {
		// Staff know; they get no acknowledgement.
		d.NoAck = "staff"
		return nil
	}
	// RFC 5322 §3.6.4: the parent's References, or its In-Reply-To when
	// it has none, followed by the parent's own Message-ID.
	refs := slices.Clone(in.References)
	if len(refs) == 0 && len(in.InReplyTo) == 1 {
		refs = slices.Clone(in.InReplyTo)
	}
	if in.MessageID != "" {
		refs = append(refs, in.MessageID)
	}
	subject := strings.TrimSpace(e.tokens.Strip(StripKeywords(in.Subject)))
	if subject == "" {
		subject = d.Case.Subject
	}
	return e.ackTo(d, in.From, in.MessageID, refs, subject, lk, now)
}

// ackTo asks for an acknowledgement of d.Case to one address, unless it
// bounced or already got its share of automatic mail, so that no loop with
// a robot that slipped past the machine signals can run away.
func (e *Engine) ackTo(d *Decision, to Address, inReplyTo string, refs []string, subject string, lk Lookup, now time.Time) error {
	addr := strings.ToLower(to.Email)
	if addr == "" || !strings.Contains(addr, "@") {
		d.NoAck = "no usable sender address"
		return nil
	}
	// The acknowledgement's own budget: mail deskd sent this address
	// about others (an R1 digest) never withholds it.
	blocked, err := e.AutoBlocked(MailAck, addr, lk, now)
	if err != nil {
		return err
	}
	if blocked != "" {
		d.NoAck = blocked
		return nil
	}
	d.Mails = append(d.Mails, &OutMail{
		Kind:        MailAck,
		To:          []Address{{Name: to.Name, Email: addr}},
		InReplyTo:   inReplyTo,
		References:  refs,
		Subject:     e.tokens.Format(d.Case.ID) + " " + subject,
		Language:    d.Case.Language,
		Automatic:   "auto-replied", // RFC 3834 §5
		RateLimited: true,
	})
	d.Case.Events = append(d.Case.Events, Event{At: now, Type: EventAckQueued, By: e.policy.SupportAddress, Detail: addr})
	return nil
}

// AutoBlocked says why addr must get no automatic mail of kind now ("" =
// it may): it bounced, or it reached the kind's hourly or daily budget
// (RFC 3834 §2). Each kind has a budget of its own (AutoPerHour and
// AutoPerDay mails of that kind), so that mail of one kind never starves
// another: a named contact told about colleagues (R1) still gets the
// acknowledgement of their own question. Lookup errors abort the decision
// (fail closed): an automatic mail sent because the counter could not be
// read is how loops start.
func (e *Engine) AutoBlocked(kind MailKind, addr string, lk Lookup, now time.Time) (string, error) {
	p := e.policy
	until, err := lk.UndeliverableUntil(addr)
	if err != nil {
		return "", fmt.Errorf("undeliverable %s: %w", addr, err)
	}
	if until.After(now) {
		return "address bounced until " + until.UTC().Format(time.RFC3339), nil
	}
	for _, limit := range []struct {
		window time.Duration
		max    int
		name   string
	}{{time.Hour, p.AutoPerHour, "hour"}, {24 * time.Hour, p.AutoPerDay, "day"}} {
		if limit.max <= 0 {
			continue
		}
		n, err := lk.AutoMailsSince(kind, addr, now.Add(-limit.window))
		if err != nil {
			return "", fmt.Errorf("automatic %s mails to %s: %w", kind, addr, err)
		}
		if n >= limit.max {
			return fmt.Sprintf("rate limit: %d automatic %s mails in the last %s", n, kind, limit.name), nil
		}
	}
	return "", nil
}

// bouncedRecipients are the failed recipients of a bounce that are parties
// of the case: deskd never silences an address it never wrote to.
func bouncedRecipients(in *Inbound, c *Case) []string {
	var out []string
	for _, r := range in.Auto.BouncedRecipients {
		if slices.Contains(c.Parties, r) {
			out = append(out, r)
		}
	}
	return out
}
