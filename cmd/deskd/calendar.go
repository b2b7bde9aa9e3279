package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"deskd/config"
)

// cmdCalendar prints the calendar the SLA clock counts in (R11): the
// working window and every weekday off in a year, with why (a holiday's
// key or a closure), for the whole desk or one customer with its own
// closures and open days. It reads only the configuration, so an operator
// (or a customer) can check a deadline by hand.
func cmdCalendar(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("calendar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file (the sla section, support.timezone, customers)")
	year := fs.Int("year", time.Now().Year(), "the year to list")
	customer := fs.String("customer", "", "with this customer's own closures and open days")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("calendar: unexpected argument %q", fs.Arg(0))}
	}
	if *year < 1900 || *year > 9999 {
		return usageError{fmt.Sprintf("calendar: --year %d out of range", *year)}
	}
	cfg, err := loadConfigOrDefaults(*configPath) // no file: the agreement's own calendar
	if err != nil {
		return err
	}
	clocks, err := slaClocks(cfg)
	if err != nil {
		return configError{err}
	}
	if *customer != "" && !slices.ContainsFunc(cfg.Customers, func(c config.Customer) bool { return c.Name == *customer }) {
		return fmt.Errorf("calendar: no customer %q in the configuration", *customer)
	}
	cal := clocks.For(*customer).Calendar
	start, end := cal.Window()
	who := "every customer"
	if *customer != "" {
		who = *customer
	}
	fmt.Fprintf(stdout, "Working time (%s): Monday to Friday, %s to %s (R11)\n", cal.Location(), start, end)
	fmt.Fprintf(stdout, "Weekdays off in %d for %s:\n", *year, who)
	for _, d := range cal.DaysOff(*year) {
		fmt.Fprintf(stdout, "  %s %s  %s\n", d.Date, d.Date.Weekday().String()[:3], d.Reason)
	}
	return nil
}
