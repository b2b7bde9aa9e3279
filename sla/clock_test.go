package sla

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func testClock(t testing.TB) *Clock {
	return &Clock{Calendar: DefaultCalendar(amsterdam(t)), Targets: Default(), WarnShare: 0.75}
}

func ev(t testing.TB, typ, when string) Event { return Event{At: at(t, when), Type: typ} }

func sameInstant(t *testing.T, what string, got time.Time, want string) {
	t.Helper()
	if want == "" {
		if !got.IsZero() {
			t.Errorf("%s = %v, want none", what, got)
		}
		return
	}
	if w := at(t, want); !got.Equal(w) {
		t.Errorf("%s = %s, want %s", what, got.In(w.Location()).Format("2006-01-02 15:04:05"), want)
	}
}

// R8, R9, R7: a Business incident at 16:59 starts at once; one at 17:00:00
// starts the next morning.
func TestClockStart(t *testing.T) {
	k := testClock(t)
	for _, tt := range []struct {
		received, start, firstDue, resDue, res2Due string
	}{
		{"2026-11-30 16:59", "2026-11-30 16:59", "2026-12-01 15:59", "2026-12-07 16:59", "2026-12-14 16:59"},
		// A deadline at a period's end falls at the next period's start
		// (R11a: "the same clock time on the next working day").
		{"2026-11-30 17:00:00", "2026-12-01 08:00", "2026-12-01 16:00", "2026-12-08 08:00", "2026-12-15 08:00"},
		{"2026-11-28 11:00", "2026-11-30 08:00", "2026-11-30 16:00", "2026-12-07 08:00", "2026-12-14 08:00"},
	} {
		c := &Case{Plan: PlanBusiness, Events: []Event{ev(t, EventReceived, tt.received)}}
		st := k.Evaluate(c, at(t, tt.received))
		sameInstant(t, "start", st.Start, tt.start)
		sameInstant(t, "first response due", st.FirstResponse.Due, tt.firstDue)
		sameInstant(t, "tier-1 due (medium, R7 default)", st.Resolution.Due, tt.resDue)
		sameInstant(t, "tier-2 due", st.ResolutionTier2.Due, tt.res2Due)
		if st.Priority != PriorityMedium || st.State != StateOnTrack {
			t.Errorf("%s: priority %s state %s", tt.received, st.Priority, st.State)
		}
	}
}

// R11c: pending pauses the resolution clock, the customer's reply resumes
// it; the first-response clock is not paused.
func TestClockPendingPauses(t *testing.T) {
	k := testClock(t)
	c := &Case{Plan: PlanPremium, Priority: PriorityHigh, Events: []Event{
		ev(t, EventReceived, "2026-11-30 10:00"),
		ev(t, EventStaffResponse, "2026-11-30 11:00"),
		ev(t, EventPending, "2026-11-30 12:00"),
	}}
	st := k.Evaluate(c, at(t, "2026-12-02 10:00"))
	if !st.Paused || st.Resolution.State != StatePaused || st.Resolution.Elapsed != 2*time.Hour {
		t.Fatalf("paused: %+v", st.Resolution)
	}
	sameInstant(t, "due while paused", st.Resolution.Due, "")
	if st.FirstResponse.State != StateMet || st.FirstResponse.Elapsed != time.Hour {
		t.Errorf("first response: %+v", st.FirstResponse)
	}
	c.Events = append(c.Events, ev(t, EventCustomerReply, "2026-12-02 10:00"))
	st = k.Evaluate(c, at(t, "2026-12-02 11:00"))
	if st.Paused || st.Resolution.Elapsed != 3*time.Hour {
		t.Fatalf("resumed: %+v", st.Resolution)
	}
	// High: 9 working hours, 2 used before the pause: 7 more from Wed 10:00.
	sameInstant(t, "tier-1 due after resume", st.Resolution.Due, "2026-12-03 08:00")
	sameInstant(t, "warning (75% = 6h45m)", st.Resolution.Warn, "2026-12-02 14:45")
}

// R11c: a priority change keeps the elapsed time; when the new target has
// already passed, the case is in breach from the change on.
func TestClockPriorityChange(t *testing.T) {
	k := testClock(t)
	c := &Case{Plan: PlanBasic, Priority: PriorityUrgent, Events: []Event{
		ev(t, EventReceived, "2026-11-30 08:00"),
		ev(t, EventPrioritySet, "2026-12-01 12:00"), // 13 working hours in
	}}
	st := k.Evaluate(c, at(t, "2026-12-01 13:00"))
	if st.Resolution.State != StateBreached || st.Resolution.Elapsed != 14*time.Hour {
		t.Fatalf("urgent after 13h: %+v", st.Resolution)
	}
	sameInstant(t, "due recomputed from the start", st.Resolution.Due, "2026-11-30 12:00")
	sameInstant(t, "breach from the change", st.Resolution.BreachAt, "2026-12-01 12:00")

	// Lowered after its new target passed: urgent (6h tier 2 gone) to
	// high (9h gone too) at 10 working hours.
	c = &Case{Plan: PlanBasic, Priority: PriorityHigh, Events: []Event{
		ev(t, EventReceived, "2026-11-30 08:00"),
		ev(t, EventPrioritySet, "2026-11-30 09:00"),
		ev(t, EventPrioritySet, "2026-12-01 10:00"),
	}}
	st = k.Evaluate(c, at(t, "2026-12-01 10:30"))
	if st.Resolution.State != StateBreached {
		t.Errorf("lowered to high after 10h: %+v", st.Resolution)
	}
	sameInstant(t, "high's tier 1 from the start", st.Resolution.Due, "2026-12-01 08:00")
	sameInstant(t, "breached from the lowering", st.Resolution.BreachAt, "2026-12-01 10:00")
	if st.ResolutionTier2.State != StateOnTrack && st.ResolutionTier2.State != StateWarning {
		t.Errorf("tier 2 (18h) at 10.5h: %s", st.ResolutionTier2.State)
	}
	// Lowered to low: 135h not reached, on track again.
	c.Priority = PriorityLow
	st = k.Evaluate(c, at(t, "2026-12-01 10:30"))
	if st.Resolution.State != StateOnTrack {
		t.Errorf("lowered to low: %s", st.Resolution.State)
	}
}

// R11c: closing stops the clock, a reopening resumes the same clock.
func TestClockCloseReopen(t *testing.T) {
	k := testClock(t)
	c := &Case{Plan: PlanBusiness, Priority: PriorityHigh, Events: []Event{
		ev(t, EventReceived, "2026-11-30 08:00"),
		ev(t, EventStaffResponse, "2026-11-30 09:00"),
		ev(t, EventClosed, "2026-11-30 12:00"),
	}}
	st := k.Evaluate(c, at(t, "2026-12-03 12:00"))
	if !st.Resolution.Done || st.Resolution.State != StateMet || st.Resolution.Elapsed != 4*time.Hour || st.State != StateMet {
		t.Fatalf("closed: %+v state %s", st.Resolution, st.State)
	}
	c.Events = append(c.Events, ev(t, EventReopened, "2026-12-03 12:00"))
	st = k.Evaluate(c, at(t, "2026-12-03 14:00"))
	if st.Resolution.Done || st.Resolution.Elapsed != 6*time.Hour {
		t.Fatalf("reopened: %+v", st.Resolution)
	}
	sameInstant(t, "due after reopening", st.Resolution.Due, "2026-12-04 08:00")
	c.Events = append(c.Events, ev(t, EventClosed, "2026-12-04 09:00"))
	st = k.Evaluate(c, at(t, "2026-12-05 09:00"))
	if st.Resolution.State != StateBreached || !st.Resolution.Done || st.ResolutionTier2.State != StateMet {
		t.Errorf("closed late: tier1 %+v tier2 %+v", st.Resolution, st.ResolutionTier2)
	}
}

// R10: a question's targets are its answer, the first staff response;
// R14: a change request has none; R9 applies to incidents.
func TestClockKinds(t *testing.T) {
	k := testClock(t)
	q := &Case{Plan: PlanPremium, Kind: KindQuestion, Events: []Event{
		ev(t, EventReceived, "2026-11-30 10:00"),
		ev(t, EventKindSet, "2026-11-30 10:30"),
	}}
	st := k.Evaluate(q, at(t, "2026-12-03 12:00"))
	if st.FirstResponse != nil || st.Resolution.Name != TargetAnswer || st.ResolutionTier2.Name != TargetAnswerTier2 {
		t.Fatalf("question targets: %+v", st)
	}
	sameInstant(t, "answer due (3 working days)", st.Resolution.Due, "2026-12-03 10:00")
	sameInstant(t, "answer tier 2 (5 working days)", st.ResolutionTier2.Due, "2026-12-07 10:00")
	if st.Resolution.State != StateBreached || st.ResolutionTier2.State != StateOnTrack {
		t.Errorf("question at 3d2h: %s / %s", st.Resolution.State, st.ResolutionTier2.State)
	}
	q.Events = append(q.Events, ev(t, EventStaffResponse, "2026-12-03 12:00"))
	if st = k.Evaluate(q, at(t, "2026-12-04 12:00")); st.ResolutionTier2.State != StateMet || st.Resolution.State != StateBreached {
		t.Errorf("answered late for tier 1: %s / %s", st.Resolution.State, st.ResolutionTier2.State)
	}
	ch := &Case{Plan: PlanPremium, Kind: KindChange, Events: []Event{ev(t, EventReceived, "2026-11-30 10:00")}}
	if st := k.Evaluate(ch, at(t, "2027-11-30 10:00")); st.State != StateNone || len(st.Targets()) != 0 {
		t.Errorf("change request has targets: %+v", st)
	}
}

// R11a: a clock stopped with exactly its limit used is in time, even
// when it stopped in the evening after its last working hour; a case
// without a receipt time has no clock at all.
func TestClockLimitExactlyUsed(t *testing.T) {
	k := testClock(t)
	c := &Case{Plan: PlanBusiness, Priority: PriorityHigh, Events: []Event{
		ev(t, EventReceived, "2026-12-01 08:00"),
		ev(t, EventStaffResponse, "2026-12-01 09:00"),
		ev(t, EventClosed, "2026-12-02 02:48"),
	}}
	st := k.Evaluate(c, at(t, "2026-12-03 12:00"))
	if st.Resolution.Elapsed != WorkingDay || st.Resolution.State != StateMet {
		t.Errorf("closed at night with 9h used: %+v", st.Resolution)
	}
	sameInstant(t, "deadline", st.Resolution.Due, "2026-12-02 08:00")
	c.Events[2] = ev(t, EventClosed, "2026-12-02 08:01")
	if st = k.Evaluate(c, at(t, "2026-12-03 12:00")); st.Resolution.State != StateBreached {
		t.Errorf("closed a minute late: %+v", st.Resolution)
	}
	if st := k.Evaluate(&Case{Plan: PlanBasic}, at(t, "2026-12-03 12:00")); st.State != StateNone || len(st.Targets()) != 0 {
		t.Errorf("no receipt time: %+v", st)
	}
}

// Warning at the configured share, breach at the target.
func TestClockStates(t *testing.T) {
	k := testClock(t)
	c := &Case{Plan: PlanPremium, Priority: PriorityUrgent, Events: []Event{ev(t, EventReceived, "2026-11-30 09:00")}}
	for now, want := range map[string]State{
		"2026-11-30 11:59": StateOnTrack,
		"2026-11-30 12:00": StateWarning, // 75% of 4h
		"2026-11-30 13:00": StateBreached,
	} {
		if st := k.Evaluate(c, at(t, now)); st.State != want {
			t.Errorf("at %s: %s, want %s", now, st.State, want)
		}
	}
}

// R11d: warnings and breaches during working hours, Urgent at once;
// exactly once per key.
func TestAlerts(t *testing.T) {
	k := testClock(t)
	none := func(string) bool { return false }
	high := &Case{Plan: PlanPremium, Priority: PriorityHigh, Events: []Event{ev(t, EventReceived, "2026-11-30 08:00")}}
	st := k.Evaluate(high, at(t, "2026-11-30 08:00"))
	alerts := k.Alerts(&st, none)
	want := []struct{ key, at string }{
		{"first_response/warning/4h0m0s", "2026-11-30 11:00"},
		{"first_response/breach/4h0m0s", "2026-11-30 12:00"},
		{"resolution/warning/9h0m0s", "2026-11-30 14:45"},
		{"resolution/breach/9h0m0s", "2026-12-01 08:00"}, // due 17:00: after hours (R11d)
		{"resolution_tier2/breach/18h0m0s", "2026-12-02 08:00"},
	}
	if len(alerts) != len(want) {
		t.Fatalf("alerts: %+v", alerts)
	}
	for i, w := range want {
		if alerts[i].Key() != w.key {
			t.Errorf("alert %d: %s, want %s", i, alerts[i].Key(), w.key)
		}
		sameInstant(t, w.key, alerts[i].At, w.at)
	}
	sent := map[string]bool{want[0].key: true, want[1].key: true}
	if got := k.Alerts(&st, func(key string) bool { return sent[key] }); len(got) != 3 {
		t.Errorf("sent keys came back: %+v", got)
	}
	// Urgent made urgent on a Saturday with its target long gone: the
	// breach goes at once, at any hour (R11d); its warning is dropped.
	urgent := &Case{Plan: PlanBasic, Priority: PriorityUrgent, Events: []Event{
		ev(t, EventReceived, "2026-11-30 08:00"),
		ev(t, EventPrioritySet, "2026-12-05 10:00"),
	}}
	st = k.Evaluate(urgent, at(t, "2026-12-05 10:00"))
	byKey := map[string]Alert{}
	for _, a := range k.Alerts(&st, none) {
		byKey[a.Key()] = a
	}
	sameInstant(t, "urgent breach", byKey["resolution/breach/4h0m0s"].At, "2026-12-05 10:00")
	sameInstant(t, "urgent tier 2", byKey["resolution_tier2/breach/6h0m0s"].At, "2026-12-05 10:00")
	if _, ok := byKey["resolution/warning/4h0m0s"]; ok {
		t.Error("a warning together with its breach")
	}
	// R9 hangs on the plan: its warning was due when Thursday's work
	// ended (36 of 48 working hours), which is Friday 08:00.
	sameInstant(t, "first-response warning", byKey["first_response/warning/48h0m0s"].At, "2026-12-04 08:00")
	// A paused clock calls for nothing.
	high.Events = append(high.Events, ev(t, EventStaffResponse, "2026-11-30 09:00"), ev(t, EventPending, "2026-11-30 09:00"))
	st = k.Evaluate(high, at(t, "2026-11-30 10:00"))
	if got := k.Alerts(&st, none); len(got) != 0 {
		t.Errorf("paused case alerts: %+v", got)
	}
}

// Without pauses, the elapsed time is the working time since the start,
// and the due instant is exactly the limit away from it.
func TestClockProperties(t *testing.T) {
	k := testClock(t)
	rapid.Check(t, func(rt *rapid.T) {
		received := genInstant(rt, "received")
		now := received.Add(time.Duration(rapid.Int64Range(0, int64(2000*time.Hour)).Draw(rt, "later")))
		prio := rapid.SampledFrom([]string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow}).Draw(rt, "priority")
		c := &Case{Plan: PlanBusiness, Priority: prio, Received: received}
		st := k.Evaluate(c, now)
		if got, want := st.Resolution.Elapsed, k.Calendar.Between(st.Start, now); got != want {
			rt.Fatalf("elapsed %v, Between %v", got, want)
		}
		if got := k.Calendar.Between(st.Start, st.Resolution.Due); got != st.Resolution.Limit {
			rt.Fatalf("due is %v of working time from the start, limit %v", got, st.Resolution.Limit)
		}
		breached := !st.Resolution.Due.After(now)
		if breached != (st.Resolution.State == StateBreached) {
			rt.Fatalf("due %v now %v state %s", st.Resolution.Due, now, st.Resolution.State)
		}
	})
}

// R11d: an alert that is overdue at night (the daemon was down) waits for
// the next working period, unless the case is Urgent.
func TestSendAt(t *testing.T) {
	k := testClock(t)
	for prio, want := range map[string]string{PriorityHigh: "2026-12-01 08:00", PriorityUrgent: "2026-11-30 14:45"} {
		c := &Case{Plan: PlanPremium, Priority: prio, Events: []Event{ev(t, EventReceived, "2026-11-30 08:00")}}
		if prio == PriorityUrgent {
			c.Events[0] = ev(t, EventReceived, "2026-11-30 11:45") // warning at 75% of 4h: 14:45
		}
		night := at(t, "2026-11-30 20:00")
		st := k.Evaluate(c, night)
		var warn Alert
		for _, a := range k.Alerts(&st, func(string) bool { return false }) {
			if a.Key() == "resolution/warning/"+st.Resolution.Limit.String() {
				warn = a
			}
		}
		if warn.At.IsZero() {
			t.Fatalf("%s: no resolution warning", prio)
		}
		sameInstant(t, prio+" warning sent at 20:00", k.SendAt(warn, &st, night), want)
		if got := k.SendAt(warn, &st, at(t, "2026-11-30 14:50")); !got.Equal(warn.At) {
			t.Errorf("%s: during working hours SendAt = %v, want its At %v", prio, got, warn.At)
		}
	}
}
