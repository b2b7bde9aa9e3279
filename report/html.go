package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"deskd/sla"
)

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

// f1 is an SVG coordinate: always a decimal point, whatever the language.
func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

func (v *view) newChart(c sla.CustomerReport) chart {
	ch := chart{Width: chartW, Height: chartH, PlotLeft: plotL, PlotRight: plotR, Baseline: f1(plotB),
		Label: v.t("html.chart", clean(c.Customer), len(c.History))}
	y := func(p float64) float64 { return plotB - (plotB-plotT)*p/100 }
	for _, p := range []float64{0, 50, 100} {
		ch.Ticks = append(ch.Ticks, chartTick{Y: f1(y(p)), Label: fmt.Sprintf("%.0f%%", p), LabelY: f1(y(p) + 4)})
	}
	ch.Goals = []chartGoal{
		{Y: f1(y(sla.GoalTier1)), Label: v.t("html.chart.goal1"), LabelY: f1(y(sla.GoalTier1) + 4)},
		{Y: f1(y(sla.GoalTier2)), Label: v.t("html.chart.goal2"), LabelY: f1(y(sla.GoalTier2) - 2)},
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
		label := v.shortMonth(h.Month)
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

// htmlAtt is one attainment as shown; Code is the verdict's code, which
// picks its colour (class "v-<code>") in every language.
type htmlAtt struct {
	Count, Percent, Goal, Verdict, Code string
}

func (v *view) hatt(a sla.Attainment) htmlAtt {
	return htmlAtt{Count: countText(a), Percent: v.percentText(a), Goal: v.goalText(a.Goal), Verdict: v.word("verdict", a.Verdict), Code: a.Verdict}
}

// htmlVerdict is a verdict as shown and its code.
type htmlVerdict struct{ Text, Code string }

func (v *view) hverdict(code string) htmlVerdict {
	return htmlVerdict{Text: v.word("verdict", code), Code: code}
}

// htmlHead is a column head; Text left-aligns a column of running text.
type htmlHead struct {
	Label string
	Text  bool
}

// htmlHeads are the heads of message key; the columns textCols (from 0)
// hold running text.
func (v *view) htmlHeads(key string, args []any, textCols ...int) []htmlHead {
	var hs []htmlHead
	for i, h := range v.heads(key, args...) {
		hs = append(hs, htmlHead{Label: h})
		for _, c := range textCols {
			if c == i {
				hs[i].Text = true
			}
		}
	}
	return hs
}

type htmlLine struct {
	Priority, Tier1Limit, Tier2Limit, P90, P999 string
	Cases, Resolved, Open                       int
	Tier1, Tier2, FirstResponse                 htmlAtt
	Verdict                                     htmlVerdict
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
	Verdict      htmlVerdict
}

type htmlCustomer struct {
	Name, Plan       string
	Verdict          htmlVerdict
	Heads            []htmlHead
	Lines            []htmlLine
	Q1, Q2           htmlAtt
	Q1Limit, Q2Limit string
	QuestionsNote    string
	HistoryTitle     string
	Missed           []htmlMissed
	History          []htmlMonth
	Chart            chart
	Compensation     string
	Discount         int
}

type htmlPage struct {
	Lang, Title, Period, AsOf, NoCases, Legend string
	QuestionHeads, HistoryHeads, MissedHeads   []htmlHead
	Customers                                  []htmlCustomer
}

func renderHTML(w io.Writer, v *view) error {
	page := htmlPage{
		Lang:   v.l.tag,
		Title:  v.t("html.title", v.MonthName),
		Period: v.t("html.period", v.Supplier, v.periodText()),
		AsOf:   v.t("html.asof", v.asOf()), NoCases: v.t("no cases", v.MonthName), Legend: v.t("legend"),
		QuestionHeads: v.htmlHeads("html.questions.head", nil),
		HistoryHeads:  v.htmlHeads("html.history.head", nil),
		MissedHeads:   v.htmlHeads("html.missed.head", nil, 3, 8),
	}
	if v.r.Customer != "" {
		page.Title += " – " + clean(v.r.Customer)
	}
	for _, c := range v.r.Customers {
		q := c.Questions
		hc := htmlCustomer{
			Name: clean(c.Customer), Plan: orDash(c.Plan), Verdict: v.hverdict(c.Verdict),
			Heads: v.htmlHeads("html.incidents.head", []any{v.limitText(c.Total.FirstResponseLimit)}),
			Q1:    v.hatt(q.Tier1), Q2: v.hatt(q.Tier2),
			Q1Limit: v.limitText(q.Tier1Limit), Q2Limit: v.limitText(q.Tier2Limit),
			QuestionsNote: v.t("html.questions.note", q.Cases, q.Answered, q.Open, c.Changes),
			HistoryTitle:  v.t("html.history", len(c.History)),
			Chart:         v.newChart(c), Compensation: v.compensationText(c),
			Discount: c.Compensation.DiscountPercent,
		}
		for _, l := range append(c.Incidents, c.Total) {
			hl := htmlLine{
				Priority: v.priority(l.Priority, "html.priority.all"), Tier1Limit: v.limitText(l.Tier1Limit), Tier2Limit: v.limitText(l.Tier2Limit),
				P90: "-", P999: "-", Cases: l.Cases, Resolved: l.Resolved, Open: l.Open,
				Tier1: v.hatt(l.Tier1), Tier2: v.hatt(l.Tier2), FirstResponse: v.hatt(l.FirstResponse), Verdict: v.hverdict(l.Verdict),
				Total: l.Priority == "",
			}
			if l.Resolved > 0 {
				hl.P90, hl.P999 = v.working(l.P90), v.working(l.P999)
			}
			hc.Lines = append(hc.Lines, hl)
		}
		for _, m := range c.Missed {
			took := v.working(m.Elapsed)
			if m.Open {
				took += v.t("html.missed.open")
			}
			hc.Missed = append(hc.Missed, htmlMissed{
				ID: m.ID, Kind: v.word("kind", m.Kind), Priority: v.word("priority", m.Priority), Target: v.word("target", m.Target),
				Limit: v.limitText(m.Limit), Took: took, Over: v.working(m.Over), Subject: clean(m.Subject), Start: v.dateTime(m.Start.In(v.loc)),
			})
		}
		for _, h := range c.History {
			hc.History = append(hc.History, htmlMonth{
				Month: fmt.Sprintf("%s %d", v.shortMonth(h.Month), h.Year), Cases: h.Cases,
				Tier1: v.hatt(h.Tier1), Tier2: v.hatt(h.Tier2), Verdict: v.hverdict(h.Verdict),
			})
		}
		page.Customers = append(page.Customers, hc)
	}
	t, err := template.New("report").Funcs(template.FuncMap{
		// The verdict's code, not its words, picks the colour.
		"vclass": func(code string) string { return "v-" + strings.ReplaceAll(code, " ", "-") },
		"t":      v.t,
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
// shows the same in a browser, a mail client and a saved file. Its words
// come from the language's messages (t), computed fields or head lists.
const htmlTemplate = `<!DOCTYPE html>
<html lang="{{.Lang}}">
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
<p>{{.Period}}</p>
<p>{{.AsOf}} {{t "html.tiers.before"}} <span class="pending">+N</span> {{t "html.tiers.after"}}</p>
</header>
{{if not .Customers}}<section class="customer"><p>{{.NoCases}}</p></section>{{end}}
{{range .Customers}}{{$ch := .Chart}}
<section class="customer">
<h2>{{.Name}} <span class="plan">({{.Plan}})</span> <span class="verdict {{vclass .Verdict.Code}}">{{.Verdict.Text}}</span></h2>
<h3>{{t "html.incidents"}}</h3>
<div class="scroll"><table>
<thead><tr>{{range .Heads}}<th>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
{{range .Lines}}<tr{{if .Total}} class="total"{{end}}><td>{{.Priority}}</td><td>{{.Cases}}</td><td>{{.Resolved}}</td><td>{{.Open}}</td><td>{{.Tier1Limit}}</td><td>{{.Tier1.Count}}</td><td>{{.Tier1.Percent}}</td><td>{{.Tier2Limit}}</td><td>{{.Tier2.Count}}</td><td>{{.Tier2.Percent}}</td><td>{{.P90}}</td><td>{{.P999}}</td><td>{{.FirstResponse.Count}}</td><td>{{.FirstResponse.Percent}}</td><td><span class="verdict {{vclass .Verdict.Code}}">{{.Verdict.Text}}</span></td></tr>
{{end}}</tbody>
</table></div>
<h3>{{t "html.questions"}}</h3>
<table>
<thead><tr>{{range $.QuestionHeads}}<th>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
<tr><td>{{.Q1Limit}}</td><td>{{.Q1.Goal}}</td><td>{{.Q1.Count}}</td><td>{{.Q1.Percent}}</td><td><span class="verdict {{vclass .Q1.Code}}">{{.Q1.Verdict}}</span></td></tr>
<tr><td>{{.Q2Limit}}</td><td>{{.Q2.Goal}}</td><td>{{.Q2.Count}}</td><td>{{.Q2.Percent}}</td><td><span class="verdict {{vclass .Q2.Code}}">{{.Q2.Verdict}}</span></td></tr>
</tbody>
</table>
<p>{{.QuestionsNote}}</p>
<h3>{{.HistoryTitle}}</h3>
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
<p class="key"><span style="background:#3d7cc9"></span>{{t "html.chart.key.tier1"}}<span style="background:#d9822b"></span>{{t "html.chart.key.tier2"}}<span style="border-top:2px dashed #9b1c1c;height:0"></span>{{t "html.chart.key.goals"}}</p>
<table>
<thead><tr>{{range $.HistoryHeads}}<th>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
{{range .History}}<tr><td>{{.Month}}</td><td>{{.Cases}}</td><td>{{.Tier1.Count}}</td><td>{{.Tier1.Percent}}</td><td>{{.Tier2.Count}}</td><td>{{.Tier2.Percent}}</td><td><span class="verdict {{vclass .Verdict.Code}}">{{.Verdict.Text}}</span></td></tr>
{{end}}</tbody>
</table>
<h3>{{t "html.missed"}}</h3>
{{if .Missed}}<div class="scroll"><table>
<thead><tr>{{range $.MissedHeads}}<th{{if .Text}} class="text"{{end}}>{{.Label}}</th>{{end}}</tr></thead>
<tbody>
{{range .Missed}}<tr><td>#{{.ID}}</td><td>{{.Kind}}</td><td>{{.Priority}}</td><td class="text">{{.Target}}</td><td>{{.Limit}}</td><td>{{.Took}}</td><td>{{.Over}}</td><td>{{.Start}}</td><td class="text">{{.Subject}}</td></tr>
{{end}}</tbody>
</table></div>{{else}}<p>{{t "html.missed.none"}}</p>{{end}}
<p class="compensation{{if .Discount}} due{{end}}">{{.Compensation}}</p>
</section>
{{end}}
<footer><p>{{.Legend}}</p><p>{{t "html.footer"}}</p></footer>
</main>
</body>
</html>
`
