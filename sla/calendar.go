package sla

import (
	"errors"
	"fmt"
	"time"
)

// CalendarConfig describes working time (R11): which days are worked and
// the daily window, in one zone.
type CalendarConfig struct {
	// Location is the zone of the window and of every date (default
	// Europe/Amsterdam is the caller's to load; nil means UTC).
	Location *time.Location
	// Start and End are the daily window as clock times (hour and minute
	// since midnight): [Start, End). Zero values mean 08:00 and 17:00.
	Start, End ClockTime
	// Holidays says which Dutch public holidays are off.
	Holidays HolidayRules
	// Closures are extra days off (a company day out, 24 December).
	Closures []Date
	// Open are days that are worked even though the rules above say
	// otherwise (a customer who works Good Friday's opposite, a Saturday
	// release). Open wins over Closures and holidays.
	Open []Date
}

// ClockTime is a time of day, hour and minute.
type ClockTime struct{ Hour, Minute int }

// ParseClockTime reads "HH:MM".
func ParseClockTime(s string) (ClockTime, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return ClockTime{}, fmt.Errorf("time of day %q: want HH:MM", s)
	}
	return ClockTime{t.Hour(), t.Minute()}, nil
}

func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }
func (c ClockTime) minutes() int   { return c.Hour*60 + c.Minute }
func (c ClockTime) isZero() bool   { return c == ClockTime{} }
func (c ClockTime) on(d Date, loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, c.Hour, c.Minute, 0, 0, loc)
}

// MarshalText is "HH:MM". With UnmarshalText (ParseClockTime) it lets a
// configuration carry a time of day as such, parsed once where it is read.
func (c ClockTime) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads "HH:MM" (ParseClockTime).
func (c *ClockTime) UnmarshalText(b []byte) error { return parseInto(c, ParseClockTime, b) }

// parseInto sets *dst to what parse reads from b, for UnmarshalText.
func parseInto[T any](dst *T, parse func(string) (T, error), b []byte) error {
	v, err := parse(string(b))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// Before reports whether c is earlier in the day than d.
func (c ClockTime) Before(d ClockTime) bool { return c.minutes() < d.minutes() }

// Calendar answers working-time questions (R11, R11a). Every step between
// days is a calendar day in the configured zone and every period bound is
// built with time.Date, so a DST change (which falls outside the window in
// every zone deskd is meant for) never moves a deadline by an hour.
// A Calendar is safe for concurrent use.
type Calendar struct {
	loc        *time.Location
	start, end ClockTime
	rules      HolidayRules
	closed     map[Date]bool
	open       map[Date]bool
	years      *holidayCache
}

// holidayCache holds the days off of the years deskd will meet, computed
// once when the calendar is built and read without locks; a year outside
// them is computed when asked. Shared by the calendars derived with With.
type holidayCache struct {
	rules       HolidayRules
	first, last int
	days        map[Date]bool
}

// The years the cache holds.
const firstCachedYear, lastCachedYear = 2000, 2100

func newHolidayCache(rules HolidayRules) *holidayCache {
	h := &holidayCache{rules: rules, first: firstCachedYear, last: lastCachedYear, days: map[Date]bool{}}
	for y := h.first; y <= h.last; y++ {
		days, _ := DutchHolidays(y, rules) // rules were validated by NewCalendar
		for _, hd := range days {
			h.days[hd.Date] = true
		}
	}
	return h
}

func (h *holidayCache) off(d Date) bool {
	if d.Year >= h.first && d.Year <= h.last {
		return h.days[d]
	}
	days, _ := DutchHolidays(d.Year, h.rules)
	for _, hd := range days {
		if hd.Date == d {
			return true
		}
	}
	return false
}

// NewCalendar checks cfg and builds its calendar.
func NewCalendar(cfg CalendarConfig) (*Calendar, error) {
	if err := cfg.Holidays.Validate(); err != nil {
		return nil, err
	}
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	start, end := cfg.Start, cfg.End
	if start.isZero() && end.isZero() {
		start, end = ClockTime{8, 0}, ClockTime{17, 0} // R11
	}
	for _, c := range []ClockTime{start, end} {
		if c.Hour < 0 || c.Hour > 24 || c.Minute < 0 || c.Minute > 59 || c.minutes() > 24*60 {
			return nil, fmt.Errorf("time of day %s out of range", c)
		}
	}
	if start.minutes() >= end.minutes() {
		return nil, fmt.Errorf("working day starts at %s, not before its end %s", start, end)
	}
	cal := &Calendar{
		loc: loc, start: start, end: end, rules: cfg.Holidays,
		closed: map[Date]bool{}, open: map[Date]bool{},
		years: newHolidayCache(cfg.Holidays),
	}
	for _, d := range cfg.Closures {
		cal.closed[d] = true
	}
	for _, d := range cfg.Open {
		cal.open[d] = true
	}
	return cal, nil
}

// MustCalendar is NewCalendar for configurations known to be valid (tests,
// the defaults); it panics on an error.
func MustCalendar(cfg CalendarConfig) *Calendar {
	c, err := NewCalendar(cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// DefaultCalendar is the agreement's calendar (R11) in loc.
func DefaultCalendar(loc *time.Location) *Calendar {
	return MustCalendar(CalendarConfig{Location: loc, Holidays: DefaultHolidayRules()})
}

// With returns a calendar that also closes closures and opens open: a
// customer's own days (per-customer overrides). The receiver is unchanged.
func (c *Calendar) With(closures, open []Date) *Calendar {
	if len(closures) == 0 && len(open) == 0 {
		return c
	}
	d := *c
	d.closed = make(map[Date]bool, len(c.closed)+len(closures))
	d.open = make(map[Date]bool, len(c.open)+len(open))
	for k := range c.closed {
		d.closed[k] = true
	}
	for k := range c.open {
		d.open[k] = true
	}
	for _, k := range closures {
		d.closed[k] = true
	}
	for _, k := range open {
		d.open[k] = true
	}
	return &d
}

// DayOff is a weekday that is not worked, and why: a holiday's key, or
// "closure".
type DayOff struct {
	Date   Date
	Reason string
}

// Closure is DayOff.Reason for a configured closure day.
const Closure = "closure"

// DaysOff lists the weekdays of year that are not worked, in date order:
// what the calendar does besides the weekend, for people to check.
func (c *Calendar) DaysOff(year int) []DayOff {
	holidays, _ := DutchHolidays(year, c.rules)
	why := map[Date]string{}
	for _, h := range holidays {
		why[h.Date] = h.Key
	}
	var out []DayOff
	for d := (Date{year, time.January, 1}); d.Year == year; d = d.AddDays(1) {
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday || c.IsWorkingDay(d) {
			continue
		}
		reason := why[d]
		if reason == "" || c.closed[d] {
			reason = Closure
		}
		out = append(out, DayOff{d, reason})
	}
	return out
}

// Location is the calendar's zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Window is the daily working window.
func (c *Calendar) Window() (start, end ClockTime) { return c.start, c.end }

// IsWorkingDay reports whether d is worked: Monday to Friday, not a
// holiday or closure, or listed as open (R11).
func (c *Calendar) IsWorkingDay(d Date) bool {
	if c.open[d] {
		return true
	}
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.closed[d] && !c.years.off(d)
}

// period is the working window of day d.
func (c *Calendar) period(d Date) (from, to time.Time) {
	return c.start.on(d, c.loc), c.end.on(d, c.loc)
}

// IsWorkingTime reports whether t lies in a working period, [08:00, 17:00)
// of a working day: 17:00:00 itself is after hours (R11).
func (c *Calendar) IsWorkingTime(t time.Time) bool {
	d := DateOf(t.In(c.loc))
	if !c.IsWorkingDay(d) {
		return false
	}
	from, to := c.period(d)
	return !t.Before(from) && t.Before(to)
}

// errNoWorkingDay guards the day loops: with finitely many closures a
// working day always comes, so this means a broken calendar.
var errNoWorkingDay = errors.New("sla: no working day within 20 years")

const maxDaySearch = 20 * 366

// NextWorkingStart is t when t is working time, otherwise the start of the
// next working period: the instant a mail received at t is taken into
// work (R8).
func (c *Calendar) NextWorkingStart(t time.Time) time.Time {
	d := DateOf(t.In(c.loc))
	for i := 0; i < maxDaySearch; i++ {
		if c.IsWorkingDay(d) {
			from, to := c.period(d)
			if t.Before(from) {
				return from
			}
			if t.Before(to) {
				return t
			}
		}
		d = d.AddDays(1)
	}
	panic(errNoWorkingDay)
}

// Add returns the earliest instant at which d of working time has passed
// since t (R11a): working time is counted only inside working periods, so
// the result is inside a period or exactly at a period's end (17:00, the
// same as 08:00 the next working day). d <= 0 gives t unchanged.
func (c *Calendar) Add(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	cur := c.NextWorkingStart(t)
	for i := 0; i < maxDaySearch; i++ {
		_, to := c.period(DateOf(cur.In(c.loc)))
		left := to.Sub(cur)
		if d <= left {
			return cur.Add(d)
		}
		d -= left
		cur = c.NextWorkingStart(to)
	}
	panic(errNoWorkingDay)
}

// Deadline is the instant by which d of working time since t must be
// used: Add's result, except that the end of a working period becomes the
// next period's start, so that "1 working day" from 08:00 falls at 08:00
// the next working day, as R11a says, and work done in the evening in
// between is in time. d <= 0 gives t.
func (c *Calendar) Deadline(t time.Time, d time.Duration) time.Time {
	at := c.Add(t, d)
	if d > 0 && !c.IsWorkingTime(at) {
		return c.NextWorkingStart(at)
	}
	return at
}

// Between is the working time in [a, b); 0 when b is not after a.
func (c *Calendar) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	var sum time.Duration
	last := DateOf(b.In(c.loc))
	for d := DateOf(a.In(c.loc)); !last.Before(d); d = d.AddDays(1) {
		if !c.IsWorkingDay(d) {
			continue
		}
		from, to := c.period(d)
		if from.Before(a) {
			from = a
		}
		if to.After(b) {
			to = b
		}
		if to.After(from) {
			sum += to.Sub(from)
		}
	}
	return sum
}
