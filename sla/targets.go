// Package sla holds the rules of the service level agreement (SLA.md,
// R1..R20) as pure functions and data, with the standard library only and
// the clock passed in. This first part carries the agreement's targets:
// first response per plan (R9), resolution per priority (R7) and the
// answer times for questions (R10), all in working time (R11a). The
// working-time calendar and the clock replayed from a case's events build
// on it.
package sla

import "time"

// Plans (R9).
const (
	PlanPremium  = "Premium"
	PlanBusiness = "Business"
	PlanBasic    = "Basic"
)

// WorkingDay is one working day in working time (R11a: 08:00-17:00).
const WorkingDay = 9 * time.Hour

// SplitWorking rounds a working time to the minute and splits it into
// working days of WorkingDay (R11a), hours and minutes: the one way deskd
// breaks a working time down for people (templates.FormatWorking in
// mails, the report's tables). A negative d sets neg and gives the parts
// of -d; one that rounds to zero is no negative.
func SplitWorking(d time.Duration) (neg bool, days, hours, minutes int64) {
	d = d.Round(time.Minute)
	if d < 0 {
		neg, d = true, -d
	}
	days = int64(d / WorkingDay)
	d -= time.Duration(days) * WorkingDay
	return neg, days, int64(d / time.Hour), int64(d % time.Hour / time.Minute)
}

// Tier is a resolution target: 90% of cases within Tier1, 99.9% within
// Tier2 (R7).
type Tier struct {
	Tier1, Tier2 time.Duration
}

// Targets are the agreement's promises, in working time. The zero value
// means "no target"; Default gives the agreement's own figures.
type Targets struct {
	// FirstResponse per plan (R9).
	FirstResponse map[string]time.Duration
	// Resolution per priority name: "urgent", "high", "medium", "low" (R7).
	Resolution map[string]Tier
	// Question is the first substantive answer to a user question: 90%
	// within Tier1, 100% within Tier2 (R10).
	Question Tier
}

// Default returns the targets as the agreement states them (R7, R9, R10,
// with R11a's conversions: a week is 5 working days, three months 65).
func Default() Targets {
	return Targets{
		FirstResponse: map[string]time.Duration{
			PlanPremium:  4 * time.Hour,
			PlanBusiness: 8 * time.Hour,
			PlanBasic:    48 * time.Hour,
		},
		Resolution: map[string]Tier{
			"urgent": {4 * time.Hour, 6 * time.Hour},
			"high":   {1 * WorkingDay, 2 * WorkingDay},
			"medium": {5 * WorkingDay, 10 * WorkingDay},
			"low":    {15 * WorkingDay, 65 * WorkingDay},
		},
		Question: Tier{3 * WorkingDay, 5 * WorkingDay},
	}
}

// FirstResponseFor returns the first-response target of plan (R9), and
// false when the plan has none.
func (t Targets) FirstResponseFor(plan string) (time.Duration, bool) {
	d, ok := t.FirstResponse[plan]
	return d, ok && d > 0
}
