package export

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-mbox"

	"deskd/cases"
	"deskd/internal/corpus"
	"deskd/internal/progress"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
)

// corpusMails returns the raw bytes of every corpus mail listed in
// INDEX.tsv (corpus.Entries skips outside CI when it is absent).
func corpusMails(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, e := range corpus.Entries(t) {
		out = append(out, corpus.Read(t, e))
	}
	return out
}

var testCustomers = []string{"Acme", "Bakkerij Jansen", "Gemeente Zuidwold"}

var hmacKey = bytes.Repeat([]byte{7}, 32)

// storeBuilder writes cases the way the daemon's decisions do: the case,
// its messages with their raw bytes, and the indexes, in one transaction.
type storeBuilder struct {
	t    testing.TB
	tx   *store.Tx
	keys map[string]bool
	base time.Time
	n    int
}

func (b *storeBuilder) newCase(customer string, in *cases.Inbound) *cases.Case {
	b.t.Helper()
	id, err := b.tx.NextCaseID()
	if err != nil {
		b.t.Fatal(err)
	}
	c := &cases.Case{
		ID: id, Subject: in.Subject, Status: cases.StatusOpen, Customer: customer, Plan: "Premium", Language: "nl",
		Requester: in.From, CreatedAt: in.ReceivedAt, UpdatedAt: in.ReceivedAt, ReceivedAt: in.ReceivedAt,
		Events: []cases.Event{{At: in.ReceivedAt, Type: cases.EventReceived, By: in.From.Email, MessageID: in.MessageID}},
	}
	if c.Parties = []string{}; in.From.Email != "" {
		c.Parties = append(c.Parties, in.From.Email)
	}
	return c
}

// addInbound stores in (with raw, which may be nil: a record without its
// mail) as the next message of c.
func (b *storeBuilder) addInbound(c *cases.Case, in *cases.Inbound, raw []byte, truncated bool) {
	b.t.Helper()
	key := in.DedupeKey
	if b.keys[key] {
		// The same Message-ID in another corpus file: the daemon keeps it
		// under a key of its own.
		key = fmt.Sprintf("%s#%d", key, b.n)
	}
	b.keys[key] = true
	b.n++
	m := &cases.Message{
		Key: key, CaseID: c.ID, Direction: cases.DirectionIn, Role: cases.RoleCustomer, MessageID: in.MessageID,
		From: in.From, To: in.To, Cc: in.Cc, Subject: in.Subject, Date: in.ReceivedAt, Text: in.Text,
		Attachments: in.Attachments, AutoReasons: in.Auto.Reasons, Size: in.Size, Truncated: truncated, Problems: in.Problems,
	}
	if err := b.tx.PutMessage(m, raw); err != nil {
		b.t.Fatal(err)
	}
	c.MessageKeys = append(c.MessageKeys, key)
	c.UpdatedAt = in.ReceivedAt
}

// addAck composes and stores an outbound acknowledgement, as deskd sends.
func (b *storeBuilder) addAck(c *cases.Case, at time.Time) {
	b.t.Helper()
	id := mail.NewMessageID(hmacKey, c.ID, "example.test")
	raw, err := mail.Compose(&mail.Outgoing{
		From: cases.Address{Name: "Example Support", Email: "support@example.test"}, To: []cases.Address{c.Requester},
		Subject: fmt.Sprintf("[Case #%d] %s", c.ID, c.Subject), MessageID: id, Date: at,
		Text: "We received your message.\nFrom now on we keep you informed.\n", AutoSubmitted: "auto-replied",
	})
	if err != nil {
		// An address the relay cannot take: the daemon records an
		// ack_failed event and sends nothing.
		c.Events = append(c.Events, cases.Event{At: at, Type: cases.EventAckFailed, Detail: err.Error()})
		return
	}
	m := &cases.Message{
		Key: "out:" + id, CaseID: c.ID, Direction: cases.DirectionOut, Role: cases.RoleDeskd, MessageID: id,
		From: cases.Address{Email: "support@example.test"}, To: []cases.Address{c.Requester},
		Subject: fmt.Sprintf("[Case #%d] %s", c.ID, c.Subject), Date: at, Size: len(raw),
	}
	if err := b.tx.PutMessage(m, raw); err != nil {
		b.t.Fatal(err)
	}
	c.MessageKeys = append(c.MessageKeys, m.Key)
	c.Events = append(c.Events, cases.Event{At: at, Type: cases.EventAckQueued, MessageID: id})
}

func (b *storeBuilder) put(c *cases.Case) {
	b.t.Helper()
	if err := b.tx.PutCase(c); err != nil {
		b.t.Fatal(err)
	}
}

// buildStore fills a new store with the corpus: up to three mails per case,
// an acknowledgement for each case, some answered by staff and closed,
// spread over three customers; the mails the parser refuses go to the
// quarantine, as in the daemon. A hand-made case of Acme holds the odd
// ones: From_ lines at every quoting depth, bare LF, no final line end, a
// header-only mail, a record whose raw is missing.
func buildStore(t testing.TB, mails [][]byte) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2026, 2, 2, 7, 30, 0, 0, time.UTC)
	err = db.Update(func(tx *store.Tx) error {
		b := &storeBuilder{t: t, tx: tx, keys: map[string]bool{}, base: base}
		var c *cases.Case
		nCases := 0
		for i, raw := range mails {
			at := base.Add(time.Duration(i) * 17 * time.Minute)
			in, perr := mail.Parse(raw, at, mail.ParseOptions{})
			if perr != nil {
				var pe *mail.ParseError
				if !errors.As(perr, &pe) {
					t.Fatal(perr)
				}
				key := in.DedupeKey
				if b.keys[key] {
					key = fmt.Sprintf("%s#%d", key, i)
				}
				b.keys[key] = true
				if err := tx.PutQuarantine(&store.QuarantineRecord{Key: key, MessageID: in.MessageID, Reason: pe.Reason,
					From: in.From.Email, Subject: in.Subject, At: at, Size: len(raw)}, raw); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if c == nil || i%3 == 0 {
				if c != nil {
					b.put(c)
				}
				c = b.newCase(testCustomers[nCases%len(testCustomers)], in)
				b.addInbound(c, in, raw, false)
				b.addAck(c, at.Add(2*time.Second))
				if nCases%2 == 0 {
					c.Events = append(c.Events, cases.Event{At: at.Add(95 * time.Minute), Type: cases.EventStaffResponse, By: "eva@example.test"})
				}
				if nCases%4 == 0 {
					c.Status, c.ClosedAt = cases.StatusClosed, at.Add(3*time.Hour)
					c.Events = append(c.Events, cases.Event{At: c.ClosedAt, Type: cases.EventClosed, By: "eva@example.test"})
				}
				nCases++
				continue
			}
			b.addInbound(c, in, raw, false)
			c.Events = append(c.Events, cases.Event{At: at, Type: cases.EventCustomerReply, MessageID: in.MessageID})
		}
		if c != nil {
			b.put(c)
		}

		// The odd ones.
		odd := []string{
			"From: x@acme.example\r\nSubject: quoting\r\nMessage-ID: <odd1@acme.example>\r\n\r\nFrom the top\r\n>From one\r\n>>From two\r\nFrom\r\n\r\n",
			"From: x@acme.example\nSubject: bare LF\nMessage-ID: <odd2@acme.example>\n\nFrom here on LF only\n",
			"From: x@acme.example\r\nSubject: no end\r\nMessage-ID: <odd3@acme.example>\r\n\r\nno line end",
			"From: x@acme.example\r\nSubject: a CR before CRLF\r\nMessage-ID: <odd4@acme.example>\r\n\r\nx\r\r\n",
		}
		at := base.Add(-time.Hour)
		var oc *cases.Case
		for i, raw := range odd {
			in, err := mail.Parse([]byte(raw), at.Add(time.Duration(i)*time.Minute), mail.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if oc == nil {
				oc = b.newCase("Acme", in)
			}
			b.addInbound(oc, in, []byte(raw), false)
		}
		big := "From: x@acme.example\r\nSubject: huge\r\nMessage-ID: <odd5@acme.example>\r\nContent-Type: application/octet-stream\r\n\r\n" + strings.Repeat("A", 2000) + "\r\n"
		in, perr := mail.Parse([]byte(big), at, mail.ParseOptions{MaxBytes: 1000})
		if !errors.Is(perr, mail.ErrTooLarge) {
			t.Fatalf("header-only fixture: %v", perr)
		}
		header, _, _ := strings.Cut(big, "\r\n\r\n")
		b.addInbound(oc, in, []byte(header+"\r\n\r\n"), true)
		in, err := mail.Parse([]byte("From: x@acme.example\r\nMessage-ID: <odd6@acme.example>\r\n\r\nlost\r\n"), at, mail.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.addInbound(oc, in, nil, false)
		b.addAck(oc, at.Add(time.Minute))
		b.put(oc)

		// The quarantine's odd ones: header-only, and without raw.
		if err := tx.PutQuarantine(&store.QuarantineRecord{Key: "sha256:big", Reason: "too large", From: "Big <big@example.org>",
			At: at, Size: 30 << 20, Truncated: true}, []byte("From: big@example.org\r\nSubject: big\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		return tx.PutQuarantine(&store.QuarantineRecord{Key: "sha256:gone", Reason: "internal error: x", At: at, Size: 10}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// exportTo runs Write for sel into path (a directory or .zip).
func exportTo(t testing.TB, db *store.DB, sel Selection, path string, bar *progress.Bar) Stats {
	t.Helper()
	out, err := Create(path, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	err = db.View(func(tx *store.Tx) error {
		var err error
		st, err = Write(context.Background(), tx, sel, out, Options{Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Generator: "deskd test", Progress: bar})
		return err
	})
	if err != nil {
		out.Abort()
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	return st
}

// decodeStrict decodes JSON refusing unknown fields: what the export
// writes is exactly the documented schema.
func decodeStrict(t testing.TB, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// goMboxFaithful reports whether go-mbox's mboxo reader can give raw back
// byte for byte from an mboxrd file: it unquotes only ">From ", turns every
// line end into CRLF (so a CR before CRLF is lost), and mishandles mails
// that end with an empty line.
func goMboxFaithful(raw []byte) bool {
	if !mboxExact(raw) || bytes.Contains(raw, []byte("\r\r\n")) || bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
		return false
	}
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if bytes.HasPrefix(l, []byte(">>")) && bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) {
			return false
		}
	}
	return true
}

// messageIDField is the unfolded value of the first Message-ID field in
// the header of raw, whatever its line ends ("" if none).
func messageIDField(raw []byte) string {
	lines := strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")
	for i, l := range lines {
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "message-id") {
			continue
		}
		for _, next := range lines[i+1:] {
			if next == "" || (next[0] != ' ' && next[0] != '\t') {
				break
			}
			value += next
		}
		return strings.TrimSpace(value)
	}
	return ""
}

// verifyExport checks an export against the store, file by file: index.json
// and SHA256SUMS name every file with its right sum; the cases are the
// selection's; every case.json decodes with the documented schema and
// matches the store; every mbox holds the case's mails in order, and each
// mail's bytes come back exactly (from the mbox, or from its raw/ copy when
// the mbox cannot carry them). go-mbox's reader, a third party's, finds the
// same messages with the same Message-IDs.
func verifyExport(t *testing.T, fsys fs.FS, db *store.DB, sel Selection) Index {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var idx Index
	decodeStrict(t, read("index.json"), &idx)
	if idx.Format != Format || idx.Selection != sel || idx.Generator != "deskd test" || !idx.ExportedAt.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("index header: %+v", idx)
	}

	// Every file, and nothing else, with its sum.
	listed := map[string]File{}
	for _, f := range idx.Files {
		listed[f.Path] = f
	}
	present := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		present[p] = true
		if p == "index.json" || p == "SHA256SUMS" {
			return nil
		}
		f, ok := listed[p]
		b := read(p)
		if !ok {
			t.Errorf("%s is not in index.json", p)
		} else if f.Size != int64(len(b)) || f.SHA256 != sum(b) {
			t.Errorf("%s: index says %d bytes %s, file has %d bytes %s", p, f.Size, f.SHA256, len(b), sum(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range listed {
		if !present[p] {
			t.Errorf("index.json lists %s, which is missing", p)
		}
	}
	var sums []string
	for _, f := range idx.Files {
		sums = append(sums, f.SHA256+"  "+f.Path)
	}
	if got := strings.TrimSuffix(string(read("SHA256SUMS")), "\n"); got != strings.Join(sums, "\n") {
		t.Errorf("SHA256SUMS differs from index.json")
	}
	if !slices.IsSortedFunc(idx.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) }) {
		t.Error("index.json files not sorted by path")
	}

	var counts Counts
	perCustomer := map[string]*CustomerCount{}
	goMboxExact := 0
	err = db.View(func(tx *store.Tx) error {
		wantDirs := map[string]bool{}
		err := tx.ForEachCase("", func(c *cases.Case) error {
			if !sel.All && c.Customer != sel.Customer {
				return nil
			}
			dir := fmt.Sprintf("cases/%d", c.ID)
			wantDirs[dir] = true
			counts.Cases++
			cc := perCustomer[c.Customer]
			if cc == nil {
				cc = &CustomerCount{Name: c.Customer}
				perCustomer[c.Customer] = cc
			}
			cc.Cases++
			cc.Messages += len(c.MessageKeys)

			var cf CaseFile
			decodeStrict(t, read(dir+"/case.json"), &cf)
			if cf.Format != Format {
				t.Errorf("%s: format %q", dir, cf.Format)
			}
			wantCase, _ := json.Marshal(c)
			gotCase, _ := json.Marshal(cf.Case)
			if !bytes.Equal(wantCase, gotCase) {
				t.Errorf("%s: case record\n got %s\nwant %s", dir, gotCase, wantCase)
			}
			if want := slaFigures(c, nil, time.Time{}); !cf.SLA.ReceivedAt.Equal(c.ReceivedAt) || !cf.SLA.FirstStaffResponseAt.Equal(want.FirstStaffResponseAt) ||
				!cf.SLA.ClosedAt.Equal(want.ClosedAt) {
				t.Errorf("%s: sla %+v", dir, cf.SLA)
			}
			if len(cf.Messages) != len(c.MessageKeys) {
				t.Fatalf("%s: %d messages in case.json, %d in the case", dir, len(cf.Messages), len(c.MessageKeys))
			}

			mboxBytes := read(dir + "/messages.mbox")
			rd, fromLines := readMboxrd(t, mboxBytes)
			var gm [][]byte
			r := mbox.NewReader(bytes.NewReader(mboxBytes))
			for {
				mr, err := r.NextMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: go-mbox: %v", dir, err)
				}
				b, err := io.ReadAll(mr)
				if err != nil {
					t.Fatalf("%s: go-mbox: %v", dir, err)
				}
				gm = append(gm, b)
			}
			if len(gm) != len(rd) {
				t.Errorf("%s: go-mbox finds %d messages, mboxrd %d", dir, len(gm), len(rd))
			}

			withRaw := 0
			for i, key := range c.MessageKeys {
				rec := cf.Messages[i]
				m, err := tx.Message(key)
				if err != nil {
					return err
				}
				wantMsg, _ := json.Marshal(m)
				gotMsg, _ := json.Marshal(rec.Message)
				if !bytes.Equal(wantMsg, gotMsg) {
					t.Errorf("%s message %d: record\n got %s\nwant %s", dir, i+1, gotMsg, wantMsg)
				}
				counts.Messages++
				if m.Direction == cases.DirectionOut {
					counts.Outbound++
				} else {
					counts.Inbound++
				}
				raw, err := tx.Raw(key)
				if err != nil {
					return err
				}
				if raw == nil {
					counts.WithoutRaw++
					if rec.Mbox != 0 || rec.RawSHA256 != "" || rec.Note == "" {
						t.Errorf("%s message %d without raw: %+v", dir, i+1, rec)
					}
					continue
				}
				withRaw++
				counts.RawBytes += int64(len(raw))
				if m.Truncated {
					counts.Truncated++
					if !strings.Contains(rec.Note, "only the header") {
						t.Errorf("%s message %d is header-only, note %q", dir, i+1, rec.Note)
					}
				}
				if rec.Mbox != withRaw || rec.RawSize != len(raw) || rec.RawSHA256 != sum(raw) {
					t.Errorf("%s message %d: mbox_index %d (want %d), raw_size %d, raw_sha256 %s", dir, i+1, rec.Mbox, withRaw, rec.RawSize, rec.RawSHA256)
					continue
				}
				if rec.Mbox > len(rd) {
					t.Errorf("%s: message %d missing from the mbox", dir, i+1)
					continue
				}
				if !strings.HasPrefix(fromLines[rec.Mbox-1], "From "+fromLineSender(m.From.Email)+" ") {
					t.Errorf("%s message %d: From_ line %q", dir, i+1, fromLines[rec.Mbox-1])
				}
				got := rd[rec.Mbox-1]
				if mboxExact(raw) {
					if !bytes.Equal(crlf(got), raw) {
						t.Errorf("%s message %d: mbox bytes differ from the stored raw", dir, i+1)
					}
					if rec.RawFile != "" {
						t.Errorf("%s message %d: needless raw copy %s", dir, i+1, rec.RawFile)
					}
				} else if rec.RawFile != fmt.Sprintf("%s/raw/%d.eml", dir, i+1) || !bytes.Equal(read(rec.RawFile), raw) {
					t.Errorf("%s message %d: raw_file %q does not hold the exact bytes", dir, i+1, rec.RawFile)
				}
				if rec.Mbox > len(gm) {
					continue
				}
				// A third party's reader: same Message-ID, and the same
				// bytes wherever its mboxo reading can give them.
				if want, got := messageIDField(raw), messageIDField(gm[rec.Mbox-1]); want != got {
					t.Errorf("%s message %d: go-mbox reads Message-ID %q, want %q", dir, i+1, got, want)
				}
				if goMboxFaithful(raw) {
					if !bytes.Equal(gm[rec.Mbox-1], raw) {
						t.Errorf("%s message %d: go-mbox reads other bytes", dir, i+1)
					}
					goMboxExact++
				}
			}
			if withRaw != len(rd) {
				t.Errorf("%s: %d mails in the mbox, want %d", dir, len(rd), withRaw)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for p := range present {
			if strings.HasPrefix(p, "cases/") {
				parts := strings.SplitN(p, "/", 3)
				if !wantDirs[parts[0]+"/"+parts[1]] {
					t.Errorf("%s: not a case of the selection", p)
				}
			}
		}
		for d := range wantDirs {
			if !present[d+"/messages.mbox"] || !present[d+"/case.json"] {
				t.Errorf("%s incomplete", d)
			}
		}

		// The quarantine: in an export of everything only.
		if !sel.All {
			for p := range present {
				if strings.HasPrefix(p, "quarantine/") {
					t.Errorf("%s in a customer's export", p)
				}
			}
			return nil
		}
		var qf QuarantineFile
		decodeStrict(t, read("quarantine/quarantine.json"), &qf)
		qrd, _ := readMboxrd(t, read("quarantine/messages.mbox"))
		n := 0
		err = tx.ForEachQuarantine(func(r *store.QuarantineRecord) error {
			if n >= len(qf.Mails) {
				t.Fatalf("quarantine.json has %d mails, the store more", len(qf.Mails))
			}
			q := qf.Mails[n]
			n++
			if *q.QuarantineRecord != *r {
				t.Errorf("quarantine %s: record %+v, want %+v", r.Key, q.QuarantineRecord, r)
			}
			raw, err := tx.QuarantineRaw(r.Key)
			if err != nil {
				return err
			}
			if raw == nil {
				counts.WithoutRaw++
				if q.Mbox != 0 || q.Note == "" {
					t.Errorf("quarantine %s without raw: %+v", r.Key, q)
				}
				return nil
			}
			counts.RawBytes += int64(len(raw))
			if r.Truncated {
				counts.Truncated++
			}
			if q.Mbox == 0 || q.RawSHA256 != sum(raw) {
				t.Errorf("quarantine %s: %+v", r.Key, q)
				return nil
			}
			if mboxExact(raw) {
				if !bytes.Equal(crlf(qrd[q.Mbox-1]), raw) {
					t.Errorf("quarantine %s: mbox bytes differ", r.Key)
				}
			} else if !bytes.Equal(read(q.RawFile), raw) {
				t.Errorf("quarantine %s: raw_file %q differs", r.Key, q.RawFile)
			}
			return nil
		})
		counts.Quarantined = n
		if n != len(qf.Mails) {
			t.Errorf("quarantine.json has %d mails, the store %d", len(qf.Mails), n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if idx.Counts != counts {
		t.Errorf("index counts %+v, want %+v", idx.Counts, counts)
	}
	var wantCustomers []CustomerCount
	for _, c := range perCustomer {
		wantCustomers = append(wantCustomers, *c)
	}
	sort.Slice(wantCustomers, func(i, j int) bool { return wantCustomers[i].Name < wantCustomers[j].Name })
	if !slices.Equal(idx.Customers, wantCustomers) {
		t.Errorf("index customers %+v, want %+v", idx.Customers, wantCustomers)
	}
	t.Logf("%v: %d cases, %d messages (%d in, %d out, %d header-only, %d without raw), %d quarantined, %.1f MB raw; go-mbox gave %d mails back byte for byte",
		sel, counts.Cases, counts.Messages, counts.Inbound, counts.Outbound, counts.Truncated, counts.WithoutRaw, counts.Quarantined, float64(counts.RawBytes)/1e6, goMboxExact)
	return idx
}

// sameFiles checks that a and b hold the same files with the same bytes.
func sameFiles(t *testing.T, a, b fs.FS) {
	t.Helper()
	list := func(fsys fs.FS) map[string]string {
		sums := map[string]string{}
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			sums[p] = sum(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return sums
	}
	sa, sb := list(a), list(b)
	for p, s := range sa {
		if sb[p] != s {
			t.Errorf("%s differs", p)
		}
	}
	if len(sa) != len(sb) {
		t.Errorf("%d files against %d", len(sa), len(sb))
	}
}

// zipFS opens a .zip export as an fs.FS.
func zipFS(t *testing.T, path string) fs.FS {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zr.Close() })
	for _, f := range zr.File {
		if f.Mode().Perm() != 0o600 {
			t.Errorf("zip entry %s has mode %v", f.Name, f.Mode())
		}
	}
	return zr
}

// The whole corpus through the store and back out: everything, as a
// directory and as a .zip, and one customer's share.
func TestExportCorpus(t *testing.T) {
	db := buildStore(t, corpusMails(t))
	dir := t.TempDir()

	all := filepath.Join(dir, "all")
	var progressOut bytes.Buffer
	bar := progress.New(&progressOut, 0, "cases", "exported")
	st := exportTo(t, db, Selection{All: true}, all, bar)
	bar.Finish()
	idx := verifyExport(t, os.DirFS(all), db, Selection{All: true})
	if st.Counts != idx.Counts || st.Files != len(idx.Files)+2 {
		t.Errorf("stats %+v, index %+v with %d files", st, idx.Counts, len(idx.Files))
	}
	if idx.Counts.WithoutRaw != 2 || idx.Counts.Truncated != 2 || idx.Counts.Quarantined == 0 {
		t.Errorf("the fixture's odd mails are not all there: %+v", idx.Counts)
	}
	wantLine := fmt.Sprintf("exported %d/%d cases, %d messages, ", idx.Counts.Cases, idx.Counts.Cases, idx.Counts.Messages)
	// A slow (loaded) machine prints a line every few seconds before the
	// last one: only the last is the total.
	lines := strings.Split(strings.TrimRight(progressOut.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], wantLine) {
		t.Errorf("progress %q, want its last line to start %q", progressOut.String(), wantLine)
	}
	err := filepath.WalkDir(all, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if want := fs.FileMode(0o600); d.IsDir() {
			want = 0o700
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v", p, fi.Mode())
			}
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The same as a .zip: the same files, byte for byte.
	zipAll := filepath.Join(dir, "all.zip")
	exportTo(t, db, Selection{All: true}, zipAll, nil)
	sameFiles(t, os.DirFS(all), zipFS(t, zipAll))

	// One customer, as a .zip: its cases alone, no quarantine, and each
	// case's files the same bytes as in the export of everything.
	acme := filepath.Join(dir, "acme.zip")
	st = exportTo(t, db, Selection{Customer: "Acme"}, acme, nil)
	zfs := zipFS(t, acme)
	idx = verifyExport(t, zfs, db, Selection{Customer: "Acme"})
	if len(idx.Customers) != 1 || idx.Customers[0].Name != "Acme" || idx.Counts.Quarantined != 0 || !slices.Equal(st.Customers, []string{"Acme"}) {
		t.Errorf("customer export: %+v %+v", idx.Customers, idx.Counts)
	}
	for _, f := range idx.Files {
		if !strings.HasPrefix(f.Path, "cases/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(all, filepath.FromSlash(f.Path)))
		if err != nil || sum(b) != f.SHA256 {
			t.Errorf("%s differs between the customer's export and the export of everything (%v)", f.Path, err)
		}
	}
}

// An unknown customer is an error naming the customers there are, and
// leaves nothing behind.
func TestExportUnknownCustomer(t *testing.T) {
	db := buildStore(t, nil)
	path := filepath.Join(t.TempDir(), "out")
	out, err := Create(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Tx) error {
		_, err := Write(context.Background(), tx, Selection{Customer: "acme"}, out, Options{})
		return err
	})
	out.Abort()
	var uc *UnknownCustomerError
	if !errors.As(err, &uc) || !slices.Equal(uc.Known, []string{"Acme"}) {
		t.Fatalf("error %v, want an UnknownCustomerError naming Acme", err)
	}
	if want := `no cases of customer "acme"; customers with cases: "Acme" (names are exact: did you mean "Acme"?)`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// Where an export may go: a new or empty directory, a new .zip; not over
// anything, not into a format we do not write.
func TestCreatePaths(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	file := filepath.Join(dir, "old.zip")
	os.WriteFile(file, nil, 0o600)
	for path, ok := range map[string]bool{
		filepath.Join(dir, "new"):      true,
		empty:                          true,
		filepath.Join(dir, "new.zip"):  true,
		filepath.Join(dir, "NEW.ZIP"):  true,
		full:                           false,
		file:                           false,
		filepath.Join(dir, "x.tar.gz"): false,
		filepath.Join(dir, "x.tgz"):    false,
		filepath.Join(dir, "nodir/x"):  false,
		"":                             false,
	} {
		out, err := Create(path, time.Now())
		if (err == nil) != ok {
			t.Errorf("Create(%q): %v", path, err)
			continue
		}
		if err != nil {
			continue
		}
		w, err := out.Create("a/b.txt")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "hello")
		if _, err := out.Create("../escape"); err == nil {
			t.Errorf("Create(../escape) accepted")
		}
		if err := out.Commit(); err != nil {
			t.Fatalf("Commit %s: %v", path, err)
		}
		var got []byte
		if IsArchive(path) {
			got, err = fs.ReadFile(zipFS(t, path), "a/b.txt")
		} else {
			got, err = os.ReadFile(filepath.Join(path, "a", "b.txt"))
		}
		if err != nil || string(got) != "hello" {
			t.Errorf("%s: %q, %v", path, got, err)
		}
	}
	// Abort leaves no trace; Commit after Abort fails.
	out, err := Create(filepath.Join(dir, "aborted"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out.Create("x")
	out.Abort()
	if err := out.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".*partial*"))
	if _, err := os.Stat(filepath.Join(dir, "aborted")); err == nil || len(matches) != 0 {
		t.Errorf("abort left %v", matches)
	}
}

// A cancelled context stops the export between cases, before index.json.
func TestExportCancelled(t *testing.T) {
	db := buildStore(t, nil)
	path := filepath.Join(t.TempDir(), "out")
	out, err := Create(path, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = db.View(func(tx *store.Tx) error {
		_, err := Write(ctx, tx, Selection{All: true}, out, Options{})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	out.Abort()
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// A customer's export holds what the customer sent and received (R18);
// the supplier's own traffic about the case (a staff notification, an
// internal note) stays out unless asked for with Selection.Internal.
func TestExportLeavesInternalMailOut(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	msg := func(key string, dir cases.Direction, role cases.Role, vis string) *cases.Message {
		return &cases.Message{Key: key, CaseID: 1, Direction: dir, Role: role, MessageID: key[strings.IndexByte(key, ':')+1:],
			From: cases.Address{Email: "x@example.test"}, Date: at, Visibility: vis}
	}
	msgs := []*cases.Message{
		msg("mid:customer@acme.test", cases.DirectionIn, cases.RoleCustomer, cases.VisibilityCustomer),
		msg("mid:note@desk.test", cases.DirectionIn, cases.RoleStaff, cases.VisibilityInternal),
		msg("out:notify@desk.test", cases.DirectionOut, cases.RoleDeskd, cases.VisibilityInternal),
		msg("out:relay@desk.test", cases.DirectionOut, cases.RoleStaff, cases.VisibilityCustomer),
		msg("mid:legacy-staff@desk.test", cases.DirectionIn, cases.RoleStaff, ""), // before visibility existed
	}
	err = db.Update(func(tx *store.Tx) error {
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		c := &cases.Case{ID: id, Subject: "s", Status: cases.StatusOpen, Customer: "Acme", CreatedAt: at, ReceivedAt: at}
		for _, m := range msgs {
			raw := []byte("From: x@example.test\r\nMessage-ID: <" + m.MessageID + ">\r\nSubject: s\r\n\r\nbody\r\n")
			if err := tx.PutMessage(m, raw); err != nil {
				return err
			}
			c.MessageKeys = append(c.MessageKeys, m.Key)
		}
		return tx.PutCase(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		internal bool
		want     []string
	}{
		{false, []string{"customer@acme.test", "relay@desk.test"}},
		{true, []string{"customer@acme.test", "note@desk.test", "notify@desk.test", "relay@desk.test", "legacy-staff@desk.test"}},
	} {
		dir := filepath.Join(t.TempDir(), "out")
		st := exportTo(t, db, Selection{Customer: "Acme", Internal: tc.internal}, dir, nil)
		if st.InternalOmitted != 5-len(tc.want) {
			t.Errorf("internal=%v: %d omitted", tc.internal, st.InternalOmitted)
		}
		var cf CaseFile
		b, err := os.ReadFile(filepath.Join(dir, "cases", "1", "case.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &cf); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range cf.Messages {
			got = append(got, m.MessageID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("internal=%v: exported %v, want %v", tc.internal, got, tc.want)
		}
	}
}

// case.json's "sla" carries the clock replayed at the export's time: a
// Premium incident received Monday 2 March 2026 09:00 Amsterdam, answered
// at 11:00 and closed on Wednesday at 10:00 met R9 with 2 of 4 working
// hours and R7's medium tiers with 19 of 45 (R18: the customer can check
// the figures).
func TestExportSLAFigures(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "deskd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, ams) }
	err = db.Update(func(tx *store.Tx) error {
		id, err := tx.NextCaseID()
		if err != nil {
			return err
		}
		return tx.PutCase(&cases.Case{
			ID: id, Subject: "s", Status: cases.StatusClosed, Customer: "Acme", Plan: "Premium",
			CreatedAt: at(2, 9), ReceivedAt: at(2, 9), ClosedAt: at(4, 10),
			Events: []cases.Event{
				{At: at(2, 9), Type: cases.EventReceived},
				{At: at(2, 11), Type: cases.EventStaffResponse},
				{At: at(4, 10), Type: cases.EventClosed},
			},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Create(filepath.Join(t.TempDir(), "out"), at(10, 12))
	if err != nil {
		t.Fatal(err)
	}
	clocks := &sla.Clocks{Default: &sla.Clock{Calendar: sla.DefaultCalendar(ams), Targets: sla.Default()}}
	err = db.View(func(tx *store.Tx) error {
		_, err := Write(context.Background(), tx, Selection{Customer: "Acme"}, out, Options{Now: at(10, 12), Clocks: clocks})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out.Path(), "cases", "1", "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf CaseFile
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	s := cf.SLA
	if s.Priority != "medium" || s.Kind != "incident" || s.State != sla.StateMet || !s.ClockStart.Equal(at(2, 9)) {
		t.Fatalf("sla: %+v", s)
	}
	want := map[string][2]int64{"first_response": {4 * 3600, 2 * 3600}, "resolution": {45 * 3600, 19 * 3600}, "resolution_tier2": {90 * 3600, 19 * 3600}}
	if len(s.Targets) != len(want) {
		t.Fatalf("targets: %+v", s.Targets)
	}
	for _, tf := range s.Targets {
		if w := want[tf.Name]; tf.LimitSeconds != w[0] || tf.ElapsedSeconds != w[1] || !tf.Done || tf.State != sla.StateMet {
			t.Errorf("%s: %+v, want limit %d elapsed %d, done and met", tf.Name, tf, w[0], w[1])
		}
	}
}

// writeIndex streams index.json's file list; the bytes are those of the
// whole Index through the encoder writeJSON uses, for no, one and several
// files (names with characters JSON escapes or HTML would).
func TestWriteIndexAsEncoder(t *testing.T) {
	idx := Index{Format: Format, ExportedAt: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), Generator: "deskd test",
		Selection: Selection{Customer: `Bakkerij "Jansen" & <Zn>`}, Customers: []CustomerCount{{Name: "Bakkerij", Cases: 2, Messages: 3}},
		Counts: Counts{Cases: 2, Messages: 3}}
	all := []fileSum{
		{path: "README.txt", size: 10, sum: sha256.Sum256([]byte("a"))},
		{path: "cases/1/case.json", size: 0},
		{path: "cases/2/raw/1.eml", size: 1 << 40, sum: sha256.Sum256([]byte("é<&>"))},
	}
	for n := 0; n <= len(all); n++ {
		files := all[:n]
		var got bytes.Buffer
		if err := writeIndex(&got, idx, files); err != nil {
			t.Fatal(err)
		}
		whole := idx
		whole.Files = []File{}
		for _, f := range files {
			whole.Files = append(whole.Files, f.File())
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(whole); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d files:\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}
}
