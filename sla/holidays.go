package sla

import (
	"fmt"
	"sort"
	"time"
)

// Date is a calendar day, without a time or zone: holidays and closures
// are days in the support zone, whatever instant they start at (R11).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the day t falls on in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads "YYYY-MM-DD" and refuses impossible days (2026-02-30).
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// String is "YYYY-MM-DD".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// MarshalText is "YYYY-MM-DD", as String.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "YYYY-MM-DD" (ParseDate).
func (d *Date) UnmarshalText(b []byte) error { return parseInto(d, ParseDate, b) }

// In is the start of day d in loc: 00:00, or the first instant of the day
// when a DST change skips midnight.
func (d Date) In(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// AddDays moves by calendar days (never 24-hour steps, R11).
func (d Date) AddDays(n int) Date { return dateOfDays(d.days() + n) }

// Weekday of d.
func (d Date) Weekday() time.Weekday {
	// 1970-01-01 was a Thursday.
	return time.Weekday(((d.days()+4)%7 + 7) % 7)
}

// days counts days from 1970-01-01 in the proleptic Gregorian calendar
// (H. Hinnant's days_from_civil): plain integer arithmetic, as the
// calendar's loops step through days far more often than time.Date can
// be afforded.
func (d Date) days() int {
	y, m := d.Year, int(d.Month)
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d.Day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// dateOfDays is the inverse of Date.days (Hinnant's civil_from_days).
func dateOfDays(z int) Date {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return Date{y, time.Month(m), day}
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Dutch public holidays by key, as R11 lists them. The keys are what the
// configuration names in sla.holidays.skip.
const (
	HolidayNewYear       = "new_year"
	HolidayGoodFriday    = "good_friday"
	HolidayEasterMonday  = "easter_monday"
	HolidayKingsDay      = "kings_day"
	HolidayLiberationDay = "liberation_day"
	HolidayAscension     = "ascension_day"
	HolidayWhitMonday    = "whit_monday"
	HolidayChristmas     = "christmas"
	HolidayBoxingDay     = "boxing_day"
)

// HolidayKeys lists every holiday deskd knows, in calendar order.
func HolidayKeys() []string {
	return []string{
		HolidayNewYear, HolidayGoodFriday, HolidayEasterMonday, HolidayKingsDay,
		HolidayLiberationDay, HolidayAscension, HolidayWhitMonday,
		HolidayChristmas, HolidayBoxingDay,
	}
}

// Liberation Day rules (R11: "5 May only in lustrum years").
const (
	LiberationLustrum = "lustrum" // 2025, 2030, ...: the agreement's reading
	LiberationAlways  = "always"
	LiberationNever   = "never"
)

// HolidayRules says which of the Dutch holidays are days off. The zero
// value is not the agreement's reading; use DefaultHolidayRules.
type HolidayRules struct {
	// GoodFriday is a day off when true (R11: a working day by default).
	GoodFriday bool
	// Liberation is LiberationLustrum, LiberationAlways or LiberationNever.
	Liberation string
	// Skip lists holiday keys that are working days all the same.
	Skip []string
}

// DefaultHolidayRules is R11: Good Friday worked, 5 May off in lustrum
// years only, every other holiday off.
func DefaultHolidayRules() HolidayRules {
	return HolidayRules{Liberation: LiberationLustrum}
}

// Holiday is one day off with its key.
type Holiday struct {
	Date Date
	Key  string
}

// Easter is Easter Sunday of year in the Gregorian calendar (the anonymous
// Gregorian algorithm, "Meeus/Jones/Butcher"); the movable holidays hang
// off it.
func Easter(year int) Date {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return Date{year, time.Month(month), day}
}

// DutchHolidays returns the days off of year under rules, in date order.
func DutchHolidays(year int, rules HolidayRules) ([]Holiday, error) {
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	easter := Easter(year)
	kings := Date{year, time.April, 27}
	if kings.Weekday() == time.Sunday {
		kings = Date{year, time.April, 26} // R11: the Saturday before
	}
	all := []Holiday{
		{Date{year, time.January, 1}, HolidayNewYear},
		{easter.AddDays(-2), HolidayGoodFriday},
		{easter.AddDays(1), HolidayEasterMonday},
		{kings, HolidayKingsDay},
		{Date{year, time.May, 5}, HolidayLiberationDay},
		{easter.AddDays(39), HolidayAscension},
		{easter.AddDays(50), HolidayWhitMonday},
		{Date{year, time.December, 25}, HolidayChristmas},
		{Date{year, time.December, 26}, HolidayBoxingDay},
	}
	skip := map[string]bool{}
	for _, k := range rules.Skip {
		skip[k] = true
	}
	if !rules.GoodFriday {
		skip[HolidayGoodFriday] = true
	}
	switch rules.Liberation {
	case LiberationNever:
		skip[HolidayLiberationDay] = true
	case LiberationLustrum, "":
		if year%5 != 0 {
			skip[HolidayLiberationDay] = true
		}
	}
	out := all[:0]
	for _, h := range all {
		if !skip[h.Key] {
			out = append(out, h)
		}
	}
	// Ascension can meet King's Day or Liberation Day only in theory
	// (earliest Ascension is 30 April), but keep the order honest.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out, nil
}

// Validate names the first unknown key or rule.
func (r HolidayRules) Validate() error {
	switch r.Liberation {
	case "", LiberationLustrum, LiberationAlways, LiberationNever:
	default:
		return fmt.Errorf("liberation day rule %q: want %s, %s or %s", r.Liberation, LiberationLustrum, LiberationAlways, LiberationNever)
	}
	for _, k := range r.Skip {
		if !knownHoliday(k) {
			return fmt.Errorf("unknown holiday %q (known: %v)", k, HolidayKeys())
		}
	}
	return nil
}

func knownHoliday(k string) bool {
	for _, h := range HolidayKeys() {
		if h == k {
			return true
		}
	}
	return false
}
