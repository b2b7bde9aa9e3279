package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"deskd/internal/i18n"
	"deskd/sla"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func zone(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// att is an Attainment with its percentage.
func att(met, known, pending int, goal float64, verdict string) sla.Attainment {
	a := sla.Attainment{Goal: goal, Met: met, Known: known, Pending: pending, Verdict: verdict}
	if known > 0 {
		a.Percent = 100 * float64(met) / float64(known)
	}
	return a
}

// fixedReport is May 2025 for two customers, written out by hand so the
// golden files test the rendering alone: a customer with every kind of
// figure (pending cases, misses, R13's discount, a subject full of
// characters that need escaping), and one with hardly anything.
func fixedReport(t *testing.T) *sla.Report {
	loc := zone(t)
	h := time.Hour
	wd := sla.WorkingDay
	none := func(goal float64) sla.Attainment { return att(0, 0, 0, goal, sla.VerdictNoCases) }
	line := func(prio string, t1, t2 time.Duration, cases, resolved int, a1, a2 sla.Attainment, p90, p999 time.Duration, fr sla.Attainment, verdict string) sla.Line {
		return sla.Line{Priority: prio, Tier1Limit: t1, Tier2Limit: t2, Cases: cases, Resolved: resolved, Open: cases - resolved,
			Tier1: a1, Tier2: a2, P90: p90, P999: p999, FirstResponseLimit: 4 * h, FirstResponse: fr, Verdict: verdict}
	}
	history := func(last func(i int) sla.MonthFigures) []sla.MonthFigures {
		var out []sla.MonthFigures
		for i := range 12 {
			m := time.Date(2024, time.June+time.Month(i), 1, 0, 0, 0, 0, loc)
			f := last(i)
			f.Year, f.Month = m.Year(), m.Month()
			out = append(out, f)
		}
		return out
	}
	acme := sla.CustomerReport{
		Customer: "Acme", Plan: sla.PlanPremium,
		Incidents: []sla.Line{
			line("urgent", 4*h, 6*h, 3, 2, att(1, 2, 1, 90, sla.VerdictMissed), att(2, 2, 1, 99.9, sla.VerdictPending),
				5*h+30*time.Minute, 5*h+30*time.Minute, att(3, 3, 0, 100, sla.VerdictMet), sla.VerdictMissed),
			line("high", wd, 2*wd, 0, 0, none(90), none(99.9), 0, 0, none(100), sla.VerdictNoCases),
			line("medium", 5*wd, 10*wd, 10, 10, att(9, 10, 0, 90, sla.VerdictMet), att(10, 10, 0, 99.9, sla.VerdictMet),
				4*wd+2*h+5*time.Minute, 5*wd+h, att(9, 10, 0, 100, sla.VerdictMissed), sla.VerdictMet),
			line("low", 15*wd, 65*wd, 1, 0, att(0, 0, 1, 90, sla.VerdictPending), att(0, 0, 1, 99.9, sla.VerdictPending),
				0, 0, att(1, 1, 0, 100, sla.VerdictMet), sla.VerdictPending),
		},
		Total: line("", 0, 0, 14, 12, att(10, 12, 2, 90, sla.VerdictPending), att(12, 12, 2, 99.9, sla.VerdictPending),
			4*wd+2*h+5*time.Minute, 5*wd+h, att(13, 14, 0, 100, sla.VerdictMissed), sla.VerdictMissed),
		Questions: sla.QuestionLine{Cases: 4, Answered: 3, Open: 1, Tier1Limit: 3 * wd, Tier2Limit: 5 * wd,
			Tier1: att(3, 3, 1, 90, sla.VerdictPending), Tier2: att(3, 3, 1, 100, sla.VerdictPending), Verdict: sla.VerdictPending},
		Changes: 2,
		Missed: []sla.MissedCase{
			{ID: 12, Subject: `Printer "HP 4", kassa & <b>scanner</b> down`, Kind: "incident", Priority: "urgent",
				Target: sla.TargetResolution, Limit: 4 * h, Elapsed: 5*h + 30*time.Minute, Over: h + 30*time.Minute,
				Start: time.Date(2025, 5, 6, 8, 0, 0, 0, loc), Open: false},
			{ID: 31, Subject: "Factuur\tklopt niet\r\nBcc: x@evil.example", Kind: "incident", Priority: "medium",
				Target: sla.TargetFirstResponse, Limit: 4 * h, Elapsed: 6*h + 10*time.Minute, Over: 2*h + 10*time.Minute,
				Start: time.Date(2025, 5, 20, 13, 12, 0, 0, loc), Open: false},
			{ID: 40, Subject: "Server room flooded", Kind: "incident", Priority: "urgent",
				Target: sla.TargetResolution, Limit: 4 * h, Elapsed: 7 * h, Over: 3 * h,
				Start: time.Date(2025, 5, 28, 9, 45, 0, 0, loc), Open: true},
		},
		Verdict:      sla.VerdictMissed,
		Compensation: sla.Compensation{MissedMonths: 3, DiscountPercent: 5},
		History: history(func(i int) sla.MonthFigures {
			switch {
			case i < 7:
				return sla.MonthFigures{Tier1: none(90), Tier2: none(99.9), Verdict: sla.VerdictNoCases}
			case i == 7:
				return sla.MonthFigures{Cases: 8, Tier1: att(8, 8, 0, 90, sla.VerdictMet), Tier2: att(8, 8, 0, 99.9, sla.VerdictMet), Verdict: sla.VerdictMet}
			case i == 8:
				return sla.MonthFigures{Cases: 0, Tier1: none(90), Tier2: none(99.9), Verdict: sla.VerdictNoCases}
			case i < 11:
				return sla.MonthFigures{Cases: 10, Tier1: att(7, 10, 0, 90, sla.VerdictMissed), Tier2: att(9, 10, 0, 99.9, sla.VerdictMissed), Verdict: sla.VerdictMissed}
			}
			return sla.MonthFigures{Cases: 14, Tier1: att(10, 12, 2, 90, sla.VerdictPending), Tier2: att(12, 12, 2, 99.9, sla.VerdictPending), Verdict: sla.VerdictMissed}
		}),
	}
	jansen := sla.CustomerReport{
		Customer: `Bakkerij "De Korst" & Zn`, Plan: sla.PlanBusiness,
		Total: line("", 0, 0, 0, 0, none(90), none(99.9), 0, 0, none(100), sla.VerdictNoCases),
		Questions: sla.QuestionLine{Cases: 1, Answered: 1, Tier1Limit: 3 * wd, Tier2Limit: 5 * wd,
			Tier1: att(1, 1, 0, 90, sla.VerdictMet), Tier2: att(1, 1, 0, 100, sla.VerdictMet), Verdict: sla.VerdictMet},
		Missed:  []sla.MissedCase{},
		Verdict: sla.VerdictNoCases,
		History: history(func(int) sla.MonthFigures {
			return sla.MonthFigures{Tier1: none(90), Tier2: none(99.9), Verdict: sla.VerdictNoCases}
		}),
	}
	for _, p := range []string{"urgent", "high", "medium", "low"} {
		jansen.Incidents = append(jansen.Incidents, line(p, 0, 0, 0, 0, none(90), none(99.9), 0, 0, none(100), sla.VerdictNoCases))
	}
	jansen.Total.FirstResponseLimit = 8 * h
	for i := range jansen.Incidents {
		jansen.Incidents[i].FirstResponseLimit = 8 * h
	}
	return &sla.Report{
		Year: 2025, Month: time.May, Zone: "Europe/Amsterdam",
		From: time.Date(2025, 5, 1, 0, 0, 0, 0, loc), To: time.Date(2025, 6, 1, 0, 0, 0, 0, loc),
		Now:       time.Date(2025, 6, 3, 13, 7, 0, 0, time.UTC),
		Customers: []sla.CustomerReport{acme, jansen},
	}
}

func render(t *testing.T, f Format, r *sla.Report) string {
	t.Helper()
	return renderLang(t, f, r, English)
}

func renderLang(t *testing.T, f Format, r *sla.Report, lang string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, f, r, Options{Location: zone(t), Supplier: "Example Support", Lang: lang}); err != nil {
		t.Fatalf("render %s: %v", f, err)
	}
	return b.String()
}

// Each format of the fixed report matches its golden file, in English,
// and the human formats in Dutch too (go test ./report/ -update rewrites
// them after a deliberate change).
func TestGolden(t *testing.T) {
	r := fixedReport(t)
	type golden struct {
		f    Format
		lang string
		path string
	}
	var gs []golden
	for _, f := range Formats() {
		gs = append(gs, golden{f, English, "report." + string(f)})
	}
	for _, f := range []Format{Text, HTML} {
		gs = append(gs, golden{f, Dutch, "report.nl." + string(f)})
	}
	for _, g := range gs {
		t.Run(g.path, func(t *testing.T) {
			got := renderLang(t, g.f, r, g.lang)
			path := filepath.Join("testdata", g.path)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					if i >= len(gl) || i >= len(wl) || gl[i] != wl[i] {
						t.Fatalf("%s differs from %s from line %d (go test -update rewrites it)", g.f, path, i+1)
					}
				}
			}
		})
	}
}

// CSV (RFC 4180 through encoding/csv): every record has the header's
// fields, one incident row per customer and priority (and "all"),
// the awkward subject survives quoting.
func TestCSVShape(t *testing.T) {
	r := fixedReport(t)
	recs, err := csv.NewReader(strings.NewReader(render(t, CSV, r))).ReadAll() // FieldsPerRecord 0: all as the first
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	count := map[string]int{}
	var subjects []string
	for _, rec := range recs[1:] {
		count[rec[0]]++
		if rec[0] == "missed" {
			subjects = append(subjects, rec[indexOf(header, "subject")])
		}
	}
	if count["incidents"] != 2*5 || count["questions"] != 2 || count["changes"] != 2 || count["missed"] != 3 || count["history"] != 24 || count["compensation"] != 2 {
		t.Errorf("sections %v", count)
	}
	if subjects[0] != `Printer "HP 4", kassa & <b>scanner</b> down` || subjects[1] != "Factuur klopt niet Bcc: x@evil.example" {
		t.Errorf("subjects %q", subjects)
	}
}

func indexOf(ss []string, s string) int {
	for i, x := range ss {
		if x == s {
			return i
		}
	}
	return -1
}

// JSON: stable names, RFC 3339 instants in the SLA's zone, durations as
// seconds and text, null for a share without known outcomes.
func TestJSONFields(t *testing.T) {
	var doc struct {
		FormatVersion int    `json:"format_version"`
		Month         string `json:"month"`
		From, To      string
		AsOf          string `json:"as_of"`
		Customers     []struct {
			Customer  string
			Incidents []struct {
				Priority string
				Tier1    struct {
					Percent *float64
					Verdict string
				}
				P90 *struct {
					Seconds int64
					Text    string
				}
			}
			Missed []struct {
				ID    uint64
				Over  struct{ Seconds int64 }
				Start string
			}
			Compensation struct {
				MissedMonths    int `json:"missed_months"`
				DiscountPercent int `json:"discount_percent"`
			}
		}
	}
	out := render(t, JSON, fixedReport(t))
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != 1 || doc.Month != "2025-05" || doc.From != "2025-05-01T00:00:00+02:00" || doc.AsOf != "2025-06-03T15:07:00+02:00" {
		t.Errorf("period: %+v", doc)
	}
	for _, s := range []string{doc.From, doc.To, doc.AsOf, doc.Customers[0].Missed[0].Start} {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Error(err)
		}
	}
	urgent, high := doc.Customers[0].Incidents[0], doc.Customers[0].Incidents[1]
	if urgent.Tier1.Percent == nil || *urgent.Tier1.Percent != 50 || urgent.P90 == nil || urgent.P90.Seconds != 19800 || urgent.P90.Text != "5h30m" {
		t.Errorf("urgent: %+v", urgent)
	}
	if high.Tier1.Percent != nil || high.P90 != nil || high.Tier1.Verdict != "no cases" {
		t.Errorf("high, no cases: %+v", high)
	}
	if c := doc.Customers[0]; c.Missed[0].ID != 12 || c.Missed[0].Over.Seconds != 5400 || c.Compensation.DiscountPercent != 5 || c.Compensation.MissedMonths != 3 {
		t.Errorf("missed/compensation: %+v", c)
	}
}

// HTML: one page that needs nothing else (no script, stylesheet, image or
// font from anywhere), escapes what came from mail, and draws the chart
// with both goal lines.
func TestHTMLSelfContained(t *testing.T) {
	out := render(t, HTML, fixedReport(t))
	for _, bad := range []string{"http:", "https:", "<script", "<link", "src=", "url(", "@import", "<b>scanner"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	for _, want := range []string{"<svg", `class="goal"`, "90% goal (tier 1)", "99.9% goal (tier 2)", "<polyline", "&lt;b&gt;scanner&lt;/b&gt;",
		"Bakkerij &#34;De Korst&#34; &amp; Zn", "5% discount due", "<style>"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Count(out, `<rect class="bar"`) != 4 {
		t.Errorf("%d bars, want 4 (the months with known outcomes)", strings.Count(out, `<rect class="bar"`))
	}
}

// A report without customers renders in every format.
func TestEmptyReport(t *testing.T) {
	loc := zone(t)
	r := &sla.Report{Year: 2025, Month: time.February, Zone: "Europe/Amsterdam",
		From: time.Date(2025, 2, 1, 0, 0, 0, 0, loc), To: time.Date(2025, 3, 1, 0, 0, 0, 0, loc), Now: time.Date(2025, 3, 3, 9, 0, 0, 0, loc)}
	for _, f := range Formats() {
		out := render(t, f, r)
		if f == Text && !strings.Contains(out, "No cases in February 2025.") {
			t.Errorf("text: %s", out)
		}
		if f == JSON && !strings.Contains(out, `"customers": []`) {
			t.Errorf("json: %s", out)
		}
	}
	// Without a Location the report's zone is used.
	var b bytes.Buffer
	if err := Render(&b, JSON, r, Options{}); err != nil || !strings.Contains(b.String(), `"as_of": "2025-03-03T09:00:00+01:00"`) {
		t.Errorf("zone from the report: %v\n%s", err, b.String())
	}
}

func TestFormatWorking(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0m"},
		{29 * time.Second, "0m"},
		{45 * time.Minute, "45m"},
		{4 * time.Hour, "4h"},
		{4*time.Hour + 30*time.Minute, "4h30m"},
		{9 * time.Hour, "1d"},
		{11 * time.Hour, "1d 2h"},
		{9*time.Hour + 5*time.Minute, "1d 5m"},
		{11*time.Hour + 5*time.Minute, "1d 2h05m"},
		{48 * time.Hour, "5d 3h"}, // R11a: Basic's 48 working hours
		{65 * sla.WorkingDay, "65d"},
		{-90 * time.Minute, "-1h30m"},
	} {
		if got := FormatWorking(tc.d); got != tc.want {
			t.Errorf("FormatWorking(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if g, err := ParseFormat(string(f)); err != nil || g != f {
			t.Errorf("%s: %v %v", f, g, err)
		}
	}
	if _, err := ParseFormat("pdf"); err == nil {
		t.Error("pdf accepted")
	}
}

// Every message exists in every language, is not empty, takes the same
// fmt verbs in the same order, and a row of column heads has as many
// columns in each: a missing or mistyped translation fails here, not in
// a customer's mail.
func TestMessagesInEveryLanguage(t *testing.T) {
	for _, err := range i18n.CheckCatalog(messages) {
		t.Error(err)
	}
	for name, l := range languages {
		if l.tag != name {
			t.Errorf("%s: tag %q", name, l.tag)
		}
		for i := range 12 {
			if l.short[i] == "" {
				t.Errorf("%s: month %d has no short name", name, i+1)
			}
		}
		if l.decimal == "" {
			t.Errorf("%s: no decimal separator", name)
		}
	}
}

// englishWords are words of the English report that have no business in
// the Dutch one (the fixed report's own data, its subjects and names, use
// none of them). "met" is Dutch too ("with"): the verdict is checked in
// TestDutchWords.
var englishWords = []string{
	"missed", "pending", "no cases", "incidents", "questions", "discount", "priority", "priorities",
	"resolved", "resolution", "verdict", "attainment", "change requests", "month", "months", "within",
	"tier", "goal", "goals", "answered", "asked", "period", "figures", "working", "none", "still",
	"subject", "took", "over by", "started", "target", "targets", "limit", "kind", "all", "service report",
	"high", "low", "question", "change", "first response", "the", "and", "of", "to", "as",
	"May", "June", "Mar", "Oct", "customers",
}

// visible is the text of an HTML page a reader sees or hears: without
// the style sheet and the class names, which are codes ("v-missed").
func visible(page string) string {
	page = regexp.MustCompile(`(?s)<style>.*</style>`).ReplaceAllString(page, "")
	return regexp.MustCompile(` class="[^"]*"`).ReplaceAllString(page, "")
}

// The Dutch text and HTML say nothing in English, and no message key
// shows through; the HTML page says it is Dutch. The empty report too.
func TestDutchHasNoEnglish(t *testing.T) {
	loc := zone(t)
	empty := &sla.Report{Year: 2025, Month: time.February, Zone: "Europe/Amsterdam",
		From: time.Date(2025, 2, 1, 0, 0, 0, 0, loc), To: time.Date(2025, 3, 1, 0, 0, 0, 0, loc), Now: time.Date(2025, 3, 3, 9, 0, 0, 0, loc)}
	var outputs []string
	for _, r := range []*sla.Report{fixedReport(t), empty} {
		outputs = append(outputs, renderLang(t, Text, r, Dutch), visible(renderLang(t, HTML, r, Dutch)))
		outputs = append(outputs, Subject(r, Options{Supplier: "Example Support", Lang: Dutch}))
	}
	var words []*regexp.Regexp
	for _, w := range englishWords {
		words = append(words, regexp.MustCompile(`(?i)\b`+regexp.QuoteMeta(w)+`\b`))
	}
	keys := regexp.MustCompile(`\b(text|html|compensation|verdict|priority|kind|target|unit|subject)\.[a-z_]`)
	for _, out := range outputs {
		for i, re := range words {
			if loc := re.FindStringIndex(out); loc != nil {
				t.Errorf("Dutch output has the English %q: …%s…", englishWords[i], out[max(0, loc[0]-40):min(len(out), loc[1]+40)])
			}
		}
		if k := keys.FindString(out); k != "" {
			t.Errorf("a message key shows: %q", k)
		}
	}
	nl := renderLang(t, HTML, fixedReport(t), Dutch)
	if !strings.Contains(nl, `<html lang="nl">`) {
		t.Error("the Dutch page is not lang=nl")
	}
	if en := renderLang(t, HTML, fixedReport(t), English); !strings.Contains(en, `<html lang="en">`) {
		t.Error("the English page is not lang=en")
	}
	for _, want := range []string{"Geen cases in februari 2025.", "Stand per 3 maart 2025 09:00 CET."} {
		if !strings.Contains(outputs[4], want) { // the empty report's page
			t.Errorf("empty Dutch report lacks %q", want)
		}
	}
}

// The Dutch words where they matter: the agreement's priorities (R7),
// the verdicts, decimal commas, long dates, working days as "wd".
func TestDutchWords(t *testing.T) {
	text := renderLang(t, Text, fixedReport(t), Dutch)
	for _, want := range []string{
		"Example Support: servicerapportage mei 2025\n",
		"Periode 1 mei 2025 t/m 31 mei 2025 (Europe/Amsterdam); stand per 3 juni 2025 15:07 CEST.",
		"wd = werkdag van 9 werkuren",
		"== Acme (Premium): niet gehaald ==",
		"Urgent      3", "Hoog        0", "Medium      10", "Laag        1",
		"50,0%", "83,3%", "99,9%-NORM", "4wd 2u05m", "65wd", "5u30m",
		"gehaald\n", "nog open\n", "geen cases\n",
		"7u (nog open)", "oplostijd, 90%-norm (R7)", "eerste reactie (R9)",
		"5% korting op de volgende maandfactuur",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dutch text lacks %q", want)
		}
	}
	page := renderLang(t, HTML, fixedReport(t), Dutch)
	for _, want := range []string{
		"<title>Servicerapportage mei 2025</title>", "Eerste reactie ≤ 4u", "Alle prioriteiten",
		`<span class="verdict v-missed">niet gehaald</span>`, `<span class="verdict v-no-cases">geen cases</span>`,
		"90%-norm</text>", "99,9%-norm</text>", ">mrt</text>", ">jun 2024</text>", "<td>mei 2025</td>",
		"6 mei 2025 08:00", "wijzigingsverzoeken hebben geen oplostijd",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("Dutch HTML lacks %q", want)
		}
	}
	// R13's sentence for each length of a run of missed months.
	nl, en := newView(fixedReport(t), Options{Lang: Dutch}), newView(fixedReport(t), Options{Lang: English})
	for _, tc := range []struct {
		months, discount int
		nl, en           string
	}{
		{0, 0, "Oplostijden deze maand (R13): gehaald. Geen reeks", "Resolution targets this month (R13): met. No run"},
		{1, 0, "Oplostijden deze maand niet gehaald (R13): aanleiding voor een incidentoverleg", "Resolution targets missed this month (R13): an incident meeting"},
		{2, 0, "Oplostijden 2 maanden achter elkaar niet gehaald (R13): aanleiding", "Resolution targets missed 2 months in a row (R13): an incident"},
		{12, 50, "Oplostijden 12 maanden achter elkaar niet gehaald (R13): 50% korting", "Resolution targets missed 12 months in a row (R13): 50% discount"},
	} {
		c := sla.CustomerReport{Verdict: sla.VerdictMet, Compensation: sla.Compensation{MissedMonths: tc.months, DiscountPercent: tc.discount}}
		if got := nl.compensationText(c); !strings.HasPrefix(got, tc.nl) {
			t.Errorf("R13, %d months, Dutch: %q", tc.months, got)
		}
		if got := en.compensationText(c); !strings.HasPrefix(got, tc.en) {
			t.Errorf("R13, %d months, English: %q", tc.months, got)
		}
	}
	// SVG coordinates keep their decimal point in every language.
	if strings.Contains(page, `y="52,`) || regexp.MustCompile(`(x|y|width|height)="\d+,\d`).MatchString(page) {
		t.Error("an SVG coordinate has a decimal comma")
	}
}

// CSV and JSON are for programs: the same bytes in every language, with
// a supplier named or not.
func TestMachineFormatsLanguageNeutral(t *testing.T) {
	r := fixedReport(t)
	for _, f := range []Format{CSV, JSON} {
		for _, supplier := range []string{"Example Support", ""} {
			var en, nl bytes.Buffer
			if err := Render(&en, f, r, Options{Location: zone(t), Supplier: supplier, Lang: English}); err != nil {
				t.Fatal(err)
			}
			if err := Render(&nl, f, r, Options{Location: zone(t), Supplier: supplier, Lang: Dutch}); err != nil {
				t.Fatal(err)
			}
			if en.String() != nl.String() {
				t.Errorf("%s, supplier %q: differs between English and Dutch", f, supplier)
			}
		}
	}
}

// The language: "nl" and "en" in any case; anything else renders Dutch,
// the agreement's language, and ParseLang refuses it.
func TestLanguageChoice(t *testing.T) {
	r := fixedReport(t)
	r.Customer = "Acme"
	for _, tc := range []struct{ lang, want string }{
		{"en", "Example Support: service report May 2025, Acme"},
		{"EN", "Example Support: service report May 2025, Acme"},
		{"nl", "Example Support: servicerapportage mei 2025, Acme"},
		{"", "Example Support: servicerapportage mei 2025, Acme"},
		{"de", "Example Support: servicerapportage mei 2025, Acme"},
	} {
		if got := Subject(r, Options{Supplier: "Example Support", Lang: tc.lang}); got != tc.want {
			t.Errorf("Subject, lang %q: %q, want %q", tc.lang, got, tc.want)
		}
	}
	r.Customer = ""
	if got := Subject(r, Options{Lang: Dutch}); got != "Servicedesk: servicerapportage mei 2025, alle klanten" {
		t.Errorf("Subject of all customers: %q", got)
	}
	if got := Subject(r, Options{Lang: English}); got != "Service desk: service report May 2025, all customers" {
		t.Errorf("Subject of all customers: %q", got)
	}
	// One reading of a language tag for mails, reports and the portal
	// (internal/i18n): only the primary subtag counts.
	for in, want := range map[string]string{"nl": "nl", "en": "en", " NL ": "nl", "En": "en", "nl-NL": "nl", "en_GB": "en", "english": "en"} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "de", "de-NL", "x-nl"} {
		if _, err := ParseLang(bad); err == nil {
			t.Errorf("ParseLang(%q) accepted", bad)
		}
	}
}

// Working time in each language's units (R11a: a working day is 9 hours).
func TestWorkingUnits(t *testing.T) {
	nl, en := newView(fixedReport(t), Options{Lang: Dutch}), newView(fixedReport(t), Options{Lang: English})
	for _, tc := range []struct {
		d      time.Duration
		nl, en string
	}{
		{45 * time.Minute, "45m", "45m"},
		{4 * time.Hour, "4u", "4h"},
		{11*time.Hour + 5*time.Minute, "1wd 2u05m", "1d 2h05m"},
		{48 * time.Hour, "5wd 3u", "5d 3h"},
		{65 * sla.WorkingDay, "65wd", "65d"},
	} {
		if got := nl.working(tc.d); got != tc.nl {
			t.Errorf("Dutch %v: %q, want %q", tc.d, got, tc.nl)
		}
		if got := en.working(tc.d); got != tc.en || got != FormatWorking(tc.d) {
			t.Errorf("English %v: %q, want %q (and FormatWorking's)", tc.d, got, tc.en)
		}
	}
	if got := nl.goalText(99.9); got != "99,9%" {
		t.Errorf("Dutch goal %q", got)
	}
	if got := nl.percentText(sla.Attainment{Met: 2, Known: 3, Percent: 200.0 / 3}); got != "66,7%" {
		t.Errorf("Dutch percent %q", got)
	}
}
