package sla

import (
	"slices"
	"time"
)

// Event types the clock reads; the same strings as the case history's
// (cases.Event*), so a case's events convert one to one.
const (
	EventReceived         = "received"
	EventOpenedByStaff    = "opened_by_staff"
	EventStaffResponse    = "staff_response"
	EventPrioritySet      = "priority_set"
	EventPriorityProposed = "priority_proposed"
	EventKindSet          = "kind_set"
	EventPending          = "pending"
	EventResumed          = "resumed"
	EventCustomerReply    = "customer_reply"
	EventClosed           = "closed"
	EventReopened         = "reopened"
)

// Kinds of case (R10, R14) and priorities (R7), as the case record spells them.
const (
	KindIncident = "incident"
	KindQuestion = "question"
	KindChange   = "change"

	PriorityUrgent = "urgent"
	PriorityHigh   = "high"
	PriorityMedium = "medium"
	PriorityLow    = "low"
)

// Event is one entry of a case's history that matters to the clock.
type Event struct {
	At   time.Time
	Type string
}

// Case is what the clock needs of a case: its plan, its current priority
// and kind, and its history in the order it happened.
type Case struct {
	Plan string
	// Priority is the one staff set (R7), "" when they did not;
	// ProposedPriority the customer's proposal. With neither, Medium
	// drives the clock (R7, deskd's reading).
	Priority, ProposedPriority string
	// Kind is KindIncident ("" means the same), KindQuestion or KindChange.
	Kind string
	// Received is the server's receipt time of the first message (R11b);
	// a received or opened_by_staff event, when present, is used instead.
	Received time.Time
	Events   []Event
}

// EffectivePriority is the priority that drives the clock (R7): staff's,
// else the customer's proposal, else Medium.
func (c *Case) EffectivePriority() string {
	switch {
	case c.Priority != "":
		return c.Priority
	case c.ProposedPriority != "":
		return c.ProposedPriority
	}
	return PriorityMedium
}

// ClockReceived is the receipt the clock starts from (R11b): the first
// received or opened_by_staff event's time, else Received. Zero means no
// clock (a record from before receipt times were kept).
func (c *Case) ClockReceived() time.Time {
	for _, e := range c.Events {
		if e.Type == EventReceived || e.Type == EventOpenedByStaff {
			return e.At
		}
	}
	return c.Received
}

// EffectiveKind is Kind with "" read as KindIncident.
func (c *Case) EffectiveKind() string {
	if c.Kind == "" {
		return KindIncident
	}
	return c.Kind
}

// Target names.
const (
	TargetFirstResponse   = "first_response"   // R9
	TargetResolution      = "resolution"       // R7, the 90% tier
	TargetResolutionTier2 = "resolution_tier2" // R7, the 99.9% tier
	TargetAnswer          = "answer"           // R10, the 90% tier
	TargetAnswerTier2     = "answer_tier2"     // R10, the 100% tier
)

// State of a target or of a whole case.
type State string

const (
	StateNone     State = "none"     // no target applies (a change request, R14)
	StateOnTrack  State = "on_track" // running, below the warning share
	StateWarning  State = "warning"  // running, past the warning share
	StateBreached State = "breached" // the target was missed (or is being)
	StatePaused   State = "paused"   // waiting on the customer (R11c)
	StateMet      State = "met"      // done within the target
)

// rank orders states for the worst-of summary of a case.
var rank = map[State]int{StateNone: 0, StateMet: 1, StatePaused: 2, StateOnTrack: 3, StateWarning: 4, StateBreached: 5}

// Target is one clock against one limit.
type Target struct {
	Name  string
	Limit time.Duration
	// Elapsed is the working time counted until now, or until the clock
	// stopped for good.
	Elapsed time.Duration
	// Due is the instant Elapsed reaches Limit, with today's targets
	// applied from the case's start (R7, R11c); zero while the clock is
	// paused before reaching it.
	Due time.Time
	// Warn is the instant Elapsed reaches the warning share of Limit
	// (zero like Due).
	Warn time.Time
	// BreachAt is when the target counts as missed: Due, or the later
	// instant a priority or kind change made an already passed target
	// apply (R11c: "in breach from that moment"). Zero when not missed.
	BreachAt time.Time
	// Done is set when the clock stopped for good at DoneAt: the first
	// response was given, the case closed (and not reopened since).
	Done   bool
	DoneAt time.Time
	Paused bool
	State  State
}

// Missed reports whether the target was or is being missed.
func (t *Target) Missed() bool { return t != nil && t.State == StateBreached }

// Status is the clock of one case at one instant.
type Status struct {
	// Start is when the clock started: the receipt time, or the next
	// working period's start when it came after hours (R8).
	Start    time.Time
	Priority string
	Kind     string
	// FirstResponse is R9's target (incidents only; nil otherwise or for a
	// plan without one). Resolution and ResolutionTier2 are R7's tiers for
	// an incident, or R10's answer tiers for a question (nil for a change,
	// R14).
	FirstResponse   *Target
	Resolution      *Target
	ResolutionTier2 *Target
	// Paused is set while the case waits on the customer (R11c).
	Paused bool
	// ChangedAt is the last priority or kind change, from which a target
	// that the change made already passed counts as missed.
	ChangedAt time.Time
	// State is the worst of the targets' states.
	State State
}

// Targets returns the non-nil targets, first response first.
func (s *Status) Targets() []*Target {
	var out []*Target
	for _, t := range []*Target{s.FirstResponse, s.Resolution, s.ResolutionTier2} {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// Final reports whether s no longer depends on the instant it was
// evaluated at, for any later instant: every target's clock stopped for
// good (a change request has none, R14). Only a new event (a reopening,
// R11c), which rewrites the case, can change it.
func (s *Status) Final() bool {
	for _, t := range s.Targets() {
		if !t.Done {
			return false
		}
	}
	return true
}

// Clock replays cases against a calendar and targets.
type Clock struct {
	Calendar *Calendar
	Targets  Targets
	// WarnShare is the share of a target at which staff are warned (0.75
	// when 0).
	WarnShare float64
}

// segment is one stretch of [from, to) in which a clock ran; a zero to
// means it is still running. worked is its working time up to now, full
// its whole working time (worked again for a running one): measured once
// per evaluation, as every target of the clock reads them.
type segment struct {
	from, to     time.Time
	worked, full time.Duration
}

// measure fills the working times of segs as seen at now.
func measure(cal *Calendar, segs []segment, now time.Time) {
	for i := range segs {
		s := &segs[i]
		to := s.to
		if to.IsZero() || to.After(now) {
			to = now
		}
		s.worked = cal.Between(s.from, to)
		s.full = s.worked
		if !s.to.IsZero() && s.to.After(now) {
			s.full = cal.Between(s.from, s.to)
		}
	}
}

// Evaluate replays c's history and gives its clocks as they stand at now.
func (k *Clock) Evaluate(c *Case, now time.Time) Status {
	cal := k.Calendar
	received, changedAt := c.ClockReceived(), time.Time{}
	st := Status{Priority: c.EffectivePriority(), Kind: c.EffectiveKind(), State: StateNone}
	if received.IsZero() {
		// No receipt time (a record from before it was kept): no start,
		// so no clock rather than one counted from the year 1.
		return st
	}
	start := cal.NextWorkingStart(received) // R8, R11b
	st.Start = start

	// The resolution clock: runs from the start, pauses while pending,
	// resumes on the customer's reply or staff's resume, stops at closing
	// and runs on after a reopening (R11c).
	var res []segment
	running, pending, closed := true, false, false
	runFrom := start
	stop := func(at time.Time) {
		if running {
			res = append(res, segment{from: runFrom, to: maxTime(at, runFrom)})
			running = false
		}
	}
	run := func(at time.Time) {
		if !running {
			// Nothing counts before the start, whatever the history says.
			running, runFrom = true, maxTime(at, start)
		}
	}
	// The first-response clock: from the start to the first staff
	// response; a case closed before any response stops it too.
	var firstDone time.Time
	// Replayed in the order they happened: a backlog can record a mail
	// after a later one, and the clock follows the server's receipt times
	// (R11b), not the order deskd got round to them.
	events := slices.Clone(c.Events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	for _, e := range events {
		switch e.Type {
		case EventStaffResponse:
			if firstDone.IsZero() {
				firstDone = e.At
			}
		case EventPending:
			if !closed {
				stop(e.At)
				pending = true
			}
		case EventCustomerReply, EventResumed:
			if pending && !closed {
				run(e.At)
				pending = false
			}
		case EventClosed:
			stop(e.At)
			closed, pending = true, false
			if firstDone.IsZero() {
				firstDone = e.At
			}
		case EventReopened:
			if closed {
				run(e.At)
				closed = false
			}
		case EventPrioritySet, EventPriorityProposed, EventKindSet:
			changedAt = e.At
		}
	}
	if running {
		res = append(res, segment{from: runFrom})
	}
	st.ChangedAt = changedAt
	st.Paused = pending

	warn := k.WarnShare
	if warn <= 0 || warn >= 1 {
		warn = 0.75
	}
	first := []segment{{from: start, to: firstDone}}
	if !firstDone.IsZero() && firstDone.Before(start) {
		first[0].to = start
	}
	measure(cal, first, now)
	measure(cal, res, now)
	switch st.Kind {
	case KindChange:
		// R14: no target.
	case KindQuestion:
		// R10: the first substantive answer, which deskd reads as the
		// first staff response (a reply to the customer).
		st.Resolution = k.target(TargetAnswer, k.Targets.Question.Tier1, first, warn, changedAt, now, false)
		st.ResolutionTier2 = k.target(TargetAnswerTier2, k.Targets.Question.Tier2, first, warn, changedAt, now, false)
	default:
		if d, ok := k.Targets.FirstResponseFor(c.Plan); ok {
			// R9's target hangs on the plan alone: a change of priority
			// does not move it.
			st.FirstResponse = k.target(TargetFirstResponse, d, first, warn, time.Time{}, now, false)
		}
		if tier, ok := k.Targets.Resolution[st.Priority]; ok {
			st.Resolution = k.target(TargetResolution, tier.Tier1, res, warn, changedAt, now, pending)
			st.ResolutionTier2 = k.target(TargetResolutionTier2, tier.Tier2, res, warn, changedAt, now, pending)
		}
	}
	st.State = StateNone
	for _, t := range st.Targets() {
		if rank[t.State] > rank[st.State] {
			st.State = t.State
		}
	}
	return st
}

// target measures segs against limit at now. warn is the warning share;
// pending marks a clock paused by R11c.
func (k *Clock) target(name string, limit time.Duration, segs []segment, warn float64, changedAt, now time.Time, pending bool) *Target {
	if limit <= 0 {
		return nil
	}
	cal := k.Calendar
	t := &Target{Name: name, Limit: limit}
	warnLimit := time.Duration(float64(limit) * warn)
	var elapsed time.Duration
	for _, s := range segs {
		open := s.to.IsZero()
		// The instant a threshold is crossed in this segment: for the
		// running segment it may lie in the future.
		cross := func(threshold time.Duration) time.Time {
			if elapsed >= threshold || (!open && s.full < threshold-elapsed) {
				return time.Time{}
			}
			return cal.Deadline(s.from, threshold-elapsed)
		}
		if t.Due.IsZero() {
			t.Due = cross(limit)
		}
		if t.Warn.IsZero() {
			t.Warn = cross(warnLimit)
		}
		elapsed += s.worked
	}
	t.Elapsed = elapsed
	last := segs[len(segs)-1]
	t.Done = !last.to.IsZero() && !pending
	if t.Done {
		t.DoneAt = last.to
	}
	t.Paused = pending
	// Missed is judged on working time (R11a): a clock that stopped with
	// exactly its limit used is in time, whenever in the evening it
	// stopped. A running clock is missed from its deadline on.
	missed := !t.Due.IsZero() && !t.Due.After(now) && !t.Done
	if t.Done {
		missed = elapsed > limit
	}
	if missed {
		t.BreachAt = maxTime(t.Due, changedAt)
		if t.BreachAt.After(now) {
			t.BreachAt = now
		}
	}
	switch {
	case t.Done && !missed:
		t.State = StateMet
	case missed:
		t.State = StateBreached
	case pending:
		t.State = StatePaused
	case !t.Warn.IsZero() && !t.Warn.After(now):
		t.State = StateWarning
	default:
		t.State = StateOnTrack
	}
	return t
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Clocks holds the clock of every customer: the default one, and those of
// customers with their own closures or open days.
type Clocks struct {
	Default     *Clock
	PerCustomer map[string]*Clock
}

// For is customer's clock.
func (cs *Clocks) For(customer string) *Clock {
	if k, ok := cs.PerCustomer[customer]; ok {
		return k
	}
	return cs.Default
}
