package report

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

func renderText(w io.Writer, v *view) error {
	var b bytes.Buffer
	r := v.r
	line := func(key string, args ...any) { b.WriteString(v.t(key, args...) + "\n") }
	row := func(tw io.Writer, cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	line("title", v.Supplier, v.MonthName)
	line("text.period", v.periodText(), v.asOf())
	line("legend")
	line("text.tiers")
	if len(r.Customers) == 0 {
		b.WriteString("\n")
		line("no cases", v.MonthName)
	}
	for _, c := range r.Customers {
		fmt.Fprintf(&b, "\n== %s (%s): %s ==\n\n", clean(c.Customer), orDash(c.Plan), v.word("verdict", c.Verdict))
		line("text.incidents", v.limitText(c.Total.FirstResponseLimit))
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		row(tw, v.heads("text.incidents.head")...)
		for _, l := range append(c.Incidents, c.Total) {
			p90, p999 := "-", "-"
			if l.Resolved > 0 {
				p90, p999 = v.working(l.P90), v.working(l.P999)
			}
			row(tw, v.priority(l.Priority, "priority.all"), strconv.Itoa(l.Cases), strconv.Itoa(l.Resolved), strconv.Itoa(l.Open),
				v.limitText(l.Tier1Limit), countText(l.Tier1), v.percentText(l.Tier1),
				v.limitText(l.Tier2Limit), countText(l.Tier2), v.percentText(l.Tier2),
				p90, p999, countText(l.FirstResponse), v.percentText(l.FirstResponse), v.word("verdict", l.Verdict))
		}
		tw.Flush()

		q := c.Questions
		b.WriteString("\n")
		line("text.questions", q.Cases, q.Answered, q.Open)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		row(tw, v.heads("text.questions.head")...)
		row(tw, v.limitText(q.Tier1Limit), v.goalText(q.Tier1.Goal), countText(q.Tier1), v.percentText(q.Tier1), v.word("verdict", q.Tier1.Verdict))
		row(tw, v.limitText(q.Tier2Limit), v.goalText(q.Tier2.Goal), countText(q.Tier2), v.percentText(q.Tier2), v.word("verdict", q.Tier2.Verdict))
		tw.Flush()
		b.WriteString("\n")
		line("text.changes", c.Changes)

		b.WriteString("\n")
		line("text.missed", len(c.Missed))
		if len(c.Missed) > 0 {
			tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			row(tw, v.heads("text.missed.head")...)
			for _, m := range c.Missed {
				took := v.working(m.Elapsed)
				if m.Open {
					took += v.t("text.open")
				}
				row(tw, fmt.Sprintf("#%d", m.ID), v.word("kind", m.Kind), v.word("priority", m.Priority), v.word("target", m.Target),
					v.limitText(m.Limit), took, v.working(m.Over), cut(m.Subject, 60))
			}
			tw.Flush()
		}

		b.WriteString("\n")
		line("text.history", len(c.History))
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		row(tw, v.heads("text.history.head")...)
		for _, h := range c.History {
			row(tw, fmt.Sprintf("%04d-%02d", h.Year, int(h.Month)), strconv.Itoa(h.Cases),
				countText(h.Tier1), v.percentText(h.Tier1), countText(h.Tier2), v.percentText(h.Tier2), v.word("verdict", h.Verdict))
		}
		tw.Flush()
		b.WriteString("\n")
		b.WriteString(v.compensationText(c) + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}
