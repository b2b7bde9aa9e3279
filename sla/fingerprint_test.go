package sla

import (
	"testing"
	"time"
)

// TestFingerprint: equal clocks built twice give one fingerprint; any
// change to a calendar, a target, the warning share or a customer's clock
// gives another (what the deadline index and the report cache rely on).
func TestFingerprint(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	build := func(mod func(*CalendarConfig, *Targets, *Clocks)) *Clocks {
		cfg := CalendarConfig{Location: ams, Holidays: DefaultHolidayRules(), Closures: []Date{{2026, 12, 24}, {2026, 5, 15}}}
		targets := Default()
		cs := &Clocks{}
		if mod != nil {
			mod(&cfg, &targets, cs)
		}
		cal, err := NewCalendar(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cs.Default = &Clock{Calendar: cal, Targets: targets}
		return cs
	}
	base := build(nil).Fingerprint()
	if again := build(nil).Fingerprint(); again != base {
		t.Fatalf("same clocks, fingerprints %s and %s", base, again)
	}
	// Closures in another order are the same calendar.
	swapped := build(func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Closures = []Date{{2026, 5, 15}, {2026, 12, 24}} })
	if swapped.Fingerprint() != base {
		t.Error("closures in another order changed the fingerprint")
	}
	changes := map[string]func(*CalendarConfig, *Targets, *Clocks){
		"zone":        func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Location = time.UTC },
		"window":      func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Start, c.End = ClockTime{9, 0}, ClockTime{17, 0} },
		"good friday": func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Holidays.GoodFriday = true },
		"closure":     func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Closures = c.Closures[:1] },
		"open day":    func(c *CalendarConfig, _ *Targets, _ *Clocks) { c.Open = []Date{{2026, 12, 26}} },
		"first response R9": func(_ *CalendarConfig, tg *Targets, _ *Clocks) {
			tg.FirstResponse[PlanPremium] = 2 * time.Hour
		},
		"resolution R7": func(_ *CalendarConfig, tg *Targets, _ *Clocks) {
			tr := tg.Resolution[PriorityHigh]
			tr.Tier2++
			tg.Resolution[PriorityHigh] = tr
		},
		"question R10": func(_ *CalendarConfig, tg *Targets, _ *Clocks) { tg.Question.Tier1++ },
		"customer clock": func(_ *CalendarConfig, _ *Targets, cs *Clocks) {
			cs.PerCustomer = map[string]*Clock{"Zuidwold": {Calendar: DefaultCalendar(ams), Targets: Default()}}
		},
	}
	for name, mod := range changes {
		if build(mod).Fingerprint() == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	warn := build(nil)
	warn.Default.WarnShare = 0.5
	if warn.Fingerprint() == base {
		t.Error("warn share: fingerprint unchanged")
	}
}
