package cases

import (
	"slices"
	"strings"
	"time"
)

// EventSolvedWish records that a person of the customer said, in the
// customer portal, that their problem is solved and asked to close the
// case. It changes nothing else: only staff close a case ([opgelost]),
// so the SLA clock (SLACase) does not see it.
const EventSolvedWish = "solved_wish"

// SolvedWish records by's wish to close c and returns the notification
// that tells staff (staff.notify, kind MailNotify, event "solved_wish"),
// (nil when no staff.notify is configured). recorded is false, and c
// unchanged, when there is nothing new to say: the case is closed, or
// by's wish is already the latest word on it (the button pressed twice).
// A wish after a later reply, reopen or staff answer is a new wish.
func (c *Case) SolvedWish(p *Policy, by Address, now time.Time) (m *OutMail, recorded bool) {
	if c.Status == StatusClosed {
		return nil, false
	}
	email := strings.ToLower(by.Email)
	for i := len(c.Events) - 1; i >= 0; i-- {
		e := c.Events[i]
		if e.Type == EventSolvedWish && strings.EqualFold(e.By, email) {
			return nil, false
		}
		if wishResets[e.Type] {
			break
		}
	}
	c.Events = append(c.Events, Event{At: now, Type: EventSolvedWish, By: email})
	c.UpdatedAt = now
	if len(p.StaffNotify) == 0 {
		return nil, true
	}
	c.Events = append(c.Events, Event{At: now, Type: EventStaffNotified, By: p.SupportAddress, Detail: string(MailNotify) + " " + strings.Join(p.StaffNotify, ", ")})
	return &OutMail{
		Kind:       MailNotify,
		To:         addresses(p.StaffNotify),
		References: slices.Clone(c.Thread),
		Language:   p.StaffLanguage,
		From:       by,
		Event:      EventSolvedWish,
		Automatic:  "auto-generated",
	}, true
}

// wishResets are the events after which a wish to close is new again.
var wishResets = map[string]bool{
	EventReceived: true, EventCustomerReply: true, EventReopened: true, EventStaffResponse: true,
	EventPending: true, EventResumed: true, EventClosed: true,
}
