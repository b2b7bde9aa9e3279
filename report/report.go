// Package report renders a month's service report (sla.Report: R4, R12,
// R13) for the people and programs that read it: aligned text for a
// terminal, CSV for a spreadsheet, JSON for other programs, and one
// self-contained HTML page (inline CSS and SVG, no external resources)
// that can be sent to a customer. It owns the presentation only; the
// figures are sla's. Instants are shown in the SLA's zone, working time
// in working days of 9 hours (R11a).
package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"deskd/sla"
)

// Format is an output format.
type Format string

// The formats.
const (
	Text Format = "text"
	CSV  Format = "csv"
	JSON Format = "json"
	HTML Format = "html"
)

// Formats lists the formats, for usage text and errors.
func Formats() []Format { return []Format{Text, CSV, JSON, HTML} }

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (text, csv, json or html)", s)
}

// Options shape the rendering.
type Options struct {
	// Location is the zone instants are shown in; nil means the report's
	// own Zone, or UTC when that does not load.
	Location *time.Location
	// Supplier names the service desk in titles ("" = "Service desk").
	Supplier string
}

// Render writes r to w in format f.
func Render(w io.Writer, f Format, r *sla.Report, opts Options) error {
	v := newView(r, opts)
	switch f {
	case Text:
		return renderText(w, v)
	case CSV:
		return renderCSV(w, v)
	case JSON:
		return renderJSON(w, v)
	case HTML:
		return renderHTML(w, v)
	}
	return fmt.Errorf("unknown format %q", f)
}

// Subject is a one-line title for r, fit for a mail subject.
func Subject(r *sla.Report, supplier string) string {
	v := newView(r, Options{Supplier: supplier})
	who := "all customers"
	if r.Customer != "" {
		who = r.Customer
	}
	return fmt.Sprintf("%s: service report %s, %s", v.Supplier, v.MonthName, clean(who))
}

// FormatWorking shows a working time: "45m", "4h", "4h30m", "1d 2h05m",
// "65d", where d is a working day of 9 working hours (R11a). It rounds to
// the minute.
func FormatWorking(d time.Duration) string {
	if d < 0 {
		return "-" + FormatWorking(-d)
	}
	d = d.Round(time.Minute)
	days, rest := d/sla.WorkingDay, d%sla.WorkingDay
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%dd", days))
	}
	switch {
	case h > 0 && m > 0:
		parts = append(parts, fmt.Sprintf("%dh%02dm", h, m))
	case h > 0:
		parts = append(parts, fmt.Sprintf("%dh", h))
	case m > 0 || days == 0:
		parts = append(parts, fmt.Sprintf("%dm", m))
	}
	return strings.Join(parts, " ")
}

// legend explains the durations, in every human format.
const legend = "Working time: Monday to Friday 08:00-17:00 except public holidays (R11); d = a working day of 9 working hours."

// ---- the view: what every format shows, computed once ----

type view struct {
	r         *sla.Report
	loc       *time.Location
	Supplier  string
	MonthName string // "May 2025"
	MonthID   string // "2025-05"
	From, To  time.Time
	Now       time.Time
}

func newView(r *sla.Report, opts Options) *view {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
		if l, err := time.LoadLocation(r.Zone); err == nil && r.Zone != "" {
			loc = l
		}
	}
	supplier := strings.TrimSpace(opts.Supplier)
	if supplier == "" {
		supplier = "Service desk"
	}
	return &view{
		r: r, loc: loc, Supplier: clean(supplier),
		MonthName: fmt.Sprintf("%s %d", r.Month, r.Year),
		MonthID:   fmt.Sprintf("%04d-%02d", r.Year, int(r.Month)),
		From:      r.From.In(loc), To: r.To.In(loc), Now: r.Now.In(loc),
	}
}

// lastDay is the month's last day, for "1 to 31 May".
func (v *view) lastDay() time.Time { return v.To.AddDate(0, 0, -1) }

func (v *view) periodText() string {
	return fmt.Sprintf("%s to %s (%s)", v.From.Format("2006-01-02"), v.lastDay().Format("2006-01-02"), v.loc)
}

// clean makes text from a mail (a subject, a name) safe for one line of
// any format: control characters become spaces.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}

// cut shortens s to n runes for a table cell.
func cut(s string, n int) string {
	s = clean(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// percentText is "87.5%", or "-" when no outcome is known.
func percentText(a sla.Attainment) string {
	if !a.HasPercent() {
		return "-"
	}
	return strconv.FormatFloat(a.Percent, 'f', 1, 64) + "%"
}

// goalText is "90%", "99.9%".
func goalText(g float64) string { return strconv.FormatFloat(g, 'f', -1, 64) + "%" }

// countText is "9/10", with the pending cases: "9/10 +2".
func countText(a sla.Attainment) string {
	s := fmt.Sprintf("%d/%d", a.Met, a.Known)
	if a.Pending > 0 {
		s += fmt.Sprintf(" +%d", a.Pending)
	}
	return s
}

// targetName names a target for people.
func targetName(name string) string {
	switch name {
	case sla.TargetFirstResponse:
		return "first response (R9)"
	case sla.TargetResolution:
		return "resolution, 90% tier (R7)"
	case sla.TargetResolutionTier2:
		return "resolution, 99.9% tier (R7)"
	case sla.TargetAnswer:
		return "answer, 90% tier (R10)"
	case sla.TargetAnswerTier2:
		return "answer, 100% tier (R10)"
	}
	return name
}

func limitText(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return FormatWorking(d)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// compensationText is R13's line.
func compensationText(c sla.CustomerReport) string {
	n := c.Compensation.MissedMonths
	months := "months"
	if n == 1 {
		months = "month"
	}
	switch {
	case n == 0:
		return fmt.Sprintf("Resolution targets this month (R13): %s. No run of missed months: no discount due.", c.Verdict)
	case c.Compensation.DiscountPercent == 0:
		return fmt.Sprintf("Resolution targets missed %d %s in a row (R13): an incident meeting and monthly follow-ups; no discount due yet (from the 3rd month on).", n, months)
	}
	return fmt.Sprintf("Resolution targets missed %d months in a row (R13): %d%% discount due on the next monthly invoice (5%% from the 3rd month, 5%% more per further month, at most %d%%).",
		n, c.Compensation.DiscountPercent, sla.MaxDiscount)
}

// ---- text ----

func renderText(w io.Writer, v *view) error {
	var b bytes.Buffer
	r := v.r
	fmt.Fprintf(&b, "%s: service report %s\n", v.Supplier, v.MonthName)
	fmt.Fprintf(&b, "Period %s; figures as of %s.\n", v.periodText(), v.Now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "%s\n", legend)
	fmt.Fprintf(&b, "Tiers count the cases with a known outcome; \"+N\" are open cases not past the target yet (pending).\n")
	if len(r.Customers) == 0 {
		fmt.Fprintf(&b, "\nNo cases in %s.\n", v.MonthName)
	}
	for _, c := range r.Customers {
		fmt.Fprintf(&b, "\n== %s (%s): %s ==\n\n", clean(c.Customer), orDash(c.Plan), c.Verdict)
		fmt.Fprintf(&b, "Incidents (R7: 90%% within tier 1, 99.9%% within tier 2; R9: first response within %s)\n", limitText(c.Total.FirstResponseLimit))
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRIORITY\tCASES\tRESOLVED\tOPEN\tTIER 1\tWITHIN\t%\tTIER 2\tWITHIN\t%\tP90\tP99.9\tFIRST RESPONSE\t%\tVERDICT")
		for _, l := range append(c.Incidents, c.Total) {
			prio := l.Priority
			if prio == "" {
				prio = "all"
			}
			p90, p999 := "-", "-"
			if l.Resolved > 0 {
				p90, p999 = FormatWorking(l.P90), FormatWorking(l.P999)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prio, l.Cases, l.Resolved, l.Open,
				limitText(l.Tier1Limit), countText(l.Tier1), percentText(l.Tier1),
				limitText(l.Tier2Limit), countText(l.Tier2), percentText(l.Tier2),
				p90, p999, countText(l.FirstResponse), percentText(l.FirstResponse), l.Verdict)
		}
		tw.Flush()

		q := c.Questions
		fmt.Fprintf(&b, "\nQuestions (R10): asked %d, answered %d, waiting for an answer %d\n", q.Cases, q.Answered, q.Open)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ANSWERED WITHIN\tGOAL\tWITHIN\t%\tVERDICT")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", limitText(q.Tier1Limit), goalText(q.Tier1.Goal), countText(q.Tier1), percentText(q.Tier1), q.Tier1.Verdict)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", limitText(q.Tier2Limit), goalText(q.Tier2.Goal), countText(q.Tier2), percentText(q.Tier2), q.Tier2.Verdict)
		tw.Flush()
		fmt.Fprintf(&b, "\nChange requests (R14, in none of the figures above): %d\n", c.Changes)

		fmt.Fprintf(&b, "\nMissed targets: %d\n", len(c.Missed))
		if len(c.Missed) > 0 {
			tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CASE\tKIND\tPRIORITY\tTARGET\tLIMIT\tTOOK\tOVER BY\tSUBJECT")
			for _, m := range c.Missed {
				took := FormatWorking(m.Elapsed)
				if m.Open {
					took += " (open)"
				}
				fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Kind, m.Priority, targetName(m.Target),
					limitText(m.Limit), took, FormatWorking(m.Over), cut(m.Subject, 60))
			}
			tw.Flush()
		}

		fmt.Fprintf(&b, "\nAttainment, last %d months (incidents, all priorities)\n", len(c.History))
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MONTH\tCASES\tTIER 1\t%\tTIER 2\t%\tVERDICT")
		for _, h := range c.History {
			fmt.Fprintf(tw, "%04d-%02d\t%d\t%s\t%s\t%s\t%s\t%s\n", h.Year, int(h.Month), h.Cases,
				countText(h.Tier1), percentText(h.Tier1), countText(h.Tier2), percentText(h.Tier2), h.Verdict)
		}
		tw.Flush()
		fmt.Fprintf(&b, "\n%s\n", compensationText(c))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ---- CSV ----

// csvHeader names every column; each section fills the ones it has.
func csvHeader() []string {
	return []string{
		"section", "customer", "plan", "month", "priority",
		"cases", "resolved", "open",
		"tier1_limit_seconds", "tier1_met", "tier1_known", "tier1_pending", "tier1_percent", "tier1_goal_percent", "tier1_verdict",
		"tier2_limit_seconds", "tier2_met", "tier2_known", "tier2_pending", "tier2_percent", "tier2_goal_percent", "tier2_verdict",
		"p90_seconds", "p999_seconds",
		"first_response_limit_seconds", "first_response_met", "first_response_known", "first_response_pending", "first_response_percent", "first_response_verdict",
		"verdict",
		"case_id", "kind", "subject", "target", "limit_seconds", "elapsed_seconds", "over_seconds", "still_open",
		"missed_months", "discount_percent",
	}
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// csvPercent is the share with two decimals, "" when unknown.
func csvPercent(a sla.Attainment) string {
	if !a.HasPercent() {
		return ""
	}
	return strconv.FormatFloat(a.Percent, 'f', 2, 64)
}

func csvGoal(g float64) string { return strconv.FormatFloat(g, 'f', -1, 64) }

func renderCSV(w io.Writer, v *view) error {
	header := csvHeader()
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	var rows [][]string
	row := func(section string, c *sla.CustomerReport, month string, set map[string]string) {
		rec := make([]string, len(header))
		rec[0], rec[1], rec[2], rec[3] = section, clean(c.Customer), c.Plan, month
		for k, val := range set {
			i, ok := col[k]
			if !ok {
				panic("report: no CSV column " + k)
			}
			rec[i] = val
		}
		rows = append(rows, rec)
	}
	tier := func(set map[string]string, prefix string, limit time.Duration, a sla.Attainment) {
		set[prefix+"_limit_seconds"] = seconds(limit)
		set[prefix+"_met"] = strconv.Itoa(a.Met)
		set[prefix+"_known"] = strconv.Itoa(a.Known)
		set[prefix+"_pending"] = strconv.Itoa(a.Pending)
		set[prefix+"_percent"] = csvPercent(a)
		if prefix != "first_response" {
			set[prefix+"_goal_percent"] = csvGoal(a.Goal)
		}
		set[prefix+"_verdict"] = a.Verdict
	}
	for i := range v.r.Customers {
		c := &v.r.Customers[i]
		for _, l := range append(c.Incidents, c.Total) {
			prio := l.Priority
			if prio == "" {
				prio = "all"
			}
			set := map[string]string{
				"priority": prio, "cases": strconv.Itoa(l.Cases), "resolved": strconv.Itoa(l.Resolved), "open": strconv.Itoa(l.Open),
				"p90_seconds": seconds(l.P90), "p999_seconds": seconds(l.P999), "verdict": l.Verdict,
			}
			if l.Resolved == 0 {
				set["p90_seconds"], set["p999_seconds"] = "", ""
			}
			tier(set, "tier1", l.Tier1Limit, l.Tier1)
			tier(set, "tier2", l.Tier2Limit, l.Tier2)
			tier(set, "first_response", l.FirstResponseLimit, l.FirstResponse)
			if l.Priority == "" {
				set["tier1_limit_seconds"], set["tier2_limit_seconds"] = "", ""
			}
			row("incidents", c, v.MonthID, set)
		}
		q := c.Questions
		set := map[string]string{"cases": strconv.Itoa(q.Cases), "resolved": strconv.Itoa(q.Answered), "open": strconv.Itoa(q.Open), "verdict": q.Verdict}
		tier(set, "tier1", q.Tier1Limit, q.Tier1)
		tier(set, "tier2", q.Tier2Limit, q.Tier2)
		row("questions", c, v.MonthID, set)
		row("changes", c, v.MonthID, map[string]string{"cases": strconv.Itoa(c.Changes)})
		for _, m := range c.Missed {
			row("missed", c, v.MonthID, map[string]string{
				"priority": m.Priority, "case_id": strconv.FormatUint(m.ID, 10), "kind": m.Kind, "subject": clean(m.Subject),
				"target": m.Target, "limit_seconds": seconds(m.Limit), "elapsed_seconds": seconds(m.Elapsed),
				"over_seconds": seconds(m.Over), "still_open": strconv.FormatBool(m.Open),
			})
		}
		for _, h := range c.History {
			set := map[string]string{"cases": strconv.Itoa(h.Cases), "verdict": h.Verdict}
			tier(set, "tier1", 0, h.Tier1)
			tier(set, "tier2", 0, h.Tier2)
			set["tier1_limit_seconds"], set["tier2_limit_seconds"] = "", ""
			row("history", c, fmt.Sprintf("%04d-%02d", h.Year, int(h.Month)), set)
		}
		row("compensation", c, v.MonthID, map[string]string{
			"verdict":       c.Verdict,
			"missed_months": strconv.Itoa(c.Compensation.MissedMonths), "discount_percent": strconv.Itoa(c.Compensation.DiscountPercent),
		})
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

// ---- JSON ----

// The JSON document's field names are a stable interface: add fields,
// never rename. Instants are RFC 3339 in the SLA's zone; durations are
// {"seconds": n, "text": "1d 2h"}; a share without known outcomes is null.

type jsonDuration struct {
	Seconds int64  `json:"seconds"`
	Text    string `json:"text"`
}

func jdur(d time.Duration) jsonDuration {
	return jsonDuration{Seconds: int64(d / time.Second), Text: FormatWorking(d)}
}

func jdurOpt(d time.Duration, ok bool) *jsonDuration {
	if !ok {
		return nil
	}
	j := jdur(d)
	return &j
}

type jsonAttainment struct {
	Met         int      `json:"met"`
	Known       int      `json:"known"`
	Pending     int      `json:"pending"`
	Percent     *float64 `json:"percent"`
	GoalPercent float64  `json:"goal_percent"`
	Verdict     string   `json:"verdict"`
}

func jatt(a sla.Attainment) jsonAttainment {
	j := jsonAttainment{Met: a.Met, Known: a.Known, Pending: a.Pending, GoalPercent: a.Goal, Verdict: a.Verdict}
	if a.HasPercent() {
		p := math.Round(a.Percent*100) / 100
		j.Percent = &p
	}
	return j
}

type jsonLine struct {
	Priority           string         `json:"priority"`
	Cases              int            `json:"cases"`
	Resolved           int            `json:"resolved"`
	Open               int            `json:"open"`
	Tier1Limit         *jsonDuration  `json:"tier1_limit"`
	Tier1              jsonAttainment `json:"tier1"`
	Tier2Limit         *jsonDuration  `json:"tier2_limit"`
	Tier2              jsonAttainment `json:"tier2"`
	P90                *jsonDuration  `json:"p90"`
	P999               *jsonDuration  `json:"p99_9"`
	FirstResponseLimit *jsonDuration  `json:"first_response_limit"`
	FirstResponse      jsonAttainment `json:"first_response"`
	Verdict            string         `json:"verdict"`
}

func jline(l sla.Line) jsonLine {
	prio := l.Priority
	if prio == "" {
		prio = "all"
	}
	return jsonLine{
		Priority: prio, Cases: l.Cases, Resolved: l.Resolved, Open: l.Open,
		Tier1Limit: jdurOpt(l.Tier1Limit, l.Tier1Limit > 0), Tier1: jatt(l.Tier1),
		Tier2Limit: jdurOpt(l.Tier2Limit, l.Tier2Limit > 0), Tier2: jatt(l.Tier2),
		P90: jdurOpt(l.P90, l.Resolved > 0), P999: jdurOpt(l.P999, l.Resolved > 0),
		FirstResponseLimit: jdurOpt(l.FirstResponseLimit, l.FirstResponseLimit > 0), FirstResponse: jatt(l.FirstResponse),
		Verdict: l.Verdict,
	}
}

type jsonQuestions struct {
	Cases      int            `json:"cases"`
	Answered   int            `json:"answered"`
	Open       int            `json:"open"`
	Tier1Limit jsonDuration   `json:"tier1_limit"`
	Tier1      jsonAttainment `json:"tier1"`
	Tier2Limit jsonDuration   `json:"tier2_limit"`
	Tier2      jsonAttainment `json:"tier2"`
	Verdict    string         `json:"verdict"`
}

type jsonMissed struct {
	ID       uint64       `json:"id"`
	Subject  string       `json:"subject"`
	Kind     string       `json:"kind"`
	Priority string       `json:"priority"`
	Target   string       `json:"target"`
	Limit    jsonDuration `json:"limit"`
	Elapsed  jsonDuration `json:"elapsed"`
	Over     jsonDuration `json:"over"`
	Start    string       `json:"start"`
	Open     bool         `json:"open"`
}

type jsonMonth struct {
	Month   string         `json:"month"` // "2025-05"
	Cases   int            `json:"cases"`
	Tier1   jsonAttainment `json:"tier1"`
	Tier2   jsonAttainment `json:"tier2"`
	Verdict string         `json:"verdict"`
}

type jsonCustomer struct {
	Customer     string           `json:"customer"`
	Plan         string           `json:"plan"`
	Verdict      string           `json:"verdict"`
	Incidents    []jsonLine       `json:"incidents"`
	Total        jsonLine         `json:"total"`
	Questions    jsonQuestions    `json:"questions"`
	Changes      int              `json:"changes"`
	Missed       []jsonMissed     `json:"missed"`
	Compensation sla.Compensation `json:"compensation"`
	History      []jsonMonth      `json:"history"`
}

type jsonReport struct {
	FormatVersion int            `json:"format_version"`
	Supplier      string         `json:"supplier"`
	Month         string         `json:"month"` // "2025-05"
	Zone          string         `json:"zone"`
	From          string         `json:"from"`
	To            string         `json:"to"`
	AsOf          string         `json:"as_of"`
	Customer      string         `json:"customer,omitempty"`
	Customers     []jsonCustomer `json:"customers"`
}

func renderJSON(w io.Writer, v *view) error {
	r := v.r
	rfc := func(t time.Time) string { return t.In(v.loc).Format(time.RFC3339) }
	doc := jsonReport{
		FormatVersion: 1, Supplier: v.Supplier, Month: v.MonthID, Zone: v.loc.String(),
		From: rfc(r.From), To: rfc(r.To), AsOf: rfc(r.Now), Customer: r.Customer,
		Customers: []jsonCustomer{},
	}
	for _, c := range r.Customers {
		jc := jsonCustomer{
			Customer: c.Customer, Plan: c.Plan, Verdict: c.Verdict, Total: jline(c.Total), Changes: c.Changes,
			Compensation: c.Compensation, Missed: []jsonMissed{}, Incidents: []jsonLine{},
			Questions: jsonQuestions{
				Cases: c.Questions.Cases, Answered: c.Questions.Answered, Open: c.Questions.Open,
				Tier1Limit: jdur(c.Questions.Tier1Limit), Tier1: jatt(c.Questions.Tier1),
				Tier2Limit: jdur(c.Questions.Tier2Limit), Tier2: jatt(c.Questions.Tier2),
				Verdict: c.Questions.Verdict,
			},
		}
		for _, l := range c.Incidents {
			jc.Incidents = append(jc.Incidents, jline(l))
		}
		for _, m := range c.Missed {
			jc.Missed = append(jc.Missed, jsonMissed{
				ID: m.ID, Subject: clean(m.Subject), Kind: m.Kind, Priority: m.Priority, Target: m.Target,
				Limit: jdur(m.Limit), Elapsed: jdur(m.Elapsed), Over: jdur(m.Over), Start: rfc(m.Start), Open: m.Open,
			})
		}
		for _, h := range c.History {
			jc.History = append(jc.History, jsonMonth{
				Month: fmt.Sprintf("%04d-%02d", h.Year, int(h.Month)), Cases: h.Cases,
				Tier1: jatt(h.Tier1), Tier2: jatt(h.Tier2), Verdict: h.Verdict,
			})
		}
		doc.Customers = append(doc.Customers, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// ---- HTML ----

// chart is the SVG of one customer's 12 months: tier-1 attainment as
// bars, tier 2 as a line, with the 90% and 99.9% goals (R7) as dashed
// lines. Coordinates are computed here; the template only prints them.
type chart struct {
	Width, Height int
	Label         string
	Bars          []chartBar
	Line          []string // polyline points, one string per unbroken run
	Dots          []chartDot
	Goals         []chartGoal
	Ticks         []chartTick
	Months        []chartMonth
	PlotLeft      int
	PlotRight     int
	Baseline      string
}

type chartBar struct{ X, Y, W, H, Text, TextX, TextY string }
type chartDot struct{ X, Y string }
type chartGoal struct{ Y, Label, LabelY string }
type chartTick struct{ Y, Label, LabelY string }
type chartMonth struct{ X, Label string }

const (
	chartW, chartH             = 720, 250
	plotL, plotR, plotT, plotB = 52, 620, 16, 210
)

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func newChart(c sla.CustomerReport) chart {
	ch := chart{Width: chartW, Height: chartH, PlotLeft: plotL, PlotRight: plotR, Baseline: f1(plotB),
		Label: fmt.Sprintf("Attainment of %s over the last %d months: tier 1 as bars, tier 2 as a line, goals 90%% and 99.9%%", clean(c.Customer), len(c.History))}
	y := func(p float64) float64 { return plotB - (plotB-plotT)*p/100 }
	for _, p := range []float64{0, 50, 100} {
		ch.Ticks = append(ch.Ticks, chartTick{Y: f1(y(p)), Label: fmt.Sprintf("%.0f%%", p), LabelY: f1(y(p) + 4)})
	}
	ch.Goals = []chartGoal{
		{Y: f1(y(sla.GoalTier1)), Label: "90% goal (tier 1)", LabelY: f1(y(sla.GoalTier1) + 4)},
		{Y: f1(y(sla.GoalTier2)), Label: "99.9% goal (tier 2)", LabelY: f1(y(sla.GoalTier2) - 2)},
	}
	n := len(c.History)
	if n == 0 {
		return ch
	}
	slot := float64(plotR-plotL) / float64(n)
	var run []string
	for i, h := range c.History {
		x0 := float64(plotL) + slot*float64(i)
		mid := x0 + slot/2
		label := h.Month.String()[:3]
		if i == 0 || h.Month == time.January {
			label += fmt.Sprintf(" %d", h.Year)
		}
		ch.Months = append(ch.Months, chartMonth{X: f1(mid), Label: label})
		if h.Tier1.HasPercent() {
			top := y(h.Tier1.Percent)
			ch.Bars = append(ch.Bars, chartBar{
				X: f1(mid - slot*0.3), Y: f1(top), W: f1(slot * 0.6), H: f1(plotB - top),
				Text: fmt.Sprintf("%.0f", h.Tier1.Percent), TextX: f1(mid), TextY: f1(math.Min(top-3, plotB-3)),
			})
		}
		if h.Tier2.HasPercent() {
			p := f1(mid) + "," + f1(y(h.Tier2.Percent))
			run = append(run, p)
			ch.Dots = append(ch.Dots, chartDot{X: f1(mid), Y: f1(y(h.Tier2.Percent))})
		} else if len(run) > 0 {
			ch.Line = append(ch.Line, strings.Join(run, " "))
			run = nil
		}
	}
	if len(run) > 0 {
		ch.Line = append(ch.Line, strings.Join(run, " "))
	}
	return ch
}

type htmlAtt struct {
	Count, Percent, Goal, Verdict string
}

func hatt(a sla.Attainment) htmlAtt {
	return htmlAtt{Count: countText(a), Percent: percentText(a), Goal: goalText(a.Goal), Verdict: a.Verdict}
}

type htmlLine struct {
	Priority, Tier1Limit, Tier2Limit, P90, P999 string
	Cases, Resolved, Open                       int
	Tier1, Tier2, FirstResponse                 htmlAtt
	Verdict                                     string
	Total                                       bool
}

type htmlMissed struct {
	ID                                                 uint64
	Kind, Priority, Target, Limit, Took, Over, Subject string
	Start                                              string
}

type htmlMonth struct {
	Month        string
	Cases        int
	Tier1, Tier2 htmlAtt
	Verdict      string
}

type htmlCustomer struct {
	Name, Plan, Verdict, FirstResponseLimit string
	Lines                                   []htmlLine
	Questions                               sla.QuestionLine
	Q1, Q2                                  htmlAtt
	Q1Limit, Q2Limit                        string
	Changes                                 int
	Missed                                  []htmlMissed
	History                                 []htmlMonth
	Chart                                   chart
	Compensation                            string
	Discount                                int
}

type htmlPage struct {
	Title, Supplier, MonthName, Period, AsOf, Legend string
	Customers                                        []htmlCustomer
}

func renderHTML(w io.Writer, v *view) error {
	page := htmlPage{
		Title:    fmt.Sprintf("Service report %s", v.MonthName),
		Supplier: v.Supplier, MonthName: v.MonthName, Period: v.periodText(),
		AsOf: v.Now.Format("2006-01-02 15:04 MST"), Legend: legend,
	}
	if v.r.Customer != "" {
		page.Title += " – " + clean(v.r.Customer)
	}
	for _, c := range v.r.Customers {
		hc := htmlCustomer{
			Name: clean(c.Customer), Plan: orDash(c.Plan), Verdict: c.Verdict,
			FirstResponseLimit: limitText(c.Total.FirstResponseLimit),
			Questions:          c.Questions, Q1: hatt(c.Questions.Tier1), Q2: hatt(c.Questions.Tier2),
			Q1Limit: limitText(c.Questions.Tier1Limit), Q2Limit: limitText(c.Questions.Tier2Limit),
			Changes: c.Changes, Chart: newChart(c), Compensation: compensationText(c),
			Discount: c.Compensation.DiscountPercent,
		}
		for _, l := range append(c.Incidents, c.Total) {
			hl := htmlLine{
				Priority: l.Priority, Tier1Limit: limitText(l.Tier1Limit), Tier2Limit: limitText(l.Tier2Limit),
				P90: "-", P999: "-", Cases: l.Cases, Resolved: l.Resolved, Open: l.Open,
				Tier1: hatt(l.Tier1), Tier2: hatt(l.Tier2), FirstResponse: hatt(l.FirstResponse), Verdict: l.Verdict,
			}
			if l.Priority == "" {
				hl.Priority, hl.Total = "all priorities", true
			}
			if l.Resolved > 0 {
				hl.P90, hl.P999 = FormatWorking(l.P90), FormatWorking(l.P999)
			}
			hc.Lines = append(hc.Lines, hl)
		}
		for _, m := range c.Missed {
			took := FormatWorking(m.Elapsed)
			if m.Open {
				took += " (still open)"
			}
			hc.Missed = append(hc.Missed, htmlMissed{
				ID: m.ID, Kind: m.Kind, Priority: m.Priority, Target: targetName(m.Target), Limit: limitText(m.Limit),
				Took: took, Over: FormatWorking(m.Over), Subject: clean(m.Subject), Start: m.Start.In(v.loc).Format("2006-01-02 15:04"),
			})
		}
		for _, h := range c.History {
			hc.History = append(hc.History, htmlMonth{
				Month: fmt.Sprintf("%s %d", h.Month.String()[:3], h.Year), Cases: h.Cases,
				Tier1: hatt(h.Tier1), Tier2: hatt(h.Tier2), Verdict: h.Verdict,
			})
		}
		page.Customers = append(page.Customers, hc)
	}
	t, err := template.New("report").Funcs(template.FuncMap{
		"vclass": func(v string) string { return "v-" + strings.ReplaceAll(v, " ", "-") },
	}).Parse(htmlTemplate)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, page); err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

// htmlTemplate is the page: no script, no external resource, so that it
// shows the same in a browser, a mail client and a saved file.
const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2733;margin:0;background:#f4f6f8}
main{max-width:1100px;margin:0 auto;padding:24px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:2px 0;color:#4a5866;font-size:14px}
section.customer{background:#fff;border:1px solid #dbe1e7;border-radius:6px;padding:16px 20px;margin:20px 0}
h2{margin:0 0 12px;font-size:20px}
h3{margin:18px 0 8px;font-size:16px}
.plan{color:#4a5866;font-weight:normal}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 6px;border-bottom:1px solid #e6eaee;text-align:right;white-space:nowrap}
th{background:#f0f3f6;font-weight:600}
th:first-child,td:first-child,td.text,th.text{text-align:left}
.scroll{overflow-x:auto}
td.text{white-space:normal}
tr.total td{font-weight:600;border-top:2px solid #c5ced6}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.v-met{background:#dff3e4;color:#17692f}
.v-missed{background:#fbe1e1;color:#9b1c1c}
.v-pending{background:#fdf1d6;color:#875a00}
.v-no-cases{background:#eceff2;color:#56626e}
.pending{color:#875a00}
p.compensation{padding:10px 12px;border-radius:6px;background:#f0f3f6}
p.compensation.due{background:#fbe1e1}
svg{max-width:100%;height:auto;font-size:11px}
.bar{fill:#3d7cc9}
.line{fill:none;stroke:#d9822b;stroke-width:2}
.dot{fill:#d9822b}
.goal{stroke:#9b1c1c;stroke-dasharray:5 4;stroke-width:1}
.axis{stroke:#9aa6b2;stroke-width:1}
.grid{stroke:#e6eaee;stroke-width:1}
.key{font-size:12px;color:#4a5866}
.key span{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 4px 0 12px}
footer{color:#4a5866;font-size:12px;margin-top:24px}
</style>
</head>
<body>
<main>
<header>
<h1>{{.Title}}</h1>
<p>{{.Supplier}} · period {{.Period}}</p>
<p>Figures as of {{.AsOf}}. Tiers count the cases with a known outcome; <span class="pending">+N</span> are open cases not past their target yet.</p>
</header>
{{if not .Customers}}<section class="customer"><p>No cases in {{.MonthName}}.</p></section>{{end}}
{{range .Customers}}{{$ch := .Chart}}
<section class="customer">
<h2>{{.Name}} <span class="plan">({{.Plan}})</span> <span class="verdict {{vclass .Verdict}}">{{.Verdict}}</span></h2>
<h3>Incidents</h3>
<div class="scroll"><table>
<thead><tr><th>Priority</th><th>Cases</th><th>Resolved</th><th>Open</th><th>90% within</th><th>Within</th><th>%</th><th>99.9% within</th><th>Within</th><th>%</th><th>P90</th><th>P99.9</th><th>First response ≤ {{.FirstResponseLimit}}</th><th>%</th><th>Verdict</th></tr></thead>
<tbody>
{{range .Lines}}<tr{{if .Total}} class="total"{{end}}><td>{{.Priority}}</td><td>{{.Cases}}</td><td>{{.Resolved}}</td><td>{{.Open}}</td><td>{{.Tier1Limit}}</td><td>{{.Tier1.Count}}</td><td>{{.Tier1.Percent}}</td><td>{{.Tier2Limit}}</td><td>{{.Tier2.Count}}</td><td>{{.Tier2.Percent}}</td><td>{{.P90}}</td><td>{{.P999}}</td><td>{{.FirstResponse.Count}}</td><td>{{.FirstResponse.Percent}}</td><td><span class="verdict {{vclass .Verdict}}">{{.Verdict}}</span></td></tr>
{{end}}</tbody>
</table></div>
<h3>Questions</h3>
<table>
<thead><tr><th>Answered within</th><th>Goal</th><th>Within</th><th>%</th><th>Verdict</th></tr></thead>
<tbody>
<tr><td>{{.Q1Limit}}</td><td>{{.Q1.Goal}}</td><td>{{.Q1.Count}}</td><td>{{.Q1.Percent}}</td><td><span class="verdict {{vclass .Q1.Verdict}}">{{.Q1.Verdict}}</span></td></tr>
<tr><td>{{.Q2Limit}}</td><td>{{.Q2.Goal}}</td><td>{{.Q2.Count}}</td><td>{{.Q2.Percent}}</td><td><span class="verdict {{vclass .Q2.Verdict}}">{{.Q2.Verdict}}</span></td></tr>
</tbody>
</table>
<p>Questions asked: {{.Questions.Cases}}; answered: {{.Questions.Answered}}; waiting for an answer: {{.Questions.Open}}. Change requests: {{.Changes}} (they have no resolution target and are in none of the figures above).</p>
<h3>Attainment over the last 12 months</h3>
<svg role="img" aria-label="{{.Chart.Label}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" width="{{.Chart.Width}}" height="{{.Chart.Height}}">
{{range .Chart.Ticks}}<line class="grid" x1="{{$ch.PlotLeft}}" x2="{{$ch.PlotRight}}" y1="{{.Y}}" y2="{{.Y}}"/>
<text x="46" y="{{.LabelY}}" text-anchor="end" fill="#4a5866">{{.Label}}</text>
{{end}}{{range .Chart.Bars}}<rect class="bar" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>
<text x="{{.TextX}}" y="{{.TextY}}" text-anchor="middle" fill="#1d2733">{{.Text}}</text>
{{end}}{{range .Chart.Goals}}<line class="goal" x1="{{$ch.PlotLeft}}" x2="{{$ch.PlotRight}}" y1="{{.Y}}" y2="{{.Y}}"/>
<text x="626" y="{{.LabelY}}" fill="#9b1c1c">{{.Label}}</text>
{{end}}{{range .Chart.Line}}<polyline class="line" points="{{.}}"/>
{{end}}{{range .Chart.Dots}}<circle class="dot" cx="{{.X}}" cy="{{.Y}}" r="3"/>
{{end}}<line class="axis" x1="{{.Chart.PlotLeft}}" x2="{{.Chart.PlotRight}}" y1="{{.Chart.Baseline}}" y2="{{.Chart.Baseline}}"/>
{{range .Chart.Months}}<text x="{{.X}}" y="228" text-anchor="middle" fill="#4a5866">{{.Label}}</text>
{{end}}</svg>
<p class="key"><span style="background:#3d7cc9"></span>resolved within tier 1 (goal 90%)<span style="background:#d9822b"></span>within tier 2 (goal 99.9%)<span style="border-top:2px dashed #9b1c1c;height:0"></span>goals</p>
<table>
<thead><tr><th>Month</th><th>Cases</th><th>Tier 1</th><th>%</th><th>Tier 2</th><th>%</th><th>Verdict</th></tr></thead>
<tbody>
{{range .History}}<tr><td>{{.Month}}</td><td>{{.Cases}}</td><td>{{.Tier1.Count}}</td><td>{{.Tier1.Percent}}</td><td>{{.Tier2.Count}}</td><td>{{.Tier2.Percent}}</td><td><span class="verdict {{vclass .Verdict}}">{{.Verdict}}</span></td></tr>
{{end}}</tbody>
</table>
<h3>Missed targets</h3>
{{if .Missed}}<div class="scroll"><table>
<thead><tr><th>Case</th><th>Kind</th><th>Priority</th><th class="text">Target</th><th>Limit</th><th>Took</th><th>Over by</th><th>Started</th><th class="text">Subject</th></tr></thead>
<tbody>
{{range .Missed}}<tr><td>#{{.ID}}</td><td>{{.Kind}}</td><td>{{.Priority}}</td><td class="text">{{.Target}}</td><td>{{.Limit}}</td><td>{{.Took}}</td><td>{{.Over}}</td><td>{{.Start}}</td><td class="text">{{.Subject}}</td></tr>
{{end}}</tbody>
</table></div>{{else}}<p>None.</p>{{end}}
<p class="compensation{{if .Discount}} due{{end}}">{{.Compensation}}</p>
</section>
{{end}}
<footer><p>{{.Legend}}</p><p>Resolution: 90% of incidents within the first tier and 99.9% within the second, per priority (R7); first response within the plan's time (R9); questions answered within the first tier (90%) and the second (100%) (R10); change requests have no target (R14). A month counts as missed when either tier of any priority is missed (R13).</p></footer>
</main>
</body>
</html>
`
