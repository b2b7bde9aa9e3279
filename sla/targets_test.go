package sla

import (
	"testing"
	"time"
)

// The defaults are the agreement's figures, converted as R11a says.
func TestDefaultTargets(t *testing.T) {
	d := Default()
	for plan, want := range map[string]time.Duration{PlanPremium: 4 * time.Hour, PlanBusiness: 8 * time.Hour, PlanBasic: 48 * time.Hour} {
		if got, ok := d.FirstResponseFor(plan); !ok || got != want {
			t.Errorf("R9 %s: %v, %v; want %v", plan, got, ok, want)
		}
	}
	if _, ok := d.FirstResponseFor("Gold"); ok {
		t.Error("an unknown plan has a target")
	}
	// R11a: 48 working hours is 5 working days and 3 hours.
	if basic := d.FirstResponse[PlanBasic]; basic != 5*WorkingDay+3*time.Hour {
		t.Errorf("R11a: 48 working hours = %v, want 5 working days + 3h", basic)
	}
	cases := map[string]Tier{
		"urgent": {4 * time.Hour, 6 * time.Hour},
		"high":   {9 * time.Hour, 18 * time.Hour},
		"medium": {45 * time.Hour, 90 * time.Hour},
		"low":    {135 * time.Hour, 585 * time.Hour},
	}
	for prio, want := range cases {
		if got := d.Resolution[prio]; got != want {
			t.Errorf("R7 %s: %+v, want %+v", prio, got, want)
		}
	}
	if d.Question != (Tier{27 * time.Hour, 45 * time.Hour}) {
		t.Errorf("R10: %+v", d.Question)
	}
}
