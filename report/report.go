// Package report renders a month's service report (sla.Report: R4, R12,
// R13) for the people and programs that read it: aligned text for a
// terminal, CSV for a spreadsheet, JSON for other programs, and one
// self-contained HTML page (inline CSS and SVG, no external resources)
// that can be sent to a customer. It owns the presentation only; the
// figures are sla's. Instants are shown in the SLA's zone, working time
// in working days of 9 hours (R11a).
//
// The text and HTML formats are for people and come in Dutch (the
// agreement's language and words) and English: every human string is in
// the message table of its language (languages, below), which both
// renderers read. CSV and JSON are for programs and stay the same in
// every language: their names and values are codes ("missed", "urgent").
package report

import (
	"bytes"
	"cmp"
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

// The languages of the text and HTML formats, as in customers[].language.
const (
	Dutch   = "nl"
	English = "en"
)

// ParseLang reads a language name ("nl" or "en", any case).
func ParseLang(s string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if _, ok := languages[l]; !ok {
		return "", fmt.Errorf("unknown language %q (nl or en)", s)
	}
	return l, nil
}

// Options shape the rendering.
type Options struct {
	// Location is the zone instants are shown in; nil means the report's
	// own Zone, or UTC when that does not load.
	Location *time.Location
	// Supplier names the service desk in titles ("" = "Service desk",
	// in Dutch "Servicedesk"; in JSON always "Service desk").
	Supplier string
	// Lang is the language of the text and HTML formats: "nl" or "en";
	// anything else is Dutch, the agreement's language. CSV and JSON do
	// not depend on it.
	Lang string
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

// Subject is a one-line title for r in opts.Lang, fit for a mail subject.
func Subject(r *sla.Report, opts Options) string {
	v := newView(r, opts)
	who := v.t("subject.all")
	if r.Customer != "" {
		who = clean(r.Customer)
	}
	return v.t("subject", v.Supplier, v.MonthName, who)
}

// FormatWorking shows a working time: "45m", "4h", "4h30m", "1d 2h05m",
// "65d", where d is a working day of 9 working hours (R11a). It rounds to
// the minute. This is the language-neutral form (JSON's "text"); the text
// and HTML formats write the units of their language.
func FormatWorking(d time.Duration) string {
	return formatWorking(d, "d", "h", "m")
}

func formatWorking(d time.Duration, day, hour, minute string) string {
	if d < 0 {
		return "-" + formatWorking(-d, day, hour, minute)
	}
	d = d.Round(time.Minute)
	days, rest := d/sla.WorkingDay, d%sla.WorkingDay
	h, m := rest/time.Hour, (rest%time.Hour)/time.Minute
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%d%s", days, day))
	}
	switch {
	case h > 0 && m > 0:
		parts = append(parts, fmt.Sprintf("%d%s%02d%s", h, hour, m, minute))
	case h > 0:
		parts = append(parts, fmt.Sprintf("%d%s", h, hour))
	case m > 0 || days == 0:
		parts = append(parts, fmt.Sprintf("%d%s", m, minute))
	}
	return strings.Join(parts, " ")
}

// ---- the languages ----

// language is everything the text and HTML formats say, in one language.
// Every message is a fmt format (a literal percent sign is "%%"), with
// the same verbs in the same order in every language; column heads are
// tab-separated, one per column. Codes (verdicts, priorities, kinds,
// targets) are looked up as "verdict.<code>" and so on.
type language struct {
	// tag is the HTML lang attribute and the Content-Language of a mail.
	tag string
	// decimal separates a percentage's decimals: "99.9%", "99,9%".
	decimal string
	// months and short name the months; short labels the chart.
	months, short [12]string
	// longDates writes dates as "1 oktober 2026"; else "2026-10-01".
	longDates bool
	msg       map[string]string
}

var languages = map[string]*language{
	English: {
		tag: English, decimal: ".",
		months: [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		short:  [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		msg: map[string]string{
			"unit.day": "d", "unit.hour": "h", "unit.minute": "m",
			"legend":       "Working time: Monday to Friday 08:00-17:00 except public holidays (R11); d = a working day of 9 working hours.",
			"supplier":     "Service desk",
			"subject":      "%s: service report %s, %s",
			"subject.all":  "all customers",
			"title":        "%s: service report %s",
			"period":       "%s to %s (%s)",
			"no cases":     "No cases in %s.",
			"priority.all": "all",

			"verdict.met": "met", "verdict.missed": "missed", "verdict.pending": "pending", "verdict.no cases": "no cases",
			"priority.urgent": "urgent", "priority.high": "high", "priority.medium": "medium", "priority.low": "low",
			"kind.incident": "incident", "kind.question": "question", "kind.change": "change",
			"target.first_response":   "first response (R9)",
			"target.resolution":       "resolution, 90%% tier (R7)",
			"target.resolution_tier2": "resolution, 99.9%% tier (R7)",
			"target.answer":           "answer, 90%% tier (R10)",
			"target.answer_tier2":     "answer, 100%% tier (R10)",

			"compensation.none":     "Resolution targets this month (R13): %s. No run of missed months: no discount due.",
			"compensation.first":    "Resolution targets missed this month (R13): an incident meeting and monthly follow-ups; no discount due yet (from the 3rd month on).",
			"compensation.meeting":  "Resolution targets missed %d months in a row (R13): an incident meeting and monthly follow-ups; no discount due yet (from the 3rd month on).",
			"compensation.discount": "Resolution targets missed %d months in a row (R13): %d%% discount due on the next monthly invoice (5%% from the 3rd month, 5%% more per further month, at most %d%%).",

			"text.period":         "Period %s; figures as of %s.",
			"text.tiers":          `Tiers count the cases with a known outcome; "+N" are open cases not past the target yet (pending).`,
			"text.incidents":      "Incidents (R7: 90%% within tier 1, 99.9%% within tier 2; R9: first response within %s)",
			"text.incidents.head": "PRIORITY\tCASES\tRESOLVED\tOPEN\tTIER 1\tWITHIN\t%%\tTIER 2\tWITHIN\t%%\tP90\tP99.9\tFIRST RESPONSE\t%%\tVERDICT",
			"text.questions":      "Questions (R10): asked %d, answered %d, waiting for an answer %d",
			"text.questions.head": "ANSWERED WITHIN\tGOAL\tWITHIN\t%%\tVERDICT",
			"text.changes":        "Change requests (R14, in none of the figures above): %d",
			"text.missed":         "Missed targets: %d",
			"text.missed.head":    "CASE\tKIND\tPRIORITY\tTARGET\tLIMIT\tTOOK\tOVER BY\tSUBJECT",
			"text.open":           " (open)",
			"text.history":        "Attainment, last %d months (incidents, all priorities)",
			"text.history.head":   "MONTH\tCASES\tTIER 1\t%%\tTIER 2\t%%\tVERDICT",

			"html.title":           "Service report %s",
			"html.period":          "%s · period %s",
			"html.asof":            "Figures as of %s.",
			"html.tiers.before":    "Tiers count the cases with a known outcome;",
			"html.tiers.after":     "are open cases not past their target yet.",
			"html.incidents":       "Incidents",
			"html.incidents.head":  "Priority\tCases\tResolved\tOpen\t90%% within\tWithin\t%%\t99.9%% within\tWithin\t%%\tP90\tP99.9\tFirst response ≤ %s\t%%\tVerdict",
			"html.priority.all":    "all priorities",
			"html.questions":       "Questions",
			"html.questions.head":  "Answered within\tGoal\tWithin\t%%\tVerdict",
			"html.questions.note":  "Questions asked: %d; answered: %d; waiting for an answer: %d. Change requests: %d (they have no resolution target and are in none of the figures above).",
			"html.history":         "Attainment over the last %d months",
			"html.history.head":    "Month\tCases\tTier 1\t%%\tTier 2\t%%\tVerdict",
			"html.chart":           "Attainment of %s over the last %d months: tier 1 as bars, tier 2 as a line, goals 90%% and 99.9%%",
			"html.chart.goal1":     "90%% goal (tier 1)",
			"html.chart.goal2":     "99.9%% goal (tier 2)",
			"html.chart.key.tier1": "resolved within tier 1 (goal 90%%)",
			"html.chart.key.tier2": "within tier 2 (goal 99.9%%)",
			"html.chart.key.goals": "goals",
			"html.missed":          "Missed targets",
			"html.missed.head":     "Case\tKind\tPriority\tTarget\tLimit\tTook\tOver by\tStarted\tSubject",
			"html.missed.open":     " (still open)",
			"html.missed.none":     "None.",
			"html.footer":          "Resolution: 90%% of incidents within the first tier and 99.9%% within the second, per priority (R7); first response within the plan's time (R9); questions answered within the first tier (90%%) and the second (100%%) (R10); change requests have no target (R14). A month counts as missed when either tier of any priority is missed (R13).",
		},
	},
	// Dutch uses the agreement's words (7.1, 7.3, 9.1): prioriteit Urgent,
	// Hoog, Medium, Laag; oplostijd; eerste reactie; werkdag. A tier is a
	// "norm", named by its share: the 90%-norm and the 99,9%-norm (100%
	// for questions), as the staff mails (sla_breach) call them.
	Dutch: {
		tag: Dutch, decimal: ",", longDates: true,
		months: [12]string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"},
		short:  [12]string{"jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"},
		msg: map[string]string{
			// "wd", not "d": a Dutch reader takes "d" for a calendar day
			// (dag); "u" (uur) is how Dutch abbreviates hours.
			"unit.day": "wd", "unit.hour": "u", "unit.minute": "m",
			"legend":       "Werktijd: maandag t/m vrijdag van 08:00 tot 17:00 uur, behalve op feestdagen (R11); wd = werkdag van 9 werkuren, u = werkuur, m = minuut.",
			"supplier":     "Servicedesk",
			"subject":      "%s: servicerapportage %s, %s",
			"subject.all":  "alle klanten",
			"title":        "%s: servicerapportage %s",
			"period":       "%s t/m %s (%s)",
			"no cases":     "Geen cases in %s.",
			"priority.all": "Alle",

			"verdict.met": "gehaald", "verdict.missed": "niet gehaald", "verdict.pending": "nog open", "verdict.no cases": "geen cases",
			"priority.urgent": "Urgent", "priority.high": "Hoog", "priority.medium": "Medium", "priority.low": "Laag",
			"kind.incident": "incident", "kind.question": "vraag", "kind.change": "wijziging",
			"target.first_response":   "eerste reactie (R9)",
			"target.resolution":       "oplostijd, 90%%-norm (R7)",
			"target.resolution_tier2": "oplostijd, 99,9%%-norm (R7)",
			"target.answer":           "antwoord op vraag, 90%%-norm (R10)",
			"target.answer_tier2":     "antwoord op vraag, 100%%-norm (R10)",

			"compensation.none":     "Oplostijden deze maand (R13): %s. Geen reeks maanden met overschreden oplostijden: er is geen korting verschuldigd.",
			"compensation.first":    "Oplostijden deze maand niet gehaald (R13): aanleiding voor een incidentoverleg met maandelijkse vervolgafspraken; nog geen korting verschuldigd (pas vanaf de 3e maand).",
			"compensation.meeting":  "Oplostijden %d maanden achter elkaar niet gehaald (R13): aanleiding voor een incidentoverleg met maandelijkse vervolgafspraken; nog geen korting verschuldigd (pas vanaf de 3e maand).",
			"compensation.discount": "Oplostijden %d maanden achter elkaar niet gehaald (R13): %d%% korting op de volgende maandfactuur (5%% vanaf de 3e maand, 5%% extra voor elke volgende maand, ten hoogste %d%%).",

			"text.period":         "Periode %s; stand per %s.",
			"text.tiers":          `De normen tellen de cases waarvan de uitkomst bekend is; "+N" zijn open cases waarvan de termijn nog niet verstreken is (nog open).`,
			"text.incidents":      "Incidenten (R7: 90%% opgelost binnen de 90%%-norm, 99,9%% binnen de 99,9%%-norm; R9: eerste reactie binnen %s)",
			"text.incidents.head": "PRIORITEIT\tCASES\tOPGELOST\tOPEN\t90%%-NORM\tBINNEN\t%%\t99,9%%-NORM\tBINNEN\t%%\tP90\tP99,9\tEERSTE REACTIE\t%%\tOORDEEL",
			"text.questions":      "Vragen (R10): gesteld %d, beantwoord %d, wachtend op antwoord %d",
			"text.questions.head": "BEANTWOORD BINNEN\tNORM\tBINNEN\t%%\tOORDEEL",
			"text.changes":        "Wijzigingsverzoeken (R14, tellen in geen van de cijfers hierboven mee): %d",
			"text.missed":         "Niet gehaalde termijnen: %d",
			"text.missed.head":    "CASE\tSOORT\tPRIORITEIT\tNORM\tTERMIJN\tDUUR\tTE LAAT\tONDERWERP",
			"text.open":           " (nog open)",
			"text.history":        "Resultaat, laatste %d maanden (incidenten, alle prioriteiten)",
			"text.history.head":   "MAAND\tCASES\t90%%-NORM\t%%\t99,9%%-NORM\t%%\tOORDEEL",

			"html.title":           "Servicerapportage %s",
			"html.period":          "%s · periode %s",
			"html.asof":            "Stand per %s.",
			"html.tiers.before":    "De normen tellen de cases waarvan de uitkomst bekend is;",
			"html.tiers.after":     "zijn open cases waarvan de termijn nog niet verstreken is.",
			"html.incidents":       "Incidenten",
			"html.incidents.head":  "Prioriteit\tCases\tOpgelost\tOpen\t90%%-norm\tBinnen\t%%\t99,9%%-norm\tBinnen\t%%\tP90\tP99,9\tEerste reactie ≤ %s\t%%\tOordeel",
			"html.priority.all":    "Alle prioriteiten",
			"html.questions":       "Vragen",
			"html.questions.head":  "Beantwoord binnen\tNorm\tBinnen\t%%\tOordeel",
			"html.questions.note":  "Vragen gesteld: %d; beantwoord: %d; wachtend op antwoord: %d. Wijzigingsverzoeken: %d (die hebben geen oplostijd en tellen in geen van de cijfers hierboven mee).",
			"html.history":         "Resultaat over de laatste %d maanden",
			"html.history.head":    "Maand\tCases\t90%%-norm\t%%\t99,9%%-norm\t%%\tOordeel",
			"html.chart":           "Resultaat van %s over de laatste %d maanden: binnen de 90%%-norm als staven, binnen de 99,9%%-norm als lijn, de normen als stippellijnen",
			"html.chart.goal1":     "90%%-norm",
			"html.chart.goal2":     "99,9%%-norm",
			"html.chart.key.tier1": "opgelost binnen de 90%%-norm",
			"html.chart.key.tier2": "opgelost binnen de 99,9%%-norm",
			"html.chart.key.goals": "normen",
			"html.missed":          "Niet gehaalde termijnen",
			"html.missed.head":     "Case\tSoort\tPrioriteit\tNorm\tTermijn\tDuur\tTe laat\tBegonnen\tOnderwerp",
			"html.missed.open":     " (nog open)",
			"html.missed.none":     "Geen.",
			"html.footer":          "Oplostijd: per prioriteit 90%% van de incidenten binnen de 90%%-norm en 99,9%% binnen de 99,9%%-norm (R7); eerste reactie binnen de termijn van het abonnement (R9); vragen in eerste aanzet beantwoord: 90%% binnen 3 werkdagen en 100%% binnen 5 werkdagen (R10); wijzigingsverzoeken hebben geen oplostijd (R14). Een maand telt als niet gehaald wanneer bij een prioriteit een van beide normen niet gehaald is (R13).",
		},
	},
}

// lookupLang is the language named, Dutch for anything else.
func lookupLang(name string) *language {
	if l, ok := languages[strings.ToLower(strings.TrimSpace(name))]; ok {
		return l
	}
	return languages[Dutch]
}

// ---- the view: what every format shows, computed once ----

type view struct {
	r         *sla.Report
	opts      Options
	loc       *time.Location
	l         *language
	Supplier  string // in the view's language
	MonthName string // "May 2025", "mei 2025"
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
	v := &view{
		r: r, opts: opts, loc: loc, l: lookupLang(opts.Lang), Supplier: clean(opts.Supplier),
		MonthID: fmt.Sprintf("%04d-%02d", r.Year, int(r.Month)),
		From:    r.From.In(loc), To: r.To.In(loc), Now: r.Now.In(loc),
	}
	if v.Supplier == "" {
		v.Supplier = v.t("supplier")
	}
	v.MonthName = v.month(r.Month) + " " + strconv.Itoa(r.Year)
	return v
}

// t is message key in the view's language, formatted with args. A key
// missing there falls back to English, then to the key itself; the tests
// see that no key is missing.
func (v *view) t(key string, args ...any) string {
	msg, ok := v.l.msg[key]
	if !ok {
		if msg, ok = languages[English].msg[key]; !ok {
			return key
		}
	}
	return fmt.Sprintf(msg, args...)
}

// word names a code (a verdict, priority, kind or target) in the view's
// language: the message "<group>.<code>", or the code when there is none.
func (v *view) word(group, code string) string {
	key := group + "." + code
	if _, ok := v.l.msg[key]; ok {
		return v.t(key)
	}
	if _, ok := languages[English].msg[key]; ok {
		return v.t(key)
	}
	return code
}

// heads are the column heads of message key.
func (v *view) heads(key string, args ...any) []string {
	return strings.Split(v.t(key, args...), "\t")
}

func (v *view) month(m time.Month) string {
	if m < time.January || m > time.December {
		return m.String()
	}
	return v.l.months[m-1]
}

func (v *view) shortMonth(m time.Month) string {
	if m < time.January || m > time.December {
		return m.String()
	}
	return v.l.short[m-1]
}

// date is "2025-05-01", or "1 mei 2025" in a language with long dates.
func (v *view) date(t time.Time) string {
	if v.l.longDates {
		return fmt.Sprintf("%d %s %d", t.Day(), v.month(t.Month()), t.Year())
	}
	return t.Format("2006-01-02")
}

// dateTime is the date and the clock time: "6 mei 2025 08:00".
func (v *view) dateTime(t time.Time) string { return v.date(t) + " " + t.Format("15:04") }

// asOf is the moment the figures were taken, with its zone.
func (v *view) asOf() string { return v.dateTime(v.Now) + " " + v.Now.Format("MST") }

// lastDay is the month's last day, for "1 to 31 May".
func (v *view) lastDay() time.Time { return v.To.AddDate(0, 0, -1) }

func (v *view) periodText() string {
	return v.t("period", v.date(v.From), v.date(v.lastDay()), v.loc)
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

// number is x with the language's decimal separator.
func (v *view) number(x float64, prec int) string {
	return strings.Replace(strconv.FormatFloat(x, 'f', prec, 64), ".", v.l.decimal, 1)
}

// percentText is "87.5%" ("87,5%" in Dutch), or "-" when no outcome is
// known.
func (v *view) percentText(a sla.Attainment) string {
	if !a.HasPercent() {
		return "-"
	}
	return v.number(a.Percent, 1) + "%"
}

// goalText is "90%", "99.9%" ("99,9%").
func (v *view) goalText(g float64) string { return v.number(g, -1) + "%" }

// countText is "9/10", with the pending cases: "9/10 +2".
func countText(a sla.Attainment) string {
	s := fmt.Sprintf("%d/%d", a.Met, a.Known)
	if a.Pending > 0 {
		s += fmt.Sprintf(" +%d", a.Pending)
	}
	return s
}

// working is FormatWorking with the language's units.
func (v *view) working(d time.Duration) string {
	return formatWorking(d, v.t("unit.day"), v.t("unit.hour"), v.t("unit.minute"))
}

func (v *view) limitText(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return v.working(d)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// priority names a line's priority; "" is all of them.
func (v *view) priority(p, all string) string {
	if p == "" {
		return v.t(all)
	}
	return v.word("priority", p)
}

// compensationText is R13's line.
func (v *view) compensationText(c sla.CustomerReport) string {
	n := c.Compensation.MissedMonths
	switch {
	case n == 0:
		return v.t("compensation.none", v.word("verdict", c.Verdict))
	case n == 1 && c.Compensation.DiscountPercent == 0:
		return v.t("compensation.first")
	case c.Compensation.DiscountPercent == 0:
		return v.t("compensation.meeting", n)
	}
	return v.t("compensation.discount", n, c.Compensation.DiscountPercent, sla.MaxDiscount)
}

// ---- text ----

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
		FormatVersion: 1, Supplier: cmp.Or(clean(v.opts.Supplier), languages[English].msg["supplier"]), Month: v.MonthID, Zone: v.loc.String(),
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
