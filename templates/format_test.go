package templates

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"deskd/internal/i18n"
	"deskd/sla"

	// The zone data is compiled into the test binary so that the tests
	// never depend on the machine's /usr/share/zoneinfo (or skip without it).
	_ "time/tzdata"
)

func amsterdam(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatalf("Europe/Amsterdam with time/tzdata embedded: %v", err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestFormatWhen(t *testing.T) {
	ams := amsterdam(t)
	for _, tc := range []struct {
		name   string
		at     time.Time
		loc    *time.Location
		nl, en string
	}{
		{"winter", utc("2026-11-30T11:00:00Z"), ams,
			"maandag 30 november 2026 om 12:00 (CET)", "Monday 30 November 2026, 12:00 CET"},
		{"summer", utc("2026-06-30T10:00:00Z"), ams,
			"dinsdag 30 juni 2026 om 12:00 (CEST)", "Tuesday 30 June 2026, 12:00 CEST"},
		{"midnight, new year", utc("2026-12-31T23:00:00Z"), ams,
			"vrijdag 1 januari 2027 om 00:00 (CET)", "Friday 1 January 2027, 00:00 CET"},
		{"23:59", utc("2026-06-30T21:59:00Z"), ams,
			"dinsdag 30 juni 2026 om 23:59 (CEST)", "Tuesday 30 June 2026, 23:59 CEST"},
		{"seconds are dropped", utc("2026-06-30T21:59:59Z"), ams,
			"dinsdag 30 juni 2026 om 23:59 (CEST)", "Tuesday 30 June 2026, 23:59 CEST"},
		// Last Sunday of March: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
		{"spring forward, before", utc("2026-03-29T00:59:00Z"), ams,
			"zondag 29 maart 2026 om 01:59 (CET)", "Sunday 29 March 2026, 01:59 CET"},
		{"spring forward, after", utc("2026-03-29T01:00:00Z"), ams,
			"zondag 29 maart 2026 om 03:00 (CEST)", "Sunday 29 March 2026, 03:00 CEST"},
		// Last Sunday of October: 03:00 CEST becomes 02:00 CET at 01:00
		// UTC, so 02:30 happens twice; the zone tells them apart.
		{"fall back, first 02:30", utc("2026-10-25T00:30:00Z"), ams,
			"zondag 25 oktober 2026 om 02:30 (CEST)", "Sunday 25 October 2026, 02:30 CEST"},
		{"fall back, second 02:30", utc("2026-10-25T01:30:00Z"), ams,
			"zondag 25 oktober 2026 om 02:30 (CET)", "Sunday 25 October 2026, 02:30 CET"},
		{"working day after DST", utc("2026-10-26T07:00:00Z"), ams,
			"maandag 26 oktober 2026 om 08:00 (CET)", "Monday 26 October 2026, 08:00 CET"},
		{"nil location is UTC", utc("2026-11-30T11:00:00Z"), nil,
			"maandag 30 november 2026 om 11:00 (UTC)", "Monday 30 November 2026, 11:00 UTC"},
		{"leap day", utc("2028-02-29T16:59:00Z"), time.UTC,
			"dinsdag 29 februari 2028 om 16:59 (UTC)", "Tuesday 29 February 2028, 16:59 UTC"},
		{"input zone is ignored", utc("2026-05-01T06:00:00Z").In(time.FixedZone("X", -5*3600)), ams,
			"vrijdag 1 mei 2026 om 08:00 (CEST)", "Friday 1 May 2026, 08:00 CEST"},
		{"zero", time.Time{}, ams, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct{ lang, want string }{
				{"nl", tc.nl}, {"en", tc.en}, {"en-GB", tc.en}, {"EN", tc.en},
				{"", tc.nl}, {"de", tc.nl}, {"nl-BE", tc.nl},
			} {
				if got := FormatWhen(tc.at, tc.loc, c.lang); got != c.want {
					t.Errorf("FormatWhen(%s, %q) = %q, want %q", tc.at.UTC().Format(time.RFC3339), c.lang, got, c.want)
				}
			}
		})
	}
}

func TestFormatWhenNamesEveryDayAndMonth(t *testing.T) {
	days, months := map[string]bool{}, map[string]bool{}
	for i := range 7 {
		at := time.Date(2026, time.January, 5+i, 9, 0, 0, 0, time.UTC) // 5 January 2026 is a Monday
		days[strings.Fields(FormatWhen(at, time.UTC, "nl"))[0]] = true
	}
	for i := range 12 {
		at := time.Date(2026, time.January+time.Month(i), 1, 9, 0, 0, 0, time.UTC)
		months[strings.Fields(FormatWhen(at, time.UTC, "nl"))[2]] = true
	}
	for w := range days {
		if w != strings.ToLower(w) || !strings.HasSuffix(w, "dag") {
			t.Errorf("Dutch day %q", w)
		}
	}
	for w := range months {
		if w != strings.ToLower(w) {
			t.Errorf("Dutch month %q is not lower case", w)
		}
	}
	if len(days) != 7 || len(months) != 12 {
		t.Errorf("days %v, months %v", days, months)
	}
}

func TestFormatWorking(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		nl, en string
	}{
		{0, "0 minuten", "0 minutes"},
		{29 * time.Second, "0 minuten", "0 minutes"},
		{30 * time.Second, "1 minuut", "1 minute"},
		{time.Minute, "1 minuut", "1 minute"},
		{45 * time.Minute, "45 minuten", "45 minutes"},
		{59*time.Minute + 30*time.Second, "1 werkuur", "1 working hour"},
		{time.Hour, "1 werkuur", "1 working hour"},
		{90 * time.Minute, "1 werkuur en 30 minuten", "1 working hour and 30 minutes"},
		{61 * time.Minute, "1 werkuur en 1 minuut", "1 working hour and 1 minute"},
		{4 * time.Hour, "4 werkuren", "4 working hours"},
		{6 * time.Hour, "6 werkuren", "6 working hours"},
		{8 * time.Hour, "8 werkuren", "8 working hours"},
		{8*time.Hour + 59*time.Minute, "8 werkuren en 59 minuten", "8 working hours and 59 minutes"},
		{9 * time.Hour, "1 werkdag", "1 working day"},
		{9*time.Hour + 30*time.Minute, "1 werkdag en 30 minuten", "1 working day and 30 minutes"},
		{10 * time.Hour, "1 werkdag en 1 werkuur", "1 working day and 1 hour"},
		{18 * time.Hour, "2 werkdagen", "2 working days"},
		{27 * time.Hour, "3 werkdagen", "3 working days"},
		{45 * time.Hour, "5 werkdagen", "5 working days"},
		{48 * time.Hour, "5 werkdagen en 3 werkuren", "5 working days and 3 hours"},
		{48*time.Hour + 30*time.Minute, "5 werkdagen, 3 werkuren en 30 minuten", "5 working days, 3 hours and 30 minutes"},
		{90 * time.Hour, "10 werkdagen", "10 working days"},
		{135 * time.Hour, "15 werkdagen", "15 working days"},
		{585 * time.Hour, "65 werkdagen", "65 working days"},
		{-4 * time.Hour, "-4 werkuren", "-4 working hours"},
		{-20 * time.Second, "0 minuten", "0 minutes"},
	} {
		for _, c := range []struct{ lang, want string }{
			{"nl", tc.nl}, {"en", tc.en}, {"en-US", tc.en}, {"", tc.nl}, {"fr", tc.nl},
		} {
			if got := FormatWorking(tc.d, c.lang); got != c.want {
				t.Errorf("FormatWorking(%v, %q) = %q, want %q", tc.d, c.lang, got, c.want)
			}
		}
	}
}

func TestPriorityName(t *testing.T) {
	for _, tc := range []struct{ p, nl, en string }{
		{"urgent", "Urgent", "Urgent"},
		{"high", "Hoog", "High"},
		{"medium", "Medium", "Medium"},
		{"low", "Laag", "Low"},
		{"hoog", "Hoog", "High"},
		{"laag", "Laag", "Low"},
		{"HIGH", "Hoog", "High"},
		{" Low ", "Laag", "Low"},
		{"", "", ""},
		{"critical", "critical", "critical"},
	} {
		if got := PriorityName(tc.p, "nl"); got != tc.nl {
			t.Errorf("PriorityName(%q, nl) = %q, want %q", tc.p, got, tc.nl)
		}
		if got := PriorityName(tc.p, "en-GB"); got != tc.en {
			t.Errorf("PriorityName(%q, en-GB) = %q, want %q", tc.p, got, tc.en)
		}
		if got := PriorityName(tc.p, "xx"); got != tc.nl {
			t.Errorf("PriorityName(%q, xx) = %q, want the Dutch %q", tc.p, got, tc.nl)
		}
	}
}

// workingPart is one part of FormatWorking's words.
var workingPart = regexp.MustCompile(`^(\d+) (werkdagen|werkdag|werkuren|werkuur|minuten|minuut|working days|working day|working hours|working hour|hours|hour|minutes|minute)$`)

var singular = map[string]bool{
	"werkdag": true, "werkuur": true, "minuut": true,
	"working day": true, "working hour": true, "hour": true, "minute": true,
}

// parseWorking reads FormatWorking's words back, for the fuzz target. It
// checks the grammar on the way: singular for 1, plural otherwise, hours
// below a working day, minutes below an hour, no zero part but "0
// minutes" alone.
func parseWorking(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	parts := strings.Split(s, ", ")
	last := parts[len(parts)-1]
	for _, sep := range []string{" en ", " and "} {
		if l, r, ok := strings.Cut(last, sep); ok {
			parts = append(parts[:len(parts)-1], l, r)
			break
		}
	}
	if len(parts) > 1 && !strings.Contains(s, " en ") && !strings.Contains(s, " and ") {
		return 0, fmt.Errorf("%q: a list without its last conjunction", s)
	}
	var d time.Duration
	for _, p := range parts {
		m := workingPart.FindStringSubmatch(p)
		if m == nil {
			return 0, fmt.Errorf("%q: part %q", s, p)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, err
		}
		unit := m[2]
		if (n == 1) != singular[unit] {
			return 0, fmt.Errorf("%q: %d %s", s, n, unit)
		}
		if n == 0 && len(parts) > 1 {
			return 0, fmt.Errorf("%q: a zero part", s)
		}
		switch {
		case strings.Contains(unit, "dag") || strings.Contains(unit, "day"):
			d += time.Duration(n) * sla.WorkingDay
		case strings.Contains(unit, "uur") || strings.Contains(unit, "uren") || strings.Contains(unit, "hour"):
			if n >= 9 {
				return 0, fmt.Errorf("%q: %d hours is a working day or more", s, n)
			}
			d += time.Duration(n) * time.Hour
		default:
			if n >= 60 {
				return 0, fmt.Errorf("%q: %d minutes", s, n)
			}
			d += time.Duration(n) * time.Minute
		}
	}
	if neg {
		d = -d
	}
	return d, nil
}

// FuzzFormatWorking checks that the words say exactly the duration rounded
// to the minute, in the grammar parseWorking checks.
func FuzzFormatWorking(f *testing.F) {
	for _, d := range []time.Duration{0, 45 * time.Minute, 90 * time.Minute, 4 * time.Hour, 9 * time.Hour, 48 * time.Hour, 585 * time.Hour, -time.Hour} {
		f.Add(int64(d))
	}
	f.Fuzz(func(t *testing.T, n int64) {
		// Fold the input into ±1e6 hours (beyond any case's life)
		// rather than skipping it: every input is checked.
		d := time.Duration(n % int64(1e6*time.Hour))
		want := d.Round(time.Minute)
		for _, lang := range []string{"nl", "en"} {
			s := FormatWorking(d, lang)
			got, err := parseWorking(s)
			if err != nil {
				t.Fatalf("FormatWorking(%v, %s): %v", d, lang, err)
			}
			if got != want {
				t.Fatalf("FormatWorking(%v, %s) = %q = %v, want %v", d, lang, s, got, want)
			}
		}
	})
}

// The words of a staff mail and of the acknowledgement come from this
// package in both languages: first-response targets in working hours
// (R9), the reopen window in days (R11c), codes as the agreement names them
// (R7 table, R10, R14).
func TestWordsOfTheMails(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{FormatWorkingHours(4*time.Hour, "nl"), "4 werkuren"},
		{FormatWorkingHours(4*time.Hour, "en"), "4 working hours"},
		{FormatWorkingHours(48*time.Hour, "nl"), "48 werkuren"}, // R9: Basic, never turned into days
		{FormatWorkingHours(time.Hour, "nl"), "1 werkuur"},
		{FormatWorkingHours(time.Hour, "EN"), "1 working hour"},
		{FormatWorkingHours(8*time.Hour+20*time.Minute, "de"), "8 werkuren"}, // unknown language: Dutch
		{FormatDays(14*24*time.Hour, "nl"), "14 dagen"},
		{FormatDays(24*time.Hour, "nl"), "1 dag"},
		{FormatDays(24*time.Hour, "en"), "1 day"},
		{FormatDays(30*24*time.Hour, "en-GB"), "30 days"},
		{Label("high", "nl"), "hoog"},
		{Label("low", "nl"), "laag"},
		{Label("question", "nl"), "vraag"},
		{Label("change", "nl"), "wijziging"},
		{Label("pending", "nl"), "wacht op klant"},
		{Label("closed", "nl"), "gesloten"},
		{Label("urgent", "nl"), "urgent"},
		{Label("pending", "en"), "pending"},
		{Label("", "nl"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// SplitWorking is the one breakdown of a working time: the mails' words
// and the report's short form agree on it (R11a).
func TestFormatWorkingAgreesWithSplit(t *testing.T) {
	for _, d := range []time.Duration{0, 20 * time.Second, 45 * time.Minute, 9 * time.Hour, 48 * time.Hour, 11*time.Hour + 5*time.Minute, -90 * time.Minute} {
		neg, days, hours, minutes := sla.SplitWorking(d)
		got := FormatWorking(d, "en")
		if neg != strings.HasPrefix(got, "-") ||
			(days > 0) != strings.Contains(got, "working day") ||
			(hours > 0) != strings.Contains(got, "hour") ||
			(minutes > 0 || (days == 0 && hours == 0)) != strings.Contains(got, "minute") {
			t.Errorf("FormatWorking(%v) = %q, SplitWorking = %v %d %d %d", d, got, neg, days, hours, minutes)
		}
	}
}

// The mails' words follow the one wording scheme (internal/i18n): every
// word in both languages, with the same verbs.
func TestWordsCatalog(t *testing.T) {
	for _, err := range i18n.CheckCatalog(words) {
		t.Error(err)
	}
}
