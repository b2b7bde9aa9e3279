// Package cases owns deskd's domain: cases, the messages threaded into them,
// who wrote a message, and the decision engine that says what an inbound mail
// means (a new case, a reply, a machine's mail, a duplicate, quarantine) and
// which mails must go out because of it. It does no I/O: callers look up what
// the engine needs (see Context) and commit its Decision in one transaction.
package cases

import "time"

// Address is one mailbox: a display name and an address. Email is always
// lower-cased by the parser so that comparisons are plain string equality.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Attachment is one attachment. deskd stores only its metadata (the bytes
// stay in the stored raw message); Data holds the decoded bytes while a
// mail is decided, so a staff reply's attachments can be relayed.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
	Data        []byte `json:"-"`
}

// AutoSignals says whether a mail was written by a machine (RFC 3834) and why.
// The parser fills it from headers and structure alone; the engine adds the
// signals that need configuration (deskd's own address, its own Message-IDs).
type AutoSignals struct {
	// Reasons lists every signal that fired, e.g. "auto-submitted=auto-replied",
	// "precedence=bulk", "multipart/report", "null-return-path". Empty means a person.
	Reasons []string `json:"reasons,omitempty"`
	// Bounce is set for delivery status notifications (DSN) and classic
	// MAILER-DAEMON bounces.
	Bounce bool `json:"bounce,omitempty"`
	// BouncedRecipients are the final recipients a DSN reports as failed,
	// lower-cased; used to mark deskd's own recipients undeliverable.
	BouncedRecipients []string `json:"bounced_recipients,omitempty"`
	// BouncedMessageID is the Message-ID of the original mail a bounce refers
	// to, when the report carries it (text/rfc822-headers or message/rfc822).
	BouncedMessageID string `json:"bounced_message_id,omitempty"`
}

// IsAuto reports whether any machine signal fired.
func (a AutoSignals) IsAuto() bool { return len(a.Reasons) > 0 }

// Inbound is a parsed inbound mail, produced by the mail package's parser.
// Every string is valid UTF-8. Message-IDs are normalised: angle brackets and
// surrounding white space removed (see mail.NormalizeMessageID).
type Inbound struct {
	// UID is the IMAP UID the message had in the source mailbox (0 when not
	// from IMAP, e.g. in tests).
	UID uint32 `json:"uid,omitempty"`
	// DedupeKey identifies this mail across redeliveries: "mid:<message-id>"
	// or, when there is no usable Message-ID, "sha256:<hex of raw bytes>".
	DedupeKey  string   `json:"dedupe_key"`
	MessageID  string   `json:"message_id,omitempty"`
	InReplyTo  []string `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`

	From    Address   `json:"from"`
	Sender  *Address  `json:"sender,omitempty"`
	ReplyTo []Address `json:"reply_to,omitempty"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	// ReturnPath is the envelope sender as the receiving server recorded it;
	// HasReturnPath distinguishes a missing header from an empty one ("<>",
	// which marks a bounce, RFC 3834 §3.1.1).
	ReturnPath    string `json:"return_path,omitempty"`
	HasReturnPath bool   `json:"has_return_path,omitempty"`

	Subject string `json:"subject"`
	// Date is the sender's Date: header (may be zero or forged, never used
	// for the SLA clock). ReceivedAt is the server's INTERNALDATE (R11b).
	Date       time.Time `json:"date,omitempty"`
	ReceivedAt time.Time `json:"received_at"`

	// Text is the readable body: the text/plain part, or text derived from
	// the HTML part when there is no plain one.
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments,omitempty"`

	Auto AutoSignals `json:"auto"`
	// LoopHeader is the value of deskd's own X-Deskd-Loop header, if any.
	LoopHeader string `json:"loop_header,omitempty"`
	// AuthResults holds the Authentication-Results header values, topmost
	// (most recently added) first (RFC 8601 §5).
	AuthResults []string `json:"auth_results,omitempty"`

	// Raw is the message exactly as fetched. Size is len(Raw) before any
	// truncation the caller applied.
	Raw  []byte `json:"-"`
	Size int    `json:"size"`
	// Problems lists non-fatal oddities met while parsing (a charset that
	// could not be decoded, a broken part); each also went to the log.
	Problems []string `json:"problems,omitempty"`
}

// Status of a case.
type Status string

const (
	StatusOpen    Status = "open"
	StatusPending Status = "pending" // waiting on the customer (R11c)
	StatusClosed  Status = "closed"
)

// Priority of a case (R7). The zero value means "not set".
type Priority string

const (
	PriorityUrgent Priority = "urgent"
	PriorityHigh   Priority = "high"
	PriorityMedium Priority = "medium"
	PriorityLow    Priority = "low"
)

// Kind of a case (R10, R14).
type Kind string

const (
	KindIncident Kind = "incident"
	KindQuestion Kind = "question"
	KindChange   Kind = "change"
)

// Role says who wrote a message.
type Role string

const (
	RoleCustomer Role = "customer" // a named contact of a configured customer
	RoleContact  Role = "contact"  // someone else at a customer's domain (R1)
	RoleStaff    Role = "staff"
	RoleStranger Role = "stranger" // unknown sender: the default customer
	RoleMachine  Role = "machine"  // auto-replies, bounces, lists (RFC 3834)
	RoleDeskd    Role = "deskd"    // deskd itself (its own outgoing mail)
)

// Direction of a stored message.
type Direction string

const (
	DirectionIn  Direction = "in"
	DirectionOut Direction = "out"
)

// Event is one change in a case's life, kept so the history (and the SLA
// clock, R11c) can be replayed.
type Event struct {
	At        time.Time `json:"at"`
	Type      string    `json:"type"` // see the Event* constants
	By        string    `json:"by,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Event types.
const (
	EventReceived      = "received"       // a case was opened by a mail
	EventCustomerReply = "customer_reply" // a person of the customer wrote again
	EventAutoMail      = "auto_mail"      // a machine wrote; changes nothing (RFC 3834)
	EventReopened      = "reopened"
	EventClosed        = "closed"
	EventPending       = "pending"
	EventStaffResponse = "staff_response"
	EventPrioritySet   = "priority_set"
	EventKindSet       = "kind_set"
	EventAckQueued     = "ack_queued"
	EventAckFailed     = "ack_failed"  // the acknowledgement could not be composed
	EventMailFailed    = "mail_failed" // another mail, or some of its recipients, could not be composed
	EventLinked        = "linked"      // opened because a closed case was too old to reopen

	EventResumed          = "resumed"           // staff set a pending case open again (R11c)
	EventPriorityProposed = "priority_proposed" // a customer's keyword: a proposal only (R7)
	EventSecondLine       = "second_line"       // handed to second line (R5)
	EventNote             = "note"              // an internal note from staff, never relayed
	EventStaffCommand     = "staff_command"     // a staff mail of keywords alone
	EventOpenedByStaff    = "opened_by_staff"   // staff opened the case for a customer (R6)
	EventUnauthorised     = "unauthorised"      // the customer's named contacts were told (R1)
	EventSuspicious       = "suspicious"        // claimed a staff address, failed authentication
	EventStaffNotified    = "staff_notified"
	EventRelayed          = "relayed"      // a staff reply went to the customer
	EventClosingQueued    = "closing_sent" // the closing mail went to the customer
)

// Case is one support case.
type Case struct {
	ID               uint64   `json:"id"`
	Subject          string   `json:"subject"`
	Status           Status   `json:"status"`
	Priority         Priority `json:"priority,omitempty"`
	ProposedPriority Priority `json:"proposed_priority,omitempty"`
	Kind             Kind     `json:"kind,omitempty"`
	Customer         string   `json:"customer"`
	Plan             string   `json:"plan,omitempty"`
	Language         string   `json:"language,omitempty"`
	Requester        Address  `json:"requester"`
	// Parties are the lower-cased addresses seen in From/To/Cc of the case's
	// messages, deskd's own addresses excluded. Only parties (and contacts of
	// the same customer, and staff) may thread into the case.
	Parties []string `json:"parties"`
	// Unauthorised marks a case opened by someone who is not a named contact
	// of the customer (R1).
	Unauthorised bool `json:"unauthorised,omitempty"`
	// LinkedTo is the earlier closed case this one continues, when the reply
	// came after the reopen window.
	LinkedTo uint64 `json:"linked_to,omitempty"`
	// QuotedToken is a case number a stranger quoted in the subject; recorded,
	// never trusted.
	QuotedToken uint64 `json:"quoted_token,omitempty"`
	// SecondLine is set once staff handed the case to second line (R5).
	SecondLine bool `json:"second_line,omitempty"`
	// OpenedBy is the staff member who opened the case on the customer's
	// behalf (R6); "" when the customer wrote in.
	OpenedBy string `json:"opened_by,omitempty"`
	// Thread holds the Message-IDs of the customer conversation, oldest
	// first (at most maxThread: the root and the latest ones): what a
	// relayed staff reply puts in References, its last entry being what
	// the relay answers (RFC 5322 §3.6.4).
	Thread []string `json:"thread,omitempty"`
	// Machine marks a case opened by a machine's mail (a bounce or an
	// auto-reply that referred to nothing deskd knows). It gets no
	// acknowledgement and counts in no SLA figure.
	Machine bool `json:"machine,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ReceivedAt is the server's receipt time of the first message (R11b).
	ReceivedAt time.Time `json:"received_at"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`

	// MessageKeys are the dedupe keys of the case's messages, in order.
	MessageKeys []string `json:"message_keys"`
	Events      []Event  `json:"events"`
}

// Message is one stored mail of a case, inbound or outbound.
type Message struct {
	Key         string       `json:"key"` // dedupe key (inbound) or "out:<message-id>"
	CaseID      uint64       `json:"case_id"`
	Direction   Direction    `json:"direction"`
	Role        Role         `json:"role"`
	MessageID   string       `json:"message_id,omitempty"`
	From        Address      `json:"from"`
	To          []Address    `json:"to,omitempty"`
	Cc          []Address    `json:"cc,omitempty"`
	Subject     string       `json:"subject"`
	Date        time.Time    `json:"date"` // ReceivedAt for inbound, queue time for outbound
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments,omitempty"`
	AutoReasons []string     `json:"auto_reasons,omitempty"`
	UID         uint32       `json:"uid,omitempty"`
	Size        int          `json:"size"`
	// Truncated is set when the raw message was larger than
	// max_message_bytes and only its headers were kept.
	Truncated bool     `json:"truncated,omitempty"`
	Problems  []string `json:"problems,omitempty"`
	// Kind is what an outgoing mail was: "ack" or a MailKind.
	Kind string `json:"kind,omitempty"`
	// Visibility says whether the customer saw (or sent) this mail:
	// VisibilityCustomer, or VisibilityInternal for the supplier's own
	// traffic (staff notifications, confirmations, notes, a staff mail
	// the customer only got relayed). "" in records written before it
	// existed; see Internal.
	Visibility string `json:"visibility,omitempty"`
}

// Visibility values.
const (
	VisibilityCustomer = "customer"
	VisibilityInternal = "internal"
)

// Internal reports whether m is the supplier's own traffic, which a
// customer's export leaves out unless asked (R18 is about the customer's
// data; staff notes are ours). Records without a Visibility are judged
// by role: a staff mail to support@ was internal unless it says otherwise.
func (m *Message) Internal() bool {
	switch m.Visibility {
	case VisibilityInternal:
		return true
	case VisibilityCustomer:
		return false
	}
	return m.Role == RoleStaff && m.Direction == DirectionIn
}
