package sla

import "time"

// Alert kinds: a warning at the warning share of a target, a breach when
// it is missed.
const (
	AlertWarning = "warning"
	AlertBreach  = "breach"
)

// Alert is one mail to staff that a case's clock calls for: a warning to
// staff.notify, a breach to staff.escalation (tier 2: staff.escalation_tier2).
type Alert struct {
	// At is when it is due: the threshold's instant, moved to the next
	// working period's start unless the case is Urgent (R11d).
	At     time.Time
	Target string // TargetFirstResponse, TargetResolution, ...
	Kind   string // AlertWarning or AlertBreach
	Limit  time.Duration
}

// Key names the alert for "exactly once per case, kind and target": the
// daemon records it when the mail is queued and never sends a key twice.
// A changed target (another priority) has another key, so it is alerted
// afresh.
func (a Alert) Key() string { return a.Target + "/" + a.Kind + "/" + a.Limit.String() }

// Tier2 reports whether the alert concerns a second tier (R7 99.9%, R10
// 100%), which goes to staff.escalation_tier2.
func (a Alert) Tier2() bool {
	return a.Target == TargetResolutionTier2 || a.Target == TargetAnswerTier2
}

// Alerts lists the alerts st calls for that sent does not hold yet,
// earliest first, whether due already or in the future. A clock that is
// paused or stopped calls for none (R11c): its alerts come back when it
// runs again. A warning that would not come before its breach is left
// out: the breach says more. Second tiers get no warning of their own.
func (k *Clock) Alerts(st *Status, sent func(key string) bool) []Alert {
	var out []Alert
	for _, t := range st.Targets() {
		if t.Done || t.Paused || t.Due.IsZero() {
			continue
		}
		// A target that a priority or kind change made apply counts from
		// the change (R11c); R9's hangs on the plan alone.
		changed := st.ChangedAt
		if t.Name == TargetFirstResponse {
			changed = time.Time{}
		}
		breach := Alert{At: maxTime(t.Due, changed), Target: t.Name, Kind: AlertBreach, Limit: t.Limit}
		breach.At = k.escalationTime(breach.At, st.Priority)
		tier2 := breach.Tier2()
		if !tier2 && !t.Warn.IsZero() {
			w := Alert{At: k.escalationTime(maxTime(t.Warn, changed), st.Priority), Target: t.Name, Kind: AlertWarning, Limit: t.Limit}
			if w.At.Before(breach.At) && !sent(w.Key()) && !sent(breach.Key()) {
				out = append(out, w)
			}
		}
		if !sent(breach.Key()) {
			out = append(out, breach)
		}
	}
	sortAlerts(out)
	return out
}

// SendAt is when a, one of st's alerts, may go out as seen at now: its
// At, unless it is overdue at an hour outside working time (the daemon
// was down, the host asleep) and the case is not Urgent; then the next
// working period's start (R11d).
func (k *Clock) SendAt(a Alert, st *Status, now time.Time) time.Time {
	if st.Priority == PriorityUrgent || a.At.After(now) || k.Calendar.IsWorkingTime(now) {
		return a.At
	}
	return k.Calendar.NextWorkingStart(now)
}

// escalationTime moves at into working time unless the case is Urgent:
// R11d sends warnings and escalations during working hours only, Urgent
// ones at once at any hour.
func (k *Clock) escalationTime(at time.Time, priority string) time.Time {
	if priority == PriorityUrgent {
		return at
	}
	return k.Calendar.NextWorkingStart(at)
}

func sortAlerts(a []Alert) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].At.Before(a[j-1].At); j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}
