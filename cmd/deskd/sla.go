package main

import (
	"fmt"

	"deskd/config"
	"deskd/sla"
)

// slaClocks builds the clock of every customer from the configuration: the
// support zone's calendar (R11) with its holidays and closures, and a
// derived calendar for each customer with closures or open days of its
// own. Its errors name the key at fault; config has parsed and checked
// the times and dates, so what is left is what only the calendar knows (a
// holiday key it does not have).
func slaClocks(cfg *config.Config) (*sla.Clocks, error) {
	loc, err := cfg.Support.Location()
	if err != nil {
		return nil, fmt.Errorf("support.timezone: %w", err)
	}
	cal, err := sla.NewCalendar(sla.CalendarConfig{
		Location: loc, Start: cfg.SLA.WorkingHours.Start, End: cfg.SLA.WorkingHours.End,
		Holidays: sla.HolidayRules{
			GoodFriday: cfg.SLA.Holidays.GoodFriday,
			Liberation: cfg.SLA.Holidays.LiberationDay,
			Skip:       cfg.SLA.Holidays.Skip,
		},
		Closures: cfg.SLA.Closures,
	})
	if err != nil {
		return nil, fmt.Errorf("sla.holidays: %w", err)
	}
	clock := func(c *sla.Calendar) *sla.Clock {
		return &sla.Clock{Calendar: c, Targets: cfg.SLA.Targets(), WarnShare: cfg.SLA.WarnAt}
	}
	clocks := &sla.Clocks{Default: clock(cal), PerCustomer: map[string]*sla.Clock{}}
	for _, cu := range cfg.Customers {
		if len(cu.Closures) == 0 && len(cu.OpenDates) == 0 {
			continue
		}
		clocks.PerCustomer[cu.Name] = clock(cal.With(cu.Closures, cu.OpenDates))
	}
	return clocks, nil
}
