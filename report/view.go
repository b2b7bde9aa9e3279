package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"deskd/internal/i18n"
	"deskd/sla"
)

// view is what every format shows, computed once.
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
// missing there falls back (i18n.Catalog.Text); the tests see that no
// key is missing.
func (v *view) t(key string, args ...any) string {
	return messages.Text(v.l.tag, key, args...)
}

// word names a code (a verdict, priority, kind or target) in the view's
// language: the message "<group>.<code>", or the code when there is none.
func (v *view) word(group, code string) string {
	key := group + "." + code
	if messages.Has(key) {
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
	return i18n.Month(v.l.tag, m)
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
