package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"
	"unicode"

	"deskd/daemon"
	"deskd/export"
	"deskd/internal/progress"
	"deskd/store"
)

// zipExportMemoryLimit is the Go heap the CLI aims to stay under while it
// writes a .zip export (GOMEMLIMIT overrides it).
const zipExportMemoryLimit = 64 << 20

// cmdExport hands a customer its data (R18): `deskd export --customer NAME`
// or, for everything including the quarantine, `--all`. While the daemon
// runs (it holds the store's lock) the daemon reads its live store and
// streams the files here (runExport); otherwise the store file is opened
// read-only. The layout is documented in package export and the README.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	customer := fs.String("customer", "", "the customer whose cases to export (its exact name)")
	all := fs.Bool("all", false, "export everything: every customer's cases and the quarantine")
	internal := fs.Bool("internal", false, "include the supplier's internal mail (staff notifications, confirmations, notes)")
	out := fs.String("out", "", "directory to create, or FILE.zip (default: deskd-export-<customer|all>-<time> in the current directory)")
	sf := addStoreFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("export: unexpected argument %q", fs.Arg(0))}
	case *all && *customer != "":
		return usageError{"export: --customer NAME or --all, not both"}
	case !*all && strings.TrimSpace(*customer) == "":
		return usageError{"export: give --customer NAME or --all"}
	}
	sel := export.Selection{Customer: *customer, All: *all, Internal: *internal}
	now := time.Now().UTC()
	if *out == "" {
		name := "all"
		if !*all {
			name = slug(*customer)
		}
		*out = "deskd-export-" + name + "-" + now.Format("20060102T150405Z")
	}
	if err := export.CheckPath(*out); err != nil {
		return usageError{"export: --out " + err.Error()}
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	if export.IsArchive(*out) && os.Getenv("GOMEMLIMIT") == "" {
		// A .zip keeps a central-directory entry per file until it ends
		// (archive/zip, ~200 bytes each; two or three files a case):
		// about 45 MB live for a customer with 100,000 cases. Without a
		// limit the heap grows to twice what is live before the garbage
		// collector runs; with it, the collector runs sooner instead.
		// A soft limit: an export that needs more still gets it.
		debug.SetMemoryLimit(zipExportMemoryLimit)
	}

	dst, err := export.Create(*out, now)
	if err != nil {
		return err
	}
	bar := progress.New(stderr, 0, "cases", "exported")
	st, via, err := runExport(ctx, loc, sel, now, dst, bar, stderr)
	if err == nil {
		err = dst.Commit()
	}
	if st.Cases > 0 || err == nil {
		// How far it came, also when it failed half-way.
		bar.Finish()
	}
	if err != nil {
		dst.Abort()
		return err
	}
	what := fmt.Sprintf("customer %q", *customer)
	if *all {
		what = "everything"
	}
	fmt.Fprintf(stdout, "exported %s (%d cases, %d messages, %d quarantined) from %s to %s\n",
		what, st.Cases, st.Messages, st.Quarantined, via, dst.Path())
	return nil
}

// runExport exports sel into dst: in the running daemon, which reads its
// live store in one read transaction, case by case, and streams the files
// here (daemon.AdminClient.Export); without a daemon, from the store file
// opened read-only.
func runExport(ctx context.Context, loc storeLocation, sel export.Selection, now time.Time, dst export.Destination, bar *progress.Bar, stderr io.Writer) (export.Stats, string, error) {
	generator := "deskd " + version
	if loc.socket != "" {
		client := daemon.AdminClient{Socket: loc.socket, Timeout: loc.cfg.Admin.InactivityTimeout, Notes: stderr}
		st, err := client.Export(ctx, daemon.ExportArgs{Selection: sel, Now: now, Generator: generator}, dst,
			func(n int) { bar.SetTotal(int64(n)) },
			func(name string) {
				if strings.HasSuffix(name, "/case.json") {
					bar.Add(1)
				}
			})
		if err == nil || !errors.Is(err, daemon.ErrNoDaemon) {
			bar.Count("messages", int64(st.Messages))
			return st, "the running daemon's store (" + loc.socket + ")", err
		}
	}
	db, err := store.Open(loc.path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return export.Stats{}, "", err
	}
	defer db.Close()
	var st export.Stats
	err = db.ViewContext(ctx, func(tx *store.Tx) error {
		var err error
		st, err = export.Write(ctx, tx, sel, dst, export.Options{Now: now, Generator: generator, Progress: bar, Clocks: daemon.DefaultSLAView(loc.clocks, now).Clocks})
		return err
	})
	return st, "the store file " + loc.path, err
}

// slug makes a customer's name fit a file name: lower-case letters and
// digits, anything else one "-".
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if s == "" {
		return "customer"
	}
	return s
}
