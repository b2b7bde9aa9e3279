package sla

import (
	"testing"
	"time"
)

// FuzzEvaluate replays arbitrary histories (any order of events, any
// gaps, events before the receipt) and checks what must always hold: no
// panic, no negative elapsed time and never more than the working time
// since the start, a met target is done, and alerts come sorted and never
// for a paused clock (R11c).
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{0, 10, 5, 30, 6, 200, 7, 40, 9, 10}, uint8(1), uint16(3000))
	f.Add([]byte{3, 0, 3, 0, 8, 255, 10, 1}, uint8(0), uint16(60))
	f.Add([]byte{}, uint8(2), uint16(0))
	types := []string{EventReceived, EventOpenedByStaff, EventStaffResponse, EventPrioritySet,
		EventPriorityProposed, EventKindSet, EventPending, EventResumed, EventCustomerReply,
		EventClosed, EventReopened}
	prios := []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow, ""}
	kinds := []string{"", KindIncident, KindQuestion, KindChange}
	plans := []string{PlanPremium, PlanBusiness, PlanBasic, "Gold"}
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		f.Fatal(err)
	}
	k := &Clock{Calendar: DefaultCalendar(loc), Targets: Default(), WarnShare: 0.75}
	f.Fuzz(func(t *testing.T, hist []byte, pick uint8, nowMinutes uint16) {
		received := time.Date(2026, 3, 27, 15, 0, 0, 0, loc) // the Friday before DST starts
		c := &Case{
			Plan: plans[int(pick)%len(plans)], Priority: prios[int(pick/4)%len(prios)],
			Kind: kinds[int(pick/20)%len(kinds)], Received: received,
		}
		at := received
		for i := 0; i+1 < len(hist) && i < 200; i += 2 {
			// Mostly forward in time, sometimes back (a clock skew).
			step := time.Duration(int(hist[i+1])-16) * 17 * time.Minute
			at = at.Add(step)
			c.Events = append(c.Events, Event{At: at, Type: types[int(hist[i])%len(types)]})
		}
		now := received.Add(time.Duration(nowMinutes) * 7 * time.Minute)
		st := k.Evaluate(c, now)
		for _, tg := range st.Targets() {
			if tg.Elapsed < 0 {
				t.Fatalf("%s: negative elapsed %v", tg.Name, tg.Elapsed)
			}
			if span := k.Calendar.Between(st.Start, now); tg.Elapsed > span {
				t.Fatalf("%s: elapsed %v, but only %v of working time since the start", tg.Name, tg.Elapsed, span)
			}
			if tg.State == StateMet && !tg.Done {
				t.Fatalf("%s met but not done", tg.Name)
			}
		}
		alerts := k.Alerts(&st, func(string) bool { return false })
		for i := 1; i < len(alerts); i++ {
			if alerts[i].At.Before(alerts[i-1].At) {
				t.Fatalf("alerts out of order: %+v", alerts)
			}
		}
		if st.Paused {
			for _, a := range alerts {
				if a.Target == TargetResolution || a.Target == TargetResolutionTier2 {
					t.Fatalf("alert %s for a paused clock", a.Key())
				}
			}
		}
	})
}
