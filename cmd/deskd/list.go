package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"deskd/daemon"
	"deskd/store"
)

// `deskd cases list` streams: the daemon (or, when none runs, the store
// file read here) sends one JSON line per case as it reads it, and the
// listing is written as it comes (JSON lines copied as they are, a JSON
// array with one case per line, or the table in blocks), so neither side
// holds more than a block of cases. Only --overdue and --due-within,
// which sort by deadline, keep the cases they keep (those with a running
// deadline: open and pending ones).

type listArgs struct {
	status      string
	after       uint64
	limit       int
	json, lines bool
	overdue     bool
	dueWithin   time.Duration
}

func listCases(loc storeLocation, a listArgs, stdout, stderr io.Writer) error {
	bw := bufio.NewWriterSize(stdout, 64<<10)
	out := newListWriter(bw, a, loc.zone)
	var end daemon.ListEnd
	err := daemon.ErrNoDaemon
	if loc.socket != "" {
		client := daemon.AdminClient{Socket: loc.socket, Timeout: loc.cfg.Admin.InactivityTimeout}
		end, err = client.ListCases(a.status, a.after, a.limit, out.line)
	}
	if errors.Is(err, daemon.ErrNoDaemon) {
		end, err = listDirect(loc, a, out.line)
	}
	if err == nil {
		err = out.finish()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if end.Note != "" {
		fmt.Fprintln(stderr, "deskd: "+end.Note)
	}
	if end.NextAfter != 0 {
		fmt.Fprintf(stderr, "%d cases listed; more follow: --after %d\n", end.Count, end.NextAfter)
	}
	return nil
}

// listDirect lists from the store file (no daemon): the same lines,
// through the same function the daemon uses.
func listDirect(loc storeLocation, a listArgs, each func([]byte) error) (daemon.ListEnd, error) {
	db, err := store.Open(loc.path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return daemon.ListEnd{}, err
	}
	defer db.Close()
	var end daemon.ListEnd
	err = db.View(func(tx *store.Tx) error {
		var err error
		end, err = daemon.WriteCaseLines(tx, a.status, a.after, a.limit, daemon.DefaultSLAView(loc.clocks, time.Now()), lineFunc(each))
		return err
	})
	return end, err
}

// lineFunc is an io.Writer taking whole lines, handing each on without
// its newline.
type lineFunc func([]byte) error

func (f lineFunc) Write(p []byte) (int, error) {
	if err := f(p[:len(p)-1]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// listWriter writes a listing as its lines come.
type listWriter struct {
	w    *bufio.Writer
	a    listArgs
	zone *time.Location
	n    int
	// due holds the cases --overdue/--due-within keep, to sort them.
	due   []daemon.CaseSummary
	until time.Time
	table *streamTable
	// row is the case a table line is read into (reused).
	row daemon.CaseSummary
}

func newListWriter(w *bufio.Writer, a listArgs, zone *time.Location) *listWriter {
	lw := &listWriter{w: w, a: a, zone: zone, until: time.Now().Add(a.dueWithin)}
	if !a.json && !a.lines {
		lw.table = newStreamTable(w, listHeader...)
	}
	return lw
}

func (l *listWriter) filtered() bool { return l.a.overdue || l.a.dueWithin > 0 }

func (l *listWriter) line(b []byte) error {
	if l.filtered() {
		var c daemon.CaseSummary
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("cases list: %w", err)
		}
		if dueKept(&c, l.a.overdue, l.until) {
			l.due = append(l.due, c)
		}
		return nil
	}
	if l.table != nil {
		if err := tableSummary(b, &l.row); err != nil {
			return fmt.Errorf("cases list: %w", err)
		}
		return l.table.row(caseRow(&l.row, l.zone)...)
	}
	return l.raw(b)
}

// raw writes one case's JSON as it came: a line of JSON lines, or an
// element of the array.
func (l *listWriter) raw(b []byte) error {
	if l.a.json {
		sep := ",\n"
		if l.n == 0 {
			sep = "[\n"
		}
		l.w.WriteString(sep)
	}
	l.n++
	l.w.Write(b)
	if !l.a.json {
		return l.w.WriteByte('\n')
	}
	return nil
}

func (l *listWriter) finish() error {
	if l.filtered() {
		sortDue(l.due)
		for i := range l.due {
			c := &l.due[i]
			if l.table != nil {
				if err := l.table.row(caseRow(c, l.zone)...); err != nil {
					return err
				}
				continue
			}
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if err := l.raw(b); err != nil {
				return err
			}
		}
	}
	if l.table != nil {
		return l.table.flush()
	}
	if l.a.json {
		if l.n == 0 {
			_, err := l.w.WriteString("[]\n")
			return err
		}
		_, err := l.w.WriteString("\n]\n")
		return err
	}
	return nil
}

var listHeader = []string{"ID", "STATUS", "PRIORITY", "CUSTOMER", "REQUESTER", "MSGS", "UPDATED", "SLA", "NEXT DUE", "SUBJECT"}

func caseRow(c *daemon.CaseSummary, zone *time.Location) []string {
	prio := string(c.Priority)
	if prio == "" && c.ProposedPriority != "" {
		prio = string(c.ProposedPriority) + "?"
	}
	if prio == "" {
		prio = "-"
	}
	subject := c.Subject
	if c.Unauthorised {
		subject += " (unauthorised contact)"
	}
	return []string{fmt.Sprint(c.ID), string(c.Status), prio, c.Customer, c.Requester,
		fmt.Sprint(c.Messages), c.UpdatedAt.In(zone).Format("2006-01-02 15:04"), orDash(string(c.SLAState)), when(c.NextDue, zone), subject}
}

// streamTable writes aligned columns in blocks of tableBlock rows, so a
// listing of a million cases is not held whole (text/tabwriter holds
// everything until Flush). A column is as wide as the widest cell seen so
// far: it can only grow from one block to the next.
type streamTable struct {
	w      io.Writer
	widths []int
	rows   [][]string
}

const tableBlock = 1000

func newStreamTable(w io.Writer, header ...string) *streamTable {
	t := &streamTable{w: w, widths: make([]int, len(header))}
	t.rows = append(t.rows, header)
	return t
}

func (t *streamTable) row(cells ...string) error {
	t.rows = append(t.rows, cells)
	if len(t.rows) >= tableBlock {
		return t.flush()
	}
	return nil
}

func (t *streamTable) flush() error {
	for _, r := range t.rows {
		for i, c := range r {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		b.Reset()
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(t.w, b.String()); err != nil {
			return err
		}
	}
	t.rows = t.rows[:0]
	return nil
}
