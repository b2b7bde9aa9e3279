package cases

import (
	"slices"
	"time"

	"deskd/sla"
)

// SLA event types: an alert of the SLA clock was sent to staff. Its Detail
// is the alert's key (sla.Alert.Key), so that each goes out once per case,
// kind and target (R11d), across restarts too.
const (
	EventSLAWarning = "sla_warning"
	EventSLABreach  = "sla_breach"
)

// The mails of the SLA clock. The daemon renders them with the clock's
// figures (the engine knows no calendar).
const (
	MailSLAWarning  MailKind = "sla_warning"  // staff.notify: a target is near (warn_at)
	MailSLABreach   MailKind = "sla_breach"   // staff.escalation(_tier2): a target was missed
	MailPrioritySet MailKind = "priority_set" // the customer: the priority staff set and its target (R7, R4)
)

// priorityMail tells the requester the priority staff set, once per
// change (R7: staff set it definitively; R4: the customer hears back).
// The daemon adds the resolution target and its deadline. A machine's
// case has nobody to tell.
func (e *Engine) priorityMail(d *Decision) {
	c := d.Case
	if c.Machine || c.Requester.Email == "" || e.policy.staffSide(c.Requester.Email) {
		return
	}
	d.Mails = append(d.Mails, &OutMail{
		Kind:       MailPrioritySet,
		To:         []Address{c.Requester},
		InReplyTo:  c.lastInThread(),
		References: slices.Clone(c.Thread),
		Language:   c.Language,
		Automatic:  "auto-generated", // RFC 3834 §5: a notice, not an answer
	})
}

// Escalate records on c that alert a was sent (its key in the event, so
// it goes out once, R11d) and returns the mail to the given staff
// addresses, or nil when nobody is configured to hear it: the alert is
// still marked sent, it is due once.
func (c *Case) Escalate(a sla.Alert, to []string, lang, by string, now time.Time) *OutMail {
	typ, kind := EventSLABreach, MailSLABreach
	if a.Kind == sla.AlertWarning {
		typ, kind = EventSLAWarning, MailSLAWarning
	}
	c.Events = append(c.Events, Event{At: now, Type: typ, By: by, Detail: a.Key()})
	if len(to) == 0 {
		return nil
	}
	return &OutMail{Kind: kind, To: addresses(to), Language: lang, Automatic: "auto-generated", SLAAlert: &a}
}

// SLACase is what the SLA clock needs of c (R7, R8, R11b, R11c): its plan,
// priority, kind and history. Machine cases (a bounce no case claimed)
// count in no figure: ok is false for them.
func SLACase(c *Case) (sc *sla.Case, ok bool) {
	if c.Machine {
		return nil, false
	}
	sc = &sla.Case{
		Plan:             c.Plan,
		Priority:         string(c.Priority),
		ProposedPriority: string(c.ProposedPriority),
		Kind:             string(c.Kind),
		Received:         c.ReceivedAt,
		Events:           make([]sla.Event, 0, len(c.Events)),
	}
	for _, e := range c.Events {
		switch e.Type {
		case EventReceived, EventOpenedByStaff, EventStaffResponse, EventPrioritySet,
			EventPriorityProposed, EventKindSet, EventPending, EventResumed,
			EventCustomerReply, EventClosed, EventReopened:
			sc.Events = append(sc.Events, sla.Event{At: e.At, Type: e.Type})
		}
	}
	return sc, true
}

// SLASent reports which alert keys c has already had sent.
func SLASent(c *Case) func(key string) bool {
	sent := map[string]bool{}
	for _, e := range c.Events {
		if e.Type == EventSLAWarning || e.Type == EventSLABreach {
			sent[e.Detail] = true
		}
	}
	return func(key string) bool { return sent[key] }
}

// ClockReceived is the receipt c's SLA clock starts from (R11b): what
// sla.Case.ClockReceived reads from SLACase(c), without converting the
// history. The store keys its report index by it (store.ClockEntry).
func (c *Case) ClockReceived() time.Time {
	for _, e := range c.Events {
		if e.Type == EventReceived || e.Type == EventOpenedByStaff {
			return e.At
		}
	}
	return c.ReceivedAt
}
