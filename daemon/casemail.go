package daemon

import (
	"fmt"
	"strings"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/templates"
)

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
		ReopenWindow: templates.FormatDays(rt.opts.Policy.ReopenWindow, m.Language),
		SupportName:  rt.opts.SupportName,
		Subject:      mail.SanitizeHeaderText(m.Subject),
		FollowURL:    rt.followURL(c, m),
		SignInURL:    m.Link,
	}
	if !m.LinkExpires.IsZero() {
		data.SignInExpires = templates.FormatWhen(m.LinkExpires, rt.clocks.Default.Calendar.Location(), m.Language)
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
	if len(m.Notices) > 0 {
		// A digest of R1 notices: a case of its own per line; the
		// first fills the fields a digest of one notice shows.
		tokens := rt.engine.Tokens()
		for _, n := range m.Notices {
			data.Notices = append(data.Notices, templates.NoticeLine{
				CaseID: n.CaseID, Token: tokens.Format(n.CaseID), Subject: mail.SanitizeHeaderText(n.Subject),
				From: formatAddress(n.Writer), CustomerName: n.Customer,
			})
		}
		first := data.Notices[0]
		data.CaseID, data.Token, data.Subject, data.From, data.CustomerName = first.CaseID, first.Token, first.Subject, first.From, first.CustomerName
		data.Unauthorised = true
	}
	if c == nil {
		return data
	}
	data.CaseID = c.ID
	data.Token = rt.engine.Tokens().Format(c.ID)
	data.Subject = mail.SanitizeHeaderText(c.Subject)
	data.CustomerName = c.Customer
	data.Plan = c.Plan
	data.Priority = templates.Label(string(c.Priority), m.Language)
	data.ProposedPriority = templates.Label(string(c.ProposedPriority), m.Language)
	data.Kind = templates.Label(string(c.Kind), m.Language)
	data.Status = templates.Label(string(c.Status), m.Language)
	data.Requester = formatAddress(c.Requester)
	data.Unauthorised = c.Unauthorised
	data.LinkedTo = c.LinkedTo
	switch m.Kind {
	case cases.MailSLAWarning, cases.MailSLABreach, cases.MailPrioritySet:
		slaFields(rt, c, m, now, &data)
	}
	return data
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
