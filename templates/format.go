package templates

import (
	"strings"
	"time"

	"deskd/internal/i18n"
	"deskd/sla"
)

// The helpers below turn the SLA engine's values into the words the mails
// show. The daemon calls them to fill AckData and CaseData, so templates
// (defaults and operators' overrides alike) receive ready text and need no
// template functions.

// words is everything the helpers below say, in the one wording scheme
// (internal/i18n): the Dutch of the agreement and English.
var words = i18n.Catalog{
	i18n.Dutch: {
		// weekday, day, month, year, clock time, zone
		"when":                          "%s %d %s %d om %s (%s)",
		"working_day.one":               "1 werkdag",
		"working_day.other":             "%d werkdagen",
		"working_hour.one":              "1 werkuur",
		"working_hour.other":            "%d werkuren",
		"working_hour.after_days.one":   "1 werkuur",
		"working_hour.after_days.other": "%d werkuren",
		"minute.one":                    "1 minuut",
		"minute.other":                  "%d minuten",
		"day.one":                       "1 dag",
		"day.other":                     "%d dagen",
		"and":                           " en ",
		"follow":                        "Volg uw case online:\n%s",
		// Labels of codes in staff mails: the agreement's words (R7 table,
		// R10, R14).
		"label.urgent": "urgent", "label.high": "hoog", "label.medium": "medium", "label.low": "laag",
		"label.incident": "incident", "label.question": "vraag", "label.change": "wijziging",
		"label.open": "open", "label.pending": "wacht op klant", "label.closed": "gesloten",
		// Priorities for customers, as the agreement's table names them (R7).
		"priority.urgent": "Urgent", "priority.high": "Hoog", "priority.medium": "Medium", "priority.low": "Laag",
	},
	i18n.English: {
		"when":               "%s %d %s %d, %s %s",
		"working_day.one":    "1 working day",
		"working_day.other":  "%d working days",
		"working_hour.one":   "1 working hour",
		"working_hour.other": "%d working hours",
		// "5 working days and 3 hours": "working" once is enough.
		"working_hour.after_days.one":   "1 hour",
		"working_hour.after_days.other": "%d hours",
		"minute.one":                    "1 minute",
		"minute.other":                  "%d minutes",
		"day.one":                       "1 day",
		"day.other":                     "%d days",
		"and":                           " and ",
		"follow":                        "Follow your case online:\n%s",
		// English staff mails use the codes themselves.
		"label.urgent": "urgent", "label.high": "high", "label.medium": "medium", "label.low": "low",
		"label.incident": "incident", "label.question": "question", "label.change": "change",
		"label.open": "open", "label.pending": "pending", "label.closed": "closed",
		"priority.urgent": "Urgent", "priority.high": "High", "priority.medium": "Medium", "priority.low": "Low",
	},
}

// FormatWhen shows instant t to people, in zone loc (nil = UTC) and
// language lang:
//
//	nl  maandag 30 november 2026 om 12:00 (CET)
//	en  Monday 30 November 2026, 12:00 CET
//
// Dutch day and month names are lower case, as Dutch writes them. The zone
// abbreviation is always shown, UTC included: a deadline read in another
// zone, or around a DST change (CET/CEST), must not be ambiguous; times
// shown to people are in the SLA's zone (DESIGN.md). Unknown languages
// give Dutch (DefaultLang); the zero time gives "".
func FormatWhen(t time.Time, loc *time.Location, lang string) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	zone, _ := t.Zone()
	return words.Text(lang, "when", i18n.Weekday(lang, t.Weekday()), t.Day(), i18n.Month(lang, t.Month()), t.Year(), t.Format("15:04"), zone)
}

// FormatWorking shows a working-time duration in words, in lang (unknown
// = Dutch). One working day is 9 working hours (R11a): below 9 hours the
// duration stays in hours, from 9 hours on it is days and the remaining
// hours. Minutes appear only when the duration is not a whole number of
// hours; it is rounded to the minute first.
//
//	4h   4 werkuren                  4 working hours
//	9h   1 werkdag                   1 working day
//	48h  5 werkdagen en 3 werkuren   5 working days and 3 hours
//	90m  1 werkuur en 30 minuten     1 working hour and 30 minutes
//	45m  45 minuten                  45 minutes
//	0    0 minuten                   0 minutes
//
// A negative duration gets a leading "-"; the SLA engine passes none (an
// overrun is reported as a positive Over).
func FormatWorking(d time.Duration, lang string) string {
	neg, days, hours, minutes := sla.SplitWorking(d) // -20s is "0 minutes"
	sign := ""
	if neg {
		sign = "-"
	}

	var parts []string
	if days > 0 {
		parts = append(parts, words.Count(lang, "working_day", days))
	}
	if hours > 0 {
		unit := "working_hour"
		if days > 0 {
			unit = "working_hour.after_days"
		}
		parts = append(parts, words.Count(lang, unit, hours))
	}
	if minutes > 0 || len(parts) == 0 {
		parts = append(parts, words.Count(lang, "minute", minutes))
	}
	s := parts[len(parts)-1]
	if len(parts) > 1 {
		s = strings.Join(parts[:len(parts)-1], ", ") + words.Text(lang, "and") + s
	}
	return sign + s
}

// FormatWorkingHours names a target the agreement states in working
// hours, the first response of a plan (R9): rounded to the hour and never
// turned into days, "4 werkuren", "48 working hours", "1 werkuur".
func FormatWorkingHours(d time.Duration, lang string) string {
	hours := int64(d.Round(time.Hour) / time.Hour)
	return words.Count(lang, "working_hour", hours)
}

// FormatDays names a duration in whole calendar days, the reopen window
// (R11c): "14 dagen", "1 day".
func FormatDays(d time.Duration, lang string) string {
	days := int64(d.Round(24*time.Hour) / (24 * time.Hour))
	return words.Count(lang, "day", days)
}

// Label names a priority, kind or status code in a staff mail the way the
// Dutch agreement does (R7 table, R10, R14): "hoog", "vraag", "wacht op
// klant". English mails use the codes themselves, as does any code the
// agreement has no word for ("urgent", "medium", "open").
func Label(code, lang string) string {
	if key := "label." + code; words.Has(key) {
		return words.Text(lang, key)
	}
	return code
}

// PriorityName names priority p for a customer, in lang, the way the
// agreement's table does (R7): Urgent, Hoog, Medium, Laag in Dutch and
// Urgent, High, Medium, Low in English. p is a priority code ("urgent",
// "high", "medium", "low") or its Dutch keyword ("hoog", "laag"), in any
// case. The daemon uses it to fill CaseData.Priority of the "priority_set"
// mail; staff mails keep the codes. Anything else is returned unchanged,
// "" included.
func PriorityName(p, lang string) string {
	code := strings.ToLower(strings.TrimSpace(p))
	switch code {
	case "hoog":
		code = "high"
	case "laag":
		code = "low"
	}
	if key := "priority." + code; words.Has(key) {
		return words.Text(lang, key)
	}
	return p
}

// FollowLine is the line that carries the customer portal's "follow your
// case" link below a relayed staff reply, in lang (unknown = Dutch); the
// templated mails say the same in their own layout.
func FollowLine(lang, url string) string {
	return words.Text(lang, "follow", url)
}
