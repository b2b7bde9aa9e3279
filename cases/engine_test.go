package cases

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeLookup is a map-backed Lookup. In these pure tests it plays the store's
// role: it hands out copies (as a real transaction would decode fresh values),
// and commit stores a Decision the way the daemon's single transaction does.
type fakeLookup struct {
	cases   map[uint64]*Case
	byMsgID map[string]uint64
	next    uint64
	// auto holds the times automatic mails were queued to an address.
	auto    map[string][]time.Time
	undeliv map[string]time.Time
	// err, when set, is returned by every method named in errOn.
	err   error
	errOn map[string]bool
}

func newFake(next uint64) *fakeLookup {
	return &fakeLookup{
		cases:   map[uint64]*Case{},
		byMsgID: map[string]uint64{},
		next:    next,
		auto:    map[string][]time.Time{},
		undeliv: map[string]time.Time{},
		errOn:   map[string]bool{},
	}
}

func (f *fakeLookup) fail(method string) error {
	if f.err != nil && f.errOn[method] {
		return f.err
	}
	return nil
}

func cloneCase(c *Case) *Case {
	if c == nil {
		return nil
	}
	cp := *c
	cp.Parties = slices.Clone(c.Parties)
	cp.MessageKeys = slices.Clone(c.MessageKeys)
	cp.Events = slices.Clone(c.Events)
	return &cp
}

func (f *fakeLookup) CaseByMessageID(id string) (*Case, error) {
	if err := f.fail("CaseByMessageID"); err != nil {
		return nil, err
	}
	n, ok := f.byMsgID[id]
	if !ok {
		return nil, nil
	}
	return cloneCase(f.cases[n]), nil
}

func (f *fakeLookup) CaseByID(id uint64) (*Case, error) {
	if err := f.fail("CaseByID"); err != nil {
		return nil, err
	}
	return cloneCase(f.cases[id]), nil
}

func (f *fakeLookup) NextCaseID() (uint64, error) {
	if err := f.fail("NextCaseID"); err != nil {
		return 0, err
	}
	return f.next, nil
}

func (f *fakeLookup) AutoMailsSince(kind MailKind, addr string, since time.Time) (int, error) {
	if err := f.fail("AutoMailsSince"); err != nil {
		return 0, err
	}
	n := 0
	for _, t := range f.auto[string(kind)+" "+addr] {
		if !t.Before(since) {
			n++
		}
	}
	return n, nil
}

func (f *fakeLookup) UndeliverableUntil(addr string) (time.Time, error) {
	if err := f.fail("UndeliverableUntil"); err != nil {
		return time.Time{}, err
	}
	return f.undeliv[addr], nil
}

// add stores c and indexes the given Message-IDs (stored or sent) to it.
func (f *fakeLookup) add(c *Case, msgIDs ...string) {
	f.cases[c.ID] = c
	for _, id := range msgIDs {
		f.byMsgID[id] = c.ID
	}
}

// commit stores what d says, as the daemon's one transaction would.
func (f *fakeLookup) commit(d *Decision, now time.Time, undeliverableFor time.Duration) {
	f.cases[d.Case.ID] = cloneCase(d.Case)
	if d.NewCase && d.Case.ID >= f.next {
		f.next = d.Case.ID + 1
	}
	if d.Message != nil && d.Message.MessageID != "" {
		f.byMsgID[d.Message.MessageID] = d.Case.ID
	}
	if d.Ack() != nil {
		k := string(MailAck) + " " + d.Ack().To[0].Email
		f.auto[k] = append(f.auto[k], now)
		f.byMsgID[fmt.Sprintf("deskd.%d.ok@x", d.Case.ID)] = d.Case.ID
	}
	for _, a := range d.Undeliverable {
		f.undeliv[a] = now.Add(undeliverableFor)
	}
}

// fakeVerify stands in for mail.VerifyMessageID (the HMAC lives in package
// mail, which cases must not import): "deskd.<n>.ok@x" is one of deskd's own,
// verified Message-IDs for case n; anything else, including
// "deskd.<n>.forged@x", fails.
func fakeVerify(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, "deskd.")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, ".ok@x")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

const (
	support = "support@desk.example"
	alias   = "helpdesk@desk.example"
)

var (
	testNow = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	day     = 24 * time.Hour
)

func testPolicy() *Policy {
	return &Policy{
		SupportAddress: support,
		OwnAddresses:   []string{alias},
		TokenPrefix:    "Case",
		ReopenWindow:   14 * day,
		StaffAddresses: []string{"freelancer@gmail.example"},
		// The support address lies in the staff domain on purpose: being
		// deskd itself must win over being staff.
		StaffDomains: []string{"desk.example"},
		Customers: []Customer{
			{
				Name: "Acme", Plan: "Premium", Language: "en",
				Domains: []string{"acme.example"},
				Contacts: []Address{
					{Name: "Ann", Email: "ann@acme.example"},
					{Name: "Bob", Email: "bob@acme.example"},
					{Name: "Carol", Email: "carol.private@gmail.example"},
				},
			},
			{
				Name: "Bakker", Plan: "Basic", Language: "nl",
				Domains:  []string{"bakker.example"},
				Contacts: []Address{{Name: "Piet", Email: "piet@bakker.example"}},
			},
		},
		DefaultCustomer:    "Unknown",
		DefaultPlan:        "Basic",
		DefaultLanguage:    "nl",
		AutoPerHour:        5,
		AutoPerDay:         20,
		UndeliverableFor:   72 * time.Hour,
		VerifyOwnMessageID: fakeVerify,
	}
}

// seedStore returns the store every engine test starts from; next case is 7.
//
//	1 open     Acme     parties ann, vendor@thirdparty (a Cc'd outsider)
//	2 closed   Acme     3 days ago (inside the reopen window)
//	3 closed   Acme     20 days ago (past the window)
//	4 pending  Bakker   (R11c)
//	5 open     Unknown  (the default customer), a stranger's case
//	6 open     Acme     a second open case of ann's
func seedStore() *fakeLookup {
	f := newFake(7)
	ev := []Event{{At: testNow.Add(-30 * day), Type: EventReceived}}
	acme := func(id uint64, st Status, parties ...string) *Case {
		return &Case{ID: id, Subject: fmt.Sprintf("acme %d", id), Status: st, Customer: "Acme", Plan: "Premium",
			Language: "en", Parties: parties, Events: slices.Clone(ev), MessageKeys: []string{fmt.Sprintf("mid:c%d-first@acme.example", id)}}
	}
	f.add(acme(1, StatusOpen, "ann@acme.example", "vendor@thirdparty.example"), "c1-first@acme.example", "deskd.1.ok@x")
	c2 := acme(2, StatusClosed, "bob@acme.example")
	c2.ClosedAt = testNow.Add(-3 * day)
	f.add(c2, "c2-first@acme.example", "deskd.2.ok@x")
	c3 := acme(3, StatusClosed, "ann@acme.example")
	c3.ClosedAt = testNow.Add(-20 * day)
	f.add(c3, "c3-first@acme.example", "deskd.3.ok@x")
	f.add(&Case{ID: 4, Subject: "kassa", Status: StatusPending, Customer: "Bakker", Plan: "Basic", Language: "nl",
		Parties: []string{"piet@bakker.example"}, Events: slices.Clone(ev)}, "c4-first@bakker.example", "deskd.4.ok@x")
	f.add(&Case{ID: 5, Subject: "hello", Status: StatusOpen, Customer: "Unknown", Plan: "Basic", Language: "nl",
		Parties: []string{"stranger1@gmail.example"}, Events: slices.Clone(ev)}, "c5-first@gmail.example", "deskd.5.ok@x")
	f.add(acme(6, StatusOpen, "ann@acme.example"), "c6-first@acme.example", "deskd.6.ok@x")
	return f
}

// Inbound builders.

type opt func(*Inbound)

func msg(from, subject string, opts ...opt) *Inbound {
	in := &Inbound{
		DedupeKey:  "mid:new@sender.example",
		MessageID:  "new@sender.example",
		From:       Address{Email: from},
		To:         []Address{{Name: "Support", Email: support}},
		Subject:    subject,
		Date:       testNow.Add(-72 * time.Hour), // forged/odd: never used (R11b)
		ReceivedAt: testNow.Add(-2 * time.Minute),
		Text:       "hello",
		Size:       100,
	}
	for _, o := range opts {
		o(in)
	}
	return in
}

func irt(ids ...string) opt  { return func(in *Inbound) { in.InReplyTo = ids } }
func refs(ids ...string) opt { return func(in *Inbound) { in.References = ids } }
func named(name string) opt  { return func(in *Inbound) { in.From.Name = name } }
func mid(id string) opt {
	return func(in *Inbound) { in.MessageID, in.DedupeKey = id, "mid:"+id }
}
func loop(v string) opt { return func(in *Inbound) { in.LoopHeader = v } }
func to(addrs ...string) opt {
	return func(in *Inbound) {
		in.To = nil
		for _, a := range addrs {
			in.To = append(in.To, Address{Email: a})
		}
	}
}
func cc(addrs ...string) opt {
	return func(in *Inbound) {
		for _, a := range addrs {
			in.Cc = append(in.Cc, Address{Email: a})
		}
	}
}

// auto marks the mail as a machine's (the parser fills Reasons, RFC 3834).
func auto(reasons ...string) opt { return func(in *Inbound) { in.Auto.Reasons = reasons } }

// bounce makes the mail a DSN about bouncedID failing for rcpts.
func bounce(bouncedID string, rcpts ...string) opt {
	return func(in *Inbound) {
		in.Auto.Reasons = []string{"multipart/report", "null-return-path"}
		in.Auto.Bounce = true
		in.Auto.BouncedMessageID = bouncedID
		in.Auto.BouncedRecipients = rcpts
		in.HasReturnPath, in.ReturnPath = true, ""
	}
}

func autoAt(f *fakeLookup, addr string, ago ...time.Duration) {
	for _, a := range ago {
		k := string(MailAck) + " " + addr
		f.auto[k] = append(f.auto[k], testNow.Add(-a))
	}
}

type engineCase struct {
	name  string
	in    *Inbound
	setup func(f *fakeLookup, p *Policy)
	now   time.Time // testNow when zero

	outcome Outcome
	caseID  uint64
	role    Role
	status  Status
	// thread is a prefix of Decision.Thread.
	thread string
	// events are the types of the events this decision added to the case.
	events []string
	ack    bool
	// noAck is a substring of Decision.NoAck ("" means NoAck must be empty).
	noAck         string
	quoted        uint64
	linked        uint64
	machine       bool
	unauthorised  bool
	undeliverable []string
	check         func(t *testing.T, d *Decision, f *fakeLookup)
}

var engineCases = []engineCase{
	// ---- Threading (3): a new case, numbered from the store's sequence.
	{
		name: "new case from named contact", in: msg("ann@acme.example", "Printer on fire", named("Ann")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, f *fakeLookup) {
			c := d.Case
			if c.Customer != "Acme" || c.Plan != "Premium" || c.Language != "en" {
				t.Errorf("customer/plan/lang = %s/%s/%s", c.Customer, c.Plan, c.Language)
			}
			if c.Subject != "Printer on fire" || c.Requester.Email != "ann@acme.example" {
				t.Errorf("subject %q requester %v", c.Subject, c.Requester)
			}
			if c.Unauthorised || c.Machine || c.LinkedTo != 0 || c.QuotedToken != 0 {
				t.Errorf("unexpected flags: %+v", c)
			}
			if !d.Sender.Authorised {
				t.Error("named contact not Authorised (R1)")
			}
			// R11b: the clock starts at INTERNALDATE, never at Date:.
			if !c.ReceivedAt.Equal(testNow.Add(-2*time.Minute)) || !d.Message.Date.Equal(c.ReceivedAt) {
				t.Errorf("ReceivedAt %v, message date %v", c.ReceivedAt, d.Message.Date)
			}
			if !c.CreatedAt.Equal(testNow) {
				t.Errorf("CreatedAt %v", c.CreatedAt)
			}
			if len(c.MessageKeys) != 1 || c.MessageKeys[0] != "mid:new@sender.example" {
				t.Errorf("MessageKeys %v", c.MessageKeys)
			}
			if m := d.Message; m.CaseID != 7 || m.Direction != DirectionIn || m.Role != RoleCustomer || m.Key != "mid:new@sender.example" {
				t.Errorf("message %+v", m)
			}
		},
	},
	{
		name:    "R11b zero INTERNALDATE falls back to decision time",
		in:      msg("ann@acme.example", "x", func(in *Inbound) { in.ReceivedAt = time.Time{} }),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if !d.Case.ReceivedAt.Equal(testNow) || !d.Message.Date.Equal(testNow) {
				t.Errorf("ReceivedAt %v, message date %v; want now", d.Case.ReceivedAt, d.Message.Date)
			}
		},
	},

	// ---- Threading (1): In-Reply-To / References.
	{
		name: "reply by In-Reply-To to a stored customer mail", in: msg("ann@acme.example", "Re: Printer", irt("c1-first@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name: "reply by In-Reply-To to deskd's own (verified) Message-ID", in: msg("ann@acme.example", "Re: whatever", irt("deskd.6.ok@x")),
		outcome: OutcomeReply, caseID: 6, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "References: nearest ancestor (last entry, RFC 5322 §3.6.4) wins",
		in:      msg("ann@acme.example", "Re: x", refs("c1-first@acme.example", "c6-first@acme.example")),
		outcome: OutcomeReply, caseID: 6, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "References: unknown ids are skipped",
		in:      msg("ann@acme.example", "Re: x", refs("c1-first@acme.example", "lost@elsewhere.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "In-Reply-To is tried before References",
		in:      msg("ann@acme.example", "Re: x", irt("c1-first@acme.example"), refs("c6-first@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "header match beats the subject token",
		in:      msg("ann@acme.example", "Re: [Case #6] x", irt("c1-first@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "Cc'd colleague (an outsider, party of the case) replies all",
		in:      msg("vendor@thirdparty.example", "Re: Printer", irt("deskd.1.ok@x"), cc("ann@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleStranger, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
	},
	{
		name:    "stranger copying a stored Message-ID gets a new case",
		in:      msg("eve@evil.example", "Re: Printer", irt("c1-first@acme.example")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "stranger referenced case 1",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, f *fakeLookup) {
			if d.Case.Customer != "Unknown" {
				t.Errorf("customer %q, want the default", d.Case.Customer)
			}
			if slices.Contains(f.cases[1].Parties, "eve@evil.example") {
				t.Error("stranger became a party of case 1")
			}
		},
	},
	{
		name:    "stranger copying deskd's own verified Message-ID gets a new case",
		in:      msg("eve@evil.example", "Re: Printer", irt("deskd.1.ok@x")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "stranger referenced case 1",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name:    "forged own Message-ID (HMAC fails) reaches nothing",
		in:      msg("ann@acme.example", "Re: x", irt("deskd.6.forged@x")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name:    "stranger refused by header, then a colleague case by token is not reachable either",
		in:      msg("eve@evil.example", "Re: [Case #6] x", irt("c1-first@acme.example")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "stranger quoted token 6",
		events: []string{EventReceived, EventAckQueued}, ack: true, quoted: 6,
	},

	// ---- Threading (2): the subject token and its sender rule.
	{
		name: "token from a party", in: msg("ann@acme.example", "RE: [Case #1] Printer"),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "token",
		events: []string{EventCustomerReply},
	},
	{
		name: "token from a named colleague of the same customer (not a party)", in: msg("bob@acme.example", "[case#1] me too"),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "token",
		events: []string{EventCustomerReply},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if !slices.Contains(d.Case.Parties, "bob@acme.example") {
				t.Errorf("bob not added to parties: %v", d.Case.Parties)
			}
		},
	},
	{
		name: "token from an unnamed person at the customer's domain (R1 contact): the case is marked", in: msg("dave@acme.example", "Re: [ CASE # 1 ] x"),
		outcome: OutcomeReply, caseID: 1, role: RoleContact, status: StatusOpen, thread: "token",
		events: []string{EventCustomerReply, EventUnauthorised}, unauthorised: true,
	},
	{
		name: "token from staff by domain", in: msg("jan@desk.example", "Re: [Case #1] Printer"),
		outcome: OutcomeReply, caseID: 1, role: RoleStaff, status: StatusOpen, thread: "token",
		events: []string{EventStaffResponse, EventRelayed},
	},
	{
		name: "token from staff by address", in: msg("Freelancer@Gmail.Example", "[Case #4] antwoord"),
		outcome: OutcomeReply, caseID: 4, role: RoleStaff, status: StatusPending, thread: "token",
		events: []string{EventStaffResponse, EventRelayed},
	},
	{
		name:    "token from a stranger: new case recording the quoted token",
		in:      msg("eve@evil.example", "Re: [Case #1] Printer"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "stranger quoted token 1",
		events: []string{EventReceived, EventAckQueued}, ack: true, quoted: 1,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Ack().Subject != "[Case #7] Re: Printer" {
				t.Errorf("ack subject %q: the quoted token must be replaced", d.Ack().Subject)
			}
			if d.Case.Subject != "Printer" {
				t.Errorf("case subject %q", d.Case.Subject)
			}
		},
	},
	{
		name:    "token from another customer's named contact: new case",
		in:      msg("piet@bakker.example", "[Case #1] kapot"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "stranger quoted token 1",
		events: []string{EventReceived, EventAckQueued}, ack: true, quoted: 1,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Case.Customer != "Bakker" || d.Ack().Language != "nl" {
				t.Errorf("customer %q language %q", d.Case.Customer, d.Ack().Language)
			}
		},
	},
	{
		name:    "default customer makes no colleagues: stranger quoting another stranger's case",
		in:      msg("stranger2@gmail.example", "[Case #5] hello"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "stranger quoted token 5",
		events: []string{EventReceived, EventAckQueued}, ack: true, quoted: 5,
	},
	{
		name:    "stranger who is a party of a default-customer case may use its token",
		in:      msg("stranger1@gmail.example", "Re: [Case #5] hello"),
		outcome: OutcomeReply, caseID: 5, role: RoleStranger, status: StatusOpen, thread: "token",
		events: []string{EventCustomerReply},
	},
	{
		// Current behaviour, recorded so a change is deliberate.
		name:    "token naming a case that does not exist: new case, token recorded",
		in:      msg("ann@acme.example", "[Case #999] x"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "stranger quoted token 999",
		events: []string{EventReceived, EventAckQueued}, ack: true, quoted: 999,
	},
	{
		name:    "[Case #0] is no token",
		in:      msg("ann@acme.example", "[Case #0] x"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},

	// ---- Reopen window and linked cases.
	{
		name:    "reply to a closed case within reopen_window reopens it",
		in:      msg("bob@acme.example", "Re: [Case #2] x"),
		outcome: OutcomeReopened, caseID: 2, role: RoleCustomer, status: StatusOpen, thread: "token",
		events: []string{EventReopened},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if !d.Case.ClosedAt.IsZero() || d.NewCase {
				t.Errorf("ClosedAt %v NewCase %v", d.Case.ClosedAt, d.NewCase)
			}
		},
	},
	{
		name: "reply exactly at the end of reopen_window still reopens",
		in:   msg("bob@acme.example", "Re: x", irt("deskd.2.ok@x")),
		setup: func(f *fakeLookup, _ *Policy) {
			f.cases[2].ClosedAt = testNow.Add(-14 * day)
		},
		outcome: OutcomeReopened, caseID: 2, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventReopened},
	},
	{
		name:    "reply past reopen_window opens a new linked case with an ack",
		in:      msg("ann@acme.example", "Re: [Case #3] old problem", irt("deskd.3.ok@x")),
		outcome: OutcomeLinkedCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventReceived, EventLinked, EventAckQueued}, ack: true, linked: 3,
		check: func(t *testing.T, d *Decision, f *fakeLookup) {
			if !d.NewCase {
				t.Error("NewCase false")
			}
			if d.Ack().Subject != "[Case #7] Re: old problem" {
				t.Errorf("ack subject %q", d.Ack().Subject)
			}
			if f.cases[3].Status != StatusClosed {
				t.Error("old case changed")
			}
		},
	},
	{
		name:    "staff reply to a closed case does not reopen it",
		in:      msg("jan@desk.example", "Re: [Case #2] x"),
		outcome: OutcomeReply, caseID: 2, role: RoleStaff, status: StatusClosed, thread: "token",
		events: []string{EventStaffResponse, EventRelayed},
	},
	{
		name:    "R11c customer reply to a pending case resumes it (open)",
		in:      msg("piet@bakker.example", "Re: [Case #4] kassa"),
		outcome: OutcomeReply, caseID: 4, role: RoleCustomer, status: StatusOpen, thread: "token",
		events: []string{EventCustomerReply},
	},
	{
		name:    "R11c staff mail on a pending case keeps it pending",
		in:      msg("jan@desk.example", "Re: x", irt("c4-first@bakker.example")),
		outcome: OutcomeReply, caseID: 4, role: RoleStaff, status: StatusPending, thread: "references",
		events: []string{EventStaffResponse, EventRelayed},
	},

	// ---- Machines (RFC 3834).
	{
		name:    "RFC 3834 out-of-office on an open case is recorded, nothing else",
		in:      msg("ann@acme.example", "Automatic reply: [Case #1] Printer", irt("deskd.1.ok@x"), auto("auto-submitted=auto-replied")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleMachine, status: StatusOpen, thread: "references",
		events: []string{EventAutoMail},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			ev := d.Case.Events[len(d.Case.Events)-1]
			if ev.Detail != "auto-submitted=auto-replied" || ev.By != "ann@acme.example" {
				t.Errorf("auto_mail event %+v", ev)
			}
			if d.Message.Role != RoleMachine || len(d.Message.AutoReasons) != 1 {
				t.Errorf("message %+v", d.Message)
			}
		},
	},
	{
		name:    "RFC 3834 auto-reply never reopens a closed case (inside the window)",
		in:      msg("bob@acme.example", "Out of office", irt("deskd.2.ok@x"), auto("auto-submitted=auto-replied")),
		outcome: OutcomeAutoRecord, caseID: 2, role: RoleMachine, status: StatusClosed, thread: "references",
		events: []string{EventAutoMail},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if !d.Case.ClosedAt.Equal(testNow.Add(-3 * day)) {
				t.Errorf("ClosedAt changed: %v", d.Case.ClosedAt)
			}
		},
	},
	{
		name:    "RFC 3834 auto-reply past the window opens no linked case",
		in:      msg("ann@acme.example", "Out of office", irt("deskd.3.ok@x"), auto("x-autoreply")),
		outcome: OutcomeAutoRecord, caseID: 3, role: RoleMachine, status: StatusClosed, thread: "references",
		events: []string{EventAutoMail},
	},
	{
		name:    "R11c auto-reply does not resume a pending case",
		in:      msg("piet@bakker.example", "Afwezig", irt("deskd.4.ok@x"), auto("auto-submitted=auto-replied")),
		outcome: OutcomeAutoRecord, caseID: 4, role: RoleMachine, status: StatusPending, thread: "references",
		events: []string{EventAutoMail},
	},
	{
		name:    "machine signals win over a named contact's address",
		in:      msg("ann@acme.example", "[Case #1] digest", auto("precedence=bulk")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleMachine, status: StatusOpen, thread: "token",
		events: []string{EventAutoMail},
	},
	{
		name:    "machine mail that refers to nothing: a Machine case, no ack",
		in:      msg("news@list.example", "Newsletter", auto("list-id"), cc("someone@else.example")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleMachine, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "machine", machine: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if len(d.Case.Parties) != 0 {
				t.Errorf("machine case has parties %v", d.Case.Parties)
			}
		},
	},
	{
		name:    "machine mail from a non-party quoting a stored customer Message-ID: own Machine case",
		in:      msg("robot@crm.example", "Ticket received", irt("c1-first@acme.example"), auto("auto-submitted=auto-generated")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleMachine, thread: "stranger referenced case 1",
		status: StatusOpen, events: []string{EventReceived}, noAck: "machine", machine: true,
	},
	{
		name:    "machine mail from a non-party quoting a token: own Machine case",
		in:      msg("robot@crm.example", "[Case #1] ticket received", auto("auto-submitted=auto-generated")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleMachine, thread: "stranger quoted token 1",
		status: StatusOpen, events: []string{EventReceived}, noAck: "machine", machine: true,
	},

	// ---- deskd itself.
	{
		name:    "deskd's loop header: RoleDeskd, no ack",
		in:      msg("ann@acme.example", "hello", loop("desk.example")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleDeskd, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "loop", machine: true,
	},
	{
		name:    "mail from the support address itself: RoleDeskd (not staff), no ack",
		in:      msg("Support@Desk.Example", "hello"),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleDeskd, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "loop", machine: true,
	},
	{
		name:    "mail from an own alias: RoleDeskd",
		in:      msg(alias, "hello"),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleDeskd, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "loop", machine: true,
	},
	{
		name:    "mail carrying deskd's own verified Message-ID: RoleDeskd",
		in:      msg("ann@acme.example", "hello", mid("deskd.9.ok@x")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleDeskd, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "loop", machine: true,
	},
	{
		name:    "a forged own-looking Message-ID does not make deskd",
		in:      msg("ann@acme.example", "hello", mid("deskd.9.forged@x")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name:    "deskd mail answering its own verified id is recorded on that case",
		in:      msg(support, "Re: x", irt("deskd.1.ok@x"), loop("desk.example")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleDeskd, status: StatusOpen, thread: "references",
		events: []string{EventAutoMail},
	},

	// ---- Bounces of deskd's own mail.
	{
		name: "bounce of a verified own id marks failed recipients that are parties",
		in: msg("MAILER-DAEMON@mx.acme.example", "Undelivered Mail Returned to Sender",
			bounce("deskd.1.ok@x", "ann@acme.example", "nobody@else.example", "vendor@thirdparty.example")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleMachine, status: StatusOpen, thread: "references",
		events: []string{EventAutoMail}, undeliverable: []string{"ann@acme.example", "vendor@thirdparty.example"},
	},
	{
		name:    "bounce on a closed case: recorded, case stays closed, address marked",
		in:      msg("mailer-daemon@mx.example", "failure notice", bounce("deskd.2.ok@x", "bob@acme.example")),
		outcome: OutcomeAutoRecord, caseID: 2, role: RoleMachine, status: StatusClosed, thread: "references",
		events: []string{EventAutoMail}, undeliverable: []string{"bob@acme.example"},
	},
	{
		name:    "forged bounce (own-looking id fails the HMAC): nothing marked",
		in:      msg("MAILER-DAEMON@evil.example", "Undelivered", bounce("deskd.1.forged@x", "ann@acme.example")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleMachine, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "machine", machine: true,
	},
	{
		name:    "bounce naming a stored customer id (not ours): refused, nothing marked",
		in:      msg("MAILER-DAEMON@evil.example", "Undelivered", bounce("c1-first@acme.example", "ann@acme.example")),
		outcome: OutcomeMachineCase, caseID: 7, role: RoleMachine, status: StatusOpen, thread: "stranger referenced case 1",
		events: []string{EventReceived}, noAck: "machine", machine: true,
	},
	{
		name:    "bounce from a party via an unverified reference: recorded, nothing marked",
		in:      msg("ann@acme.example", "Undelivered", bounce("c1-first@acme.example", "ann@acme.example")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleMachine, status: StatusOpen, thread: "references",
		events: []string{EventAutoMail},
	},

	// ---- Automatic mail limits.
	{
		name:    "rate limit: AutoPerHour reached, no ack",
		in:      msg("ann@acme.example", "again"),
		setup:   func(f *fakeLookup, _ *Policy) { autoAt(f, "ann@acme.example", 1, 10, 20, 30, 59*time.Minute) },
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "last hour",
	},
	{
		name:    "rate limit: one below AutoPerHour, ack",
		in:      msg("ann@acme.example", "again"),
		setup:   func(f *fakeLookup, _ *Policy) { autoAt(f, "ann@acme.example", 1, 10, 20, 61*time.Minute, 2*time.Hour) },
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name: "rate limit: AutoPerDay reached, no ack",
		in:   msg("ann@acme.example", "again"),
		setup: func(f *fakeLookup, _ *Policy) {
			for i := range 20 {
				autoAt(f, "ann@acme.example", 2*time.Hour+time.Duration(i)*time.Hour)
			}
		},
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "last day",
	},
	{
		name: "rate limit: one below AutoPerDay, older ones forgotten, ack",
		in:   msg("ann@acme.example", "again"),
		setup: func(f *fakeLookup, _ *Policy) {
			for i := range 19 {
				autoAt(f, "ann@acme.example", 2*time.Hour+time.Duration(i)*time.Hour)
			}
			autoAt(f, "ann@acme.example", 25*time.Hour, 48*time.Hour)
		},
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name:    "rate limit applies to a linked case's ack too",
		in:      msg("ann@acme.example", "Re: old", irt("deskd.3.ok@x")),
		setup:   func(f *fakeLookup, _ *Policy) { autoAt(f, "ann@acme.example", 1, 2, 3, 4, 5) },
		outcome: OutcomeLinkedCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventReceived, EventLinked}, noAck: "last hour", linked: 3,
	},
	{
		name: "zero limits mean unlimited",
		in:   msg("ann@acme.example", "again"),
		setup: func(f *fakeLookup, p *Policy) {
			p.AutoPerHour, p.AutoPerDay = 0, 0
			autoAt(f, "ann@acme.example", 1, 2, 3, 4, 5, 6)
		},
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},
	{
		name:    "undeliverable address (bounce quarantine in the future): no ack",
		in:      msg("ann@acme.example", "again"),
		setup:   func(f *fakeLookup, _ *Policy) { f.undeliv["ann@acme.example"] = testNow.Add(time.Hour) },
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "bounced until",
	},
	{
		name:    "undeliverable quarantine over: ack again",
		in:      msg("ann@acme.example", "again"),
		setup:   func(f *fakeLookup, _ *Policy) { f.undeliv["ann@acme.example"] = testNow.Add(-time.Second) },
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
	},

	// ---- Who wrote it.
	{
		name:    "staff new mail (R6): new case, no ack",
		in:      msg("jan@desk.example", "Call from Acme: server down"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStaff, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "staff",
	},
	{
		name:    "R1 unauthorised contact: case marked, still acknowledged, named contacts told",
		in:      msg("dave@acme.example", "Help"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleContact, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued, EventUnauthorised}, ack: true, unauthorised: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Case.Customer != "Acme" || d.Sender.Authorised {
				t.Errorf("customer %q authorised %v", d.Case.Customer, d.Sender.Authorised)
			}
		},
	},
	{
		name:    "R1 named contact writing from a private address is the customer",
		in:      msg("Carol.Private@gmail.example", "Help"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Case.Customer != "Acme" || !d.Sender.Authorised {
				t.Errorf("customer %q authorised %v", d.Case.Customer, d.Sender.Authorised)
			}
		},
	},
	{
		name:    "unknown sender: default customer, plan and language",
		in:      msg("someone@gmail.example", "Vraag"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			c := d.Case
			if c.Customer != "Unknown" || c.Plan != "Basic" || c.Language != "nl" || d.Ack().Language != "nl" {
				t.Errorf("customer %q plan %q lang %q ack %+v", c.Customer, c.Plan, c.Language, d.Ack())
			}
		},
	},
	{
		name:    "sender without an address: no ack",
		in:      msg("", "hm"),
		outcome: OutcomeNewCase, caseID: 7, role: RoleStranger, status: StatusOpen, thread: "new",
		events: []string{EventReceived}, noAck: "no usable sender",
	},
	{
		name:    "staff reply by header: staff_response",
		in:      msg("jan@desk.example", "Re: Printer", irt("c1-first@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleStaff, status: StatusOpen, thread: "references",
		events: []string{EventStaffResponse, EventRelayed},
	},

	// ---- Acknowledgement contents.
	{
		name: "ack subject, threading headers, language (Dutch customer)",
		in: msg("piet@bakker.example", "Antw: [HOOG] Kassa [Case #77] doet het niet", named("Piet"),
			refs("root@bakker.example", "parent@bakker.example"), irt("parent@bakker.example"), mid("kassa@bakker.example")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "stranger quoted token 77",
		events: []string{EventReceived, EventAckQueued, EventPriorityProposed}, ack: true, quoted: 77,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			a := d.Ack()
			// A customer's keyword is a proposal (R7), kept out of the
			// subjects deskd writes.
			if a.Subject != "[Case #7] Antw: Kassa doet het niet" {
				t.Errorf("ack subject %q", a.Subject)
			}
			if a.InReplyTo != "kassa@bakker.example" {
				t.Errorf("In-Reply-To %q", a.InReplyTo)
			}
			if want := []string{"root@bakker.example", "parent@bakker.example", "kassa@bakker.example"}; !slices.Equal(a.References, want) {
				t.Errorf("References %v, want %v", a.References, want)
			}
			if len(a.To) != 1 || a.To[0] != (Address{Name: "Piet", Email: "piet@bakker.example"}) || a.Language != "nl" || d.Case.Plan != "Basic" || d.Case.Customer != "Bakker" || !a.RateLimited || a.Automatic != "auto-replied" {
				t.Errorf("ack %+v", a)
			}
			if d.Case.Subject != "Kassa doet het niet" || d.Case.ProposedPriority != PriorityHigh {
				t.Errorf("case subject %q proposed %q", d.Case.Subject, d.Case.ProposedPriority)
			}
			last := d.Case.Events[len(d.Case.Events)-2]
			if last.By != support || last.Detail != "piet@bakker.example" {
				t.Errorf("ack_queued event %+v", last)
			}
		},
	},
	{
		name:    "ack to a mixed-case sender goes to the lower-cased address; empty subject",
		in:      msg("Ann@ACME.example", "   "),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Ack().To[0].Email != "ann@acme.example" || d.Ack().Language != "en" {
				t.Errorf("ack %+v", d.Ack())
			}
			if d.Case.Subject != "(no subject)" || d.Ack().Subject != "[Case #7] (no subject)" {
				t.Errorf("case subject %q ack subject %q", d.Case.Subject, d.Ack().Subject)
			}
		},
	},
	{
		name:    "ack without a Message-ID: no In-Reply-To, References kept",
		in:      msg("ann@acme.example", "x", mid(""), refs("a@x.example")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if d.Ack().InReplyTo != "" || !slices.Equal(d.Ack().References, []string{"a@x.example"}) {
				t.Errorf("ack %+v", d.Ack())
			}
		},
	},

	// ---- Parties.
	{
		name: "parties: From/To/Cc lower-cased, deskd's own addresses left out",
		in: msg("Ann@Acme.Example", "Printer", to(support, "Helpdesk@Desk.Example", "Colleague@Acme.Example"),
			cc("vendor@thirdparty.example", "SUPPORT@desk.example", "colleague@acme.example", "")),
		outcome: OutcomeNewCase, caseID: 7, role: RoleCustomer, status: StatusOpen, thread: "new",
		events: []string{EventReceived, EventAckQueued}, ack: true,
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			want := []string{"ann@acme.example", "colleague@acme.example", "vendor@thirdparty.example"}
			if !slices.Equal(d.Case.Parties, want) {
				t.Errorf("parties %v, want %v", d.Case.Parties, want)
			}
		},
	},
	{
		name:    "parties: a machine's From/Cc never become parties",
		in:      msg("robot@acme.example", "OOO", irt("deskd.1.ok@x"), auto("x-autorespond"), cc("eve@evil.example")),
		outcome: OutcomeAutoRecord, caseID: 1, role: RoleMachine, status: StatusOpen, thread: "references",
		events: []string{EventAutoMail},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if want := []string{"ann@acme.example", "vendor@thirdparty.example"}; !slices.Equal(d.Case.Parties, want) {
				t.Errorf("parties %v, want %v", d.Case.Parties, want)
			}
		},
	},
	{
		name:    "parties: a reply adds its Cc'd newcomers",
		in:      msg("ann@acme.example", "Re: x", irt("c1-first@acme.example"), cc("boss@acme.example", "ann@acme.example")),
		outcome: OutcomeReply, caseID: 1, role: RoleCustomer, status: StatusOpen, thread: "references",
		events: []string{EventCustomerReply},
		check: func(t *testing.T, d *Decision, _ *fakeLookup) {
			if want := []string{"ann@acme.example", "vendor@thirdparty.example", "boss@acme.example"}; !slices.Equal(d.Case.Parties, want) {
				t.Errorf("parties %v, want %v", d.Case.Parties, want)
			}
		},
	},
}

func TestDecide(t *testing.T) {
	for _, tc := range engineCases {
		t.Run(tc.name, func(t *testing.T) {
			f := seedStore()
			p := testPolicy()
			if tc.setup != nil {
				tc.setup(f, p)
			}
			now := tc.now
			if now.IsZero() {
				now = testNow
			}
			var before int
			if c := f.cases[tc.caseID]; c != nil {
				before = len(c.Events)
			}
			d, err := NewEngine(p).Decide(tc.in, f, now)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			checkDecision(t, tc, d, before)
			if tc.check != nil {
				tc.check(t, d, f)
			}
		})
	}
}

func checkDecision(t *testing.T, tc engineCase, d *Decision, before int) {
	t.Helper()
	if d.Outcome != tc.outcome {
		t.Errorf("Outcome = %q, want %q (thread %q)", d.Outcome, tc.outcome, d.Thread)
	}
	if d.Case == nil {
		t.Fatal("Case is nil")
	}
	if d.Case.ID != tc.caseID {
		t.Errorf("case = %d, want %d (thread %q)", d.Case.ID, tc.caseID, d.Thread)
	}
	wantNew := tc.outcome == OutcomeNewCase || tc.outcome == OutcomeLinkedCase || tc.outcome == OutcomeMachineCase
	if d.NewCase != wantNew {
		t.Errorf("NewCase = %v, want %v", d.NewCase, wantNew)
	}
	if d.Sender.Role != tc.role {
		t.Errorf("role = %q, want %q", d.Sender.Role, tc.role)
	}
	if d.Case.Status != tc.status {
		t.Errorf("status = %q, want %q", d.Case.Status, tc.status)
	}
	if !strings.HasPrefix(d.Thread, tc.thread) {
		t.Errorf("thread = %q, want prefix %q", d.Thread, tc.thread)
	}
	if wantNew {
		before = 0
	}
	var got []string
	for _, ev := range d.Case.Events[min(before, len(d.Case.Events)):] {
		got = append(got, ev.Type)
	}
	if !slices.Equal(got, tc.events) {
		t.Errorf("new events = %v, want %v", got, tc.events)
	}
	if (d.Ack() != nil) != tc.ack {
		t.Errorf("ack = %+v, want ack %v (NoAck %q)", d.Ack(), tc.ack, d.NoAck)
	}
	if tc.noAck == "" && d.NoAck != "" {
		t.Errorf("NoAck = %q, want none", d.NoAck)
	}
	if tc.noAck != "" && !strings.Contains(d.NoAck, tc.noAck) {
		t.Errorf("NoAck = %q, want it to mention %q", d.NoAck, tc.noAck)
	}
	if d.Case.QuotedToken != tc.quoted {
		t.Errorf("QuotedToken = %d, want %d", d.Case.QuotedToken, tc.quoted)
	}
	if d.Case.LinkedTo != tc.linked {
		t.Errorf("LinkedTo = %d, want %d", d.Case.LinkedTo, tc.linked)
	}
	if d.Case.Machine != tc.machine {
		t.Errorf("Machine = %v, want %v", d.Case.Machine, tc.machine)
	}
	if d.Case.Unauthorised != tc.unauthorised {
		t.Errorf("Unauthorised = %v, want %v", d.Case.Unauthorised, tc.unauthorised)
	}
	if !slices.Equal(d.Undeliverable, tc.undeliverable) {
		t.Errorf("Undeliverable = %v, want %v", d.Undeliverable, tc.undeliverable)
	}
	if d.Message == nil || d.Message.Key != tc.in.DedupeKey || d.Message.CaseID != d.Case.ID {
		t.Errorf("message = %+v", d.Message)
	}
	if d.Ack() != nil && !strings.HasPrefix(d.Ack().Subject, fmt.Sprintf("[Case #%d] ", d.Case.ID)) {
		t.Errorf("ack subject %q does not start with the case token", d.Ack().Subject)
	}
	if d.Ack() != nil && (d.Sender.Role == RoleMachine || d.Sender.Role == RoleDeskd || d.Sender.Role == RoleStaff) {
		t.Errorf("RFC 3834: %s got an automatic answer", d.Sender.Role)
	}
	for _, p := range d.Case.Parties {
		if p == support || p == alias || p != strings.ToLower(p) || p == "" {
			t.Errorf("bad party %q in %v", p, d.Case.Parties)
		}
	}
}

// TestDecideSequence runs mails through the engine and the fake store one
// after another, as the daemon does: case numbers are sequential, a thread
// grows, a loop with a robot that slips past every machine signal is cut
// off by the rate limit, and a bounce silences the address.
func TestDecideSequence(t *testing.T) {
	f := newFake(1)
	p := testPolicy()
	e := NewEngine(p)
	now := testNow
	step := func(in *Inbound) *Decision {
		t.Helper()
		d, err := e.Decide(in, f, now)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		f.commit(d, now, p.UndeliverableFor)
		now = now.Add(time.Minute)
		return d
	}
	for i := uint64(1); i <= 3; i++ {
		d := step(msg("ann@acme.example", "issue", mid(fmt.Sprintf("i%d@acme.example", i))))
		if d.Case.ID != i || !d.NewCase {
			t.Fatalf("case %d, new %v; want %d", d.Case.ID, d.NewCase, i)
		}
	}
	// A colleague in Cc of deskd's ack to case 2 replies all.
	d := step(msg("ann@acme.example", "Re: [Case #2] issue", mid("r1@acme.example"), irt("deskd.2.ok@x"), cc("partner@vendor.example")))
	if d.Case.ID != 2 || d.Outcome != OutcomeReply {
		t.Fatalf("reply: case %d outcome %s", d.Case.ID, d.Outcome)
	}
	d = step(msg("partner@vendor.example", "Re: [Case #2] issue", mid("r2@vendor.example"), irt("r1@acme.example")))
	if d.Case.ID != 2 || d.Outcome != OutcomeReply {
		t.Fatalf("Cc'd partner reply-all: case %d outcome %s thread %s", d.Case.ID, d.Outcome, d.Thread)
	}
	if got := len(f.cases[2].MessageKeys); got != 3 {
		t.Errorf("case 2 has %d messages, want 3", got)
	}

	// A robot that looks like a person answers every ack with a new mail:
	// ann has had 3 acks in the last minutes; AutoPerHour is 5.
	acks := 0
	for i := range 10 {
		d := step(msg("ann@acme.example", "I got your mail", mid(fmt.Sprintf("loop%d@acme.example", i))))
		if d.Ack() != nil {
			acks++
		}
	}
	if acks != 2 {
		t.Errorf("loop got %d more acks, want 2 (AutoPerHour 5 minus the 3 already sent)", acks)
	}
	if f.next != 14 {
		t.Errorf("next case %d, want 14", f.next)
	}

	// A verified bounce of the ack to case 1 silences ann for UndeliverableFor.
	now = now.Add(2 * time.Hour)
	d = step(msg("MAILER-DAEMON@mx.example", "Undelivered", mid("dsn1@mx.example"), bounce("deskd.1.ok@x", "ann@acme.example")))
	if !slices.Equal(d.Undeliverable, []string{"ann@acme.example"}) {
		t.Fatalf("Undeliverable %v", d.Undeliverable)
	}
	d = step(msg("ann@acme.example", "new problem", mid("n1@acme.example")))
	if d.Ack() != nil || !strings.Contains(d.NoAck, "bounced") {
		t.Errorf("ack to a bounced address: %+v NoAck %q", d.Ack(), d.NoAck)
	}
	now = now.Add(p.UndeliverableFor)
	d = step(msg("ann@acme.example", "new problem 2", mid("n2@acme.example")))
	if d.Ack() == nil {
		t.Errorf("no ack after the quarantine: %q", d.NoAck)
	}
}

// TestDecideLookupErrors: a store error aborts the decision (so the caller
// commits nothing and the message is fetched again).
func TestDecideLookupErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		method string
		in     *Inbound
	}{
		{"CaseByID", msg("ann@acme.example", "Re: x", irt("deskd.1.ok@x"))},
		{"CaseByID", msg("ann@acme.example", "[Case #1] x")},
		{"CaseByMessageID", msg("ann@acme.example", "Re: x", irt("c1-first@acme.example"))},
		{"NextCaseID", msg("ann@acme.example", "new")},
		{"NextCaseID", msg("robot@x.example", "new", auto("list-id"))},
		{"NextCaseID", msg("ann@acme.example", "Re: x", irt("deskd.3.ok@x"))}, // linked case
	} {
		t.Run(tc.method, func(t *testing.T) {
			f := seedStore()
			f.err, f.errOn[tc.method] = boom, true
			d, err := NewEngine(testPolicy()).Decide(tc.in, f, testNow)
			if !errors.Is(err, boom) || d != nil {
				t.Errorf("Decide = %v, %v; want the lookup error", d, err)
			}
		})
	}
}

// TestDecideNoVerifier: without a verifier no Message-ID is deskd's own, so
// nothing is treated as verified and nothing becomes RoleDeskd by its id.
func TestDecideNoVerifier(t *testing.T) {
	p := testPolicy()
	p.VerifyOwnMessageID = nil
	f := seedStore()
	d, err := NewEngine(p).Decide(msg("MAILER-DAEMON@mx.example", "x", bounce("deskd.1.ok@x", "ann@acme.example")), f, testNow)
	if err != nil {
		t.Fatal(err)
	}
	// The store still knows the id (deskd sent it), but a machine that is no
	// party may not use it unverified.
	if d.Outcome != OutcomeMachineCase || len(d.Undeliverable) != 0 {
		t.Errorf("outcome %s undeliverable %v", d.Outcome, d.Undeliverable)
	}
	d, err = NewEngine(p).Decide(msg("ann@acme.example", "x", mid("deskd.1.ok@x")), f, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Sender.Role != RoleCustomer {
		t.Errorf("role %s", d.Sender.Role)
	}
}

// TestOwnMailLoopingBackIsRecorded: deskd's own acknowledgement
// for case 1 comes back into support@ (a customer's address that forwards
// to support@, an alias loop). Its own Message-ID carries a verified HMAC
// for case 1 and it answers the customer's mail of case 1, so it must be
// recorded on case 1 (RFC 3834: "recorded on the case it refers to"). The
// engine classifies it RoleDeskd but then refuses it by the sender rule
// (support@ is no party and has no customer) and opens a new Machine case
// for every trip round the loop.
func TestOwnMailLoopingBackIsRecorded(t *testing.T) {
	in := msg(support, "[Case #1] Printer", mid("deskd.1.ok@x"), irt("c1-first@acme.example"),
		refs("c1-first@acme.example"), loop("desk.example"), to("ann@acme.example"))
	d, err := NewEngine(testPolicy()).Decide(in, seedStore(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeAutoRecord || d.Case.ID != 1 {
		t.Errorf("got %s on case %d (thread %q), want %s on case 1", d.Outcome, d.Case.ID, d.Thread, OutcomeAutoRecord)
	}
}

// TestSupportAddressByHeaderIsNotTrusted: mail From the support address
// that replies to case 1's stored mail by a plain header, without deskd's
// signed Message-ID, is not recorded on case 1. From, the loop header and
// References can all be forged; only the HMAC'd Message-ID (the test
// above) proves the mail is deskd's own, so this one gets a Machine case
// of its own and never touches case 1.
func TestSupportAddressByHeaderIsNotTrusted(t *testing.T) {
	in := msg(support, "Re: Printer", irt("c1-first@acme.example"), to("ann@acme.example"))
	d, err := NewEngine(testPolicy()).Decide(in, seedStore(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeMachineCase || d.Case.ID == 1 || d.Ack() != nil {
		t.Errorf("got %s on case %d (thread %q), want a machine case of its own", d.Outcome, d.Case.ID, d.Thread)
	}
}

// TestReopenWindowMeasuredToReceipt: the reopen window is measured
// from the closing to the decision time (now), not to the reply's receipt
// (INTERNALDATE, R11b). A reply received 13 days after closing but decided
// 2 days later (daemon down, backlog, UIDVALIDITY rescan) opens a linked
// case instead of reopening.
func TestReopenWindowMeasuredToReceipt(t *testing.T) {
	f := seedStore()
	f.cases[2].ClosedAt = testNow.Add(-15 * day)
	in := msg("bob@acme.example", "Re: [Case #2] x")
	in.ReceivedAt = testNow.Add(-2 * day) // 13 days after closing
	d, err := NewEngine(testPolicy()).Decide(in, f, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeReopened || d.Case.ID != 2 {
		t.Errorf("got %s case %d, want reopened case 2", d.Outcome, d.Case.ID)
	}
}

// TestAckLimitsFailClosed: when AutoMailsSince or UndeliverableUntil
// fails, ack() ignores the error and queues the acknowledgement, while
// every other Lookup error aborts the decision. A limit "a loop cannot get
// past" should fail closed (or abort, like the rest).
func TestAckLimitsFailClosed(t *testing.T) {
	for _, method := range []string{"AutoMailsSince", "UndeliverableUntil"} {
		f := seedStore()
		f.err, f.errOn[method] = errors.New("boom"), true
		d, err := NewEngine(testPolicy()).Decide(msg("ann@acme.example", "x"), f, testNow)
		if err == nil && d.Ack() != nil {
			t.Errorf("%s failed, yet an ack was queued", method)
		}
	}
}

// TestAckBudgetIsItsOwn: each kind of automatic mail has its own budget
// (RFC 3834 §2). A named contact who got many R1 notices in the last hour
// still gets the acknowledgement of their own question; one who reached
// the acknowledgements' own budget does not.
func TestAckBudgetIsItsOwn(t *testing.T) {
	p := testPolicy()
	f := seedStore()
	k := string(MailUnauthorised) + " ann@acme.example"
	for range p.AutoPerHour * 3 {
		f.auto[k] = append(f.auto[k], testNow.Add(-time.Minute))
	}
	if d, err := NewEngine(p).Decide(msg("ann@acme.example", "my own question"), f, testNow); err != nil || d.Ack() == nil {
		t.Fatalf("notices withheld ann's own ack: %v, NoAck %q", err, d.NoAck)
	}
	autoAt(f, "ann@acme.example", make([]time.Duration, p.AutoPerHour)...)
	d, err := NewEngine(p).Decide(msg("ann@acme.example", "another", mid("another@acme.example")), f, testNow)
	if err != nil || d.Ack() != nil || !strings.Contains(d.NoAck, "automatic ack mails") {
		t.Errorf("ack over the ack budget: %v, NoAck %q", err, d.NoAck)
	}
}
