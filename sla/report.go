package sla

import (
	"math"
	"slices"
	"sort"
	"time"
)

// This file builds the monthly service report (R4, R12) and the
// compensation due when resolution targets are missed (R13), from cases
// the caller has already evaluated: the report is pure arithmetic over
// Status values, so the daemon (admin socket) and the CLI (a stopped
// store) build the same report from the same cases.

// Goals, in percent of the cases with a known outcome.
const (
	GoalTier1   = 90.0  // R7: 90% of cases within the first tier
	GoalTier2   = 99.9  // R7: 99.9% within the second tier
	GoalAnswer  = 90.0  // R10: 90% of questions answered within 3 working days
	GoalAnswer2 = 100.0 // R10: 100% within 5 working days
	// GoalFirstResponse: R9 names a maximum response time, which deskd
	// reads as every incident (deskd's reading). It is shown; it does not
	// count for R13, which speaks of resolution targets only.
	GoalFirstResponse = 100.0
)

// Verdicts of a figure, a line or a month.
const (
	VerdictMet     = "met"
	VerdictMissed  = "missed"
	VerdictPending = "pending"  // open cases can still tip it either way
	VerdictNoCases = "no cases" // nothing to judge
)

// MaxDiscount is R13's cap on the monthly discount, in percent.
const MaxDiscount = 50

// HistoryMonths is how many months the attainment history covers, ending
// with the report's month.
const HistoryMonths = 12

// ReportCase is one case as the report needs it: who it is for and its
// clock as it stands at the report's Now, evaluated with its customer's
// clock (Clocks.For). Machine cases count nowhere and are left out by the
// caller (cases.SLACase).
type ReportCase struct {
	ID       uint64
	Customer string
	Plan     string
	Subject  string
	Status   Status
}

// ReportOptions say which report to build.
type ReportOptions struct {
	// Year and Month name the month, in Location.
	Year  int
	Month time.Month
	// Location is the calendar's zone, in which months begin and end;
	// nil means Clocks.Default's calendar's zone, or UTC.
	Location *time.Location
	// Now is the instant the cases were evaluated at.
	Now time.Time
	// Customer, when not "", limits the report to that customer (the
	// exact name), who is listed even without cases.
	Customer string
	// Clocks give the targets shown beside each line, also for lines
	// without cases; nil means Default().
	Clocks *Clocks
}

// Report is the service report of one month (R12).
type Report struct {
	Year  int        `json:"year"`
	Month time.Month `json:"month"`
	// Zone is the name of the zone the month is counted in; From and To
	// are the month's first instant and the next month's.
	Zone string    `json:"zone"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Now is when the cases were evaluated: open cases are figured as
	// they stood then.
	Now time.Time `json:"now"`
	// Customer is the filter ("" for every customer).
	Customer  string           `json:"customer,omitempty"`
	Customers []CustomerReport `json:"customers"`
}

// CustomerReport is one customer's month.
type CustomerReport struct {
	Customer string `json:"customer"`
	// Plan is the plan of the customer's latest case.
	Plan string `json:"plan"`
	// Incidents has a line per priority (urgent, high, medium, low, then
	// any other), every standard priority even without cases. Incidents
	// count in the month their clock started (Status.Start, R8).
	Incidents []Line `json:"incidents"`
	// Total is all priorities together; its Verdict is the month's.
	Total Line `json:"total"`
	// Questions are R10's figures.
	Questions QuestionLine `json:"questions"`
	// Changes counts the requests for change that started in the month:
	// they have no target and are in no other figure (R14).
	Changes int `json:"changes"`
	// Missed lists every target missed by a case that started in the
	// month, by case id.
	Missed []MissedCase `json:"missed"`
	// Verdict is the month's for R13: "missed" when either tier of any
	// priority's resolution target is not met (deskd's reading).
	Verdict      string       `json:"verdict"`
	Compensation Compensation `json:"compensation"`
	// History is the attainment of the HistoryMonths months ending with
	// this one, oldest first.
	History []MonthFigures `json:"history"`
}

// Line is the incident figures of one priority (or of all, Total).
type Line struct {
	Priority string `json:"priority"` // "" for Total
	// Tier1Limit and Tier2Limit are R7's targets (0 for Total).
	Tier1Limit time.Duration `json:"tier1_limit"`
	Tier2Limit time.Duration `json:"tier2_limit"`
	// Cases started in the month; Resolved of them (the clock stopped
	// for good, R11c); Open the rest, waiting on the customer included.
	Cases    int `json:"cases"`
	Resolved int `json:"resolved"`
	Open     int `json:"open"`
	// Tier1 and Tier2: resolved within the target, of the cases whose
	// outcome is known (resolved, or open and already past the target).
	Tier1 Attainment `json:"tier1"`
	Tier2 Attainment `json:"tier2"`
	// P90 and P999 are the nearest-rank 90th and 99.9th percentiles of
	// the resolved cases' resolution times, in working time (0 when none
	// was resolved).
	P90  time.Duration `json:"p90"`
	P999 time.Duration `json:"p999"`
	// FirstResponse is R9's target of the plan (FirstResponseLimit, 0
	// when the plan has none) and how many first responses met it.
	FirstResponseLimit time.Duration `json:"first_response_limit"`
	FirstResponse      Attainment    `json:"first_response"`
	// Verdict combines Tier1's and Tier2's (for Total: the month's).
	Verdict string `json:"verdict"`
}

// QuestionLine is R10: user questions and their first answer.
type QuestionLine struct {
	Cases    int `json:"cases"`
	Answered int `json:"answered"`
	Open     int `json:"open"` // not answered yet
	// Tier1 is answered within Tier1Limit (3 working days, 90%), Tier2
	// within Tier2Limit (5 working days, 100%).
	Tier1Limit time.Duration `json:"tier1_limit"`
	Tier2Limit time.Duration `json:"tier2_limit"`
	Tier1      Attainment    `json:"tier1"`
	Tier2      Attainment    `json:"tier2"`
	Verdict    string        `json:"verdict"`
}

// Attainment is one target's share: Met of Known, with Pending cases
// whose outcome is not known yet (open, not past the target) left out of
// the percentage but shown.
type Attainment struct {
	Goal    float64 `json:"goal"` // percent
	Met     int     `json:"met"`
	Known   int     `json:"known"`
	Pending int     `json:"pending"`
	// Percent is 100*Met/Known; 0 when Known is 0 (see HasPercent).
	Percent float64 `json:"percent"`
	// Verdict is "met" when the goal holds even if every pending case
	// misses, "missed" when it fails even if every pending case makes it,
	// else "pending"; "no cases" without any.
	Verdict string `json:"verdict"`
}

// HasPercent reports whether Percent means anything (Known > 0).
func (a Attainment) HasPercent() bool { return a.Known > 0 }

// MissedCase is one target one case missed.
type MissedCase struct {
	ID       uint64 `json:"id"`
	Subject  string `json:"subject"`
	Kind     string `json:"kind"`
	Priority string `json:"priority"`
	// Target is TargetFirstResponse, TargetResolution,
	// TargetResolutionTier2, TargetAnswer or TargetAnswerTier2.
	Target string        `json:"target"`
	Limit  time.Duration `json:"limit"`
	// Elapsed is the working time counted (until Now while Open); Over is
	// by how much it passed Limit.
	Elapsed time.Duration `json:"elapsed"`
	Over    time.Duration `json:"over"`
	Start   time.Time     `json:"start"`
	// Open is set while the target's clock still runs (or is paused):
	// Over still grows.
	Open bool `json:"open"`
}

// Compensation is R13's discount on the next monthly invoice.
type Compensation struct {
	// MissedMonths counts the consecutive months, ending with the
	// report's, whose Verdict is "missed", as far back as the cases go.
	MissedMonths    int `json:"missed_months"`
	DiscountPercent int `json:"discount_percent"`
}

// MonthFigures is one month of the history: all priorities together.
type MonthFigures struct {
	Year    int        `json:"year"`
	Month   time.Month `json:"month"`
	Cases   int        `json:"cases"` // incidents started in the month
	Tier1   Attainment `json:"tier1"`
	Tier2   Attainment `json:"tier2"`
	Verdict string     `json:"verdict"` // the month's, for R13
}

// CompensationDiscount is the discount due (percent) after missed
// consecutive missed months (R13). deskd's reading of "if after 3 months
// (the first meeting plus 2 follow-ups) there is no progress, the next
// monthly invoice gets 5% off, and 5% more for each further month, up to
// 50%": the first missed month calls the incident meeting, the next two
// are the monthly follow-ups; when the third consecutive month misses too
// there was no progress, and 5% is due. Each further consecutive missed
// month adds 5%, capped at 50% (the twelfth month on). A month that meets
// its targets, has no cases, or cannot be judged yet ends the run.
func CompensationDiscount(missedMonths int) int {
	if missedMonths < 3 {
		return 0
	}
	return min(5*(missedMonths-2), MaxDiscount)
}

// percentile is the nearest-rank percentile (perMille: 900 for p90, 999
// for p99.9) of sorted: the smallest value with at least that share of
// the values at or below it. 0 for none.
func percentile(sorted []time.Duration, perMille int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := (perMille*n + 999) / 1000 // ceil(perMille/1000 * n), exact
	return sorted[max(rank, 1)-1]
}

// missed reports whether t is past its target, judged on working time:
// more than Limit counted, whether the clock stopped or still runs (R11a:
// a case resolved at night after exactly its limit is within it). It is
// the clock's own rule for a stopped target; for a running one it differs
// from Target.State only at the instant Due itself.
func missed(t *Target) bool { return t.Elapsed > t.Limit }

// tally counts one target's outcomes.
type tally struct{ met, known, pending int }

// add counts t: met when done within the limit; known and not met when
// past the limit, done or not; else pending (open, outcome unknown).
func (t *tally) add(tg *Target) {
	switch {
	case tg == nil:
	case missed(tg):
		t.known++
	case tg.Done:
		t.met++
		t.known++
	default:
		t.pending++
	}
}

func (t *tally) plus(u tally) { t.met += u.met; t.known += u.known; t.pending += u.pending }

// goalPerMille is goal (percent) in tenths of a percent, so comparisons
// are exact integer arithmetic: 99.9% of 1000 cases is 999, not 998.99.
func goalPerMille(goal float64) int { return int(math.Round(goal * 10)) }

func (t tally) attainment(goal float64) Attainment {
	a := Attainment{Goal: goal, Met: t.met, Known: t.known, Pending: t.pending}
	if t.known > 0 {
		a.Percent = 100 * float64(t.met) / float64(t.known)
	}
	n, g := t.known+t.pending, goalPerMille(goal)
	switch {
	case n == 0:
		a.Verdict = VerdictNoCases
	case t.met*1000 >= g*n: // holds even if every pending case misses
		a.Verdict = VerdictMet
	case (t.met+t.pending)*1000 < g*n: // fails even if every one makes it
		a.Verdict = VerdictMissed
	default:
		a.Verdict = VerdictPending
	}
	return a
}

// combine is the verdict of several: missed if any missed, else pending
// if any pending, else met if any met, else no cases.
func combine(vs ...string) string {
	out := VerdictNoCases
	for _, v := range vs {
		switch {
		case v == VerdictMissed:
			return VerdictMissed
		case v == VerdictPending:
			out = VerdictPending
		case v == VerdictMet && out == VerdictNoCases:
			out = VerdictMet
		}
	}
	return out
}

// tiers is the resolution outcome of one priority in one month.
type tiers struct{ t1, t2 tally }

// monthTally is one customer's month: per priority, for the history and
// R13 (every month), and the incidents that started in it.
type monthTally struct {
	prio  map[string]*tiers
	cases int
}

// verdict is the month's for R13: any priority's either tier missed.
func (m *monthTally) verdict() string {
	if m == nil {
		return VerdictNoCases
	}
	var vs []string
	for _, t := range m.prio {
		vs = append(vs, t.t1.attainment(GoalTier1).Verdict, t.t2.attainment(GoalTier2).Verdict)
	}
	return combine(vs...)
}

// lineTally gathers one priority's line in the report month.
type lineTally struct {
	cases, resolved int
	tiers
	first   tally
	elapsed []time.Duration // of the resolved
}

func (l *lineTally) add(st *Status) {
	l.cases++
	l.t1.add(st.Resolution)
	l.t2.add(st.ResolutionTier2)
	l.first.add(st.FirstResponse)
	if r := st.Resolution; r != nil && r.Done {
		l.resolved++
		l.elapsed = append(l.elapsed, r.Elapsed)
	}
}

func (l *lineTally) plus(m *lineTally) {
	l.cases += m.cases
	l.resolved += m.resolved
	l.t1.plus(m.t1)
	l.t2.plus(m.t2)
	l.first.plus(m.first)
	l.elapsed = append(l.elapsed, m.elapsed...)
}

func (l *lineTally) line(priority string) Line {
	slices.Sort(l.elapsed)
	out := Line{
		Priority: priority,
		Cases:    l.cases, Resolved: l.resolved, Open: l.cases - l.resolved,
		Tier1:         l.t1.attainment(GoalTier1),
		Tier2:         l.t2.attainment(GoalTier2),
		P90:           percentile(l.elapsed, 900),
		P999:          percentile(l.elapsed, 999),
		FirstResponse: l.first.attainment(GoalFirstResponse),
	}
	out.Verdict = combine(out.Tier1.Verdict, out.Tier2.Verdict)
	return out
}

// customerTally is everything gathered for one customer in the one pass.
type customerTally struct {
	seen      bool // a case of the customer was added
	plan      string
	planStart time.Time
	planID    uint64
	months    map[int]*monthTally // by monthIndex
	lines     map[string]*lineTally
	questions struct {
		cases, answered int
		tiers
	}
	changes int
	missed  []MissedCase
}

// monthIndex numbers months consecutively: year*12 + month-1.
func monthIndex(year int, month time.Month) int { return year*12 + int(month) - 1 }

func monthOf(i int) (int, time.Month) { return i / 12, time.Month(i%12 + 1) }

// standardPriorities are R7's, in the report's order.
func standardPriorities() []string {
	return []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow}
}

// BuildReport builds the report of one month from cases evaluated at
// opts.Now (R4, R12, R13). It reads every case once: each is put in the
// month its clock started, in the zone of the calendar; the report
// month's cases give the detailed figures, every month's give the
// history and the run of missed months behind the compensation.
// Cases that started after the month are left out.
func BuildReport(opts ReportOptions, cases []ReportCase) Report {
	b := NewReportBuilder(opts)
	for i := range cases {
		b.Add(&cases[i])
	}
	return b.Report()
}

// ReportBuilder builds a report from cases added one at a time, in any
// order, keeping per customer only month tallies and the report month's
// lines, not the cases: BuildReport with the cases streamed in, so a
// caller that reads cases from a store needs no slice of all of them.
// A caller that adds only the cases that started from some month on
// asks NeedsBefore whether earlier ones could still change the report.
type ReportBuilder struct {
	opts   ReportOptions
	loc    *time.Location
	rep    Report
	this   int
	byName map[string]*customerTally
}

// NewReportBuilder starts the report opts names.
func NewReportBuilder(opts ReportOptions) *ReportBuilder {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
		if opts.Clocks != nil && opts.Clocks.Default != nil && opts.Clocks.Default.Calendar != nil {
			loc = opts.Clocks.Default.Calendar.Location()
		}
	}
	from := time.Date(opts.Year, opts.Month, 1, 0, 0, 0, 0, loc)
	b := &ReportBuilder{
		opts: opts, loc: loc,
		rep: Report{
			Year: from.Year(), Month: from.Month(), Zone: loc.String(),
			From: from, To: from.AddDate(0, 1, 0), Now: opts.Now,
			Customer: opts.Customer, Customers: []CustomerReport{},
		},
		byName: map[string]*customerTally{},
	}
	b.this = monthIndex(b.rep.Year, b.rep.Month)
	if opts.Customer != "" {
		b.get(opts.Customer)
	}
	return b
}

func (b *ReportBuilder) get(name string) *customerTally {
	ct := b.byName[name]
	if ct == nil {
		ct = &customerTally{months: map[int]*monthTally{}, lines: map[string]*lineTally{}}
		b.byName[name] = ct
	}
	return ct
}

// Add counts one case. Its Status is read during the call only (the
// report keeps copies of what it shows), so the caller may reuse c.
func (b *ReportBuilder) Add(c *ReportCase) {
	opts, loc, this := &b.opts, b.loc, b.this
	if opts.Customer != "" && c.Customer != opts.Customer {
		return
	}
	st := &c.Status
	start := st.Start.In(loc)
	m := monthIndex(start.Year(), start.Month())
	if m > this {
		return
	}
	ct := b.get(c.Customer)
	ct.seen = true
	if ct.planStart.IsZero() || st.Start.After(ct.planStart) || (st.Start.Equal(ct.planStart) && c.ID > ct.planID) {
		ct.plan, ct.planStart, ct.planID = c.Plan, st.Start, c.ID
	}
	switch st.Kind {
	case KindChange:
		// R14: counted apart, in no incident figure.
		if m == this {
			ct.changes++
		}
		return
	case KindQuestion:
		if m == this {
			q := &ct.questions
			q.cases++
			q.t1.add(st.Resolution)
			q.t2.add(st.ResolutionTier2)
			if st.Resolution != nil && st.Resolution.Done {
				q.answered++
			}
			ct.missed = appendMissed(ct.missed, c, loc)
		}
		return
	}
	mt := ct.months[m]
	if mt == nil {
		mt = &monthTally{prio: map[string]*tiers{}}
		ct.months[m] = mt
	}
	mt.cases++
	pt := mt.prio[st.Priority]
	if pt == nil {
		pt = &tiers{}
		mt.prio[st.Priority] = pt
	}
	pt.t1.add(st.Resolution)
	pt.t2.add(st.ResolutionTier2)
	if m == this {
		lt := ct.lines[st.Priority]
		if lt == nil {
			lt = &lineTally{}
			ct.lines[st.Priority] = lt
		}
		lt.add(st)
		ct.missed = appendMissed(ct.missed, c, loc)
	}
}

// NeedsBefore reports whether cases whose clock started before the month
// of from (in the report's zone) could still change the report, given
// that every case that started from that month up to the report's has
// been added (and none before it): when a listed customer's run of
// missed months (R13) reaches back to that month, or when the one
// customer the report is limited to has no case yet (its plan is its
// latest case's). The history (HistoryMonths) is only complete when
// from is at or before its first month.
func (b *ReportBuilder) NeedsBefore(from time.Time) bool {
	f := from.In(b.loc)
	lo := monthIndex(f.Year(), f.Month())
	for name, ct := range b.byName {
		if name == b.opts.Customer && !ct.seen {
			return true
		}
		m := b.this
		for m >= lo && ct.months[m].verdict() == VerdictMissed {
			m--
		}
		if m < lo {
			return true
		}
	}
	return false
}

// Report is the report of the cases added so far.
func (b *ReportBuilder) Report() Report {
	opts, rep, this := &b.opts, b.rep, b.this
	first := this - HistoryMonths + 1
	names := make([]string, 0, len(b.byName))
	for name, ct := range b.byName {
		active := name == opts.Customer
		for m := range ct.months {
			active = active || m >= first
		}
		// A month with only questions or changes still lists the customer.
		active = active || ct.questions.cases > 0 || ct.changes > 0
		if active {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	rep.Customers = make([]CustomerReport, 0, len(names))
	for _, name := range names {
		rep.Customers = append(rep.Customers, b.byName[name].report(name, this, opts.Clocks))
	}
	return rep
}

// appendMissed adds c's missed targets to list.
func appendMissed(list []MissedCase, c *ReportCase, loc *time.Location) []MissedCase {
	st := &c.Status
	for _, t := range st.Targets() {
		if !missed(t) {
			continue
		}
		list = append(list, MissedCase{
			ID: c.ID, Subject: c.Subject, Kind: st.Kind, Priority: st.Priority,
			Target: t.Name, Limit: t.Limit, Elapsed: t.Elapsed, Over: t.Elapsed - t.Limit,
			Start: st.Start.In(loc), Open: !t.Done,
		})
	}
	return list
}

func (ct *customerTally) report(name string, this int, clocks *Clocks) CustomerReport {
	targets := Default()
	if clocks != nil {
		if k := clocks.For(name); k != nil {
			targets = k.Targets
		}
	}
	cr := CustomerReport{Customer: name, Plan: ct.plan, Changes: ct.changes, Missed: ct.missed}
	if cr.Missed == nil {
		cr.Missed = []MissedCase{}
	}
	slices.SortStableFunc(cr.Missed, func(a, b MissedCase) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	frLimit, _ := targets.FirstResponseFor(ct.plan)

	// Incident lines: the standard priorities, then any other seen.
	prios := standardPriorities()
	var extra []string
	for p := range ct.lines {
		if !slices.Contains(prios, p) {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	var total lineTally
	for _, p := range append(prios, extra...) {
		lt := ct.lines[p]
		if lt == nil {
			lt = &lineTally{}
		}
		total.plus(lt)
		l := lt.line(p)
		tier := targets.Resolution[p]
		l.Tier1Limit, l.Tier2Limit, l.FirstResponseLimit = tier.Tier1, tier.Tier2, frLimit
		cr.Incidents = append(cr.Incidents, l)
	}
	cr.Total = total.line("")
	cr.Total.FirstResponseLimit = frLimit

	q := &ct.questions
	cr.Questions = QuestionLine{
		Cases: q.cases, Answered: q.answered, Open: q.cases - q.answered,
		Tier1Limit: targets.Question.Tier1, Tier2Limit: targets.Question.Tier2,
		Tier1: q.t1.attainment(GoalAnswer), Tier2: q.t2.attainment(GoalAnswer2),
	}
	cr.Questions.Verdict = combine(cr.Questions.Tier1.Verdict, cr.Questions.Tier2.Verdict)

	// R13: the month misses when any priority's either tier does.
	cr.Verdict = ct.months[this].verdict()
	cr.Total.Verdict = cr.Verdict

	// The run of missed months ending with this one, as far back as the
	// cases go (a month without cases ends it).
	run := 0
	for m := this; ct.months[m].verdict() == VerdictMissed; m-- {
		run++
	}
	cr.Compensation = Compensation{MissedMonths: run, DiscountPercent: CompensationDiscount(run)}

	for m := this - HistoryMonths + 1; m <= this; m++ {
		y, mo := monthOf(m)
		f := MonthFigures{Year: y, Month: mo}
		var t1, t2 tally
		if mt := ct.months[m]; mt != nil {
			f.Cases = mt.cases
			for _, pt := range mt.prio {
				t1.plus(pt.t1)
				t2.plus(pt.t2)
			}
		}
		f.Tier1, f.Tier2 = t1.attainment(GoalTier1), t2.attainment(GoalTier2)
		f.Verdict = ct.months[m].verdict()
		cr.History = append(cr.History, f)
	}
	return cr
}
