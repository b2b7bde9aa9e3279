package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"deskd/sla"
)

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
