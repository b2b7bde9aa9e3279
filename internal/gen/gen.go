// Package gen builds realistic deskd stores of any size (10k, 100k, 1M
// cases) for benchmarks: cases spread over a few years, for a couple of
// hundred customers, a small share still open or pending, one to three
// mails each plus the staff's closing command. Every mail goes through the
// real decision engine (cases.Engine.Decide) and every decision through the
// real store code (PutMessage with the raw mail, PutCase), so records,
// indexes and raw mail look like what the daemon writes. Only the mails the
// daemon would send (acknowledgements, notifications, relays) are left out:
// rendering them is the daemon's job, and they would not change what the
// read paths being measured do.
//
// It is not part of the deskd binary: cmd/deskd-gen and the benchmarks use
// it. Generation is fast because many cases are committed per bbolt
// transaction (Options.Batch); the engine reads its own uncommitted writes
// through the same transaction.
package gen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"deskd/cases"
	"deskd/store"
)

// Options shape a generated store. The zero value of each field means its
// default.
type Options struct {
	// Cases to create. Required.
	Cases int
	// Customers is the number of customer organisations (default 200).
	Customers int
	// Span is the time the cases are spread over, ending at End (default
	// three years).
	Span time.Duration
	// End is the latest case's arrival (default: now, to the minute).
	End time.Time
	// OpenShare is the share of cases still open or pending (default
	// 0.02); a quarter of those is pending. They are the recent cases, as
	// in a real desk: drawn among the latest 2×OpenShare of all cases.
	OpenShare float64
	// Seed makes the store reproducible (default 1).
	Seed uint64
	// Batch is the number of cases per transaction (default 2000).
	Batch int
	// Progress, if set, is called after each committed batch with the
	// number of cases done so far.
	Progress func(done int)
}

func (o *Options) defaults() {
	if o.Customers <= 0 {
		o.Customers = 200
	}
	if o.Span <= 0 {
		o.Span = 3 * 365 * 24 * time.Hour
	}
	if o.End.IsZero() {
		o.End = time.Now().UTC().Truncate(time.Minute)
	}
	if o.OpenShare <= 0 {
		o.OpenShare = 0.02
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Batch <= 0 {
		o.Batch = 2000
	}
}

// Addresses of the generated desk. The staff domain makes every agent staff.
const (
	SupportAddress = "support@desk.example"
	StaffDomain    = "desk.example"
	TokenPrefix    = "Case"
)

var plans = [...]string{"Premium", "Business", "Basic"}

// Customers returns the n generated customer organisations: "Customer
// 001" (the big one, with about a tenth of the cases) with domain
// cust001.example and two named contacts, plans and
// languages in turn.
func Customers(n int) []cases.Customer {
	out := make([]cases.Customer, n)
	for i := range out {
		dom := fmt.Sprintf("cust%03d.example", i+1)
		lang := "nl"
		if i%3 == 2 {
			lang = "en"
		}
		out[i] = cases.Customer{
			Name:     fmt.Sprintf("Customer %03d", i+1),
			Plan:     plans[i%len(plans)],
			Language: lang,
			Domains:  []string{dom},
			Contacts: []cases.Address{
				{Name: "Anna Admin", Email: "anna@" + dom},
				{Name: "Bram Beheer", Email: "bram@" + dom},
			},
		}
	}
	return out
}

// Policy is the engine policy the store is generated with; a daemon run
// against the store should use the same customers (cmd/deskd-gen writes
// them into a configuration file).
func Policy(customers []cases.Customer) cases.Policy {
	return cases.Policy{
		SupportAddress:   SupportAddress,
		TokenPrefix:      TokenPrefix,
		ReopenWindow:     14 * 24 * time.Hour,
		StaffDomains:     []string{StaffDomain},
		StaffLanguage:    "nl",
		Customers:        customers,
		DefaultCustomer:  "Unknown",
		DefaultPlan:      "Basic",
		DefaultLanguage:  "nl",
		AutoPerHour:      5,
		AutoPerDay:       20,
		UndeliverableFor: 72 * time.Hour,
	}
}

// Stats says what Generate wrote.
type Stats struct {
	Cases, Open, Pending, Closed int
	Messages                     int
	RawBytes                     int64
}

// Generate adds opts.Cases cases to db (which may already hold some: case
// ids continue from its sequence). It stops between batches when ctx ends.
func Generate(ctx context.Context, db *store.DB, opts Options) (Stats, error) {
	opts.defaults()
	var st Stats
	if opts.Cases <= 0 {
		return st, errors.New("gen: Cases must be positive")
	}
	custs := Customers(opts.Customers)
	policy := Policy(custs)
	g := &generator{
		opts:   opts,
		custs:  custs,
		engine: cases.NewEngine(&policy),
		rnd:    rand.New(rand.NewPCG(opts.Seed, 0x6465736b64)),
		start:  opts.End.Add(-opts.Span),
	}
	openWindow := int(2 * opts.OpenShare * float64(opts.Cases))
	for done := 0; done < opts.Cases; {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n := min(opts.Batch, opts.Cases-done)
		err := db.Update(func(tx *store.Tx) error {
			if done == 0 {
				// The cases below get no deadline entries (the
				// daemon's clocks compute them): the daemon's next
				// start must rebuild the index.
				if err := tx.SetDeadlineVersion(""); err != nil {
					return err
				}
			}
			for i := done; i < done+n; i++ {
				fate := closed
				if i >= opts.Cases-openWindow && g.rnd.IntN(2) == 0 {
					fate = open
					if g.rnd.IntN(4) == 0 {
						fate = pending
					}
				}
				if err := g.oneCase(tx, i, fate, &st); err != nil {
					return fmt.Errorf("gen: case %d of %d: %w", i+1, opts.Cases, err)
				}
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(done)
		}
	}
	return st, nil
}

type fate int

const (
	closed fate = iota
	open
	pending
)

type generator struct {
	opts   Options
	custs  []cases.Customer
	engine *cases.Engine
	rnd    *rand.Rand
	start  time.Time
	seq    uint64 // for unique Message-IDs
}

// oneCase writes case number i (0-based, in time order) with its mails.
func (g *generator) oneCase(tx *store.Tx, i int, f fate, st *Stats) error {
	// Arrivals spread evenly over the span, at a random minute of the
	// slot, so that case ids follow time as in a real store.
	slot := g.opts.Span / time.Duration(g.opts.Cases)
	at := g.start.Add(time.Duration(i)*slot + time.Duration(g.rnd.Int64N(int64(max(slot, time.Second)))))
	// One big customer, as desks have: Customer 001 writes a tenth of
	// all cases, the others share the rest (the export benchmark's).
	cust := &g.custs[g.rnd.IntN(len(g.custs))]
	if g.rnd.IntN(10) == 0 {
		cust = &g.custs[0]
	}
	contact := cust.Contacts[g.rnd.IntN(len(cust.Contacts))]
	subject := subjects[g.rnd.IntN(len(subjects))]
	if g.rnd.IntN(5) == 0 {
		subject += " " + fmt.Sprint(1000+g.rnd.IntN(9000))
	}
	lk := lookup{tx}
	staff := cases.Address{Name: "Agent", Email: fmt.Sprintf("agent%d@%s", g.rnd.IntN(8)+1, StaffDomain)}

	// 1. The customer's first mail opens the case (R11b: its arrival
	// starts the clock).
	first, err := g.mail(tx, lk, contact, subject, nil, at, st)
	if err != nil {
		return err
	}
	last := first
	mails := 1 + g.rnd.IntN(3) // 1-3 mails of substance
	at = at.Add(time.Duration(30+g.rnd.IntN(8*60)) * time.Minute)
	if mails >= 2 {
		// 2. A staff response (R9), sometimes setting the priority (R7)
		// or the kind (R10).
		subj := "Re: " + subject
		switch g.rnd.IntN(10) {
		case 0:
			subj = "[hoog] " + subj
		case 1:
			subj = "[vraag] " + subj
		case 2:
			subj = "[laag] " + subj
		}
		last, err = g.mail(tx, lk, staff, subj, last, at, st)
		if err != nil {
			return err
		}
		at = at.Add(time.Duration(60+g.rnd.IntN(24*60)) * time.Minute)
	}
	if mails >= 3 {
		// 3. The customer answers.
		last, err = g.mail(tx, lk, contact, "Re: "+subject, last, at, st)
		if err != nil {
			return err
		}
		at = at.Add(time.Duration(30+g.rnd.IntN(24*60)) * time.Minute)
	}
	switch f {
	case closed:
		// The staff's closing command, keywords alone (R11c).
		_, err = g.command(tx, lk, staff, "[opgelost] Re: "+subject, last, at, st)
		st.Closed++
	case pending:
		_, err = g.command(tx, lk, staff, "[wacht] Re: "+subject, last, at, st)
		st.Pending++
	default:
		st.Open++
	}
	if err != nil {
		return err
	}
	st.Cases++
	return nil
}

// command is a staff mail of keywords alone.
func (g *generator) command(tx *store.Tx, lk lookup, from cases.Address, subject string, parent *cases.Inbound, at time.Time, st *Stats) (*cases.Inbound, error) {
	return g.deliver(tx, lk, from, subject, "", parent, at, st)
}

// mail is a mail with a body of a few hundred words.
func (g *generator) mail(tx *store.Tx, lk lookup, from cases.Address, subject string, parent *cases.Inbound, at time.Time, st *Stats) (*cases.Inbound, error) {
	return g.deliver(tx, lk, from, subject, g.body(), parent, at, st)
}

// deliver has the engine decide one mail and commits the decision's case
// and message, as the daemon's ingest does.
func (g *generator) deliver(tx *store.Tx, lk lookup, from cases.Address, subject, text string, parent *cases.Inbound, at time.Time, st *Stats) (*cases.Inbound, error) {
	g.seq++
	in := &cases.Inbound{
		MessageID:  fmt.Sprintf("gen.%d.%d@%s", g.opts.Seed, g.seq, domainOf(from.Email)),
		From:       from,
		To:         []cases.Address{{Email: SupportAddress}},
		Subject:    subject,
		Date:       at,
		ReceivedAt: at,
		Text:       text,
	}
	in.DedupeKey = "mid:" + in.MessageID
	if parent != nil {
		in.InReplyTo = []string{parent.MessageID}
		in.References = append(append([]string(nil), parent.References...), parent.MessageID)
	}
	in.Raw = rawMail(in)
	in.Size = len(in.Raw)
	dec, err := g.engine.Decide(in, lk, at)
	if err != nil {
		return nil, err
	}
	if dec.Case == nil || dec.Message == nil {
		return nil, fmt.Errorf("mail %s: decision %s without case or message (%s)", in.MessageID, dec.Outcome, dec.Quarantine)
	}
	if err := tx.PutMessage(dec.Message, in.Raw); err != nil {
		return nil, err
	}
	if err := tx.PutCase(dec.Case); err != nil {
		return nil, err
	}
	st.Messages++
	st.RawBytes += int64(len(in.Raw))
	return in, nil
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// rawMail renders in as RFC 5322 text.
func rawMail(in *cases.Inbound) []byte {
	var b strings.Builder
	b.Grow(len(in.Text) + 512)
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", in.From.Email)
	fmt.Fprintf(&b, "From: %s <%s>\r\n", in.From.Name, in.From.Email)
	fmt.Fprintf(&b, "To: <%s>\r\n", SupportAddress)
	fmt.Fprintf(&b, "Subject: %s\r\n", in.Subject)
	fmt.Fprintf(&b, "Date: %s\r\n", in.Date.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", in.MessageID)
	if len(in.InReplyTo) > 0 {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", in.InReplyTo[0])
		fmt.Fprintf(&b, "References: <%s>\r\n", strings.Join(in.References, "> <"))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(in.Text, "\n", "\r\n"))
	return []byte(b.String())
}

// body is a few sentences to a few hundred words of plausible text.
func (g *generator) body() string {
	var b strings.Builder
	b.WriteString("Goedemiddag,\n\n")
	for range 3 + g.rnd.IntN(10) {
		for range 6 + g.rnd.IntN(12) {
			b.WriteString(words[g.rnd.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString(words[g.rnd.IntN(len(words))])
		b.WriteString(".\n")
	}
	b.WriteString("\nMet vriendelijke groet,\n")
	return b.String()
}

var subjects = []string{
	"Printer op de tweede verdieping doet het niet", "Kan niet inloggen op het portaal",
	"VPN valt steeds weg", "Wachtwoord verlopen", "Factuur klopt niet",
	"Nieuwe medewerker aanmelden", "Outlook synchroniseert niet", "Server traag sinds update",
	"Backup melding mislukt", "Licentie verlengen", "Question about our invoice",
	"Cannot access shared drive", "Request: new laptop", "Error 500 on the website",
	"Mailbox full", "Teams crashes on start", "Certificaat verloopt binnenkort",
	"Telefooncentrale storing", "Koppeling met boekhouding faalt", "Export levert lege regels op",
}

var words = strings.Fields(`de het een en van in op dat is niet met voor zijn er
	aan ook als bij of om maar nog wel dan naar uit kan wordt worden door over
	server printer gebruiker wachtwoord scherm melding fout storing netwerk
	verbinding mailbox agenda rechten map bestand update versie licentie
	werkplek laptop telefoon account portaal inloggen sinds gisteren vanochtend
	sinds vorige week opnieuw geprobeerd opgestart helaas zonder resultaat
	graag spoedig mogelijk collega afdeling locatie the a an and of to in
	is not with for after since yesterday again restarted error message
	please could you check when we our users cannot open file access`)

// lookup answers the engine from the generating transaction, as the
// daemon's does (daemon/ingest.go).
type lookup struct{ tx *store.Tx }

func (l lookup) CaseByMessageID(id string) (*cases.Case, error) {
	n, ok, err := l.tx.CaseIDForMessageID(id)
	if err != nil || !ok {
		return nil, err
	}
	return l.tx.Case(n)
}
func (l lookup) CaseByID(id uint64) (*cases.Case, error) { return l.tx.Case(id) }
func (l lookup) NextCaseID() (uint64, error)             { return l.tx.NextCaseID() }
func (l lookup) AutoMailsSince(kind cases.MailKind, addr string, since time.Time) (int, error) {
	return l.tx.AutoMailCount(string(kind), addr, since)
}
func (l lookup) UndeliverableUntil(addr string) (time.Time, error) {
	return l.tx.UndeliverableUntil(addr)
}

// ConfigYAML is a deskd configuration for a generated store: the customers
// and staff domain Generate used, the store at storePath, the admin socket
// at socket, and IMAP and SMTP at imapAddr and smtpAddr (host:port, clear
// text on loopback; the password is "pw"). The HTTP listener and the
// scheduled backups are off.
func ConfigYAML(customers []cases.Customer, storePath, socket, imapAddr, smtpAddr string) string {
	var b strings.Builder
	host := func(addr string) (string, string) {
		i := strings.LastIndexByte(addr, ':')
		return addr[:i], addr[i+1:]
	}
	ih, ip := host(imapAddr)
	sh, sp := host(smtpAddr)
	fmt.Fprintf(&b, "imap:\n  host: %s\n  port: %s\n  tls: none\n  username: %s\n  password: pw\n", ih, ip, SupportAddress)
	fmt.Fprintf(&b, "smtp:\n  host: %s\n  port: %s\n  tls: none\n", sh, sp)
	fmt.Fprintf(&b, "support:\n  address: %s\n  token_prefix: %s\n", SupportAddress, TokenPrefix)
	fmt.Fprintf(&b, "staff:\n  domains: [%s]\n", StaffDomain)
	fmt.Fprintf(&b, "store:\n  path: %s\nadmin:\n  socket: %s\nhttp:\n  listen: \"\"\n", storePath, socket)
	// No scheduled backups: a benchmark measures what it names, not a
	// backup that the default schedule would start at the first start
	// (its walk of a 1M-case store takes minutes), and nothing is
	// written to the default /var/lib/deskd/backups.
	b.WriteString("backup:\n  dir: \"\"\n")
	b.WriteString("customers:\n")
	for _, c := range customers {
		fmt.Fprintf(&b, "  - name: %s\n    plan: %s\n    language: %s\n    domains: [%s]\n    contacts:\n", c.Name, c.Plan, c.Language, strings.Join(c.Domains, ", "))
		for _, ct := range c.Contacts {
			fmt.Fprintf(&b, "      - name: %s\n        email: %s\n", ct.Name, ct.Email)
		}
	}
	return b.String()
}
