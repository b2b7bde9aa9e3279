package cases

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxThread bounds Case.Thread like mail.Compose bounds References: the
// root and the latest ids.
const maxThread = 20

// AddToThread records a Message-ID of the customer conversation (an
// inbound customer mail, or a mail deskd sent the customer) so that the
// next relay answers it.
func (c *Case) AddToThread(ids ...string) {
	for _, id := range ids {
		if id == "" || slices.Contains(c.Thread, id) {
			continue
		}
		c.Thread = append(c.Thread, id)
	}
	if n := len(c.Thread); n > maxThread {
		c.Thread = append(c.Thread[:1], c.Thread[n-maxThread+1:]...)
	}
}

// lastInThread is the Message-ID a relay answers.
func (c *Case) lastInThread() string {
	if len(c.Thread) == 0 {
		return ""
	}
	return c.Thread[len(c.Thread)-1]
}

// hasEvent reports whether the case has an event of type t.
func (c *Case) hasEvent(t string) bool {
	return slices.ContainsFunc(c.Events, func(e Event) bool { return e.Type == t })
}

// customerMail does what every mail from the customer's side implies
// besides threading: the customer's conversation grows, a priority keyword
// becomes a proposal (R7), someone who is not a named contact is reported
// to those who are (R1), and staff hear of it.
func (e *Engine) customerMail(d *Decision, in *Inbound, now time.Time) error {
	c := d.Case
	c.AddToThread(in.InReplyTo...)
	c.AddToThread(in.MessageID)
	at := arrival(in, now)
	if d.Sender.Suspicious != "" {
		c.Events = append(c.Events, Event{At: at, Type: EventSuspicious, By: d.Sender.Email, MessageID: in.MessageID, Detail: d.Sender.Suspicious})
	}
	// The customer may propose a priority; only staff set it (R7). The
	// other keywords mean nothing from a customer and stay in the text.
	if cmds := ParseKeywords(in.Subject); cmds.Priority != "" && cmds.Priority != c.ProposedPriority {
		c.ProposedPriority = cmds.Priority
		c.Events = append(c.Events, Event{At: at, Type: EventPriorityProposed, By: d.Sender.Email, MessageID: in.MessageID, Detail: string(cmds.Priority)})
	}
	if d.Sender.Role == RoleContact {
		e.unauthorised(d, in, now)
	}
	event := "reply"
	switch d.Outcome {
	case OutcomeNewCase:
		event = "new"
	case OutcomeReopened:
		event = "reopened"
	case OutcomeLinkedCase:
		event = "linked"
	}
	e.notify(d, in, MailNotify, e.policy.StaffNotify, event, now)
	return nil
}

// unauthorised marks a case written into by someone of a customer who is
// not one of its named contacts, and tells the named contacts once per
// case (R1), in their digest: one line per case, which the daemon sends
// at most once per contact per digest period (limits.notice_digest), so
// that a burst of colleagues' mails costs a contact one notice and never
// their own acknowledgements.
func (e *Engine) unauthorised(d *Decision, in *Inbound, now time.Time) {
	c := d.Case
	c.Unauthorised = true
	if c.hasEvent(EventUnauthorised) || d.Sender.Customer == nil {
		return
	}
	var to []string
	for _, ct := range d.Sender.Customer.Contacts {
		addr := strings.ToLower(ct.Email)
		to = append(to, addr)
		d.Notices = append(d.Notices, ContactNotice{
			To: Address{Name: ct.Name, Email: addr},
			Notice: Notice{
				CaseID: c.ID, Subject: c.Subject, Customer: c.Customer, Language: c.Language,
				Writer: in.From, At: arrival(in, now), Thread: slices.Clone(c.Thread),
			},
		})
	}
	detail := "in the digest of " + strings.Join(to, ", ")
	if len(to) == 0 {
		detail = "the customer has no named contacts to tell"
	}
	c.Events = append(c.Events, Event{At: now, Type: EventUnauthorised, By: d.Sender.Email, MessageID: in.MessageID, Detail: detail})
}

// notify tells a staff list about in. Notifications are automatic mail,
// but never rate-limited: staff must hear of every customer mail.
func (e *Engine) notify(d *Decision, in *Inbound, kind MailKind, list []string, event string, now time.Time) {
	if len(list) == 0 {
		return
	}
	c := d.Case
	m := &OutMail{
		Kind:        kind,
		To:          addresses(list),
		InReplyTo:   in.MessageID,
		References:  slices.Clone(c.Thread),
		Language:    e.policy.StaffLanguage,
		From:        in.From,
		Text:        StripQuoted(in.Text),
		Attachments: in.Attachments,
		Event:       event,
		Suspicious:  d.Sender.Suspicious,
		Automatic:   "auto-generated",
	}
	d.Mails = append(d.Mails, m)
	c.Events = append(c.Events, Event{At: now, Type: EventStaffNotified, By: e.policy.SupportAddress, Detail: string(kind) + " " + strings.Join(list, ", ")})
}

func addresses(list []string) []Address {
	out := make([]Address, 0, len(list))
	for _, a := range list {
		out = append(out, Address{Email: a})
	}
	return out
}

// staff decides a mail from an authenticated staff member: keywords in the
// subject change the case (they are definitive, R7), the text goes to the
// customer unless it is an internal note, and the staff member hears what
// changed or what could not apply.
func (e *Engine) staff(d *Decision, in *Inbound, target *Case, lk Lookup, now time.Time) error {
	cmds := ParseKeywords(in.Subject)
	var problems []string
	problems = append(problems, cmds.Conflicts...)
	switch {
	case target == nil && cmds.ForCustomer != "":
		if p := e.onBehalfProblem(cmds.ForCustomer); p != "" {
			return e.noCase(d, in, cmds, append(problems, p))
		}
		d.Outcome = OutcomeNewCase
		if err := e.openOnBehalf(d, in, cmds.ForCustomer, lk, now); err != nil {
			return err
		}
		opened := fmt.Sprintf("case %d opened for %s (R6)", d.Case.ID, cmds.ForCustomer)
		if d.Ack() != nil {
			opened += "; the customer gets the acknowledgement"
		} else {
			opened += "; no acknowledgement: " + d.NoAck
		}
		d.Changes = append(d.Changes, opened)
	case target == nil && !cmds.Empty():
		return e.noCase(d, in, cmds, append(problems,
			"no case found for this mail: reply to a mail of the case, or keep its token (e.g. "+e.tokens.Format(1)+") in the subject"))
	case target == nil:
		// A staff member writing to support@ without keywords opens a
		// case of their own (e.g. forwarding a customer's mail).
		d.Outcome = OutcomeNewCase
		if err := e.open(d, in, lk, now); err != nil {
			return err
		}
		d.NoAck = "staff"
		e.notify(d, in, MailNotify, e.policy.StaffNotify, "new", now)
	default:
		d.Outcome, d.Case = OutcomeReply, target
		// A staff response (R9) is words that reach the customer; a note
		// stays inside, and a mail of keywords alone is a command.
		ev := EventStaffResponse
		switch {
		case cmds.Note:
			ev = EventNote
		case strings.TrimSpace(StripQuoted(in.Text)) == "" && len(in.Attachments) == 0:
			ev = EventStaffCommand
		}
		e.append(d, in, now, ev, "")
		if !cmds.Note && e.addressedToCustomer(target, in) {
			// The customer got this very mail (support@ in Cc).
			d.Message.Visibility = VisibilityCustomer
		}
		if cmds.ForCustomer != "" {
			problems = append(problems, fmt.Sprintf("[voor %s] opens a new case; this mail belongs to case %d, so it was ignored", cmds.ForCustomer, target.ID))
		}
	}
	res := e.apply(d, in, cmds, now)
	problems = append(problems, res.problems...)
	d.Changes = append(d.Changes, res.changes...)
	if d.Outcome == OutcomeReply {
		e.respond(d, in, cmds, res.closed, now)
	}
	if res.prioritySet && !res.closed && !cmds.Note {
		e.priorityMail(d)
	}
	e.confirm(d, in, d.Changes, problems)
	return nil
}

// addressedToCustomer reports whether a staff mail went straight to one of
// the customer parties of c.
func (e *Engine) addressedToCustomer(c *Case, in *Inbound) bool {
	for _, a := range append(slices.Clone(in.To), in.Cc...) {
		addr := strings.ToLower(a.Email)
		if slices.Contains(c.Parties, addr) && !e.policy.staffSide(addr) {
			return true
		}
	}
	return false
}

// onBehalfProblem says why [voor ADDRESS] cannot open a case for address
// ("" = it can).
func (e *Engine) onBehalfProblem(addr string) string {
	if e.policy.staffSide(addr) {
		return fmt.Sprintf("[voor %s]: that is a staff or support address, not a customer's", addr)
	}
	return ""
}

// openOnBehalf opens a case for a customer contact at a staff member's
// request, e.g. after a telephone call (R6), and acknowledges it to the
// customer, who never wrote and must learn the case number.
func (e *Engine) openOnBehalf(d *Decision, in *Inbound, addr string, lk Lookup, now time.Time) error {
	cust, named := e.policy.CustomerOf(addr)
	if cust == nil {
		cust = e.policy.defaultCustomer()
	}
	staffSender := d.Sender
	// The case belongs to the customer: open it as theirs, then record
	// the staff member as its author.
	d.Sender = Sender{Role: RoleStaff, Email: staffSender.Email, Customer: cust, Authorised: named}
	if err := e.open(d, in, lk, now); err != nil {
		return err
	}
	d.Sender = staffSender
	c := d.Case
	c.Requester = Address{Email: addr}
	for _, ct := range cust.Contacts {
		if strings.EqualFold(ct.Email, addr) {
			c.Requester.Name = ct.Name
		}
	}
	c.OpenedBy = staffSender.Email
	e.addParties(c, c.Requester)
	c.Events = append(c.Events, Event{At: arrival(in, now), Type: EventOpenedByStaff, By: staffSender.Email, MessageID: in.MessageID, Detail: "for " + addr})
	subject := c.Subject
	if err := e.ackTo(d, c.Requester, "", nil, subject, lk, now); err != nil {
		return err
	}
	e.notify(d, in, MailNotify, e.policy.StaffNotify, "on_behalf", now)
	return nil
}

// noCase handles staff keywords that name no case: the mail goes to
// quarantine (it belongs nowhere) and the staff member is told why.
func (e *Engine) noCase(d *Decision, in *Inbound, cmds Commands, problems []string) error {
	d.Quarantine = "staff keywords for no case: " + strings.Join(problems, "; ")
	d.Mails = append(d.Mails, &OutMail{
		Kind: MailError, To: []Address{in.From}, Subject: in.Subject, InReplyTo: in.MessageID,
		References: append(slices.Clone(in.References), in.MessageID), Language: e.policy.StaffLanguage,
		Problems: problems, Automatic: "auto-replied", NoCase: true,
	})
	return nil
}

// applied is what a staff member's keywords did.
type applied struct {
	changes, problems []string
	closed            bool // this mail closed the case
	prioritySet       bool // this mail changed the priority
}

// apply carries out a staff member's keywords on d.Case (R7: staff set
// priority definitively) and returns what changed and what could not
// apply. Every change is an event naming who, when and which mail.
func (e *Engine) apply(d *Decision, in *Inbound, cmds Commands, now time.Time) applied {
	var changes, problems []string
	closed, prioritySet := false, false
	c := d.Case
	at := arrival(in, now)
	event := func(typ, detail string) {
		c.Events = append(c.Events, Event{At: at, Type: typ, By: d.Sender.Email, MessageID: in.MessageID, Detail: detail})
	}
	if cmds.Note {
		changes = append(changes, "internal note recorded; not sent to the customer")
	}
	if p := cmds.Priority; p != "" {
		if p == c.Priority {
			changes = append(changes, fmt.Sprintf("priority stays %s", p))
		} else {
			old := c.Priority
			if old == "" {
				old = "not set"
			}
			c.Priority, prioritySet = p, true
			event(EventPrioritySet, string(p))
			changes = append(changes, fmt.Sprintf("priority: %s → %s", old, p))
		}
	}
	if k := cmds.Kind; k != "" && k != c.Kind {
		old := c.Kind
		if old == "" {
			old = "not set"
		}
		c.Kind = k
		event(EventKindSet, string(k))
		changes = append(changes, fmt.Sprintf("kind: %s → %s", old, k))
	}
	if cmds.SecondLine {
		switch {
		case len(e.policy.SecondLine) == 0:
			problems = append(problems, "[bug]: no second line is configured (staff.second_line)")
		default:
			if !c.SecondLine {
				c.SecondLine = true
				event(EventSecondLine, strings.Join(e.policy.SecondLine, ", "))
			}
			changes = append(changes, "handed to second line ("+strings.Join(e.policy.SecondLine, ", ")+")")
			e.notify(d, in, MailSecondLine, e.policy.SecondLine, "second_line", now)
		}
	}
	switch s := cmds.Status; {
	case s == "":
	case s == c.Status:
		changes = append(changes, fmt.Sprintf("status stays %s", s))
	case s == StatusClosed:
		c.Status, c.ClosedAt, closed = StatusClosed, at, true
		event(EventClosed, "")
		changes = append(changes, "status: closed")
	case s == StatusPending:
		c.Status, c.ClosedAt = StatusPending, time.Time{}
		event(EventPending, "")
		changes = append(changes, "status: pending (waiting on the customer; the resolution clock pauses, R11c)")
	case s == StatusOpen && c.Status == StatusClosed:
		c.Status, c.ClosedAt = StatusOpen, time.Time{}
		event(EventReopened, "")
		changes = append(changes, "status: reopened")
	case s == StatusOpen:
		c.Status = StatusOpen
		event(EventResumed, "")
		changes = append(changes, "status: open (resumed)")
	}
	return applied{changes: changes, problems: problems, closed: closed, prioritySet: prioritySet}
}

// respond relays a staff member's reply to the customer side of the case:
// from the support address, in the customer's thread, without keywords
// and without the staff member's quoted history. Customers the staff
// member wrote to directly get no second copy. An internal note goes
// nowhere; a closing mail goes out when the case was closed (it carries
// the staff member's words, if any, so the customer gets one mail).
func (e *Engine) respond(d *Decision, in *Inbound, cmds Commands, closing bool, now time.Time) {
	c := d.Case
	if cmds.Note {
		return
	}
	text := StripQuoted(in.Text)
	direct := map[string]bool{}
	for _, a := range append(slices.Clone(in.To), in.Cc...) {
		direct[strings.ToLower(a.Email)] = true
	}
	var rcpts []Address
	for _, addr := range c.Parties {
		if direct[addr] || e.policy.staffSide(addr) {
			continue
		}
		a := Address{Email: addr}
		if strings.EqualFold(addr, c.Requester.Email) {
			a.Name = c.Requester.Name
			rcpts = slices.Insert(rcpts, 0, a) // the requester first, in To
			continue
		}
		rcpts = append(rcpts, a)
	}
	hasText := strings.TrimSpace(text) != "" || len(in.Attachments) > 0
	if !hasText && !closing {
		return
	}
	if len(rcpts) == 0 {
		// Everyone on the customer's side read the staff member's mail
		// directly (support@ was in Cc): record, send nothing.
		return
	}
	m := &OutMail{
		Kind:       MailRelay,
		To:         rcpts[:1],
		Cc:         rcpts[1:],
		Subject:    "Re: " + e.tokens.Format(c.ID) + " " + c.Subject,
		InReplyTo:  c.lastInThread(),
		References: slices.Clone(c.Thread),
		Language:   c.Language,
		Staff:      in.From,
	}
	if hasText {
		m.Text, m.Attachments, m.AttachmentsOf = text, in.Attachments, in.DedupeKey
		c.Events = append(c.Events, Event{At: now, Type: EventRelayed, By: in.From.Email, MessageID: in.MessageID, Detail: joinAddrs(rcpts)})
	}
	if closing {
		m.Kind, m.Automatic = MailClosing, ""
		if !hasText {
			m.Automatic = "auto-generated"
		}
		c.Events = append(c.Events, Event{At: now, Type: EventClosingQueued, By: in.From.Email, MessageID: in.MessageID, Detail: joinAddrs(rcpts)})
	}
	d.Mails = append(d.Mails, m)
}

func joinAddrs(as []Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Email
	}
	return strings.Join(s, ", ")
}

// confirm tells the acting staff member what their keywords did: a
// confirmation when something changed, an error reply when nothing could
// apply. Silence only when there were no keywords.
func (e *Engine) confirm(d *Decision, in *Inbound, changes, problems []string) {
	if len(changes) == 0 && len(problems) == 0 {
		return
	}
	kind := MailConfirm
	if len(changes) == 0 {
		kind = MailError
	}
	var refs []string
	if d.Case != nil {
		refs = slices.Clone(d.Case.Thread)
	}
	d.Mails = append(d.Mails, &OutMail{
		Kind: kind, To: []Address{in.From}, InReplyTo: in.MessageID,
		References: append(refs, in.MessageID), Language: e.policy.StaffLanguage,
		Changes: changes, Problems: problems, Staff: in.From, Automatic: "auto-replied",
	})
}
