package sla

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// reportZone is Europe/Amsterdam (its own name: other test files of the
// package have their helpers).
func reportZone(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// Nearest rank: the smallest value with at least p of the values at or
// below it (R12's p90 and p99.9 of resolution times).
func TestPercentile(t *testing.T) {
	m := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Minute
		}
		return out
	}
	ten := m(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Minute
	}
	for _, tc := range []struct {
		name     string
		sorted   []time.Duration
		perMille int
		want     time.Duration
	}{
		{"none", nil, 900, 0},
		{"one", m(7), 900, 7 * time.Minute},
		{"one p99.9", m(7), 999, 7 * time.Minute},
		{"ten p90 is the 9th", ten, 900, 9 * time.Minute},
		{"ten p99.9 is the 10th", ten, 999, 10 * time.Minute},
		{"eleven p90 is the 10th", m(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 900, 10 * time.Minute},
		{"two p90 is the 2nd", m(1, 2), 900, 2 * time.Minute},
		{"ties", m(5, 5, 5, 9), 500, 5 * time.Minute},
		{"1000 p99.9 is the 999th", thousand, 999, 999 * time.Minute},
		{"1000 p90 is the 900th", thousand, 900, 900 * time.Minute},
		{"1001 p99.9 is the 1000th", append(slices.Clone(thousand), 2000*time.Minute), 999, 1000 * time.Minute},
	} {
		if got := percentile(tc.sorted, tc.perMille); got != tc.want {
			t.Errorf("%s: percentile(%d‰) = %v, want %v", tc.name, tc.perMille, got, tc.want)
		}
	}
}

// R13: nothing for one or two missed months, 5% when the third one in a
// row misses (the meeting and two follow-ups without progress), 5% more
// for each further month, never more than 50%.
func TestCompensationDiscount(t *testing.T) {
	want := []int{0, 0, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 50, 50, 50}
	for months, w := range want {
		if got := CompensationDiscount(months); got != w {
			t.Errorf("R13: %d missed months: %d%%, want %d%%", months, got, w)
		}
	}
	if got := CompensationDiscount(100); got != MaxDiscount {
		t.Errorf("R13 cap: %d%%", got)
	}
}

// R7, R12: pending cases stay out of the percentage, but the verdict is
// only "met" or "missed" when no pending outcome could change it.
func TestAttainmentWithPending(t *testing.T) {
	for _, tc := range []struct {
		met, known, pending int
		goal                float64
		percent             float64
		verdict             string
	}{
		{0, 0, 0, GoalTier1, 0, VerdictNoCases},
		{0, 0, 3, GoalTier1, 0, VerdictPending},
		{9, 10, 0, GoalTier1, 90, VerdictMet},
		{8, 10, 0, GoalTier1, 80, VerdictMissed},
		// 9/10 met: 90% now, but 9/11 if the pending one misses.
		{9, 10, 1, GoalTier1, 90, VerdictPending},
		// 18/19: 94.7%; worst 18/20 = 90% still meets.
		{18, 19, 1, GoalTier1, 100 * 18.0 / 19, VerdictMet},
		// 7/10 with 1 pending: best 8/11 < 90%.
		{7, 10, 1, GoalTier1, 70, VerdictMissed},
		// 99.9% of 1000 is 999 exactly: met, not a rounding miss.
		{999, 1000, 0, GoalTier2, 99.9, VerdictMet},
		{998, 1000, 0, GoalTier2, 99.8, VerdictMissed},
		// One tier-2 miss in fewer than 1000 cases misses, pending or not.
		{49, 50, 5, GoalTier2, 98, VerdictMissed},
		{50, 50, 1, GoalTier2, 100, VerdictPending},
		// R10: 100% within 5 working days.
		{4, 4, 0, GoalAnswer2, 100, VerdictMet},
		{3, 4, 0, GoalAnswer2, 75, VerdictMissed},
	} {
		a := tally{tc.met, tc.known, tc.pending}.attainment(tc.goal)
		if a.Percent != tc.percent || a.Verdict != tc.verdict || a.HasPercent() != (tc.known > 0) {
			t.Errorf("%d/%d +%d pending, goal %v%%: %.3f%% %q, want %.3f%% %q", tc.met, tc.known, tc.pending, tc.goal, a.Percent, a.Verdict, tc.percent, tc.verdict)
		}
	}
}

// testTarget builds a Target: elapsed of limit, done or not.
func testTarget(name string, limit, elapsed time.Duration, done bool) *Target {
	t := &Target{Name: name, Limit: limit, Elapsed: elapsed, Done: done, State: StateOnTrack}
	switch {
	case elapsed > limit:
		t.State = StateBreached
	case done:
		t.State = StateMet
	}
	return t
}

// testCase is a case of kind and priority that started at start; its
// resolution (an answer, for a question) took elapsed, done or not.
func testCase(id uint64, customer, kind, prio string, start time.Time, elapsed time.Duration, done bool) ReportCase {
	d := Default()
	st := Status{Start: start, Kind: kind, Priority: prio, State: StateNone}
	switch kind {
	case KindQuestion:
		st.Resolution = testTarget(TargetAnswer, d.Question.Tier1, elapsed, done)
		st.ResolutionTier2 = testTarget(TargetAnswerTier2, d.Question.Tier2, elapsed, done)
	case KindIncident:
		tier := d.Resolution[prio]
		st.FirstResponse = testTarget(TargetFirstResponse, d.FirstResponse[PlanPremium], time.Hour, true)
		st.Resolution = testTarget(TargetResolution, tier.Tier1, elapsed, done)
		st.ResolutionTier2 = testTarget(TargetResolutionTier2, tier.Tier2, elapsed, done)
	}
	return ReportCase{ID: id, Customer: customer, Plan: PlanPremium, Subject: fmt.Sprintf("case %d", id), Status: st}
}

// R14: change requests are counted apart and change no incident figure,
// not even when they sit open for months.
func TestReportChangesApart(t *testing.T) {
	loc := reportZone(t)
	start := time.Date(2025, 5, 6, 9, 0, 0, 0, loc)
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, loc)
	incidents := []ReportCase{
		testCase(1, "Acme", KindIncident, PriorityHigh, start, 2*time.Hour, true),
		testCase(2, "Acme", KindIncident, PriorityHigh, start, 3*time.Hour, true),
	}
	opts := ReportOptions{Year: 2025, Month: time.May, Location: loc, Now: now}
	without := BuildReport(opts, incidents)
	with := BuildReport(opts, append(slices.Clone(incidents),
		testCase(3, "Acme", KindChange, PriorityUrgent, start, 0, false),
		testCase(4, "Acme", KindChange, PriorityHigh, start.AddDate(0, 0, 1), 0, false),
		testCase(5, "Acme", KindChange, PriorityHigh, start.AddDate(0, 1, 0), 0, false), // June: not May's
	))
	if len(with.Customers) != 1 || with.Customers[0].Changes != 2 {
		t.Fatalf("R14: changes %+v", with.Customers)
	}
	a, b := without.Customers[0], with.Customers[0]
	b.Changes = 0
	if !jsonEqual(t, a, b) {
		t.Errorf("R14: change requests altered the incident figures")
	}
	if a.Total.Cases != 2 || a.Total.Tier1.Verdict != VerdictMet || a.Verdict != VerdictMet {
		t.Errorf("incidents: %+v", a.Total)
	}
}

// R10: questions answered within 3 (90%) and 5 (100%) working days; they
// count neither as incidents nor for R13.
func TestReportQuestions(t *testing.T) {
	loc := reportZone(t)
	start := time.Date(2025, 5, 6, 9, 0, 0, 0, loc)
	now := time.Date(2025, 5, 30, 12, 0, 0, 0, loc)
	wd := WorkingDay
	var cs []ReportCase
	// 9 within 3 days, 1 within 5 but not 3, 1 open past 5, 1 open at 1 day.
	for i := range 9 {
		cs = append(cs, testCase(uint64(i+1), "Acme", KindQuestion, PriorityMedium, start, time.Duration(i+1)*time.Hour, true))
	}
	cs = append(cs,
		testCase(10, "Acme", KindQuestion, PriorityMedium, start, 4*wd, true),
		testCase(11, "Acme", KindQuestion, PriorityMedium, start, 6*wd, false),
		testCase(12, "Acme", KindQuestion, PriorityMedium, start, wd, false),
	)
	r := BuildReport(ReportOptions{Year: 2025, Month: time.May, Location: loc, Now: now}, cs)
	q := r.Customers[0].Questions
	if q.Cases != 12 || q.Answered != 10 || q.Open != 2 || q.Tier1Limit != 3*wd || q.Tier2Limit != 5*wd {
		t.Errorf("R10 counts: %+v", q)
	}
	// Tier 1: 9 met of 11 known (case 11 is past 3 days), 1 pending.
	if q.Tier1.Met != 9 || q.Tier1.Known != 11 || q.Tier1.Pending != 1 || q.Tier1.Verdict != VerdictMissed {
		t.Errorf("R10 3 days: %+v", q.Tier1)
	}
	// Tier 2: 10 of 11 within 5 days: 100% is missed for good.
	if q.Tier2.Met != 10 || q.Tier2.Known != 11 || q.Tier2.Pending != 1 || q.Tier2.Verdict != VerdictMissed {
		t.Errorf("R10 5 days: %+v", q.Tier2)
	}
	c := r.Customers[0]
	if c.Total.Cases != 0 || c.Verdict != VerdictNoCases || c.Compensation.MissedMonths != 0 {
		t.Errorf("questions counted as incidents or for R13: %+v %s", c.Total, c.Verdict)
	}
	var missed []string
	for _, m := range c.Missed {
		missed = append(missed, fmt.Sprintf("%d %s %v", m.ID, m.Target, m.Over))
	}
	want := []string{"10 answer 9h0m0s", "11 answer 27h0m0s", "11 answer_tier2 9h0m0s"}
	if !slices.Equal(missed, want) {
		t.Errorf("missed list %q, want %q", missed, want)
	}
}

// R13 over several months: the run of missed months ends at the report
// month, a met month or a month without cases breaks it, and a month
// whose open cases could still tip it is no missed month (yet).
func TestReportCompensationRun(t *testing.T) {
	loc := reportZone(t)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, loc)
	var cs []ReportCase
	id := uint64(0)
	// month adds one urgent incident to Acme in y-m: missed or met.
	month := func(y int, m time.Month, missed bool) {
		id++
		el := time.Hour
		if missed {
			el = 7 * time.Hour // past both tiers
		}
		cs = append(cs, testCase(id, "Acme", KindIncident, PriorityUrgent, time.Date(y, m, 10, 9, 0, 0, 0, loc), el, true))
	}
	// 2024-12 missed, 2025-01 no cases, 2025-02..2026-05 missed (16 months).
	month(2024, 12, true)
	for m := 2; m <= 17; m++ {
		month(2025, time.Month(m), true) // time.Date normalises month 13 to January 2026
	}
	for _, tc := range []struct {
		y        int
		m        time.Month
		run, pct int
	}{
		{2024, 12, 1, 0},
		{2025, 1, 0, 0}, // no cases: no missed month
		{2025, 2, 1, 0},
		{2025, 3, 2, 0},
		{2025, 4, 3, 5},
		{2025, 5, 4, 10},
		{2026, 1, 12, 50},
		{2026, 5, 16, 50},
	} {
		r := BuildReport(ReportOptions{Year: tc.y, Month: tc.m, Location: loc, Now: now}, cs)
		c := r.Customers[0]
		if c.Compensation.MissedMonths != tc.run || c.Compensation.DiscountPercent != tc.pct {
			t.Errorf("R13 %d-%02d: %+v, want %d months, %d%%", tc.y, tc.m, c.Compensation, tc.run, tc.pct)
		}
		if len(c.History) != HistoryMonths || c.History[11].Year != tc.y || c.History[11].Month != tc.m {
			t.Errorf("history of %d-%02d ends %d-%02d", tc.y, tc.m, c.History[11].Year, c.History[11].Month)
		}
	}

	// A month whose open cases could still tip it is no missed month yet.
	pending := append(slices.Clone(cs), testCase(100, "Acme", KindIncident, PriorityLow, time.Date(2026, 6, 2, 9, 0, 0, 0, loc), time.Hour, false))
	r := BuildReport(ReportOptions{Year: 2026, Month: time.June, Location: loc, Now: now}, pending)
	if c := r.Customers[0]; c.Verdict != VerdictPending || c.Compensation.MissedMonths != 0 {
		t.Errorf("R13: a pending month: %s %+v", c.Verdict, c.Compensation)
	}

	// 19 urgent cases met beside September 2025's missed one: tier 1 is
	// met (95%), tier 2 (99.9%) is not, and either tier missing misses
	// the month.
	for range 19 {
		month(2025, time.September, false)
	}
	r = BuildReport(ReportOptions{Year: 2025, Month: time.September, Location: loc, Now: now}, cs)
	if c := r.Customers[0]; c.Incidents[0].Tier1.Verdict != VerdictMet || c.Incidents[0].Tier2.Verdict != VerdictMissed || c.Compensation.MissedMonths != 8 {
		t.Errorf("R13: tier 2 alone misses the month: %+v %+v", c.Incidents[0], c.Compensation)
	}
	// A month that meets both tiers ends the run.
	id = 300
	cs = slices.DeleteFunc(cs, func(c ReportCase) bool {
		s := c.Status.Start
		return s.Year() == 2025 && s.Month() == time.October
	})
	month(2025, time.October, false)
	r = BuildReport(ReportOptions{Year: 2026, Month: time.May, Location: loc, Now: now}, cs)
	if c := r.Customers[0]; c.Compensation.MissedMonths != 7 || c.Compensation.DiscountPercent != 25 {
		t.Errorf("R13: after a met October 2025: %+v, want 7 months (Nov-May), 25%%", c.Compensation)
	}
	if h := r.Customers[0].History; h[4].Month != time.October || h[4].Verdict != VerdictMet || h[5].Verdict != VerdictMissed {
		t.Errorf("history: %+v", h[4:6])
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, _ := json.MarshalIndent(a, "", " ")
	jb, _ := json.MarshalIndent(b, "", " ")
	if bytes.Equal(ja, jb) {
		return true
	}
	la, lb := strings.Split(string(ja), "\n"), strings.Split(string(jb), "\n")
	shown := 0
	for i := 0; i < max(len(la), len(lb)) && shown < 20; i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			t.Logf("line %d:\n  got  %s\n  want %s", i+1, x, y)
			shown++
		}
	}
	return false
}

// ---- The scenario: a synthetic month of traffic, counted twice. ----

// scenCase is one generated case.
type scenCase struct {
	id                      uint64
	customer, plan, subject string
	c                       *Case
}

// scenCustomers are the scenario's customers, one per plan (R9) and a
// small one that writes rarely (the last: some of its lines stay empty).
var scenCustomers = [...]struct{ name, plan string }{
	{"Acme", PlanPremium}, {"Bakkerij Jansen", PlanBusiness}, {"Cor Basis", PlanBasic}, {"Dijkstra ICT", PlanPremium},
}

// genScenario makes n cases arriving in [from, until) at random minutes of
// the day and week, plus arrivals at chosen edges, with staff responses,
// pending and resumes, closures, reopenings, priority and kind changes. No
// event lies after now.
func genScenario(r *rand.Rand, loc *time.Location, from, until, now time.Time, n int, edges []time.Time) []scenCase {
	span := int64(until.Sub(from) / time.Minute)
	arrivals := slices.Clone(edges)
	for range n {
		arrivals = append(arrivals, from.Add(time.Duration(r.Int64N(span))*time.Minute))
	}
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	prios := []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow}
	// scale is how long things take, in wall time, per priority: chosen
	// so that some cases make their targets and some miss them.
	scale := map[string]time.Duration{
		PriorityUrgent: 10 * time.Hour, PriorityHigh: 60 * time.Hour,
		PriorityMedium: 12 * 24 * time.Hour, PriorityLow: 30 * 24 * time.Hour,
	}
	upTo := func(d time.Duration) time.Duration {
		return time.Duration(r.Int64N(int64(d/time.Minute)+1)) * time.Minute
	}
	out := make([]scenCase, 0, len(arrivals))
	for i, a := range arrivals {
		cu := scenCustomers[r.IntN(len(scenCustomers)-1)]
		if r.IntN(40) == 0 {
			cu = scenCustomers[len(scenCustomers)-1]
		}
		c := &Case{Plan: cu.plan, Received: a.In(time.UTC)}
		first := EventReceived
		if r.IntN(10) == 0 {
			first = EventOpenedByStaff // R6
		}
		ev := []Event{{a, first}}
		add := func(at time.Time, typ string) time.Time {
			ev = append(ev, Event{at, typ})
			return at
		}
		switch k := r.Float64(); {
		case k < 0.35:
			c.Kind = KindIncident
		case k < 0.70:
			c.Kind = "" // an incident too
		case k < 0.85:
			c.Kind = KindQuestion
		default:
			c.Kind = KindChange
		}
		p := prios[r.IntN(len(prios))]
		t := a
		switch m := r.IntN(10); {
		case m < 6: // staff set it (R7), sometimes after another first
			if r.IntN(5) == 0 {
				t = add(t.Add(upTo(2*time.Hour)), EventPrioritySet)
			}
			c.Priority = p
			t = add(t.Add(upTo(3*time.Hour)), EventPrioritySet)
		case m < 8: // the customer's proposal drives it
			c.ProposedPriority = p
			add(t, EventPriorityProposed)
		default: // neither: Medium
			p = PriorityMedium
		}
		if r.IntN(15) == 0 {
			t = add(t.Add(upTo(4*time.Hour)), EventKindSet)
		}
		sc := scale[p]
		if r.Float64() < 0.85 {
			t = add(t.Add(upTo(sc/2)), EventStaffResponse)
		}
		if r.Float64() < 0.3 {
			t = add(t.Add(upTo(sc/2)), EventPending)
			switch w := r.Float64(); {
			case w < 0.5:
				t = add(t.Add(upTo(sc)), EventCustomerReply)
			case w < 0.7:
				t = add(t.Add(upTo(sc)), EventResumed)
			}
		}
		if r.Float64() < 0.25 {
			t = add(t.Add(upTo(sc/4)), EventCustomerReply)
		}
		if r.Float64() < 0.75 {
			t = add(t.Add(upTo(sc)), EventClosed)
			if r.Float64() < 0.15 {
				t = add(t.Add(upTo(sc)), EventReopened)
				if r.Float64() < 0.5 {
					t = add(t.Add(upTo(sc)), EventStaffResponse)
					add(t.Add(upTo(sc)), EventClosed)
				}
			}
		}
		for _, e := range ev {
			if !e.At.After(now) {
				c.Events = append(c.Events, Event{e.At.In(time.UTC), e.Type})
			}
		}
		out = append(out, scenCase{id: uint64(i + 1), customer: cu.name, plan: cu.plan, subject: fmt.Sprintf("Scenario case %d", i+1), c: c})
	}
	return out
}

// minuteGrid is the brute-force working-time count: every minute of
// [base, base+len) asked of the calendar's IsWorkingTime, nothing else.
type minuteGrid struct {
	base   time.Time
	work   []bool
	prefix []int // prefix[i]: working minutes in the first i minutes
}

func newMinuteGrid(cal *Calendar, from, to time.Time) *minuteGrid {
	n := int(to.Sub(from) / time.Minute)
	g := &minuteGrid{base: from, work: make([]bool, n), prefix: make([]int, n+1)}
	for i := range n {
		g.work[i] = cal.IsWorkingTime(from.Add(time.Duration(i) * time.Minute))
		g.prefix[i+1] = g.prefix[i]
		if g.work[i] {
			g.prefix[i+1]++
		}
	}
	return g
}

func (g *minuteGrid) index(t time.Time) int {
	d := t.Sub(g.base)
	if d%time.Minute != 0 || d < 0 || int(d/time.Minute) > len(g.work) {
		panic(fmt.Sprintf("minute grid: %v is off the grid", t))
	}
	return int(d / time.Minute)
}

// between is the working time in [a, b).
func (g *minuteGrid) between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	return time.Duration(g.prefix[g.index(b)]-g.prefix[g.index(a)]) * time.Minute
}

// firstWorking is the first working minute at or after t (R8).
func (g *minuteGrid) firstWorking(t time.Time) time.Time {
	i := g.index(t)
	for !g.work[i] {
		i++
	}
	return g.base.Add(time.Duration(i) * time.Minute)
}

// bruteClock is one case as the test counts it, without the Clock.
type bruteClock struct {
	start                time.Time
	kind, priority       string
	resElapsed           time.Duration
	resDone              bool
	firstElapsed         time.Duration
	firstDone            bool
	customer, plan, subj string
	id                   uint64
}

// replay counts c's clocks at now from its events alone (R7, R8, R11b,
// R11c): the resolution clock runs from the start, stops while pending
// and at closing, runs again on the customer's reply or staff's resume
// after pending and on reopening; the first-response clock (R9, and
// R10's answer) stops at the first staff response or the closing.
func replay(g *minuteGrid, sc scenCase, now time.Time) bruteClock {
	c := sc.c
	b := bruteClock{customer: sc.customer, plan: sc.plan, subj: sc.subject, id: sc.id}
	received := c.Received
	for _, e := range c.Events {
		if e.Type == EventReceived || e.Type == EventOpenedByStaff {
			received = e.At
			break
		}
	}
	b.start = g.firstWorking(received)
	b.kind = c.Kind
	if b.kind == "" {
		b.kind = KindIncident
	}
	b.priority = PriorityMedium
	if c.ProposedPriority != "" {
		b.priority = c.ProposedPriority
	}
	if c.Priority != "" {
		b.priority = c.Priority
	}
	state := "running" // or "pending", "closed"
	runFrom := b.start
	var firstAt time.Time
	for _, e := range c.Events {
		switch {
		case e.Type == EventStaffResponse && firstAt.IsZero():
			firstAt = e.At
		case e.Type == EventPending && state == "running":
			b.resElapsed += g.between(runFrom, e.At)
			state = "pending"
		case e.Type == EventPending && state == "pending":
		case (e.Type == EventCustomerReply || e.Type == EventResumed) && state == "pending":
			state, runFrom = "running", e.At
		case e.Type == EventClosed && state != "closed":
			if state == "running" {
				b.resElapsed += g.between(runFrom, e.At)
			}
			state = "closed"
			if firstAt.IsZero() {
				firstAt = e.At
			}
		case e.Type == EventReopened && state == "closed":
			state, runFrom = "running", e.At
		}
	}
	if state == "running" {
		b.resElapsed += g.between(runFrom, now)
	}
	b.resDone = state == "closed"
	if firstAt.IsZero() {
		b.firstElapsed = g.between(b.start, now)
	} else {
		b.firstElapsed, b.firstDone = g.between(b.start, firstAt), true
	}
	return b
}

// outcome of one target by the agreement's words: missed when more
// working time than the limit was counted, done or not (R11a: a deadline
// of whole working days falls at the same clock time on the next working
// day, so a case resolved that night made it); met when done within the
// limit; else not known yet.
func outcome(elapsed, limit time.Duration, done bool) (met, known, pending int) {
	switch {
	case elapsed > limit:
		return 0, 1, 0
	case done:
		return 1, 1, 0
	}
	return 0, 0, 1
}

// expAttainment is Attainment computed with exact fractions.
func expAttainment(met, known, pending int, goal float64, goalText string) Attainment {
	a := Attainment{Goal: goal, Met: met, Known: known, Pending: pending, Verdict: VerdictNoCases}
	if known > 0 {
		a.Percent = 100 * float64(met) / float64(known)
	}
	if n := known + pending; n > 0 {
		g, ok := new(big.Rat).SetString(goalText)
		if !ok {
			panic("goal " + goalText)
		}
		g.Quo(g, big.NewRat(100, 1))
		worst, best := big.NewRat(int64(met), int64(n)), big.NewRat(int64(met+pending), int64(n))
		switch {
		case worst.Cmp(g) >= 0:
			a.Verdict = VerdictMet
		case best.Cmp(g) < 0:
			a.Verdict = VerdictMissed
		default:
			a.Verdict = VerdictPending
		}
	}
	return a
}

// worst is the verdict of several by the report's rule.
func worst(vs ...string) string {
	has := map[string]bool{}
	for _, v := range vs {
		has[v] = true
	}
	for _, v := range []string{VerdictMissed, VerdictPending, VerdictMet} {
		if has[v] {
			return v
		}
	}
	return VerdictNoCases
}

// nearestRank is the smallest value with at least pm‰ of the values at or
// below it, found by walking the sorted values.
func nearestRank(vals []time.Duration, pm int) time.Duration {
	s := slices.Clone(vals)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	for i := range s {
		if (i+1)*1000 >= pm*len(s) {
			return s[i]
		}
	}
	return 0
}

// expectReport is the scenario's report as the test counts it: the
// agreement's figures (R7, R9, R10, R12, R13, R14) straight from the
// brute-force clocks, with the targets written out as SLA.md states them.
func expectReport(bcs []bruteClock, loc *time.Location, year int, month time.Month, now time.Time) Report {
	resTargets := map[string][2]time.Duration{ // R7 with R11a
		PriorityUrgent: {4 * time.Hour, 6 * time.Hour},
		PriorityHigh:   {9 * time.Hour, 18 * time.Hour},
		PriorityMedium: {45 * time.Hour, 90 * time.Hour},
		PriorityLow:    {135 * time.Hour, 585 * time.Hour},
	}
	firstTargets := map[string]time.Duration{PlanPremium: 4 * time.Hour, PlanBusiness: 8 * time.Hour, PlanBasic: 48 * time.Hour} // R9
	question := [2]time.Duration{27 * time.Hour, 45 * time.Hour}                                                                 // R10
	from := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	want := Report{Year: year, Month: month, Zone: "Europe/Amsterdam", From: from, To: time.Date(year, month+1, 1, 0, 0, 0, 0, loc), Now: now}
	inMonth := func(t time.Time, y int, m time.Month) bool {
		t = t.In(loc)
		return t.Year() == y && t.Month() == m
	}
	// monthVerdict is R13's: any priority's either tier missed.
	monthVerdict := func(customer string, y int, m time.Month) (string, [2][3]int, int) {
		var vs []string
		var all [2][3]int
		cases := 0
		for _, p := range []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow} {
			var tier [2][3]int
			for _, b := range bcs {
				if b.customer != customer || b.kind != KindIncident || b.priority != p || !inMonth(b.start, y, m) {
					continue
				}
				cases++
				for k := range 2 {
					met, known, pending := outcome(b.resElapsed, resTargets[p][k], b.resDone)
					tier[k][0] += met
					tier[k][1] += known
					tier[k][2] += pending
				}
			}
			vs = append(vs, expAttainment(tier[0][0], tier[0][1], tier[0][2], 90, "90").Verdict,
				expAttainment(tier[1][0], tier[1][1], tier[1][2], 99.9, "99.9").Verdict)
			for k := range 2 {
				for j := range 3 {
					all[k][j] += tier[k][j]
				}
			}
		}
		return worst(vs...), all, cases
	}
	for _, cu := range scenCustomers {
		cr := CustomerReport{Customer: cu.name, Plan: cu.plan, Missed: []MissedCase{}}
		frLimit := firstTargets[cu.plan]
		type acc struct {
			cases, resolved int
			t               [3][3]int // tier 1, tier 2, first response: met, known, pending
			elapsed         []time.Duration
		}
		var total acc
		line := func(a acc, p string, lim [2]time.Duration) Line {
			l := Line{
				Priority: p, Tier1Limit: lim[0], Tier2Limit: lim[1],
				Cases: a.cases, Resolved: a.resolved, Open: a.cases - a.resolved,
				Tier1:              expAttainment(a.t[0][0], a.t[0][1], a.t[0][2], 90, "90"),
				Tier2:              expAttainment(a.t[1][0], a.t[1][1], a.t[1][2], 99.9, "99.9"),
				P90:                nearestRank(a.elapsed, 900),
				P999:               nearestRank(a.elapsed, 999),
				FirstResponseLimit: frLimit,
				FirstResponse:      expAttainment(a.t[2][0], a.t[2][1], a.t[2][2], 100, "100"),
			}
			l.Verdict = worst(l.Tier1.Verdict, l.Tier2.Verdict)
			return l
		}
		for _, p := range []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow} {
			var a acc
			for _, b := range bcs {
				if b.customer != cu.name || b.kind != KindIncident || b.priority != p || !inMonth(b.start, year, month) {
					continue
				}
				a.cases++
				if b.resDone {
					a.resolved++
					a.elapsed = append(a.elapsed, b.resElapsed)
				}
				for k, o := range [3][3]int{
					toArr(outcome(b.resElapsed, resTargets[p][0], b.resDone)),
					toArr(outcome(b.resElapsed, resTargets[p][1], b.resDone)),
					toArr(outcome(b.firstElapsed, frLimit, b.firstDone)),
				} {
					for j := range 3 {
						a.t[k][j] += o[j]
					}
				}
			}
			cr.Incidents = append(cr.Incidents, line(a, p, resTargets[p]))
			total.cases += a.cases
			total.resolved += a.resolved
			total.elapsed = append(total.elapsed, a.elapsed...)
			for k := range 3 {
				for j := range 3 {
					total.t[k][j] += a.t[k][j]
				}
			}
		}
		cr.Total = line(total, "", [2]time.Duration{})
		var q [2][3]int
		for _, b := range bcs {
			if b.customer != cu.name || !inMonth(b.start, year, month) {
				continue
			}
			switch b.kind {
			case KindChange:
				cr.Changes++ // R14
				continue
			case KindQuestion:
				cr.Questions.Cases++
				if b.firstDone {
					cr.Questions.Answered++
				}
				for k := range 2 {
					o := toArr(outcome(b.firstElapsed, question[k], b.firstDone))
					for j := range 3 {
						q[k][j] += o[j]
					}
				}
			}
		}
		cr.Questions.Open = cr.Questions.Cases - cr.Questions.Answered
		cr.Questions.Tier1Limit, cr.Questions.Tier2Limit = question[0], question[1]
		cr.Questions.Tier1 = expAttainment(q[0][0], q[0][1], q[0][2], 90, "90")
		cr.Questions.Tier2 = expAttainment(q[1][0], q[1][1], q[1][2], 100, "100")
		cr.Questions.Verdict = worst(cr.Questions.Tier1.Verdict, cr.Questions.Tier2.Verdict)

		// Missed targets of the month's cases, by id, first response
		// before resolution before its second tier.
		for _, b := range bcs {
			if b.customer != cu.name || !inMonth(b.start, year, month) || b.kind == KindChange {
				continue
			}
			type tgt struct {
				name    string
				limit   time.Duration
				elapsed time.Duration
				done    bool
			}
			var ts []tgt
			if b.kind == KindQuestion {
				ts = []tgt{{TargetAnswer, question[0], b.firstElapsed, b.firstDone}, {TargetAnswerTier2, question[1], b.firstElapsed, b.firstDone}}
			} else {
				ts = []tgt{{TargetFirstResponse, frLimit, b.firstElapsed, b.firstDone},
					{TargetResolution, resTargets[b.priority][0], b.resElapsed, b.resDone},
					{TargetResolutionTier2, resTargets[b.priority][1], b.resElapsed, b.resDone}}
			}
			for _, x := range ts {
				if met, known, _ := outcome(x.elapsed, x.limit, x.done); known == 1 && met == 0 {
					cr.Missed = append(cr.Missed, MissedCase{ID: b.id, Subject: b.subj, Kind: b.kind, Priority: b.priority,
						Target: x.name, Limit: x.limit, Elapsed: x.elapsed, Over: x.elapsed - x.limit, Start: b.start.In(loc), Open: !x.done})
				}
			}
		}

		// R13 and the history: month by month.
		cr.Verdict, _, _ = monthVerdict(cu.name, year, month)
		cr.Total.Verdict = cr.Verdict
		for y, m := year, month; ; m-- {
			if m == 0 {
				y, m = y-1, time.December
			}
			v, _, _ := monthVerdict(cu.name, y, m)
			if v != VerdictMissed {
				break
			}
			cr.Compensation.MissedMonths++
		}
		pct := 0
		for i := 3; i <= cr.Compensation.MissedMonths; i++ {
			pct = min(pct+5, 50)
		}
		cr.Compensation.DiscountPercent = pct
		for i := 11; i >= 0; i-- {
			t := time.Date(year, month-time.Month(i), 1, 12, 0, 0, 0, loc)
			v, all, cases := monthVerdict(cu.name, t.Year(), t.Month())
			cr.History = append(cr.History, MonthFigures{
				Year: t.Year(), Month: t.Month(), Cases: cases, Verdict: v,
				Tier1: expAttainment(all[0][0], all[0][1], all[0][2], 90, "90"),
				Tier2: expAttainment(all[1][0], all[1][1], all[1][2], 99.9, "99.9"),
			})
		}
		want.Customers = append(want.Customers, cr)
	}
	return want
}

func toArr(met, known, pending int) [3]int { return [3]int{met, known, pending} }

// TestReportScenario generates a month of traffic (May 2025, with its two
// holidays, weekends and nights, and March and April before it), evaluates
// it with the Clock, and checks every figure of the report against a count
// made without the Clock or the report's code: working time minute by
// minute through IsWorkingTime, the events replayed by hand, the targets
// as SLA.md writes them.
func TestReportScenario(t *testing.T) {
	loc := reportZone(t)
	cal := DefaultCalendar(loc)
	clock := &Clock{Calendar: cal, Targets: Default()}
	clocks := &Clocks{Default: clock}
	at := func(mo time.Month, d, h, m int) time.Time { return time.Date(2025, mo, d, h, m, 0, 0, loc) }
	now := at(time.June, 3, 15, 7)
	edges := []time.Time{
		at(time.May, 5, 10, 0),   // Liberation Day 2025 (lustrum): starts 6 May
		at(time.May, 29, 14, 0),  // Ascension Day: starts 30 May
		at(time.May, 10, 11, 30), // a Saturday
		at(time.May, 12, 17, 0),  // 17:00 is after hours (R11)
		at(time.May, 13, 7, 59),
		at(time.May, 14, 8, 0),
		at(time.April, 30, 20, 0), // received in April, started in May (R8)
		at(time.May, 30, 17, 30),  // started in June: not May's
		at(time.March, 29, 23, 0), // the night before DST starts
	}
	r := rand.New(rand.NewPCG(2025, 5))
	scen := genScenario(r, loc, at(time.March, 1, 0, 0), at(time.June, 2, 12, 0), now, 330, edges)

	grid := newMinuteGrid(cal, at(time.March, 1, 0, 0), now.Add(10*24*time.Hour))
	var rcs []ReportCase
	var bcs []bruteClock
	kinds := map[string]int{}
	for _, sc := range scen {
		rcs = append(rcs, ReportCase{ID: sc.id, Customer: sc.customer, Plan: sc.plan, Subject: sc.subject, Status: clock.Evaluate(sc.c, now)})
		b := replay(grid, sc, now)
		bcs = append(bcs, b)
		if inMay := b.start.In(loc).Month() == time.May; inMay {
			kinds[b.kind]++
		}
	}
	// The scenario covers what it should.
	if kinds[KindIncident] < 60 || kinds[KindQuestion] < 10 || kinds[KindChange] < 5 {
		t.Fatalf("scenario too thin: %v", kinds)
	}
	got := BuildReport(ReportOptions{Year: 2025, Month: time.May, Now: now, Clocks: clocks}, rcs)
	want := expectReport(bcs, loc, 2025, time.May, now)
	if !jsonEqual(t, got, want) {
		t.Fatal("the report differs from the independent count")
	}
	// And the scenario exercised each outcome somewhere.
	seen := map[string]bool{}
	for _, c := range got.Customers {
		for _, l := range append(c.Incidents, c.Total) {
			for _, a := range []Attainment{l.Tier1, l.Tier2, l.FirstResponse} {
				seen[a.Verdict] = true
				if a.Pending > 0 {
					seen["pending cases"] = true
				}
			}
		}
		if len(c.Missed) > 0 {
			seen["missed list"] = true
		}
		if c.Compensation.DiscountPercent > 0 {
			seen["discount"] = true
		}
	}
	for _, w := range []string{VerdictMet, VerdictMissed, VerdictPending, VerdictNoCases, "pending cases", "missed list", "discount"} {
		if !seen[w] {
			t.Errorf("the scenario never produced %q", w)
		}
	}

	// The filter gives the same customer figures.
	one := BuildReport(ReportOptions{Year: 2025, Month: time.May, Now: now, Clocks: clocks, Customer: "Acme"}, rcs)
	if len(one.Customers) != 1 || !jsonEqual(t, one.Customers[0], want.Customers[0]) {
		t.Error("--customer Acme differs from Acme in the full report")
	}
	// An unknown customer is listed, with nothing.
	none := BuildReport(ReportOptions{Year: 2025, Month: time.May, Now: now, Clocks: clocks, Customer: "Nobody"}, rcs)
	if len(none.Customers) != 1 || none.Customers[0].Verdict != VerdictNoCases || none.Customers[0].Total.Cases != 0 {
		t.Errorf("unknown customer: %+v", none.Customers)
	}
}

// BenchmarkReport100k evaluates 100,000 cases spread over a year and 40
// customers and builds the report of the last month.
func BenchmarkReport100k(b *testing.B) {
	const n = 100_000
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		b.Fatal(err)
	}
	clock := &Clock{Calendar: DefaultCalendar(loc), Targets: Default()}
	clocks := &Clocks{Default: clock}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, loc)
	scen := genScenario(rand.New(rand.NewPCG(1, 2)), loc, from, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), now, n, nil)
	for i := range scen {
		scen[i].customer = fmt.Sprintf("customer %02d", i%40)
	}
	var building time.Duration // BuildReport's part, the rest is Evaluate
	b.ResetTimer()
	for b.Loop() {
		rcs := make([]ReportCase, len(scen))
		for i, sc := range scen {
			rcs[i] = ReportCase{ID: sc.id, Customer: sc.customer, Plan: sc.plan, Subject: sc.subject, Status: clock.Evaluate(sc.c, now)}
		}
		started := time.Now()
		r := BuildReport(ReportOptions{Year: 2025, Month: time.December, Now: now, Clocks: clocks}, rcs)
		building += time.Since(started)
		if len(r.Customers) != 40 {
			b.Fatalf("%d customers", len(r.Customers))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "cases/s")
	b.ReportMetric(float64(building.Milliseconds())/float64(b.N), "build-ms/op")
}
