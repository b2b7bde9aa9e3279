package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"deskd/sla"
)

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
		FormatVersion: 1, Supplier: cmp.Or(clean(v.opts.Supplier), messages.Text(English, "supplier")), Month: v.MonthID, Zone: v.loc.String(),
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
