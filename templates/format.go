package templates

import (
	"fmt"
	"strings"
	"time"

	"deskd/sla"
)

// The helpers below turn the SLA engine's values into the words the mails
// show. The daemon calls them to fill AckData and CaseData, so templates
// (defaults and operators' overrides alike) receive ready text and need no
// template functions.

// normLang reduces a language tag to the primary subtag the templates are
// stored under: "en-GB" and "EN" give "en".
func normLang(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return lang
}

// formatLang is the language of the words: English, or Dutch for anything
// else (DefaultLang), matching Render's fallback.
func formatLang(lang string) string {
	if normLang(lang) == "en" {
		return "en"
	}
	return DefaultLang
}

var (
	nlWeekdays = [...]string{"zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"}
	nlMonths   = [...]string{"januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"}
)

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
	if formatLang(lang) == "en" {
		return fmt.Sprintf("%s %d %s %d, %s %s", t.Weekday(), t.Day(), t.Month(), t.Year(), t.Format("15:04"), zone)
	}
	return fmt.Sprintf("%s %d %s %d om %s (%s)", nlWeekdays[t.Weekday()], t.Day(), nlMonths[t.Month()-1], t.Year(), t.Format("15:04"), zone)
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
	en := formatLang(lang) == "en"
	neg, days, hours, minutes := sla.SplitWorking(d) // -20s is "0 minutes"
	sign := ""
	if neg {
		sign = "-"
	}

	var parts []string
	if days > 0 {
		parts = append(parts, count(days, en, "werkdag", "werkdagen", "working day", "working days"))
	}
	if hours > 0 {
		if days > 0 && en {
			// "5 working days and 3 hours": "working" once is enough.
			parts = append(parts, count(hours, en, "", "", "hour", "hours"))
		} else {
			parts = append(parts, count(hours, en, "werkuur", "werkuren", "working hour", "working hours"))
		}
	}
	if minutes > 0 || len(parts) == 0 {
		parts = append(parts, count(minutes, en, "minuut", "minuten", "minute", "minutes"))
	}
	and := " en "
	if en {
		and = " and "
	}
	s := parts[len(parts)-1]
	if len(parts) > 1 {
		s = strings.Join(parts[:len(parts)-1], ", ") + and + s
	}
	return sign + s
}

// FormatWorkingHours names a target the agreement states in working
// hours, the first response of a plan (R9): rounded to the hour and never
// turned into days, "4 werkuren", "48 working hours", "1 werkuur".
func FormatWorkingHours(d time.Duration, lang string) string {
	hours := int64(d.Round(time.Hour) / time.Hour)
	return count(hours, formatLang(lang) == "en", "werkuur", "werkuren", "working hour", "working hours")
}

// FormatDays names a duration in whole calendar days, the reopen window
// (R11c): "14 dagen", "1 day".
func FormatDays(d time.Duration, lang string) string {
	days := int64(d.Round(24*time.Hour) / (24 * time.Hour))
	return count(days, formatLang(lang) == "en", "dag", "dagen", "day", "days")
}

// Label names a priority, kind or status code in a staff mail the way the
// Dutch agreement does (R7 table, R10, R14): "hoog", "vraag", "wacht op
// klant". English mails use the codes themselves, as does any code the
// agreement has no word for ("urgent", "medium", "open").
func Label(code, lang string) string {
	if formatLang(lang) == "en" {
		return code
	}
	switch code {
	case "high":
		return "hoog"
	case "low":
		return "laag"
	case "question":
		return "vraag"
	case "change":
		return "wijziging"
	case "pending":
		return "wacht op klant"
	case "closed":
		return "gesloten"
	}
	return code
}

// count is "<n> <unit>" with the singular for 1.
func count(n int64, en bool, nlOne, nlMany, enOne, enMany string) string {
	one, many := nlOne, nlMany
	if en {
		one, many = enOne, enMany
	}
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// PriorityName names priority p for a customer, in lang, the way the
// agreement's table does (R7): Urgent, Hoog, Medium, Laag in Dutch and
// Urgent, High, Medium, Low in English. p is a priority code ("urgent",
// "high", "medium", "low") or its Dutch keyword ("hoog", "laag"), in any
// case. The daemon uses it to fill CaseData.Priority of the "priority_set"
// mail; staff mails keep the codes. Anything else is returned unchanged,
// "" included.
func PriorityName(p, lang string) string {
	en := formatLang(lang) == "en"
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "urgent":
		return "Urgent"
	case "high", "hoog":
		if en {
			return "High"
		}
		return "Hoog"
	case "medium":
		return "Medium"
	case "low", "laag":
		if en {
			return "Low"
		}
		return "Laag"
	}
	return p
}

// FollowLine is the line that carries the customer portal's "follow your
// case" link below a relayed staff reply, in lang (unknown = Dutch); the
// templated mails say the same in their own layout.
func FollowLine(lang, url string) string {
	if formatLang(lang) == "en" {
		return "Follow your case online:\n" + url
	}
	return "Volg uw case online:\n" + url
}
