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

// queueMails renders, records and queues every mail of a decision besides
// the acknowledgement, in the decision's transaction. The inbound mail is
// recorded whatever happens here: a mail that cannot be composed (a
// template error), or a recipient it cannot be written to (an
// internationalised address), is logged on the case, and when it was a
// staff member's reply on its way to the customer, the staff member gets
// an error mail saying who did not get it.
func (d *Daemon) queueMails(tx *store.Tx, rt *runtime, dec *cases.Decision, now time.Time) (queued []string, err error) {
	pending := slices.Clone(dec.Mails)
	for len(pending) > 0 {
		m := pending[0]
		pending = pending[1:]
		dropped := dropUnaddressable(m)
		var out *renderedMail
		var rerr error
		if len(m.To) == 0 {
			rerr = errors.New("no recipient left that can be addressed")
		} else {
			out, rerr = renderCaseMail(rt, dec.Case, m, now)
		}
		var problems []string
		for _, a := range dropped {
			problems = append(problems, fmt.Sprintf("%s was not sent to %s: deskd cannot address it (an internationalised address?)", m.Kind, a))
		}
		if rerr != nil {
			problems = append(problems, fmt.Sprintf("%s could not be composed: %v", m.Kind, rerr))
		}
		if len(problems) > 0 {
			if dec.Case != nil {
				dec.Case.Events = append(dec.Case.Events, cases.Event{At: now, Type: cases.EventMailFailed, Detail: strings.Join(problems, "; ")})
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
		if rerr != nil {
			continue
		}
		if err := queueCaseMail(tx, rt, dec.Case, m, out, now); err != nil {
			return nil, fmt.Errorf("queue %s mail: %w", m.Kind, err)
		}
		queued = append(queued, string(m.Kind)+" "+out.messageID)
	}
	return queued, nil
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

// renderCaseMail turns one OutMail into RFC 5322 bytes. A relay carries
// the staff member's own words; every other kind is rendered from the
// template of its name.
func renderCaseMail(rt *runtime, c *cases.Case, m *cases.OutMail, now time.Time) (*renderedMail, error) {
	var caseID uint64
	if c != nil {
		caseID = c.ID
	}
	from := rt.supportAddress()
	if m.Staff.Email != "" && (m.Kind == cases.MailRelay || (m.Kind == cases.MailClosing && m.Text != "")) {
		// The customer sees who answered, but replies to the desk.
		from.Name = staffName(m.Staff) + " via " + rt.opts.SupportName
	}
	var subject, text, html string
	if m.Kind == cases.MailRelay {
		subject, text = m.Subject, m.Text
	} else {
		var err error
		subject, text, html, err = rt.templates.Render(string(m.Kind), m.Language, caseData(rt, c, m, now))
		if err != nil {
			return nil, err
		}
	}
	msgID := mail.NewMessageID(rt.hmacKey, caseID, rt.domain)
	raw, err := mail.Compose(&mail.Outgoing{
		From:                 from,
		To:                   m.To,
		Cc:                   m.Cc,
		ReplyTo:              []cases.Address{rt.supportAddress()},
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

// relayedAttachments are the files that go along: a staff member's
// attachments travel with their words to the customer; notifications
// only list them.
func relayedAttachments(m *cases.OutMail) []cases.Attachment {
	if m.Kind != cases.MailRelay && m.Kind != cases.MailClosing {
		return nil
	}
	var out []cases.Attachment
	for _, a := range m.Attachments {
		if a.Data != nil {
			out = append(out, a)
		}
	}
	return out
}

// staffName is how a staff member is shown to customers: their display
// name, or the local part of their address.
func staffName(a cases.Address) string {
	if n := strings.TrimSpace(a.Name); n != "" {
		return n
	}
	local, _, _ := strings.Cut(a.Email, "@")
	return local
}

// caseData fills the templates' data from the case and the mail.
func caseData(rt *runtime, c *cases.Case, m *cases.OutMail, now time.Time) templates.CaseData {
	data := templates.CaseData{
		From:         formatAddress(m.From),
		Event:        m.Event,
		Text:         m.Text,
		Attachments:  attachmentList(m.Attachments),
		Suspicious:   m.Suspicious,
		Changes:      m.Changes,
		Problems:     m.Problems,
		StaffName:    staffName(m.Staff),
		ReopenWindow: durationWords(rt.opts.Policy.ReopenWindow, m.Language),
		SupportName:  rt.opts.SupportName,
		Subject:      mail.SanitizeHeaderText(m.Subject),
	}
	if len(m.To) > 0 {
		data.ContactName = m.To[0].Name
	}
	if m.Kind == cases.MailClosing {
		// The closing notice goes above the staff member's signature:
		// clients dim (and drop when quoting) what follows "-- "
		// (RFC 3676 §4.3).
		data.Text, data.Signature = splitSignature(m.Text)
	}
	if c == nil {
		return data
	}
	data.CaseID = c.ID
	data.Token = rt.engine.Tokens().Format(c.ID)
	data.Subject = mail.SanitizeHeaderText(c.Subject)
	data.CustomerName = c.Customer
	data.Plan = c.Plan
	data.Priority = label(string(c.Priority), m.Language)
	data.ProposedPriority = label(string(c.ProposedPriority), m.Language)
	data.Kind = label(string(c.Kind), m.Language)
	data.Status = label(string(c.Status), m.Language)
	data.Requester = formatAddress(c.Requester)
	data.Unauthorised = c.Unauthorised
	data.LinkedTo = c.LinkedTo
	switch m.Kind {
	case cases.MailSLAWarning, cases.MailSLABreach, cases.MailPrioritySet:
		slaFields(rt, c, m, now, &data)
	}
	return data
}

// label names a priority, kind or status the way the Dutch agreement does
// (R7 table, R10, R14); English mails use the codes themselves.
func label(code, lang string) string {
	if lang == "en" {
		return code
	}
	switch code {
	case "high":
		return "hoog"
	case "low":
		return "laag"
	case "question":
		return "vraag"
	case "change":
		return "wijziging"
	case "pending":
		return "wacht op klant"
	case "closed":
		return "gesloten"
	}
	return code
}

// splitSignature splits text at its last signature delimiter line "-- ".
func splitSignature(text string) (body, sig string) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == "-- " || lines[i] == "--" {
			return strings.TrimRight(strings.Join(lines[:i], "\n"), "\n "), strings.Trim(strings.Join(lines[i+1:], "\n"), "\n")
		}
	}
	return text, ""
}

func formatAddress(a cases.Address) string {
	name := mail.SanitizeHeaderText(a.Name)
	switch {
	case a.Email == "":
		return name
	case name == "":
		return a.Email
	}
	return name + " <" + a.Email + ">"
}

func attachmentList(as []cases.Attachment) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		name := mail.SanitizeHeaderText(a.Filename)
		if name == "" {
			name = "(no name)"
		}
		out = append(out, fmt.Sprintf("%s (%s, %s)", name, a.ContentType, sizeWords(a.Size)))
	}
	return out
}

func sizeWords(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+1023)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// durationWords names a whole number of days (the reopen window) in the
// mail's language.
func durationWords(d time.Duration, lang string) string {
	days := int(d.Round(24*time.Hour) / (24 * time.Hour))
	if lang == "en" {
		if days == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", days)
	}
	if days == 1 {
		return "1 dag"
	}
	return fmt.Sprintf("%d dagen", days)
}

// queueCaseMail records a rendered mail as an outgoing message of its case
// (its Message-ID indexed, so a reply to it threads), puts it in the
// outbox, and counts it against the recipients' automatic-mail budget when
// it is rate-limited. A mail about no case (an error reply to staff) is
// only queued.
func queueCaseMail(tx *store.Tx, rt *runtime, c *cases.Case, m *cases.OutMail, r *renderedMail, now time.Time) error {
	rcpts := make([]string, 0, len(m.To)+len(m.Cc))
	for _, a := range append(append([]cases.Address{}, m.To...), m.Cc...) {
		rcpts = append(rcpts, strings.ToLower(a.Email))
	}
	var caseID uint64
	if c != nil {
		caseID = c.ID
		role := cases.RoleDeskd
		if m.Kind == cases.MailRelay || (m.Kind == cases.MailClosing && m.Text != "") {
			// A staff member's words, sent through deskd.
			role = cases.RoleStaff
		}
		out := &cases.Message{
			Key:       "out:" + r.messageID,
			CaseID:    c.ID,
			Direction: cases.DirectionOut,
			Role:      role,
			MessageID: r.messageID,
			From:      rt.supportAddress(),
			To:        m.To,
			Cc:        m.Cc,
			Subject:   r.subject,
			Date:      now,
			Text:      r.text,
			Size:      len(r.raw),
			Kind:      string(m.Kind),
		}
		out.Visibility = cases.VisibilityCustomer
		switch m.Kind {
		case cases.MailNotify, cases.MailSecondLine, cases.MailConfirm, cases.MailError, cases.MailSLAWarning, cases.MailSLABreach:
			out.Visibility = cases.VisibilityInternal
		}
		if err := tx.PutMessage(out, r.raw); err != nil {
			return err
		}
		c.MessageKeys = append(c.MessageKeys, out.Key)
		if m.Kind == cases.MailRelay || m.Kind == cases.MailClosing {
			// The customer's next reply answers this mail; the next
			// relay answers the latest mail of the conversation.
			c.AddToThread(r.messageID)
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
			if err := tx.RecordAutoMail(addr, now); err != nil {
				return err
			}
		}
	}
	return nil
}
