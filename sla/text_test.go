package sla

import (
	"encoding/json"
	"testing"
	"time"
)

// A configuration carries times of day and dates as text ("08:00",
// "2026-12-24") and parses them once, with these methods (R11).
func TestClockTimeAndDateText(t *testing.T) {
	var c ClockTime
	if err := c.UnmarshalText([]byte("07:05")); err != nil || c != (ClockTime{7, 5}) {
		t.Fatalf("UnmarshalText(07:05) = %v, %v", c, err)
	}
	for _, bad := range []string{"", "7", "24:00", "08:60", "8am"} {
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted: %v", bad, c)
		}
	}
	if !(ClockTime{8, 0}).Before(ClockTime{17, 0}) || (ClockTime{17, 0}).Before(ClockTime{8, 59}) || (ClockTime{9, 0}).Before(ClockTime{9, 0}) {
		t.Error("Before is not the order of the day")
	}
	var d Date
	if err := d.UnmarshalText([]byte("2026-12-24")); err != nil || d != (Date{2026, 12, 24}) {
		t.Fatalf("UnmarshalText(2026-12-24) = %v, %v", d, err)
	}
	for _, bad := range []string{"2026-02-30", "24-12-2026", "2026-5-15", ""} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted: %v", bad, d)
		}
	}
	b, err := json.Marshal(struct {
		At   ClockTime
		Days []Date
	}{ClockTime{2, 5}, []Date{{2026, 12, 24}}})
	if err != nil || string(b) != `{"At":"02:05","Days":["2026-12-24"]}` {
		t.Errorf("json = %s, %v", b, err)
	}
}

// R11a: a working day is 9 working hours; a time is shown to the minute.
func TestSplitWorking(t *testing.T) {
	for _, tc := range []struct {
		d                    time.Duration
		neg                  bool
		days, hours, minutes int64
	}{
		{0, false, 0, 0, 0},
		{-20 * time.Second, false, 0, 0, 0}, // rounds to zero: no sign
		{29 * time.Second, false, 0, 0, 0},
		{30 * time.Second, false, 0, 0, 1},
		{9 * time.Hour, false, 1, 0, 0},
		{48 * time.Hour, false, 5, 3, 0}, // Basic's first response
		{11*time.Hour + 5*time.Minute, false, 1, 2, 5},
		{65 * WorkingDay, false, 65, 0, 0},
		{-90 * time.Minute, true, 0, 1, 30},
	} {
		neg, days, hours, minutes := SplitWorking(tc.d)
		if neg != tc.neg || days != tc.days || hours != tc.hours || minutes != tc.minutes {
			t.Errorf("SplitWorking(%v) = %v %d %d %d, want %v %d %d %d", tc.d, neg, days, hours, minutes, tc.neg, tc.days, tc.hours, tc.minutes)
		}
	}
}
