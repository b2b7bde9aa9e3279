package export

import (
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// Format marks every JSON file of an export. Fields are only ever added
// under this marker; a rename or removal would be "deskd-export/2".
const Format = "deskd-export/1"

// Index is index.json, at the top of an export.
type Index struct {
	Format     string    `json:"format"`
	ExportedAt time.Time `json:"exported_at"` // UTC
	// Generator is the program and version that wrote the export.
	Generator string    `json:"generator,omitempty"`
	Selection Selection `json:"selection"`
	// Customers are the customers whose cases are in the export, by name,
	// with their counts.
	Customers []CustomerCount `json:"customers"`
	Counts    Counts          `json:"counts"`
	// Files lists every file of the export except index.json and
	// SHA256SUMS, sorted by path, with its size and SHA-256: a complete
	// export has exactly these files with exactly these sums.
	Files []File `json:"files"`
}

// CustomerCount is one customer's share of an export.
type CustomerCount struct {
	Name     string `json:"name"`
	Cases    int    `json:"cases"`
	Messages int    `json:"messages"`
}

// Counts totals an export.
type Counts struct {
	Cases    int `json:"cases"`
	Messages int `json:"messages"`
	Inbound  int `json:"inbound"`
	Outbound int `json:"outbound"`
	// Truncated mails (messages and quarantined mails) were kept
	// header-only: they were over the size limit.
	Truncated int `json:"truncated"`
	// WithoutRaw mails have a record but no stored raw bytes.
	WithoutRaw int `json:"without_raw"`
	// Quarantined mails (only in an export of everything).
	Quarantined int `json:"quarantined"`
	// InternalOmitted counts the supplier's internal messages left out
	// (Selection.Internal includes them).
	InternalOmitted int `json:"internal_omitted"`
	// RawBytes is the size of every raw mail exported (messages and
	// quarantined mails), as stored.
	RawBytes int64 `json:"raw_bytes"`
}

// File is one file of an export.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// CaseFile is cases/<id>/case.json.
type CaseFile struct {
	Format string `json:"format"`
	// Case is the case record as deskd keeps it: id, subject, status,
	// priority, proposed_priority, kind, customer, plan, language,
	// requester, parties, unauthorised, linked_to, quoted_token,
	// second_line, opened_by, thread, machine, created_at, updated_at,
	// received_at, closed_at, message_keys and events (at, type, by,
	// message_id, detail). The same names as `deskd cases show --json`.
	Case *cases.Case `json:"case"`
	// Messages are the case's messages in the order of the case (and of
	// messages.mbox), inbound and outbound.
	Messages []Message `json:"messages"`
	SLA      SLA       `json:"sla"`
}

// Message is one message's record in case.json: deskd's metadata of the
// mail (key, case_id, direction, role, message_id, from, to, cc, subject,
// date, text, attachments, auto_reasons, uid, size, truncated, problems)
// and where its raw bytes are in the export.
type Message struct {
	*cases.Message
	// RawSize and RawSHA256 describe the raw bytes exactly as deskd
	// received or sent them (for a truncated message: the headers kept).
	RawSize   int    `json:"raw_size"`
	RawSHA256 string `json:"raw_sha256,omitempty"`
	// Mbox is the message's 1-based position in the case's
	// messages.mbox; 0 (absent) when no raw bytes are stored.
	Mbox int `json:"mbox_index,omitempty"`
	// RawFile, when set, is an exact copy of the raw bytes (path from the
	// export's top). It is written only when the mbox cannot give the
	// bytes back exactly: a mail with bare LF line ends or without a final
	// line end.
	RawFile string `json:"raw_file,omitempty"`
	// Note explains anything unusual: a header-only message, missing raw.
	Note string `json:"note,omitempty"`
}

// SLA holds the service-level figures of a case: what its record says,
// and its clock replayed at the export's time (the deadlines, the working
// time used and whether each target was met, R7, R9, R10, R11).
type SLA struct {
	// ReceivedAt is when the mail server received the case's first mail
	// (IMAP INTERNALDATE): the clock's start (R11b).
	ReceivedAt time.Time `json:"received_at,omitzero"`
	// FirstStaffResponseAt is the first staff reply that reached the
	// customer (the first "staff_response" event; R9: an automatic
	// acknowledgement does not count).
	FirstStaffResponseAt time.Time `json:"first_staff_response_at,omitzero"`
	// FirstStaffResponseWallSeconds is FirstStaffResponseAt minus
	// ReceivedAt in calendar time, not working time.
	FirstStaffResponseWallSeconds *int64 `json:"first_staff_response_wall_seconds,omitempty"`
	// ClosedAt is when the case was closed, if it is closed.
	ClosedAt time.Time `json:"closed_at,omitzero"`

	// Priority and Kind drive the clock (R7: staff's priority, else the
	// customer's proposal, else medium; "incident" when not set).
	Priority string `json:"priority,omitempty"`
	Kind     string `json:"kind,omitempty"`
	// ClockStart is when the clock started: the receipt, or the next
	// working period's start after hours (R8).
	ClockStart time.Time `json:"clock_start,omitzero"`
	// State is the case's worst target state: on_track, warning,
	// breached, paused, met or none.
	State sla.State `json:"state,omitempty"`
	// Targets are the figures of each target that applies.
	Targets []TargetFigures `json:"targets,omitempty"`
}

// TargetFigures is one SLA target of a case: first_response (R9),
// resolution and resolution_tier2 (R7), answer and answer_tier2 (R10).
type TargetFigures struct {
	Name string `json:"name"`
	// LimitSeconds and ElapsedSeconds are working time (R11a).
	LimitSeconds   int64 `json:"limit_seconds"`
	ElapsedSeconds int64 `json:"elapsed_seconds"`
	// Due is when the target falls due (absent while paused before it).
	Due time.Time `json:"due,omitzero"`
	// Done is set when the clock stopped for good at DoneAt.
	Done   bool      `json:"done"`
	DoneAt time.Time `json:"done_at,omitzero"`
	// BreachedAt is when it counted as missed (absent when not missed).
	BreachedAt time.Time `json:"breached_at,omitzero"`
	State      sla.State `json:"state"`
}

// QuarantineFile is quarantine/quarantine.json (an export of everything
// only).
type QuarantineFile struct {
	Format string            `json:"format"`
	Mails  []QuarantinedMail `json:"mails"`
}

// QuarantinedMail is one quarantined mail: deskd's record (key,
// message_id, reason, from, subject, uid, at, size, truncated) and where
// its raw bytes are, as for Message.
type QuarantinedMail struct {
	*store.QuarantineRecord
	RawSize   int    `json:"raw_size"`
	RawSHA256 string `json:"raw_sha256,omitempty"`
	Mbox      int    `json:"mbox_index,omitempty"`
	RawFile   string `json:"raw_file,omitempty"`
	Note      string `json:"note,omitempty"`
}
