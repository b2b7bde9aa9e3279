package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"deskd/config"
	"deskd/daemon"
	"deskd/sla"
	"deskd/store"
)

// cmdCases answers `deskd cases list|show`: through the running daemon's
// admin socket when one answers, else by opening the store file directly
// (read-only, so a stopped daemon's data can be read while nothing runs).
func cmdCases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"cases: list or show?"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("cases "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (stable; see README)")
	status := fs.String("status", "open", "list: open, pending, closed or all")
	overdue := fs.Bool("overdue", false, "list: only cases past a deadline (R7, R9, R10), most overdue first")
	dueWithin := fs.Duration("due-within", 0, "list: only cases with a deadline within this wall-clock time (e.g. 4h), overdue ones included, soonest first")
	// Accept the case number before or after the flags: `show 12 --json`.
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	var id uint64
	switch sub {
	case "list":
	case "show":
		if len(positional) != 1 {
			return usageError{"cases show: give one case number"}
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(positional[0], "#"), 10, 64)
		if err != nil {
			return usageError{fmt.Sprintf("cases show: %q is not a case number", positional[0])}
		}
		id = n
	default:
		return usageError{fmt.Sprintf("cases: unknown subcommand %q", sub)}
	}
	loc, err := sf.locate()
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		var list []daemon.CaseSummary
		err := query(loc, daemon.AdminRequest{Op: "cases.list", Status: *status}, &list, func(tx *store.Tx) (any, error) {
			return daemon.ListCases(tx, *status, daemon.DefaultSLAView(loc.clocks, time.Now()))
		})
		if err != nil {
			return err
		}
		if *overdue || *dueWithin > 0 {
			list = dueFilter(list, *overdue, time.Now().Add(*dueWithin))
		}
		if *asJSON {
			return writeJSON(stdout, list)
		}
		return printList(stdout, list, loc.zone)
	default:
		var det daemon.CaseDetail
		err = query(loc, daemon.AdminRequest{Op: "cases.show", ID: id}, &det, func(tx *store.Tx) (any, error) {
			return daemon.ShowCase(tx, id, daemon.DefaultSLAView(loc.clocks, time.Now()))
		})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, det)
		}
		return printCase(stdout, &det, loc.zone)
	}
}

// storeLocation says where a daemon's data is.
type storeLocation struct {
	socket, path string
	zone         *time.Location
	// cfg is the configuration read (the defaults when there is no file).
	cfg *config.Config
	// clocks replay the SLA when the store is read directly (nil = the
	// agreement's defaults); the daemon uses its own. clocksErr says why
	// the configuration gave none.
	clocks    *sla.Clocks
	clocksErr error
}

// dueFilter keeps the cases with a running deadline: past ones only
// (overdue), or those due before until, soonest first.
func dueFilter(list []daemon.CaseSummary, overdue bool, until time.Time) []daemon.CaseSummary {
	var out []daemon.CaseSummary
	for _, c := range list {
		if c.NextDue == nil || c.Status == "closed" {
			continue
		}
		if (overdue && c.Overdue) || (!overdue && !c.NextDue.After(until)) {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NextDue.Before(*out[j].NextDue) })
	return out
}

// query asks the daemon on the admin socket, or, when none answers, opens
// the store read-only and runs direct on it. Both paths share the same
// functions in package daemon, so they answer alike.
func query(loc storeLocation, req daemon.AdminRequest, out any, direct func(*store.Tx) (any, error)) error {
	if loc.socket != "" {
		err := daemon.AdminCall(loc.socket, req, out)
		if err == nil || !errors.Is(err, daemon.ErrNoDaemon) {
			return err
		}
	}
	db, err := store.Open(loc.path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *store.Tx) error {
		v, err := direct(tx)
		if err != nil {
			return err
		}
		// Round-trip through JSON so both paths fill out the same way.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printList(w io.Writer, list []daemon.CaseSummary, zone *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tCUSTOMER\tREQUESTER\tMSGS\tUPDATED\tSLA\tNEXT DUE\tSUBJECT")
	for _, c := range list {
		prio := string(c.Priority)
		if prio == "" && c.ProposedPriority != "" {
			prio = string(c.ProposedPriority) + "?"
		}
		if prio == "" {
			prio = "-"
		}
		flags := ""
		if c.Unauthorised {
			flags = " (unauthorised contact)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s%s\n", c.ID, c.Status, prio, c.Customer, c.Requester,
			c.Messages, c.UpdatedAt.In(zone).Format("2006-01-02 15:04"), orDash(string(c.SLAState)), when(c.NextDue, zone), c.Subject, flags)
	}
	return tw.Flush()
}

func printCase(w io.Writer, c *daemon.CaseDetail, zone *time.Location) error {
	fmt.Fprintf(w, "Case %d: %s\n", c.ID, c.Subject)
	prio := orDash(string(c.Priority))
	if c.ProposedPriority != "" && c.ProposedPriority != c.Priority {
		prio += fmt.Sprintf(" (customer proposes %s)", c.ProposedPriority)
	}
	fmt.Fprintf(w, "  status %s, priority %s, kind %s, customer %s (%s), requester %s\n", c.Status, prio, orDash(string(c.Kind)), c.Customer, orDash(c.Plan), c.Requester)
	fmt.Fprintf(w, "  received %s, updated %s\n", c.ReceivedAt.In(zone).Format("2006-01-02 15:04 MST"), c.UpdatedAt.In(zone).Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "  SLA %s: first response due %s (given %s), resolution due %s, tier 2 %s\n", c.SLAState,
		when(c.FirstResponseDue, zone), when(c.FirstResponseAt, zone), when(c.ResolutionDue, zone), when(c.ResolutionDueTier2, zone))
	if c.Unauthorised {
		fmt.Fprintln(w, "  unauthorised contact (R1)")
	}
	if c.SecondLine {
		fmt.Fprintln(w, "  handed to second line (R5)")
	}
	if c.OpenedBy != "" {
		fmt.Fprintf(w, "  opened by %s for the customer (R6)\n", c.OpenedBy)
	}
	if c.LinkedTo != 0 {
		fmt.Fprintf(w, "  continues case %d\n", c.LinkedTo)
	}
	fmt.Fprintf(w, "  parties: %s\n", strings.Join(c.Parties, ", "))
	for i, m := range c.Messages {
		arrow := "←"
		if m.Direction == "out" {
			arrow = "→"
		}
		what := string(m.Role)
		if m.Kind != "" {
			what += " " + m.Kind
		}
		if m.Internal {
			what += ", internal"
		}
		fmt.Fprintf(w, "\n[%d] %s %s %s (%s)\n    %s\n", i+1, arrow, m.Date.In(zone).Format("2006-01-02 15:04"), m.From, what, m.Subject)
		if len(m.AutoReasons) > 0 {
			fmt.Fprintf(w, "    machine mail: %s\n", strings.Join(m.AutoReasons, ", "))
		}
		for _, line := range strings.Split(strings.TrimSpace(m.Text), "\n") {
			fmt.Fprintf(w, "    | %s\n", line)
		}
		for _, a := range m.Attachments {
			fmt.Fprintf(w, "    attachment: %s (%s, %d bytes)\n", a.Filename, a.ContentType, a.Size)
		}
	}
	fmt.Fprintln(w, "\nHistory:")
	for _, e := range c.Events {
		line := fmt.Sprintf("  %s  %s", e.At.In(zone).Format("2006-01-02 15:04"), e.Type)
		if e.By != "" {
			line += " by " + e.By
		}
		if e.Detail != "" {
			line += ": " + e.Detail
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// when is an optional instant for people, "-" when absent.
func when(t *time.Time, zone *time.Location) string {
	if t == nil {
		return "-"
	}
	return t.In(zone).Format("2006-01-02 15:04")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
