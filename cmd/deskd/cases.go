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
	asJSON := fs.Bool("json", false, "print JSON (stable; see README); list: an array, one case per line")
	asLines := fs.Bool("jsonl", false, "list: print JSON lines, one case per line (the same objects as --json)")
	status := fs.String("status", "open", "list: open, pending, closed or all")
	limit := fs.Int("limit", 0, "list: at most this many cases (0 = all); the last line on standard error says how to go on")
	after := fs.Uint64("after", 0, "list: start after this case number (the next page of --limit)")
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
		if *limit < 0 {
			return usageError{"cases list: --limit must not be negative"}
		}
		return listCases(loc, listArgs{status: *status, after: *after, limit: *limit,
			json: *asJSON, lines: *asLines, overdue: *overdue, dueWithin: *dueWithin}, stdout, stderr)
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

// dueKept says whether a listing with --overdue or --due-within keeps c:
// a running deadline, past (overdue) or due before until.
func dueKept(c *daemon.CaseSummary, overdue bool, until time.Time) bool {
	if c.NextDue == nil || c.Status == "closed" {
		return false
	}
	return (overdue && c.Overdue) || (!overdue && !c.NextDue.After(until))
}

// sortDue orders a --overdue/--due-within listing soonest first.
func sortDue(list []daemon.CaseSummary) {
	sort.SliceStable(list, func(i, j int) bool { return list[i].NextDue.Before(*list[j].NextDue) })
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

// printList prints a list held in memory (the demo's) as the listing does.
func printList(w io.Writer, list []daemon.CaseSummary, zone *time.Location) error {
	t := newStreamTable(w, listHeader...)
	for i := range list {
		if err := t.row(caseRow(&list[i], zone)...); err != nil {
			return err
		}
	}
	return t.flush()
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
