package daemon

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
	"deskd/templates"
)

// The one road of outgoing mail. Every mail deskd sends, whatever asked
// for it (a decision on an inbound mail, the SLA escalation loop, a
// digest of R1 notices, the customer portal through SendMail), is a
// cases.OutMail and goes through queueMails: renderMail turns it into
// RFC 5322 bytes, queueMail records it on its case (cases.Case.RecordSent
// says how the case changes), puts it in the outbox and counts it
// against the recipients' budget for its kind, all in the caller's
// transaction. Only the monthly report, which the report package
// renders, joins the road at queueMail.

// renderedMail is an outgoing mail ready for the outbox.
type renderedMail struct {
	raw           []byte
	messageID     string
	subject, text string
}

// mailResult is what the road did with one mail: queued under messageID,
// or not (wholly) sent, and why.
type mailResult struct {
	kind      cases.MailKind
	messageID string // "" when it was not queued
	problem   string // "" when it went to every recipient
}

// ErrNotSent is returned (wrapped) by SendMail for a mail the road
// refused: a recipient over the budget of its kind, or bounced, or a mail
// that cannot be composed.
var ErrNotSent = errors.New("mail not sent")

// SendMail sends one mail outside any inbound mail's decision, on the
// road every mail takes: rendered from the template named after m.Kind
// (templates.CaseData; a relay carries its own Subject and Text),
// recorded on case caseID when it is not 0 (its messages and, for the
// customer conversation, its thread: cases.Case.RecordSent), queued in
// the outbox, and, when m.RateLimited, counted against each recipient's
// budget for m.Kind, which is checked first (limits.auto_reply_per_hour
// and per_day, each kind apart; an address that bounced gets nothing
// either). Everything happens in one transaction; the outbox is woken
// after it. It returns the queued mail's Message-ID, or an error
// wrapping ErrNotSent when the mail was refused.
//
// The customer portal sends its sign-in mails with it (a kind of its
// own, with its template under templates/default).
func (d *Daemon) SendMail(caseID uint64, m *cases.OutMail) (messageID string, err error) {
	return d.sendOnCase(caseID, func(*cases.Case) (*cases.OutMail, bool) { return m, false })
}

// sendOnCase is SendMail's transaction: mail(c) is given the case (nil
// for caseID 0) as it stands in the transaction and returns the mail to
// send, having changed c through the cases package when changed is true
// (the case is then written even when there is no mail). The mail's
// Message-ID is "" when there was none.
func (d *Daemon) sendOnCase(caseID uint64, mail func(c *cases.Case) (m *cases.OutMail, changed bool)) (messageID string, err error) {
	rt := d.rt.Load()
	now := d.now()
	err = d.db.Update(func(tx *store.Tx) error {
		messageID = ""
		var c *cases.Case
		if caseID != 0 {
			var err error
			if c, err = tx.Case(caseID); err != nil {
				return err
			}
			if c == nil {
				return fmt.Errorf("%w: no case %d", ErrNotSent, caseID)
			}
		}
		m, changed := mail(c)
		if m == nil {
			if changed && c != nil {
				return d.putCase(tx, rt, c, now)
			}
			return nil
		}
		if m.RateLimited {
			for _, a := range slices.Concat(m.To, m.Cc) {
				why, err := rt.engine.AutoBlocked(m.Kind, strings.ToLower(a.Email), txLookup{tx}, now)
				if err != nil {
					return err
				}
				if why != "" {
					return fmt.Errorf("%w: %s to %s: %s", ErrNotSent, m.Kind, a.Email, why)
				}
			}
		}
		sent, err := d.queueMails(tx, rt, c, []*cases.OutMail{m}, now)
		if err != nil {
			return err
		}
		for _, s := range sent {
			if s.kind == m.Kind && s.messageID != "" && messageID == "" {
				messageID = s.messageID
			}
		}
		if messageID == "" {
			return fmt.Errorf("%w: %s", ErrNotSent, sent[0].problem)
		}
		if c != nil {
			return d.putCase(tx, rt, c, now)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if messageID != "" {
		d.wakeOutbox()
	}
	return messageID, nil
}

// queueMails renders, records and queues mails about case c (nil for
// mails about no case) in the caller's transaction. A mail that cannot
// be composed (a template error), or a recipient it cannot be written to
// (an internationalised address), is recorded on the case
// (cases.Case.RecordNotSent) and logged; when it was a staff member's
// reply on its way to the customer, the staff member gets an error mail
// saying who did not get it. Only a store error fails the call.
func (d *Daemon) queueMails(tx *store.Tx, rt *runtime, c *cases.Case, mails []*cases.OutMail, now time.Time) (sent []mailResult, err error) {
	pending := slices.Clone(mails)
	for len(pending) > 0 {
		m := pending[0]
		pending = pending[1:]
		dropped := dropUnaddressable(m)
		var out *renderedMail
		var rerr error
		if len(m.To) == 0 {
			rerr = errors.New("no recipient left that can be addressed")
		} else {
			out, rerr = renderMail(rt, c, m, now)
		}
		var problems []string
		for _, a := range dropped {
			problems = append(problems, fmt.Sprintf("%s was not sent to %s: deskd cannot address it (an internationalised address?)", m.Kind, a))
		}
		if rerr != nil {
			problems = append(problems, fmt.Sprintf("%s could not be composed: %v", m.Kind, rerr))
		}
		s := mailResult{kind: m.Kind}
		if len(problems) > 0 {
			if m.Kind == cases.MailAck {
				// A mail deskd cannot acknowledge (say, an address its
				// relay cannot take) is still recorded: losing it is
				// worse.
				problems = []string{"cannot compose acknowledgement: " + strings.Join(problems, "; ")}
			}
			s.problem = strings.Join(problems, "; ")
			if c != nil {
				c.RecordNotSent(m, problems, now)
			}
			d.log.Error("mail not (fully) sent", "kind", m.Kind, "problems", problems)
			if m.Staff.Email != "" && m.Kind != cases.MailError && m.Kind != cases.MailConfirm {
				// The staff member believes the customer has their
				// words: say so when that is not (wholly) true.
				pending = append(pending, &cases.OutMail{
					Kind: cases.MailError, To: []cases.Address{m.Staff}, Language: rt.opts.Policy.StaffLanguage,
					Problems: problems, Staff: m.Staff, Automatic: "auto-replied",
				})
			}
		}
		if rerr == nil {
			if err := queueMail(tx, rt, c, m, out, now); err != nil {
				return nil, fmt.Errorf("queue %s mail: %w", m.Kind, err)
			}
			s.messageID = out.messageID
		}
		sent = append(sent, s)
	}
	return sent, nil
}

// dropUnaddressable removes the recipients Compose cannot write from m and
// returns them; when To loses its only address, the first Cc takes its
// place.
func dropUnaddressable(m *cases.OutMail) []string {
	var dropped []string
	keep := func(as []cases.Address) []cases.Address {
		var out []cases.Address
		for _, a := range as {
			if mail.CanAddress(a.Email) {
				out = append(out, a)
			} else {
				dropped = append(dropped, a.Email)
			}
		}
		return out
	}
	m.To, m.Cc = keep(m.To), keep(m.Cc)
	if len(m.To) == 0 && len(m.Cc) > 0 {
		m.To, m.Cc = m.Cc[:1], m.Cc[1:]
	}
	return dropped
}

// renderMail turns one OutMail into RFC 5322 bytes. A relay carries the
// staff member's own words; every other kind is rendered from the
// template of its name: the acknowledgement with templates.AckData, the
// rest with templates.CaseData.
func renderMail(rt *runtime, c *cases.Case, m *cases.OutMail, now time.Time) (*renderedMail, error) {
	var caseID uint64
	if c != nil {
		caseID = c.ID
	}
	from := rt.supportAddress()
	replyTo := []cases.Address{rt.supportAddress()}
	if m.Staff.Email != "" && (m.Kind == cases.MailRelay || (m.Kind == cases.MailClosing && m.Text != "")) {
		// The customer sees who answered, but replies to the desk.
		from.Name = staffName(m.Staff) + " via " + rt.opts.SupportName
	}
	var subject, text, html string
	switch m.Kind {
	case cases.MailRelay:
		subject, text = m.Subject, m.Text
		if u := rt.followURL(c, m); u != "" {
			// The staff member's words carry no template; the portal's
			// link goes below them (followLine).
			text = strings.TrimRight(text, "\n") + "\n\n" + templates.FollowLine(m.Language, u)
		}
	default:
		var data any
		if m.Kind == cases.MailAck {
			// The acknowledgement comes from support@ itself and
			// has always gone without Reply-To.
			data, replyTo = ackData(rt, c, m, now), nil
		} else {
			data = caseData(rt, c, m, now)
		}
		var err error
		subject, text, html, err = rt.templates.Render(string(m.Kind), m.Language, data)
		if err != nil {
			return nil, err
		}
	}
	msgID := mail.NewMessageID(rt.hmacKey, caseID, rt.domain)
	raw, err := mail.Compose(&mail.Outgoing{
		From:                 from,
		To:                   m.To,
		Cc:                   m.Cc,
		ReplyTo:              replyTo,
		Subject:              subject,
		MessageID:            msgID,
		InReplyTo:            m.InReplyTo,
		References:           m.References,
		Date:                 now,
		Text:                 text,
		HTML:                 html,
		Attachments:          relayedAttachments(m),
		AutoSubmitted:        m.Automatic,
		SuppressAutoResponse: m.Automatic != "",
		LoopToken:            rt.domain,
	})
	if err != nil {
		return nil, err
	}
	return &renderedMail{raw: raw, messageID: msgID, subject: mail.SanitizeHeaderText(subject), text: text}, nil
}

// ackData fills the acknowledgement's template: the case, and the
// first-response target of its plan with its deadline (R9).
func ackData(rt *runtime, c *cases.Case, m *cases.OutMail, now time.Time) templates.AckData {
	tokens := rt.engine.Tokens()
	data := templates.AckData{
		CaseID:           c.ID,
		Token:            tokens.Format(c.ID),
		Subject:          strings.TrimSpace(strings.TrimPrefix(m.Subject, tokens.Format(c.ID))),
		CustomerName:     c.Customer,
		Plan:             c.Plan,
		FirstResponse:    firstResponseText(rt.clocks.For(c.Customer).Targets, c.Plan, m.Language),
		FirstResponseDue: firstResponseDue(rt, c, m.Language, now),
		SupportName:      rt.opts.SupportName,
		FollowURL:        rt.followURL(c, m),
	}
	if len(m.To) > 0 {
		data.ContactName = m.To[0].Name
	}
	return data
}

// queueMail records a rendered mail as an outgoing message of case c (its
// Message-ID indexed, so a reply to it threads), puts it in the outbox,
// and counts it against the recipients' budget for its kind when it is
// rate-limited. A mail about no case (an error reply to staff, a digest,
// a report) is only queued.
func queueMail(tx *store.Tx, rt *runtime, c *cases.Case, m *cases.OutMail, r *renderedMail, now time.Time) error {
	rcpts := make([]string, 0, len(m.To)+len(m.Cc))
	for _, a := range slices.Concat(m.To, m.Cc) {
		rcpts = append(rcpts, strings.ToLower(a.Email))
	}
	var caseID uint64
	if c != nil {
		caseID = c.ID
		out := c.RecordSent(m, cases.Sent{
			MessageID: r.messageID, From: rt.supportAddress(), Subject: r.subject,
			Text: r.text, Size: len(r.raw), At: now,
		})
		if err := tx.PutMessage(out, r.raw); err != nil {
			return err
		}
	}
	if err := tx.Enqueue(&store.OutboxEntry{
		CaseID:       caseID,
		Kind:         string(m.Kind),
		MessageID:    r.messageID,
		EnvelopeFrom: rt.opts.Policy.SupportAddress,
		Recipients:   rcpts,
		Raw:          r.raw,
		CreatedAt:    now,
	}); err != nil {
		return err
	}
	if m.RateLimited {
		for _, addr := range rcpts {
			if err := tx.RecordAutoMail(string(m.Kind), addr, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// putCase stores c in tx with its SLA deadlines, its figures for the
// report index (caseFigures) and its case list line at now, which the
// daemon computes (the store calls nothing above it).
func (d *Daemon) putCase(tx *store.Tx, rt *runtime, c *cases.Case, now time.Time) error {
	// One replay of the clock serves the deadline entries, the report
	// figures and the list line; the figures need another only when an
	// event lies after now.
	ev := rt.evaluate(c, now)
	fig := figuresFrom(rt.stamp, c, ev)
	if ev.ok {
		if asOf := figuresAsOf(ev.sc, now); !asOf.Equal(now) {
			fig = caseFigures(rt.clocks, rt.stamp, c, now)
		}
	}
	var deadlines []store.Deadline
	if c.Status != cases.StatusClosed {
		deadlines = deadlinesFrom(c, ev)
	}
	if err := tx.PutCaseFigures(c, fig, deadlines...); err != nil {
		return err
	}
	return putCaseLine(tx, c, ev)
}
