// Package export hands a customer all of its data back (R18): every case
// with every message, inbound and outbound, as the raw mail deskd received
// or sent, in mbox files a mail client opens, plus the case records as
// JSON and a list of checksums to prove the export complete. It reads one
// store transaction and writes files; it knows nothing of the daemon.
//
// Layout (directory or .zip archive):
//
//	index.json                  Index: selection, customers, counts, every file's SHA-256
//	SHA256SUMS                  the same sums, for `sha256sum -c SHA256SUMS`
//	README.txt                  this layout, for whoever receives the export
//	cases/<id>/messages.mbox    the case's mails in order, mboxrd (see mbox.go)
//	cases/<id>/case.json        CaseFile: the case record, the messages' metadata, SLA figures
//	cases/<id>/raw/<n>.eml      exact copy of message n (1-based), only when the mbox cannot restore it exactly
//	quarantine/messages.mbox    quarantined mails (export of everything only)
//	quarantine/quarantine.json  QuarantineFile
//	quarantine/raw/<n>.eml      as for cases
//
// A customer's export leaves the quarantine out: a quarantined mail was
// never parsed or decided, so nothing reliable says whose it is (its From
// may be missing, unreadable or forged), and handing it to the customer it
// names could hand one customer another's mail.
package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"deskd/cases"
	"deskd/internal/progress"
	"deskd/sla"
	"deskd/store"
)

// Selection says what to export: one customer's cases, or everything.
type Selection struct {
	Customer string `json:"customer,omitempty"`
	All      bool   `json:"all,omitempty"`
	// Internal includes the supplier's own traffic (staff notifications
	// and confirmations, internal notes, staff mails the customer only got
	// relayed): left out by default, as it is not the customer's data.
	Internal bool `json:"internal,omitempty"`
}

func (s Selection) check() error {
	switch {
	case s.All && s.Customer != "":
		return errors.New("export: a customer or everything, not both")
	case !s.All && s.Customer == "":
		return errors.New("export: no customer given")
	}
	return nil
}

// Options tune Write.
type Options struct {
	// Now is the export's time, recorded in index.json; zero means
	// time.Now().
	Now time.Time
	// Generator names the program in index.json ("deskd 1.2.0").
	Generator string
	// Progress, if not nil, counts cases (its total is set by Write),
	// messages and raw bytes. Write does not Finish it.
	Progress *progress.Bar
	// Clocks replay each case's SLA clock for case.json's "sla" object
	// (deadlines, working time, whether each target was met); nil leaves
	// those fields out.
	Clocks *sla.Clocks
}

// Stats is what Write exported.
type Stats struct {
	Counts
	Customers []string
	Files     int
	// Bytes is the size of all files written (before any compression).
	Bytes int64
}

// UnknownCustomerError is returned when the selected customer has no case.
type UnknownCustomerError struct {
	Name  string
	Known []string // customers that have cases, sorted
}

func (e *UnknownCustomerError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("no cases of customer %q: the store has no cases at all", e.Name)
	}
	quoted := make([]string, len(e.Known))
	for i, n := range e.Known {
		quoted[i] = strconv.Quote(n)
	}
	msg := fmt.Sprintf("no cases of customer %q; customers with cases: %s", e.Name, strings.Join(quoted, ", "))
	for _, n := range e.Known {
		if strings.EqualFold(n, e.Name) {
			msg += fmt.Sprintf(" (names are exact: did you mean %q?)", n)
			break
		}
	}
	return msg
}

// Write exports the selection from tx into dst. All of it comes from the
// one transaction, so the export is one consistent moment of the store.
// It stops between cases once ctx is done. On error dst holds a partial
// export without index.json.
func Write(ctx context.Context, tx *store.Tx, sel Selection, dst Destination, opts Options) (Stats, error) {
	if err := sel.check(); err != nil {
		return Stats{}, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	e := &exporter{ctx: ctx, tx: tx, dst: dst, bar: opts.Progress, perCustomer: map[string]*CustomerCount{}, sel: sel, clocks: opts.Clocks, now: now}
	if sel.All {
		counts, err := tx.CountCases()
		if err != nil {
			return Stats{}, err
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		e.bar.SetTotal(int64(total))
		if err := tx.ForEachCase("", e.writeCase); err != nil {
			return e.stats(), err
		}
		if err := e.writeQuarantine(); err != nil {
			return e.stats(), err
		}
	} else {
		ids, err := customerCaseIDs(tx, sel.Customer)
		if err != nil {
			return Stats{}, err
		}
		if len(ids) == 0 {
			known, err := customersWithCases(tx)
			if err != nil {
				return Stats{}, err
			}
			return Stats{}, &UnknownCustomerError{Name: sel.Customer, Known: known}
		}
		e.bar.SetTotal(int64(len(ids)))
		for _, id := range ids {
			c, err := tx.Case(id)
			if err != nil {
				return e.stats(), err
			}
			if c == nil {
				return e.stats(), fmt.Errorf("export: case %d vanished", id)
			}
			if err := e.writeCase(c); err != nil {
				return e.stats(), err
			}
		}
	}
	if err := e.writeFile("README.txt", func(w io.Writer) error {
		_, err := io.WriteString(w, readme)
		return err
	}); err != nil {
		return e.stats(), err
	}
	// Sorted in place: the list is the largest thing an export of a big
	// customer holds (with a .zip's central directory), so it is neither
	// copied nor encoded whole (writeIndex).
	files := e.files
	slices.SortFunc(files, func(a, b fileSum) int { return strings.Compare(a.path, b.path) })
	idx := Index{
		Format:     Format,
		ExportedAt: now.UTC().Truncate(time.Second),
		Generator:  opts.Generator,
		Selection:  sel,
		Customers:  e.customerCounts(),
		Counts:     e.counts,
	}
	if err := e.writeFile("SHA256SUMS", func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		for _, f := range files {
			// sha256sum's format: hash, two spaces (text mode), path.
			fmt.Fprintf(bw, "%x  %s\n", f.sum, f.path)
		}
		return bw.Flush()
	}); err != nil {
		return e.stats(), err
	}
	if err := e.writeFile("index.json", func(w io.Writer) error { return writeIndex(w, idx, files) }); err != nil {
		return e.stats(), err
	}
	return e.stats(), nil
}

// fileSum is what the index keeps of a file written: File, with the sum
// as bytes (a third of File's size for each of a big export's files).
type fileSum struct {
	path string
	size int64
	sum  [sha256.Size]byte
}

func (f fileSum) File() File {
	return File{Path: f.path, Size: f.size, SHA256: hex.EncodeToString(f.sum[:])}
}

// writeIndex writes idx with files as its Files, exactly as writeJSON
// would write the whole Index, but one file at a time instead of the
// whole encoding in memory (TestWriteIndexAsEncoder).
func writeIndex(w io.Writer, idx Index, files []fileSum) error {
	idx.Files = []File{}
	var head bytes.Buffer
	enc := json.NewEncoder(&head)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(idx); err != nil {
		return err
	}
	// Files is the last field: the encoding ends in `"files": []` and
	// the closing brace.
	const tail = "[]\n}\n"
	if len(files) == 0 || !bytes.HasSuffix(head.Bytes(), []byte(tail)) {
		_, err := w.Write(head.Bytes())
		return err
	}
	bw := bufio.NewWriter(w)
	bw.Write(head.Bytes()[:head.Len()-len(tail)])
	bw.WriteString("[")
	var one bytes.Buffer
	fenc := json.NewEncoder(&one)
	fenc.SetIndent("    ", "  ")
	fenc.SetEscapeHTML(false)
	for i, f := range files {
		one.Reset()
		if err := fenc.Encode(f.File()); err != nil {
			return err
		}
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
	}
	bw.WriteString("\n  ]\n}\n")
	return bw.Flush()
}

// customerCaseIDs returns the ids of name's cases in ascending order,
// from the case_customer index: the one place that knows how to find a
// customer's cases.
func customerCaseIDs(tx *store.Tx, name string) ([]uint64, error) {
	return tx.CaseIDsOfCustomer(name)
}

// customersWithCases lists the distinct customer names of all cases,
// sorted; only for the error message of an unknown customer.
func customersWithCases(tx *store.Tx) ([]string, error) {
	seen := map[string]bool{}
	err := tx.ForEachCase("", func(c *cases.Case) error {
		seen[c.Customer] = true
		return nil
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, err
}

// exporter carries one Write's state.
type exporter struct {
	ctx         context.Context
	tx          *store.Tx
	dst         Destination
	bar         *progress.Bar
	files       []fileSum
	bytes       int64
	counts      Counts
	perCustomer map[string]*CustomerCount
	mboxBuf     *bufio.Writer
	sel         Selection
	clocks      *sla.Clocks
	now         time.Time
}

func (e *exporter) stats() Stats {
	s := Stats{Counts: e.counts, Files: len(e.files), Bytes: e.bytes}
	for _, c := range e.customerCounts() {
		s.Customers = append(s.Customers, c.Name)
	}
	return s
}

func (e *exporter) customerCounts() []CustomerCount {
	out := make([]CustomerCount, 0, len(e.perCustomer))
	for _, c := range e.perCustomer {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// writeFile creates name in the destination, lets fill write it, and
// records its size and SHA-256 for the index.
func (e *exporter) writeFile(name string, fill func(io.Writer) error) error {
	w, err := e.dst.Create(name)
	if err != nil {
		return err
	}
	hw := &hashingWriter{w: w, h: sha256.New()}
	if err := fill(hw); err != nil {
		return fmt.Errorf("export: %s: %w", name, err)
	}
	if hw.err != nil {
		return fmt.Errorf("export: %s: %w", name, hw.err)
	}
	f := fileSum{path: name, size: hw.n}
	hw.h.Sum(f.sum[:0])
	e.files = append(e.files, f)
	e.bytes += hw.n
	return nil
}

func (e *exporter) writeJSON(name string, v any) error {
	return e.writeFile(name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	})
}

// hashingWriter hashes and counts what passes through; it keeps the first
// write error so fill functions may ignore them (bufio style).
type hashingWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	if hw.err != nil {
		return 0, hw.err
	}
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	hw.err = err
	return n, err
}

// rawItem is one mail bound for an mbox. Its bytes are loaded when they
// are written, so an export holds one mail in memory at a time.
type rawItem struct {
	sender string
	date   time.Time
	load   func() ([]byte, error) // nil bytes: none stored
}

// rawPlacement is where one mail's bytes went.
type rawPlacement struct {
	stored  bool
	size    int
	sum     string
	mbox    int
	rawFile string
}

// writeMbox writes dir/messages.mbox with the items that have raw bytes,
// and dir/raw/<n>.eml for those the mbox cannot restore exactly.
// rawNote says what is missing from an exported mail (its raw bytes, or
// all but its header) and counts it; "" when it is whole.
func (e *exporter) rawNote(p rawPlacement, truncated bool, size int) string {
	switch {
	case !p.stored:
		e.counts.WithoutRaw++
		return noRawNote
	case truncated:
		e.counts.Truncated++
		return truncatedNote(size)
	}
	return ""
}

func (e *exporter) writeMbox(dir string, items []rawItem) ([]rawPlacement, error) {
	places := make([]rawPlacement, len(items))
	var inexact []int
	err := e.writeFile(dir+"/messages.mbox", func(w io.Writer) error {
		if e.mboxBuf == nil {
			e.mboxBuf = bufio.NewWriterSize(w, 64<<10)
		} else {
			e.mboxBuf.Reset(w)
		}
		pos := 0
		for i, it := range items {
			raw, err := it.load()
			if err != nil {
				return err
			}
			if raw == nil {
				continue
			}
			pos++
			sum := sha256.Sum256(raw)
			places[i] = rawPlacement{stored: true, size: len(raw), sum: hex.EncodeToString(sum[:]), mbox: pos}
			if !mboxExact(raw) {
				inexact = append(inexact, i)
			}
			if err := writeMboxMessage(e.mboxBuf, it.sender, it.date, raw); err != nil {
				return err
			}
			e.bar.AddBytes(int64(len(raw)))
		}
		return e.mboxBuf.Flush()
	})
	if err != nil {
		return nil, err
	}
	for _, i := range inexact {
		name := fmt.Sprintf("%s/raw/%d.eml", dir, i+1)
		if err := e.writeFile(name, func(w io.Writer) error {
			raw, err := items[i].load()
			if err != nil {
				return err
			}
			_, err = w.Write(raw)
			return err
		}); err != nil {
			return nil, err
		}
		places[i].rawFile = name
	}
	return places, nil
}

// writeCase writes cases/<id>/: the mbox, any exact copies, case.json.
func (e *exporter) writeCase(c *cases.Case) error {
	if err := e.ctx.Err(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	all, err := e.tx.CaseMessages(c)
	if err != nil {
		return err
	}
	msgs := all[:0:0]
	for _, m := range all {
		if m.Internal() && !e.sel.Internal {
			e.counts.InternalOmitted++
			continue
		}
		msgs = append(msgs, m)
	}
	items := make([]rawItem, len(msgs))
	for i, m := range msgs {
		date := m.Date
		if date.IsZero() {
			date = c.CreatedAt
		}
		key := m.Key
		items[i] = rawItem{sender: m.From.Email, date: date, load: func() ([]byte, error) { return e.tx.Raw(key) }}
	}
	dir := "cases/" + strconv.FormatUint(c.ID, 10)
	places, err := e.writeMbox(dir, items)
	if err != nil {
		return err
	}
	cf := CaseFile{Format: Format, Case: c, Messages: make([]Message, len(msgs)), SLA: slaFigures(c, e.clocks, e.now)}
	for i, m := range msgs {
		p := places[i]
		rec := Message{Message: m, RawSize: p.size, RawSHA256: p.sum, Mbox: p.mbox, RawFile: p.rawFile}
		rec.Note = e.rawNote(p, m.Truncated, m.Size)
		if m.Direction == cases.DirectionOut {
			e.counts.Outbound++
		} else {
			e.counts.Inbound++
		}
		e.counts.RawBytes += int64(p.size)
		cf.Messages[i] = rec
	}
	if err := e.writeJSON(dir+"/case.json", cf); err != nil {
		return err
	}
	e.counts.Cases++
	e.counts.Messages += len(msgs)
	cc := e.perCustomer[c.Customer]
	if cc == nil {
		cc = &CustomerCount{Name: c.Customer}
		e.perCustomer[c.Customer] = cc
	}
	cc.Cases++
	cc.Messages += len(msgs)
	e.bar.Count("messages", int64(len(msgs)))
	e.bar.Add(1)
	return nil
}

const noRawNote = "no raw bytes are stored for this mail; only its record is exported"

func truncatedNote(size int) string {
	return fmt.Sprintf("only the header was kept: the mail (%d bytes) was larger than the size limit (limits.max_message_bytes)", size)
}

// slaFigures computes what the case's record says about its SLA, and,
// with clocks, what its clock replayed at now says (R7, R9, R10, R11c).
func slaFigures(c *cases.Case, clocks *sla.Clocks, now time.Time) SLA {
	s := SLA{ReceivedAt: c.ReceivedAt.UTC()}
	if c.Status == cases.StatusClosed && !c.ClosedAt.IsZero() {
		s.ClosedAt = c.ClosedAt.UTC()
	}
	for _, ev := range c.Events {
		if ev.Type != cases.EventStaffResponse {
			continue
		}
		s.FirstStaffResponseAt = ev.At.UTC()
		if !c.ReceivedAt.IsZero() {
			secs := int64(ev.At.Sub(c.ReceivedAt) / time.Second)
			s.FirstStaffResponseWallSeconds = &secs
		}
		break
	}
	sc, ok := cases.SLACase(c)
	if !ok || clocks == nil {
		return s
	}
	st := clocks.For(c.Customer).Evaluate(sc, now)
	s.Priority, s.Kind, s.State, s.ClockStart = st.Priority, st.Kind, st.State, st.Start.UTC()
	for _, t := range st.Targets() {
		tf := TargetFigures{
			Name: t.Name, LimitSeconds: int64(t.Limit / time.Second), ElapsedSeconds: int64(t.Elapsed / time.Second),
			Due: utcOrZero(t.Due), Done: t.Done, DoneAt: utcOrZero(t.DoneAt), BreachedAt: utcOrZero(t.BreachAt), State: t.State,
		}
		s.Targets = append(s.Targets, tf)
	}
	return s
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// writeQuarantine writes quarantine/ (an export of everything only).
func (e *exporter) writeQuarantine() error {
	var recs []*store.QuarantineRecord
	if err := e.tx.ForEachQuarantine(func(r *store.QuarantineRecord) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		return err
	}
	items := make([]rawItem, len(recs))
	for i, r := range recs {
		key := r.Key
		items[i] = rawItem{sender: quarantineSender(r.From), date: r.At, load: func() ([]byte, error) { return e.tx.QuarantineRaw(key) }}
	}
	places, err := e.writeMbox("quarantine", items)
	if err != nil {
		return err
	}
	qf := QuarantineFile{Format: Format, Mails: make([]QuarantinedMail, len(recs))}
	for i, r := range recs {
		p := places[i]
		q := QuarantinedMail{QuarantineRecord: r, RawSize: p.size, RawSHA256: p.sum, Mbox: p.mbox, RawFile: p.rawFile}
		q.Note = e.rawNote(p, r.Truncated, r.Size)
		e.counts.RawBytes += int64(p.size)
		qf.Mails[i] = q
	}
	e.counts.Quarantined = len(recs)
	return e.writeJSON("quarantine/quarantine.json", qf)
}

// quarantineSender is the bare address in a quarantine record's From
// ("Name <a@b>" or "a@b"), for the From_ line.
func quarantineSender(from string) string {
	if i := strings.LastIndexByte(from, '<'); i >= 0 {
		if j := strings.IndexByte(from[i:], '>'); j > 0 {
			return from[i+1 : i+j]
		}
	}
	if strings.Contains(from, "@") && !strings.ContainsAny(from, " \t") {
		return from
	}
	return ""
}

// readme is README.txt, for whoever receives the export.
const readme = `This is an export of helpdesk data written by deskd (format deskd-export/1).

index.json        what was exported, when, counts, and the SHA-256 of every file
SHA256SUMS        the same checksums; check them with: sha256sum -c SHA256SUMS
cases/<n>/        one folder per case, <n> being the case number
  messages.mbox   every mail of the case in order, incoming and outgoing, as
                  received or sent (mbox, mboxrd variant); open it with any
                  mail client (Thunderbird: ImportExportTools NG, "Import
                  mbox file"; mutt: mutt -f messages.mbox)
  case.json       the case: status, priority, history, and per mail its
                  metadata and SHA-256
  raw/<i>.eml     an exact copy of mail i of the case, present only for the
                  rare mail whose bytes the mbox cannot carry exactly
quarantine/       (complete exports only) mails that could not be processed

All times are in UTC. The mbox has LF line ends; a mail's exact bytes are
its mbox text with the ">From " quoting undone (one ">" less before any
line of the form >*From ) and every LF turned into CRLF, or its raw/ copy.
`
