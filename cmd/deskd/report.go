package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"deskd/config"
	"deskd/daemon"
	"deskd/internal/progress"
	"deskd/internal/safeio"
	"deskd/report"
	"deskd/sla"
	"deskd/store"
)

// cmdReport writes the service report of one month (R4, R12, R13): the
// figures per customer and priority, the missed cases, the discount due.
// Like `cases list` it asks the running daemon over the admin socket and
// reads the store file (read-only) when none answers; --mail-to needs the
// daemon, whose outbox sends the mail. Text and HTML (and the mail) are
// in Dutch or English (--lang, else the customer's language); CSV and
// JSON are the same in both.
func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	month := fs.String("month", "", "the month to report, YYYY-MM (in support.timezone)")
	customer := fs.String("customer", "", "only this customer (its exact name)")
	format := fs.String("format", "text", "text, csv, json or html")
	out := fs.String("out", "", "write the report to FILE instead of standard output")
	mailTo := fs.String("mail-to", "", "have the running daemon mail the report (HTML and text) to ADDRESS")
	langFlag := fs.String("lang", "", "nl or en, for text, html and the mail (default: the language of --customer, else support.default_language)")
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("report: unexpected argument %q", fs.Arg(0))}
	case *month == "":
		return usageError{"report: give --month YYYY-MM"}
	case *mailTo != "" && (set["out"] || set["format"]):
		return usageError{"report: --mail-to sends HTML and text; --out and --format write a file instead: one or the other"}
	}
	if _, _, err := daemon.ParseMonth(*month); err != nil {
		return usageError{"report: " + err.Error()}
	}
	f, err := report.ParseFormat(*format)
	if err != nil {
		return usageError{"report: --format: " + err.Error()}
	}
	if set["lang"] {
		if *langFlag, err = report.ParseLang(*langFlag); err != nil {
			return usageError{"report: --lang: " + err.Error()}
		}
	}
	if *out != "" {
		if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
			return usageError{fmt.Sprintf("report: --out %s is a directory", *out)}
		}
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	// A report is only as right as its calendar: a configuration whose
	// SLA does not build is an error here, not the defaults.
	if loc.clocksErr != nil {
		return configError{loc.clocksErr}
	}
	cfg, clocks := loc.cfg, loc.clocks
	lang := *langFlag
	if lang == "" {
		lang = reportLang(cfg, *customer)
	}
	req := daemon.AdminRequest{Op: "report", ReportArgs: daemon.ReportArgs{Month: *month, Customer: *customer}}

	if *mailTo != "" {
		req.Lang = lang
		return mailReport(loc, req, *mailTo, stdout)
	}

	var rep sla.Report
	var bar *progress.Bar
	err = query(loc, req, &rep, func(tx *store.Tx) (any, error) {
		// Only the stopped store's path does the work here; the daemon
		// does it on its side. How many cases the report reads depends
		// on the months it must go back (daemon.BuildReport): no total.
		bar = progress.New(stderr, 0, "cases", "read")
		return daemon.BuildReport(tx, clocks, req.ReportArgs, time.Now(), func() { bar.Add(1) })
	})
	bar.Finish()
	if err != nil {
		return err
	}
	if *customer != "" && !knownCustomer(cfg, *customer) && noCases(&rep) {
		return fmt.Errorf("report: no cases of customer %q, and no such customer in the configuration", *customer)
	}

	// Rendered straight to where it goes, never held whole a second time
	// (the JSON of all customers at 1,000,000 cases is ~14 MB; issue 11
	// bounds the CLI's memory).
	opts := report.Options{Location: clocks.Default.Calendar.Location(), Supplier: cfg.Support.Name, Lang: lang}
	render := func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := report.Render(bw, f, &rep, opts); err != nil {
			return err
		}
		return bw.Flush()
	}
	if *out == "" {
		return render(stdout)
	}
	// Through a temporary file, fsynced, so a reader never sees half a
	// report and a crash leaves the old one or the new one.
	if err := safeio.Write(*out, render, safeio.Options{Perm: 0o644}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	fmt.Fprintf(stdout, "wrote the %s report of %s (%d customers) to %s\n", f, *month, len(rep.Customers), *out)
	return nil
}

// mailReport asks the running daemon to mail the report: the mail goes
// through its outbox (retries, the store's record), so without a daemon
// nothing is sent.
func mailReport(loc storeLocation, req daemon.AdminRequest, to string, stdout io.Writer) error {
	if loc.socket == "" {
		return errors.New("report --mail-to: the running daemon sends the mail, and --store names a file: give --socket or --config instead")
	}
	req.Op, req.MailTo = "report.mail", to
	var res daemon.ReportMailResult
	err := daemon.AdminCall(loc.socket, req, &res)
	if errors.Is(err, daemon.ErrNoDaemon) {
		return fmt.Errorf("report --mail-to: deskd is not running (nothing answers on %s); the mail goes out through the daemon's outbox. Start deskd, or write the report with --format html --out FILE and send it yourself", loc.socket)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queued %q (%d customers) to %s, Message-ID <%s>\n", res.Subject, res.Customers, res.To, res.MessageID)
	return nil
}

// reportLang is the language a report is for when --lang does not say:
// the configured language of the customer it is about (the language its
// mails are in), else support.default_language, which is also the
// language of a report on all customers. An unusable value (the file is
// read unvalidated here) gives Dutch, the agreement's language.
func reportLang(cfg *config.Config, customer string) string {
	lang := cfg.Support.DefaultLanguage
	i := slices.IndexFunc(cfg.Customers, func(c config.Customer) bool { return c.Name == customer })
	if customer != "" && i >= 0 && cfg.Customers[i].Language != "" {
		lang = cfg.Customers[i].Language // Load has filled in the default
	}
	if l, err := report.ParseLang(lang); err == nil {
		return l
	}
	return report.Dutch
}

func knownCustomer(cfg *config.Config, name string) bool {
	if name == cfg.Support.DefaultCustomer {
		return true
	}
	return slices.ContainsFunc(cfg.Customers, func(c config.Customer) bool { return c.Name == name })
}

// noCases reports whether r holds no case at all, in any month shown.
func noCases(r *sla.Report) bool {
	for _, c := range r.Customers {
		if c.Questions.Cases > 0 || c.Changes > 0 {
			return false
		}
		for _, h := range c.History {
			if h.Cases > 0 {
				return false
			}
		}
	}
	return true
}
