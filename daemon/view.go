package daemon

import (
	"fmt"
	"time"

	"deskd/cases"
	"deskd/sla"
	"deskd/store"
)

// CaseSummary is one case in `deskd cases list --json`. Its field names are
// a stable interface documented in the README; add fields, never rename.
type CaseSummary struct {
	ID               uint64         `json:"id"`
	Subject          string         `json:"subject"`
	Status           cases.Status   `json:"status"`
	Priority         cases.Priority `json:"priority"`
	ProposedPriority cases.Priority `json:"proposed_priority"`
	Kind             cases.Kind     `json:"kind"`
	Customer         string         `json:"customer"`
	Plan             string         `json:"plan"`
	Requester        string         `json:"requester"`
	RequesterName    string         `json:"requester_name,omitempty"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	ReceivedAt       time.Time      `json:"received_at"`
	Messages         int            `json:"messages"`
	Unauthorised     bool           `json:"unauthorised"`
	Machine          bool           `json:"machine"`
	LinkedTo         uint64         `json:"linked_to,omitempty"`
	SecondLine       bool           `json:"second_line"`
	OpenedBy         string         `json:"opened_by,omitempty"`

	// The SLA clock replayed at the moment of asking (R7, R9, R10, R11c).
	// FirstResponseAt is the first staff response; the *Due fields are
	// the deadlines of R9's target and R7's two tiers (for a question,
	// R10's answer tiers); null when no target applies or the clock is
	// paused before reaching it. NextDue is the earliest deadline of a
	// target still running; Overdue says one has passed. SLAState is
	// on_track, warning, breached, paused, met or none.
	FirstResponseAt    *time.Time `json:"first_response_at"`
	FirstResponseDue   *time.Time `json:"first_response_due"`
	ResolutionDue      *time.Time `json:"resolution_due"`
	ResolutionDueTier2 *time.Time `json:"resolution_due_tier2"`
	NextDue            *time.Time `json:"next_due"`
	Overdue            bool       `json:"overdue"`
	SLAState           sla.State  `json:"sla_state"`
}

// SLAView is what the SLA fields of a summary are computed with: every
// customer's clock and the instant of asking.
type SLAView struct {
	Clocks *sla.Clocks
	Now    time.Time
}

// CaseView is the SLAView of the running daemon.
func (d *Daemon) CaseView() SLAView { return SLAView{Clocks: d.rt.Load().clocks, Now: d.now()} }

// DefaultSLAView replays the agreement's own clocks (R11 calendar in
// Europe/Amsterdam, R7/R9/R10 targets) when clocks is nil.
func DefaultSLAView(clocks *sla.Clocks, now time.Time) SLAView {
	if clocks == nil {
		clocks = defaultClocks(Options{})
	}
	return SLAView{Clocks: clocks, Now: now}
}

// MessageView is one message in `deskd cases show --json`.
type MessageView struct {
	Direction   cases.Direction    `json:"direction"`
	Role        cases.Role         `json:"role"`
	MessageID   string             `json:"message_id"`
	From        string             `json:"from"`
	FromName    string             `json:"from_name,omitempty"`
	To          []string           `json:"to"`
	Cc          []string           `json:"cc"`
	Date        time.Time          `json:"date"`
	Subject     string             `json:"subject"`
	Text        string             `json:"text"`
	Attachments []cases.Attachment `json:"attachments"`
	AutoReasons []string           `json:"auto_reasons"`
	Kind        string             `json:"kind,omitempty"`
	Internal    bool               `json:"internal"`
}

// CaseDetail is `deskd cases show --json`: the summary plus the messages,
// the parties and the event history.
type CaseDetail struct {
	CaseSummary
	Parties     []string      `json:"parties"`
	QuotedToken uint64        `json:"quoted_token,omitempty"`
	Messages    []MessageView `json:"messages"`
	Events      []cases.Event `json:"events"`
}

func summarize(c *cases.Case, v SLAView) CaseSummary {
	s, _ := summarizeUntil(c, v)
	return s
}

// forever is "no SLA threshold ahead": a summary true until then.
var forever = time.Unix(1<<62, 0)

// summarizeUntil is summarize, plus until when the summary stays true
// with no change to the case: the next instant a running target crosses
// its warning share or its deadline (sla.Clock.Evaluate's Warn and Due,
// fixed while the case does not change), which turns its state and
// Overdue. A case list line is kept that long (store/caseline.go).
func summarizeUntil(c *cases.Case, v SLAView) (CaseSummary, time.Time) {
	return summarizeEvaluated(c, evaluateWith(v.Clocks, c, v.Now))
}

// summarizeEvaluated is summarizeUntil from an evaluation of c's clock
// (at the view's now), which a case write shares with its other uses.
func summarizeEvaluated(c *cases.Case, ev evaluation) (CaseSummary, time.Time) {
	until := forever
	s := CaseSummary{
		ID: c.ID, Subject: c.Subject, Status: c.Status, Priority: c.Priority,
		ProposedPriority: c.ProposedPriority, Kind: c.Kind, Customer: c.Customer, Plan: c.Plan,
		Requester: c.Requester.Email, RequesterName: c.Requester.Name,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), ReceivedAt: c.ReceivedAt.UTC(),
		Messages: len(c.MessageKeys), Unauthorised: c.Unauthorised, Machine: c.Machine, LinkedTo: c.LinkedTo,
		SecondLine: c.SecondLine, OpenedBy: c.OpenedBy, SLAState: sla.StateNone,
	}
	for _, e := range c.Events {
		if e.Type == cases.EventStaffResponse {
			s.FirstResponseAt = instant(e.At)
			break
		}
	}
	if !ev.ok {
		return s, until
	}
	st := ev.st
	s.SLAState = st.State
	for _, t := range st.Targets() {
		for _, at := range []time.Time{t.Warn, t.Due} {
			if !t.Done && at.After(ev.at) && at.Before(until) {
				until = at
			}
		}
	}
	if t := st.FirstResponse; t != nil {
		s.FirstResponseDue = instant(t.Due)
	}
	if t := st.Resolution; t != nil {
		s.ResolutionDue = instant(t.Due)
	}
	if t := st.ResolutionTier2; t != nil {
		s.ResolutionDueTier2 = instant(t.Due)
	}
	for _, t := range st.Targets() {
		if t.Done || t.Due.IsZero() {
			continue
		}
		if !t.Due.After(ev.at) {
			s.Overdue = true
		}
		if s.NextDue == nil || t.Due.Before(*s.NextDue) {
			s.NextDue = instant(t.Due)
		}
	}
	return s, until
}

// instant is t in UTC for JSON (RFC 3339), nil when zero.
func instant(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func emails(as []cases.Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Email)
	}
	return out
}

// listStatus checks a listing's status ("" or "all" for every case).
func listStatus(status string) (cases.Status, error) {
	if status == "all" {
		status = ""
	}
	switch cases.Status(status) {
	case "", cases.StatusOpen, cases.StatusPending, cases.StatusClosed:
		return cases.Status(status), nil
	}
	return "", fmt.Errorf("unknown status %q (open, pending, closed or all)", status)
}

// ListCases returns the cases with the given status ("" or "all" for
// every case), oldest first, in memory: for small answers (the portal,
// tests); listings stream through WriteCaseLines.
func ListCases(tx *store.Tx, status string, v SLAView) ([]CaseSummary, error) {
	out := []CaseSummary{}
	var end ListEnd
	err := forEachSummary(tx, status, 0, 0, v, &end, func(s *CaseSummary) error {
		out = append(out, *s)
		return nil
	})
	return out, err
}

// ShowCase returns case id with its messages, or an error naming it.
func ShowCase(tx *store.Tx, id uint64, v SLAView) (*CaseDetail, error) {
	c, err := tx.Case(id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("case %d does not exist", id)
	}
	msgs, err := tx.CaseMessages(c)
	if err != nil {
		return nil, err
	}
	det := &CaseDetail{CaseSummary: summarize(c, v), Parties: c.Parties, QuotedToken: c.QuotedToken, Events: c.Events, Messages: []MessageView{}}
	for _, m := range msgs {
		det.Messages = append(det.Messages, MessageView{
			Direction: m.Direction, Role: m.Role, MessageID: m.MessageID,
			From: m.From.Email, FromName: m.From.Name, To: emails(m.To), Cc: emails(m.Cc),
			Date: m.Date.UTC(), Subject: m.Subject, Text: m.Text,
			Attachments: nonNil(m.Attachments), AutoReasons: nonNil(m.AutoReasons),
			Kind: m.Kind, Internal: m.Internal(),
		})
	}
	return det, nil
}

// nonNil keeps JSON arrays as [] rather than null, so consumers need no
// special case.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
