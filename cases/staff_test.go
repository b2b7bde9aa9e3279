package cases

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// staffPolicy is testPolicy with the staff lists set.
func staffPolicy() *Policy {
	p := testPolicy()
	p.StaffNotify = []string{"team@desk.example"}
	p.SecondLine = []string{"dev@desk.example"}
	p.StaffLanguage = "nl"
	return p
}

func decide(t *testing.T, p *Policy, f *fakeLookup, in *Inbound) *Decision {
	t.Helper()
	d, err := NewEngine(p).Decide(in, f, testNow)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d
}

// mailsOf returns the decision's mails of one kind.
func mailsOf(d *Decision, k MailKind) []*OutMail {
	var out []*OutMail
	for _, m := range d.Mails {
		if m.Kind == k {
			out = append(out, m)
		}
	}
	return out
}

func emails(as []Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Email
	}
	return out
}

func eventTypes(c *Case, from int) []string {
	var out []string
	for _, e := range c.Events[from:] {
		out = append(out, e.Type)
	}
	return out
}

func text(s string) opt { return func(in *Inbound) { in.Text = s } }

func TestStaffAreNotifiedOfCustomerMail(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	d := decide(t, p, f, msg("ann@acme.example", "Printer kapot", named("Ann"),
		text("Hij doet het niet.\n\nOn Mon, Bob wrote:\n> eerder\n> bericht\n")))
	n := mailsOf(d, MailNotify)
	if len(n) != 1 {
		t.Fatalf("notify mails %d, want 1: %+v", len(n), d.Mails)
	}
	m := n[0]
	if !slices.Equal(emails(m.To), []string{"team@desk.example"}) || m.Event != "new" || m.Language != "nl" {
		t.Errorf("notify %+v", m)
	}
	if strings.Contains(m.Text, "eerder") || !strings.Contains(m.Text, "Hij doet het niet.") {
		t.Errorf("notify text %q: want the new text without the quoted history", m.Text)
	}
	// Staff must never be rate-limited into silence; the notice is
	// nevertheless automatic mail (RFC 3834).
	if m.RateLimited || m.Automatic != "auto-generated" {
		t.Errorf("notify RateLimited %v Automatic %q", m.RateLimited, m.Automatic)
	}
	if d.Ack() == nil {
		t.Error("the customer still gets the acknowledgement")
	}
	if !d.Case.hasEvent(EventStaffNotified) {
		t.Error("no staff_notified event")
	}

	// A reply, a reopen: notified with what happened.
	d = decide(t, p, f, msg("ann@acme.example", "Re: [Case #1] x"))
	if n := mailsOf(d, MailNotify); len(n) != 1 || n[0].Event != "reply" {
		t.Errorf("reply notify %+v", n)
	}
	d = decide(t, p, f, msg("bob@acme.example", "Re: [Case #2] x"))
	if n := mailsOf(d, MailNotify); len(n) != 1 || n[0].Event != "reopened" {
		t.Errorf("reopen notify %+v", n)
	}
	// Machines are not news.
	d = decide(t, p, f, msg("ann@acme.example", "Automatic reply: [Case #1]", auto("auto-submitted=auto-replied")))
	if len(d.Mails) != 0 {
		t.Errorf("a machine's mail produced mails: %+v", d.Mails)
	}
}

func TestStaffReplyIsRelayed(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	c1 := f.cases[1]
	c1.Requester = Address{Name: "Ann", Email: "ann@acme.example"}
	c1.Thread = []string{"c1-first@acme.example", "deskd.1.ok@x", "c1-second@acme.example"}
	before := len(c1.Events)
	in := msg("jan@desk.example", "RE: AW: [Case #1] [HOOG] Printer", named("Jan de Vries"), irt("deskd.1.ok@x"),
		text("Wij kijken ernaar.\n\n-- \nJan\n\nOp 9 mrt. 2026 schreef Ann:\n> printer kapot\n"))
	d := decide(t, p, f, in)
	if d.Outcome != OutcomeReply || d.Sender.Role != RoleStaff || d.Case.ID != 1 {
		t.Fatalf("outcome %s role %s case %d", d.Outcome, d.Sender.Role, d.Case.ID)
	}
	// R7: staff set the priority definitively; R9: the reply is a response.
	if d.Case.Priority != PriorityHigh {
		t.Errorf("priority %q", d.Case.Priority)
	}
	got := eventTypes(d.Case, before)
	want := []string{EventStaffResponse, EventPrioritySet, EventRelayed}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	r := mailsOf(d, MailRelay)
	if len(r) != 1 {
		t.Fatalf("relays %+v", d.Mails)
	}
	m := r[0]
	if !slices.Equal(emails(m.To), []string{"ann@acme.example"}) || !slices.Equal(emails(m.Cc), []string{"vendor@thirdparty.example"}) {
		t.Errorf("relay to %v cc %v", emails(m.To), emails(m.Cc))
	}
	if m.Subject != "Re: [Case #1] acme 1" {
		t.Errorf("relay subject %q: want the token and no keyword", m.Subject)
	}
	if m.InReplyTo != "c1-second@acme.example" || !slices.Equal(m.References, c1.Thread) {
		t.Errorf("relay threading: in-reply-to %q references %v", m.InReplyTo, m.References)
	}
	if !strings.Contains(m.Text, "-- \nJan") || strings.Contains(m.Text, "printer kapot") {
		t.Errorf("relay text %q: want the signature kept and the quoted history cut", m.Text)
	}
	if m.Staff.Name != "Jan de Vries" || m.Automatic != "" || m.RateLimited {
		t.Errorf("relay staff %+v automatic %q rate-limited %v", m.Staff, m.Automatic, m.RateLimited)
	}
	conf := mailsOf(d, MailConfirm)
	if len(conf) != 1 || !slices.Equal(emails(conf[0].To), []string{"jan@desk.example"}) || len(conf[0].Changes) != 1 ||
		!strings.Contains(conf[0].Changes[0], "high") {
		t.Errorf("confirmation %+v", conf)
	}
	for _, p := range d.Case.Parties {
		if p == "jan@desk.example" {
			t.Error("staff became a party of the case")
		}
	}
}

func TestStaffReplyDirectToCustomerIsNotCopied(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	// Jan answered Ann and the vendor himself, support@ in Cc.
	d := decide(t, p, f, msg("jan@desk.example", "Re: [Case #1] x", to("ann@acme.example", "vendor@thirdparty.example"), cc(support)))
	if len(mailsOf(d, MailRelay)) != 0 {
		t.Errorf("relayed a second copy: %+v", d.Mails)
	}
	if !d.Case.hasEvent(EventStaffResponse) {
		t.Error("the direct reply is still the staff response (R9)")
	}
	// Only Ann got it directly: the vendor still gets the relay.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "Re: [Case #1] x", to("ann@acme.example"), cc(support)))
	if r := mailsOf(d, MailRelay); len(r) != 1 || !slices.Equal(emails(r[0].To), []string{"vendor@thirdparty.example"}) || len(r[0].Cc) != 0 {
		t.Errorf("relay %+v", r)
	}
}

func TestStaffNoteIsNeverRelayed(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	d := decide(t, p, f, msg("jan@desk.example", "[Case #1] [intern] klant belde", text("Klant is boos.")))
	if len(mailsOf(d, MailRelay)) != 0 || len(mailsOf(d, MailClosing)) != 0 {
		t.Errorf("a note went to the customer: %+v", d.Mails)
	}
	if d.Case.hasEvent(EventStaffResponse) || !d.Case.hasEvent(EventNote) {
		t.Errorf("events %v: a note is no response", eventTypes(d.Case, 0))
	}
	// Closing with a note: closed, and no closing mail.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[Case #1] [note][opgelost]", text("intern afgesloten")))
	if d.Case.Status != StatusClosed || len(mailsOf(d, MailClosing)) != 0 || len(mailsOf(d, MailRelay)) != 0 {
		t.Errorf("status %s mails %+v", d.Case.Status, d.Mails)
	}
}

func TestStaffCloseAndCustomerReopens(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	in := msg("jan@desk.example", "Re: [Case #1] [opgelost]", text("Opgelost: de driver is vervangen."))
	d := decide(t, p, f, in)
	if d.Case.Status != StatusClosed || !d.Case.ClosedAt.Equal(in.ReceivedAt) {
		t.Errorf("status %s closed at %v", d.Case.Status, d.Case.ClosedAt)
	}
	cl := mailsOf(d, MailClosing)
	if len(cl) != 1 || !strings.Contains(cl[0].Text, "driver is vervangen") || len(mailsOf(d, MailRelay)) != 0 {
		t.Fatalf("want one closing mail carrying the staff text: %+v", d.Mails)
	}
	f.commit(d, testNow, time.Hour)

	// Keywords alone: a command, the closing mail without text.
	d2 := decide(t, p, seedStore(), msg("jan@desk.example", "Re: [Case #6] [gesloten]", text("")))
	if cl := mailsOf(d2, MailClosing); len(cl) != 1 || cl[0].Text != "" || cl[0].Automatic != "auto-generated" {
		t.Errorf("closing %+v", cl)
	}
	if d2.Case.hasEvent(EventStaffResponse) || !d2.Case.hasEvent(EventStaffCommand) {
		t.Errorf("events %v", eventTypes(d2.Case, 0))
	}

	// The customer answers within the window: reopened (R11c).
	d = decide(t, p, f, msg("ann@acme.example", "Re: [Case #1] toch niet", mid("after@acme.example")))
	if d.Outcome != OutcomeReopened || d.Case.Status != StatusOpen {
		t.Errorf("outcome %s status %s", d.Outcome, d.Case.Status)
	}
}

func TestStaffStatusAndKindKeywords(t *testing.T) {
	p := staffPolicy()
	d := decide(t, p, seedStore(), msg("jan@desk.example", "[Case #1] [wacht] [vraag]", text("Kunt u een foto sturen?")))
	if d.Case.Status != StatusPending || d.Case.Kind != KindQuestion {
		t.Errorf("status %s kind %s", d.Case.Status, d.Case.Kind)
	}
	// R11c: staff open a pending case again.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[Case #4] [open]", text("")))
	if d.Case.Status != StatusOpen || !d.Case.hasEvent(EventResumed) {
		t.Errorf("status %s events %v", d.Case.Status, eventTypes(d.Case, 0))
	}
	// A closed case reopened by staff.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[Case #3] [reopen]", text("")))
	if d.Case.Status != StatusOpen || !d.Case.hasEvent(EventReopened) {
		t.Errorf("status %s events %v", d.Case.Status, eventTypes(d.Case, 0))
	}
	// R14: a change request.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[Case #1][RFC]", text("")))
	if d.Case.Kind != KindChange {
		t.Errorf("kind %s", d.Case.Kind)
	}
}

func TestStaffSecondLine(t *testing.T) {
	p := staffPolicy()
	d := decide(t, p, seedStore(), msg("jan@desk.example", "Re: [Case #1] [bug] crash in module X", text("Reproduceerbaar.")))
	if !d.Case.SecondLine || !d.Case.hasEvent(EventSecondLine) {
		t.Errorf("second line %v events %v", d.Case.SecondLine, eventTypes(d.Case, 0))
	}
	sl := mailsOf(d, MailSecondLine)
	if len(sl) != 1 || !slices.Equal(emails(sl[0].To), []string{"dev@desk.example"}) {
		t.Errorf("second line mail %+v", sl)
	}
	// No second line configured: the staff member hears it.
	p.SecondLine = nil
	d = decide(t, p, seedStore(), msg("jan@desk.example", "Re: [Case #1] [bug]", text("")))
	if d.Case.SecondLine || len(mailsOf(d, MailError)) != 1 {
		t.Errorf("second line %v mails %+v", d.Case.SecondLine, d.Mails)
	}
}

func TestStaffKeywordErrors(t *testing.T) {
	p := staffPolicy()
	// Two priorities: deskd does not guess.
	d := decide(t, p, seedStore(), msg("jan@desk.example", "[Case #1] [urgent][laag]", text("")))
	if d.Case.Priority != "" {
		t.Errorf("priority %q set despite the conflict", d.Case.Priority)
	}
	if e := mailsOf(d, MailError); len(e) != 1 || len(e[0].Problems) == 0 {
		t.Errorf("error mail %+v", d.Mails)
	}
	// Closing a case that does not exist: quarantine and an error reply.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[opgelost] printer", text("klaar")))
	if d.Quarantine == "" || d.Case != nil || d.Message != nil {
		t.Fatalf("quarantine %q case %v", d.Quarantine, d.Case)
	}
	if e := mailsOf(d, MailError); len(e) != 1 || !e[0].NoCase || !slices.Equal(emails(e[0].To), []string{"jan@desk.example"}) {
		t.Errorf("error mail %+v", d.Mails)
	}
	// Plain text from staff with no keyword still opens a case.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "Storing bij Acme", text("klant belde")))
	if d.Outcome != OutcomeNewCase || d.Ack() != nil || d.NoAck != "staff" {
		t.Errorf("outcome %s ack %v", d.Outcome, d.Ack())
	}
}

func TestStaffOpensCaseOnBehalf(t *testing.T) {
	p := staffPolicy()
	f := seedStore()
	d := decide(t, p, f, msg("jan@desk.example", "[voor Piet@Bakker.example] [hoog] kassa hapert", named("Jan"), text("Piet belde: 06-12345678.")))
	if d.Outcome != OutcomeNewCase || d.Case.ID != 7 {
		t.Fatalf("outcome %s case %d", d.Outcome, d.Case.ID)
	}
	c := d.Case
	if c.Customer != "Bakker" || c.Plan != "Basic" || c.Language != "nl" || c.Requester.Email != "piet@bakker.example" ||
		c.Requester.Name != "Piet" || c.OpenedBy != "jan@desk.example" || c.Priority != PriorityHigh || c.Subject != "kassa hapert" {
		t.Errorf("case %+v", c)
	}
	if c.Unauthorised {
		t.Error("a case staff opened for a customer is not an unauthorised contact")
	}
	if d.Ack() == nil || d.Ack().To[0].Email != "piet@bakker.example" || d.Ack().Subject != "[Case #7] kassa hapert" {
		t.Errorf("ack %+v", d.Ack())
	}
	if !c.hasEvent(EventOpenedByStaff) || !slices.Contains(c.Parties, "piet@bakker.example") {
		t.Errorf("events %v parties %v", eventTypes(c, 0), c.Parties)
	}
	if conf := mailsOf(d, MailConfirm); len(conf) != 1 || !strings.Contains(strings.Join(conf[0].Changes, "\n"), "case 7 opened for piet@bakker.example") {
		t.Errorf("confirmation %+v", conf)
	}
	// A staff address is not a customer.
	d = decide(t, p, seedStore(), msg("jan@desk.example", "[for kees@desk.example] x"))
	if d.Quarantine == "" || len(mailsOf(d, MailError)) != 1 {
		t.Errorf("quarantine %q mails %+v", d.Quarantine, d.Mails)
	}
}

func TestCustomerKeywordsOnlyPropose(t *testing.T) {
	p := staffPolicy()
	d := decide(t, p, seedStore(), msg("ann@acme.example", "Re: [Case #1] [URGENT] [opgelost] alles ligt plat"))
	c := d.Case
	// R7: a proposal; status and kind keywords mean nothing from a customer.
	if c.Priority != "" || c.ProposedPriority != PriorityUrgent || c.Status != StatusOpen {
		t.Errorf("priority %q proposed %q status %s", c.Priority, c.ProposedPriority, c.Status)
	}
	if !c.hasEvent(EventPriorityProposed) {
		t.Error("no priority_proposed event")
	}
	if len(mailsOf(d, MailConfirm))+len(mailsOf(d, MailError)) != 0 {
		t.Errorf("a customer got a staff confirmation: %+v", d.Mails)
	}
	// A new case keeps the keyword out of its title.
	d = decide(t, p, seedStore(), msg("ann@acme.example", "[hoog] server down"))
	if d.Case.Subject != "server down" || d.Case.ProposedPriority != PriorityHigh {
		t.Errorf("subject %q proposed %q", d.Case.Subject, d.Case.ProposedPriority)
	}
}

func TestUnauthorisedContactNoticeOncePerCase(t *testing.T) {
	f, p := seedStore(), staffPolicy()
	d := decide(t, p, f, msg("dave@acme.example", "Help", named("Dave")))
	if !d.Case.Unauthorised {
		t.Error("case not marked (R1)")
	}
	// R1: the named contacts hear of it in their digest, one line each
	// for this case; the engine sends no notice mail itself.
	var to []string
	for _, n := range d.Notices {
		to = append(to, n.To.Email)
		if n.Notice.CaseID != 7 || n.Notice.Writer.Email != "dave@acme.example" || n.Notice.Customer != d.Case.Customer {
			t.Errorf("notice %+v", n)
		}
	}
	if !slices.Equal(to, []string{"ann@acme.example", "bob@acme.example", "carol.private@gmail.example"}) || len(mailsOf(d, MailUnauthorised)) != 0 {
		t.Fatalf("notices %+v mails %+v", d.Notices, d.Mails)
	}
	f.commit(d, testNow, time.Hour)
	d = decide(t, p, f, msg("dave@acme.example", "Re: [Case #7] more", mid("more@acme.example")))
	if len(d.Notices) != 0 {
		t.Errorf("second notice for the same case: %+v", d.Notices)
	}
	if n := mailsOf(d, MailNotify); len(n) != 1 {
		t.Errorf("staff not told: %+v", d.Mails)
	}
	// An unnamed person replying into a named contact's case marks it too.
	d = decide(t, p, seedStore(), msg("dave@acme.example", "Re: [Case #1] x"))
	if !d.Case.Unauthorised || len(d.Notices) != 3 {
		t.Errorf("unauthorised %v notices %+v", d.Case.Unauthorised, d.Notices)
	}
}

func TestForgedStaffChangesNothing(t *testing.T) {
	p := staffPolicy()
	p.TrustedAuthservID = "mx.desk.example"
	forged := msg("jan@desk.example", "Re: [Case #1] [opgelost][laag]", irt("deskd.1.ok@x"),
		func(in *Inbound) {
			// A header lower down claims a pass; only the topmost counts.
			in.AuthResults = []string{
				"mx.desk.example; dkim=fail header.d=desk.example; spf=fail smtp.mailfrom=jan@desk.example",
				"mx.desk.example; dkim=pass header.d=desk.example",
			}
		})
	d := decide(t, p, seedStore(), forged)
	if d.Sender.Role == RoleStaff || d.Sender.Suspicious == "" {
		t.Fatalf("role %s suspicious %q", d.Sender.Role, d.Sender.Suspicious)
	}
	if d.Case.ID == 1 || d.Case.Status != StatusOpen || d.Case.Priority != "" {
		t.Errorf("forged mail touched case %d: status %s priority %q", d.Case.ID, d.Case.Status, d.Case.Priority)
	}
	if !d.Case.hasEvent(EventSuspicious) {
		t.Error("no suspicious event")
	}
	if n := mailsOf(d, MailNotify); len(n) != 1 || n[0].Suspicious == "" {
		t.Errorf("staff not warned: %+v", d.Mails)
	}

	// The same mail with a pass from our own server is staff.
	genuine := msg("jan@desk.example", "Re: [Case #1] [opgelost]", irt("deskd.1.ok@x"), func(in *Inbound) {
		in.AuthResults = []string{"mx.desk.example; dkim=pass header.d=desk.example header.s=s1; spf=pass smtp.mailfrom=jan@desk.example"}
	})
	d = decide(t, p, seedStore(), genuine)
	if d.Sender.Role != RoleStaff || d.Case.ID != 1 || d.Case.Status != StatusClosed {
		t.Errorf("role %s case %d status %s (suspicious %q)", d.Sender.Role, d.Case.ID, d.Case.Status, d.Sender.Suspicious)
	}
}

func TestAddToThreadIsBounded(t *testing.T) {
	var c Case
	for i := range 50 {
		c.AddToThread(strings.Repeat("x", i+1) + "@a")
	}
	c.AddToThread("x@a") // the root again: no duplicate
	if len(c.Thread) != maxThread || c.Thread[0] != "x@a" || c.lastInThread() != strings.Repeat("x", 50)+"@a" {
		t.Errorf("thread %d entries, root %q, last %q", len(c.Thread), c.Thread[0], c.lastInThread())
	}
}
