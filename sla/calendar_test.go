package sla

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func amsterdam(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at is a wall-clock instant in Amsterdam: "2026-11-30 16:59" or with seconds.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	layout := "2006-01-02 15:04"
	if strings.Count(s, ":") == 2 {
		layout = "2006-01-02 15:04:05"
	}
	v, err := time.ParseInLocation(layout, s, amsterdam(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// R11: the golden table, typed by hand from published calendars, must be
// exactly what the rules compute, year by year.
func TestDutchHolidaysGolden2024to2032(t *testing.T) {
	f, err := os.Open("testdata/holidays-nl-2024-2032.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[int][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		d, err := ParseDate(strings.Fields(line)[0])
		if err != nil {
			t.Fatal(err)
		}
		want[d.Year] = append(want[d.Year], line)
	}
	for year := 2024; year <= 2032; year++ {
		days, err := DutchHolidays(year, DefaultHolidayRules())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range days {
			got = append(got, h.Date.String()+" "+h.Key)
		}
		if strings.Join(got, "\n") != strings.Join(want[year], "\n") {
			t.Errorf("%d:\ngot  %v\nwant %v", year, got, want[year])
		}
	}
}

func TestHolidayRules(t *testing.T) {
	// Good Friday off when configured; 5 May every year when "always".
	days, err := DutchHolidays(2026, HolidayRules{GoodFriday: true, Liberation: LiberationAlways, Skip: []string{HolidayWhitMonday}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range days {
		got[h.Key] = h.Date.String()
	}
	if got[HolidayGoodFriday] != "2026-04-03" || got[HolidayLiberationDay] != "2026-05-05" {
		t.Errorf("good friday / liberation: %v", got)
	}
	if _, ok := got[HolidayWhitMonday]; ok {
		t.Error("skipped whit monday is still off")
	}
	if _, err := DutchHolidays(2026, HolidayRules{Skip: []string{"carnival"}}); err == nil {
		t.Error("unknown holiday accepted")
	}
	if _, err := DutchHolidays(2026, HolidayRules{Liberation: "sometimes"}); err == nil {
		t.Error("unknown liberation rule accepted")
	}
	// 5 May falls on a weekday in 2025 and 2026: off in the lustrum year only (R11).
	cal := DefaultCalendar(amsterdam(t))
	for year, off := range map[int]bool{2025: true, 2026: false} {
		if got := !cal.IsWorkingDay(Date{year, time.May, 5}); got != off {
			t.Errorf("5 May %d off = %v, want %v", year, got, off)
		}
	}
}

// The edge cases the issue names, each against R8, R11 and R11a.
func TestCalendarEdges(t *testing.T) {
	cal := DefaultCalendar(amsterdam(t))
	goodFridayOff := MustCalendar(CalendarConfig{Location: amsterdam(t), Holidays: HolidayRules{GoodFriday: true, Liberation: LiberationLustrum}})
	tests := []struct {
		name string
		cal  *Calendar
		from string
		add  time.Duration
		want string
	}{
		{"16:59 is working time (R11)", cal, "2026-11-30 16:59", 4 * time.Hour, "2026-12-01 11:59"},
		{"17:00:00 starts the next working day (R8, R11)", cal, "2026-11-30 17:00:00", 4 * time.Hour, "2026-12-01 12:00"},
		{"16:59:59 has one second left", cal, "2026-11-30 16:59:59", time.Hour, "2026-12-01 08:59:59"},
		{"before 08:00 starts at 08:00 (R8)", cal, "2026-11-30 06:30", time.Hour, "2026-11-30 09:00"},
		{"a full day from 08:00 ends at 17:00 (R11a)", cal, "2026-11-30 08:00", WorkingDay, "2026-11-30 17:00"},
		{"1 working day is the same clock time next day (R11a)", cal, "2026-11-30 10:00", WorkingDay, "2026-12-01 10:00"},
		{"48 working hours is 5 working days and 3 hours (R9, R11a)", cal, "2026-11-30 10:00", 48 * time.Hour, "2026-12-07 13:00"},
		{"weekend skipped", cal, "2026-12-04 15:00", 4 * time.Hour, "2026-12-07 10:00"},
		{"Friday before Easter: Good Friday worked by default (R11)", cal, "2026-04-02 16:00", WorkingDay, "2026-04-03 16:00"},
		{"Good Friday into Easter Monday", cal, "2026-04-03 16:00", WorkingDay, "2026-04-07 16:00"},
		{"Good Friday off when configured", goodFridayOff, "2026-04-02 16:00", WorkingDay, "2026-04-07 16:00"},
		{"Ascension Thursday is off", cal, "2026-05-13 10:00", WorkingDay, "2026-05-15 10:00"},
		{"King's Day on Monday 27 April 2026", cal, "2026-04-24 12:00", WorkingDay, "2026-04-28 12:00"},
		{"27 April 2025 a Sunday: King's Day is Saturday 26th, Monday 28th worked", cal, "2025-04-25 12:00", WorkingDay, "2025-04-28 12:00"},
		{"Liberation Day 2025 (lustrum) off", cal, "2025-05-02 12:00", WorkingDay, "2025-05-06 12:00"},
		{"Liberation Day 2026 worked", cal, "2026-05-04 12:00", WorkingDay, "2026-05-05 12:00"},
		{"last Sunday of March (DST starts)", cal, "2026-03-27 16:00", 2 * time.Hour, "2026-03-30 09:00"},
		{"last Sunday of October (DST ends)", cal, "2026-10-23 16:00", 2 * time.Hour, "2026-10-26 09:00"},
		{"a weekend mail across DST starts at Monday 08:00", cal, "2026-03-29 02:30", time.Hour, "2026-03-30 09:00"},
		{"Christmas and Boxing Day", cal, "2026-12-24 15:00", 4 * time.Hour, "2026-12-28 10:00"},
		{"New Year", cal, "2026-12-31 16:00", 2 * time.Hour, "2027-01-04 09:00"},
		{"65 working days (R11a: 3 months): 13 weeks, ending on a worked Good Friday", cal, "2026-01-05 08:00", 65 * WorkingDay, "2026-04-03 17:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := at(t, tt.from)
			got := tt.cal.Add(from, tt.add)
			if want := at(t, tt.want); !got.Equal(want) {
				t.Errorf("Add(%s, %v) = %s, want %s", tt.from, tt.add, got.In(tt.cal.Location()).Format(time.DateTime), tt.want)
			}
			if back := tt.cal.Between(from, got); back != tt.add {
				t.Errorf("Between(%s, %s) = %v, want %v", tt.from, tt.want, back, tt.add)
			}
		})
	}
}

func TestIsWorkingTimeBounds(t *testing.T) {
	cal := DefaultCalendar(amsterdam(t))
	for s, want := range map[string]bool{
		"2026-11-30 07:59:59": false,
		"2026-11-30 08:00:00": true,
		"2026-11-30 16:59:59": true,
		"2026-11-30 17:00:00": false, // R11: [08:00, 17:00)
		"2026-11-28 10:00:00": false, // Saturday
		"2026-12-25 10:00:00": false, // Christmas
	} {
		if got := cal.IsWorkingTime(at(t, s)); got != want {
			t.Errorf("IsWorkingTime(%s) = %v", s, got)
		}
	}
	if got := cal.NextWorkingStart(at(t, "2026-11-30 17:00:00")); !got.Equal(at(t, "2026-12-01 08:00")) {
		t.Errorf("NextWorkingStart(17:00) = %v", got)
	}
}

// Per-customer closures and open days (R11: configurable).
func TestCalendarWith(t *testing.T) {
	base := DefaultCalendar(amsterdam(t))
	cust := base.With([]Date{{2026, time.December, 24}}, []Date{{2026, time.April, 6}})
	if !base.IsWorkingDay(Date{2026, time.December, 24}) || cust.IsWorkingDay(Date{2026, time.December, 24}) {
		t.Error("closure did not apply to the customer alone")
	}
	if base.IsWorkingDay(Date{2026, time.April, 6}) || !cust.IsWorkingDay(Date{2026, time.April, 6}) {
		t.Error("Easter Monday opened for the customer alone: not so")
	}
	if got := cust.Add(at(t, "2026-12-23 15:00"), 4*time.Hour); !got.Equal(at(t, "2026-12-28 10:00")) {
		t.Errorf("Add across the customer's closure = %v", got)
	}
}

func TestNewCalendarRefuses(t *testing.T) {
	for name, cfg := range map[string]CalendarConfig{
		"end before start": {Start: ClockTime{17, 0}, End: ClockTime{8, 0}},
		"bad minute":       {Start: ClockTime{8, 61}, End: ClockTime{17, 0}},
		"unknown holiday":  {Holidays: HolidayRules{Skip: []string{"x"}}},
	} {
		if _, err := NewCalendar(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseDate("2026-02-30"); err == nil {
		t.Error("30 February accepted")
	}
	if c, err := ParseClockTime("08:30"); err != nil || c != (ClockTime{8, 30}) {
		t.Errorf("ParseClockTime: %v %v", c, err)
	}
}

// genInstant draws an instant between 2024 and 2032, to the second.
func genInstant(t *rapid.T, label string) time.Time {
	lo := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2032, 12, 1, 0, 0, 0, 0, time.UTC).Unix()
	return time.Unix(rapid.Int64Range(lo, hi).Draw(t, label), 0)
}

func genWorking(t *rapid.T, label string) time.Duration {
	return time.Duration(rapid.Int64Range(0, int64(700*time.Hour/time.Second)).Draw(t, label)) * time.Second
}

// Properties of the working-time arithmetic (R11, R11a), over instants
// anywhere in 2024-2032 and durations up to 700 working hours.
func TestCalendarProperties(t *testing.T) {
	cal := DefaultCalendar(amsterdam(t))
	rapid.Check(t, func(rt *rapid.T) {
		from := genInstant(rt, "from")
		d1, d2 := genWorking(rt, "d1"), genWorking(rt, "d2")
		a1, a2 := cal.Add(from, d1), cal.Add(from, d2)
		if d1 < d2 && !a1.Before(a2) {
			rt.Fatalf("not monotonic: Add(%v)=%v, Add(%v)=%v", d1, a1, d2, a2)
		}
		if split, whole := cal.Add(cal.Add(from, d1), d2), cal.Add(from, d1+d2); !split.Equal(whole) {
			rt.Fatalf("Add(Add(t,%v),%v)=%v but Add(t,%v)=%v", d1, d2, split, d1+d2, whole)
		}
		if got := cal.Between(from, a1); got != d1 {
			rt.Fatalf("Between(t, Add(t,%v)) = %v", d1, got)
		}
		if d1 > 0 && !cal.IsWorkingTime(a1) && !cal.IsWorkingTime(a1.Add(-time.Second)) {
			rt.Fatalf("deadline %v is neither working time nor a period's end", a1.In(cal.Location()))
		}
		if dl := cal.Deadline(from, d1); d1 > 0 && (!cal.IsWorkingTime(dl) || cal.Between(from, dl) != d1) {
			rt.Fatalf("Deadline(t, %v) = %v: outside working time or not %v of it", d1, dl.In(cal.Location()), d1)
		}
		ns := cal.NextWorkingStart(from)
		if ns.Before(from) || !cal.IsWorkingTime(ns) {
			rt.Fatalf("NextWorkingStart(%v) = %v", from, ns)
		}
		mid := genInstant(rt, "mid")
		lo, hi := from, mid
		if hi.Before(lo) {
			lo, hi = hi, lo
		}
		if hi.Sub(lo) < 400*24*time.Hour {
			m := lo.Add(hi.Sub(lo) / 3)
			if cal.Between(lo, m)+cal.Between(m, hi) != cal.Between(lo, hi) {
				rt.Fatalf("Between not additive on %v..%v..%v", lo, m, hi)
			}
		}
	})
}

// Between against a brute-force count, minute by minute, over spans of up
// to ten days: an oracle that shares nothing with the period arithmetic
// but IsWorkingTime.
func TestBetweenBruteForce(t *testing.T) {
	cal := DefaultCalendar(amsterdam(t))
	rapid.Check(t, func(rt *rapid.T) {
		from := genInstant(rt, "from").Truncate(time.Minute)
		span := time.Duration(rapid.IntRange(0, 10*24*60).Draw(rt, "minutes")) * time.Minute
		var want time.Duration
		for m := from; m.Before(from.Add(span)); m = m.Add(time.Minute) {
			if cal.IsWorkingTime(m) {
				want += time.Minute
			}
		}
		if got := cal.Between(from, from.Add(span)); got != want {
			rt.Fatalf("Between(%v, +%v) = %v, brute force %v", from.In(cal.Location()), span, got, want)
		}
	})
}

// Date's day arithmetic against the standard library, day by day from
// 1900 to 2200 and at a few far-off points.
func TestDateDays(t *testing.T) {
	for d := time.Date(1900, 1, 1, 12, 0, 0, 0, time.UTC); d.Year() < 2200; d = d.AddDate(0, 0, 1) {
		want := DateOf(d)
		n := int((d.Unix() - 12*3600) / 86400) // noon: an exact multiple of days
		if got := want.days(); got != n {
			t.Fatalf("%s.days() = %d, want %d", want, got, n)
		}
		if got := dateOfDays(n); got != want {
			t.Fatalf("dateOfDays(%d) = %s, want %s", n, got, want)
		}
		if got := want.Weekday(); got != d.Weekday() {
			t.Fatalf("%s.Weekday() = %v, want %v", want, got, d.Weekday())
		}
	}
	for _, d := range []Date{{-400, 3, 1}, {-1, 12, 31}, {0, 2, 29}, {9999, 12, 31}} {
		if got := dateOfDays(d.days()); got != d {
			t.Errorf("round trip of %v gave %v", d, got)
		}
	}
}

// DaysOff shows what the calendar does besides weekends (R11): holidays
// on weekdays, closures, and nothing an open day has opened.
func TestDaysOff(t *testing.T) {
	cal := DefaultCalendar(amsterdam(t)).With([]Date{{2026, time.December, 24}}, []Date{{2026, time.May, 14}})
	var got []string
	for _, d := range cal.DaysOff(2026) {
		got = append(got, d.Date.String()+" "+d.Reason)
	}
	want := []string{
		"2026-01-01 new_year", "2026-04-06 easter_monday", "2026-04-27 kings_day",
		"2026-05-25 whit_monday", "2026-12-24 closure", "2026-12-25 christmas",
	} // Ascension (14 May) opened; Boxing Day 2026 is a Saturday
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("days off 2026:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
