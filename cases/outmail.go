package cases

import (
	"slices"
	"strings"
	"time"

	"deskd/sla"
)

// The one road of outgoing mail, as the engine sees it: every mail deskd
// sends, the acknowledgement included, is an OutMail; the daemon renders
// and queues each the same way, and the case records what was sent
// (RecordSent) or what could not be (RecordNotSent). Mails from outside a
// decision (the SLA escalation loop, a digest of R1 notices, the customer
// portal) take the same road.

// MailKind names a mail deskd sends. The daemon renders each kind from the
// template of the same name, except a relay, whose body is the staff
// member's own text. Each kind that is RateLimited has a per-address
// budget of its own (Engine.AutoBlocked).
type MailKind string

const (
	MailAck          MailKind = "ack"          // the customer: a new case's acknowledgement (R9)
	MailNotify       MailKind = "notify"       // staff.notify: a new case or a customer's reply
	MailSecondLine   MailKind = "second_line"  // staff.second_line: a case handed over (R5)
	MailRelay        MailKind = "relay"        // a staff reply, relayed to the customer
	MailClosing      MailKind = "closing"      // the customer: the case is closed
	MailConfirm      MailKind = "confirm"      // the staff member: what their keywords changed
	MailError        MailKind = "error"        // the staff member: keywords that could not apply
	MailUnauthorised MailKind = "unauthorised" // the customer's named contacts: a digest of R1 notices
	MailSignIn       MailKind = "signin"       // a customer: the portal's single-use sign-in link
)

// OutMail is one mail deskd sends. The daemon composes it from the
// support address, renders the template of its Kind (a relay carries its
// own text) and queues it in the transaction that decided it.
type OutMail struct {
	Kind MailKind
	To   []Address
	Cc   []Address
	// Subject is the subject of a relay, and of an acknowledgement
	// ("[<prefix> #<n>] <original subject>"); other templated mails take
	// theirs from the template.
	Subject string
	// InReplyTo and References thread the mail (RFC 5322 §3.6.4).
	InReplyTo  string
	References []string
	Language   string
	// Staff is the staff member a relay or closing mail speaks for: it is
	// sent as "<name> via <support name>".
	Staff Address
	// From is who wrote the mail this one is about (notifications).
	From Address
	// Text is the new text of the mail this one is about, quoted history
	// cut: the customer's words for staff, the staff member's for the
	// customer.
	Text string
	// Attachments are those of the mail this one is about; a relay and a
	// closing mail that carries the staff member's words take them along
	// from AttachmentsOf (the dedupe key of that inbound mail).
	Attachments   []Attachment
	AttachmentsOf string
	// Event is what a notification reports: "new", "reply", "reopened",
	// "linked", "on_behalf".
	Event string
	// Changes and Problems fill confirmations and error replies.
	Changes  []string
	Problems []string
	// Suspicious is why the mail this one is about claimed a staff address
	// and was not believed.
	Suspicious string
	// SLAAlert is the alert a MailSLAWarning or MailSLABreach is about.
	SLAAlert *sla.Alert
	// Notices are the lines of a digest of R1 notices (MailUnauthorised).
	Notices []Notice
	// Automatic is the Auto-Submitted value (RFC 3834 §5): "auto-replied"
	// for answers to a mail, "auto-generated" for notices, "" for a relay,
	// which carries a person's words.
	Automatic string
	// RateLimited mails count against each recipient's budget for their
	// Kind (the engine checked it). Mails to staff never do: a
	// notification must never be rate-limited into silence.
	RateLimited bool
	// NoCase marks an error reply about a mail that belongs to no case.
	NoCase bool
	// Link and LinkExpires are the customer portal's sign-in link and
	// until when it works (MailSignIn).
	Link        string
	LinkExpires time.Time
}

// Sent is what the daemon made of an OutMail: the rendered mail's
// Message-ID, sender, subject and text as stored, its size, and when it
// was queued.
type Sent struct {
	MessageID string
	From      Address
	Subject   string
	Text      string
	Size      int
	At        time.Time
}

// speaksForStaff reports whether m carries a staff member's own words.
func (m *OutMail) speaksForStaff() bool {
	return m.Kind == MailRelay || (m.Kind == MailClosing && m.Text != "")
}

// RecordSent records m, queued as s, as an outgoing message of c and
// returns that message for the store: its key joins c's messages, and a
// mail of the customer conversation (acknowledgement, relay, closing
// mail) joins c's thread, so that the customer's reply to it threads and
// the next relay answers it.
func (c *Case) RecordSent(m *OutMail, s Sent) *Message {
	role := RoleDeskd
	if m.speaksForStaff() {
		role = RoleStaff // a staff member's words, sent through deskd
	}
	out := &Message{
		Key:        "out:" + s.MessageID,
		CaseID:     c.ID,
		Direction:  DirectionOut,
		Role:       role,
		MessageID:  s.MessageID,
		From:       s.From,
		To:         m.To,
		Cc:         m.Cc,
		Subject:    s.Subject,
		Date:       s.At,
		Text:       s.Text,
		Size:       s.Size,
		Kind:       string(m.Kind),
		Visibility: VisibilityCustomer,
	}
	switch m.Kind {
	case MailNotify, MailSecondLine, MailConfirm, MailError, MailSLAWarning, MailSLABreach:
		out.Visibility = VisibilityInternal
	}
	c.MessageKeys = append(c.MessageKeys, out.Key)
	switch m.Kind {
	case MailAck, MailRelay, MailClosing:
		c.AddToThread(s.MessageID)
	}
	return out
}

// RecordNotSent records on c that m, or some of its recipients, could not
// be sent, and why: an acknowledgement that cannot be composed is an
// EventAckFailed, anything else an EventMailFailed.
func (c *Case) RecordNotSent(m *OutMail, problems []string, at time.Time) {
	typ := EventMailFailed
	if m.Kind == MailAck {
		typ = EventAckFailed
	}
	c.Events = append(c.Events, Event{At: at, Type: typ, Detail: strings.Join(problems, "; ")})
}

// Notice is one line of a named contact's digest of R1 notices: someone of
// their organisation who is not a named contact wrote in, opening or
// joining a case.
type Notice struct {
	CaseID   uint64    `json:"case_id"`
	Subject  string    `json:"subject"`
	Customer string    `json:"customer"`
	Language string    `json:"language,omitempty"`
	Writer   Address   `json:"writer"`
	At       time.Time `json:"at"`
	// Thread is the case's conversation when the notice was made: a
	// digest of one notice answers in it.
	Thread []string `json:"thread,omitempty"`
}

// ContactNotice is a Notice for one named contact.
type ContactNotice struct {
	To     Address
	Notice Notice
}

// DigestMail is the digest of R1 notices to one named contact: every
// notice since the last digest, in the language of the first (a
// customer's cases share its language). A digest of one notice threads
// into that case's conversation.
func DigestMail(to Address, notices []Notice) *OutMail {
	m := &OutMail{
		Kind: MailUnauthorised, To: []Address{to}, Notices: slices.Clone(notices),
		Automatic: "auto-generated", RateLimited: true,
	}
	if len(notices) > 0 {
		m.Language = notices[0].Language
		m.From = notices[0].Writer
	}
	if len(notices) == 1 {
		m.References = slices.Clone(notices[0].Thread)
	}
	return m
}
