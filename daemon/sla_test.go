package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
)

// The SLA escalation loop (sla.go) against the in-process peers: the
// daemon's clock (Options.Now) is a testClock the tests move by hand, so
// a four-hour target passes in a line of code. Positive outcomes are
// waited for with a generous deadline; "nothing was sent" is read after
// settle, which ends with every alert due at the clock's time committed
// and every queued mail accepted by the SMTP sink.

const (
	slaNotify     = "helpdesk@example.test"   // staff.notify: warnings
	slaEscalation = "escalatie@example.test"  // staff.escalation: breaches
	slaTier2      = "tweedelijn@example.test" // staff.escalation_tier2
	slaStaff      = "Piet <piet@example.test>"
	slaAnna       = "Anna <anna@jansen.example>" // Premium (R9: 4 h), Dutch
	slaBob        = "Bob <bob@acme.example>"     // Business (R9: 8 h), English
)

var amsterdam = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		panic(err)
	}
	return loc
}()

// ams is a wall-clock time in the SLA's zone (R11).
func ams(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, amsterdam)
}

// slaHarness is a running daemon with a hand-moved clock, a staff.notify
// list and an escalation address.
type slaHarness struct {
	*harness
	clock *testClock
}

func newSLAHarness(t *testing.T, start time.Time, tweak func(*Options)) *slaHarness {
	t.Helper()
	clock := &testClock{}
	clock.freeze(start)
	h := newHarnessNotStarted(t, func(o *Options) {
		o.Now = clock.now
		o.Policy.StaffNotify = []string{slaNotify}
		o.Policy.StaffLanguage = "nl"
		o.Escalation = []string{slaEscalation}
		if tweak != nil {
			tweak(o)
		}
	})
	h.start()
	return &slaHarness{harness: h, clock: clock}
}

// slaRaw is a plain-text mail to support@.
func slaRaw(from, subject, id, extra, body string, date time.Time) string {
	return fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\nDate: %s\n%sContent-Type: text/plain; charset=utf-8\n\n%s\n",
		from, support, subject, id, date.Format(time.RFC1123Z), extra, body)
}

// deliverNow puts a mail in the inbox with the clock's time as INTERNALDATE:
// the SLA clock starts at the server's receipt (R11b).
func (s *slaHarness) deliverNow(from, subject, id, body string) {
	s.t.Helper()
	s.deliverNowExtra(from, subject, id, "", body)
}

// deliverNowExtra is deliverNow with extra header lines ("Name: value\n").
func (s *slaHarness) deliverNowExtra(from, subject, id, extra, body string) {
	s.t.Helper()
	now := s.clock.now()
	raw := slaRaw(from, subject, id, extra, body, now)
	if err := s.imap.Deliver("INBOX", []byte(strings.ReplaceAll(raw, "\n", "\r\n")), now); err != nil {
		s.t.Fatal(err)
	}
}

// moveTo sets the clock and wakes the escalation loop.
func (s *slaHarness) moveTo(at time.Time) {
	s.clock.freeze(at)
	s.d.CheckDeadlines()
}

// settle makes sure everything due at the clock's time went out: it wakes
// the loop, runs one escalation round itself (synchronously, so that when
// it returns every due alert is committed, by the loop or by this round;
// a second round finds the first one's events and sends nothing), then
// waits until the outbox is empty, i.e. the sink has every queued mail.
func (s *slaHarness) settle() {
	s.t.Helper()
	s.d.CheckDeadlines()
	if err := s.d.escalate(); err != nil {
		s.t.Fatalf("escalation round: %v", err)
	}
	s.waitOutboxEmpty()
}

func (s *slaHarness) waitOutboxEmpty() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		err := s.d.DB().View(func(tx *store.Tx) error {
			var err error
			n, _, err = tx.OutboxStats(s.clock.now())
			return err
		})
		if err != nil {
			s.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("outbox still holds %d mails", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sentMail is one mail the sink accepted, as deskd's own parser reads it.
type sentMail struct {
	to      []string
	subject string
	id      string
	text    string
	auto    string // Auto-Submitted
}

func (s *slaHarness) sentMails() []sentMail {
	s.t.Helper()
	var out []sentMail
	for _, m := range s.smtp.Mails() {
		in, err := mail.Parse(m.Data, time.Now(), mail.ParseOptions{})
		if err != nil {
			s.t.Fatalf("sent mail does not parse: %v", err)
		}
		hdr := header(s.t, m.Data)
		out = append(out, sentMail{to: m.To, subject: in.Subject, id: in.MessageID, text: in.Text, auto: hdr.Get("Auto-Submitted")})
	}
	return out
}

// SLA mail kinds as their Dutch subjects name them (templates/default/nl).
const (
	kindWarning = "SLA-waarschuwing"
	kindBreach  = "SLA overschreden"
)

// slaMails are the sent warnings (kind kindWarning) or breaches.
func (s *slaHarness) slaMails(kind string) []sentMail {
	s.t.Helper()
	var out []sentMail
	for _, m := range s.sentMails() {
		if strings.Contains(m.subject, kind) {
			out = append(out, m)
		}
	}
	return out
}

// waitSLA waits until n mails of kind were sent and returns them.
func (s *slaHarness) waitSLA(kind string, n int) []sentMail {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.slaMails(kind)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waited for %d %q mails, got %d (clock %v)", n, kind, len(got), s.clock.now())
		}
		s.d.CheckDeadlines()
		time.Sleep(20 * time.Millisecond)
	}
}

// expectSLA checks, after settle, that exactly warnings and breaches SLA
// mails were sent in all.
func (s *slaHarness) expectSLA(warnings, breaches int) {
	s.t.Helper()
	s.settle()
	if got := s.slaMails(kindWarning); len(got) != warnings {
		s.t.Errorf("at %v: %d warnings sent, want %d: %+v", s.clock.now().In(amsterdam), len(got), warnings, subjects(got))
	}
	if got := s.slaMails(kindBreach); len(got) != breaches {
		s.t.Errorf("at %v: %d breaches sent, want %d: %+v", s.clock.now().In(amsterdam), len(got), breaches, subjects(got))
	}
}

func subjects(ms []sentMail) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.subject + " → " + strings.Join(m.to, ",")
	}
	return out
}

// slaEvents are the sla_warning and sla_breach events of case id, as
// "type detail".
func (s *slaHarness) slaEvents(id uint64) []string {
	s.t.Helper()
	var out []string
	err := s.d.DB().View(func(tx *store.Tx) error {
		c, err := tx.Case(id)
		if err != nil || c == nil {
			return fmt.Errorf("case %d: %v", id, err)
		}
		for _, e := range c.Events {
			if e.Type == cases.EventSLAWarning || e.Type == cases.EventSLABreach {
				out = append(out, e.Type+" "+e.Detail)
			}
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// deadlines are case id's entries in the deadline index, kind → instant.
func (s *slaHarness) deadlines(id uint64) map[string]time.Time {
	s.t.Helper()
	out := map[string]time.Time{}
	err := s.d.DB().View(func(tx *store.Tx) error {
		ds, err := tx.CaseDeadlines(id)
		for _, d := range ds {
			out[d.Kind] = d.At
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// slaCounter reads deskd_sla_{warnings,breaches}_total{kind} from the
// daemon's own registry (0 when the series does not exist yet).
func slaCounter(t *testing.T, d *Daemon, name, kind string) float64 {
	t.Helper()
	fams, err := d.ops.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "kind" && lp.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// newPremiumCase opens case 1 for Anna (Premium) at the clock's time and
// waits until its acknowledgement and staff notification went out.
func (s *slaHarness) newPremiumCase() uint64 {
	s.t.Helper()
	s.deliverNow(slaAnna, "Kassa kapot", "k1@jansen.example", "Hallo, de kassa doet het niet.")
	rep := s.waitReports(1)[0]
	if rep.Decision != string(cases.OutcomeNewCase) || rep.Ack == "" {
		s.t.Fatalf("decision %+v", rep)
	}
	s.waitOutboxEmpty()
	return rep.CaseID
}

// staffReply is Piet answering case 1 at the clock's time; keywords go in
// the subject. It returns the decision.
func (s *slaHarness) staffReply(n int, keywords, body string) Report {
	s.t.Helper()
	subject := "Re: [Case #1] Kassa kapot"
	if keywords != "" {
		subject += " " + keywords
	}
	s.deliverNow(slaStaff, subject, fmt.Sprintf("staff-%d@example.test", n), body)
	rep := s.waitReports(n)[n-1]
	if rep.Decision != string(cases.OutcomeReply) || rep.CaseID != 1 || rep.Role != cases.RoleStaff {
		s.t.Fatalf("staff reply decided as %+v", rep)
	}
	s.waitOutboxEmpty()
	return rep
}

// R9: a Premium case nobody answers gets one warning to staff.notify at
// 75% of its 4 working hours and one breach to staff.escalation at 4 h,
// each exactly once however often the loop wakes; the metrics count them.
func TestSLAWarningThenBreachOnce(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil) // a Monday
	id := s.newPremiumCase()
	s.expectSLA(0, 0)

	s.moveTo(ams(time.November, 30, 12, 0)) // 3 of 4 working hours
	w := s.waitSLA(kindWarning, 1)[0]
	if !slices.Equal(w.to, []string{slaNotify}) {
		t.Errorf("warning went to %v, want staff.notify %s", w.to, slaNotify)
	}
	for _, want := range []string{"[Case #1]", "eerste reactie"} {
		if !strings.Contains(w.subject, want) {
			t.Errorf("warning subject %q lacks %q", w.subject, want)
		}
	}
	if !strings.Contains(w.text, "[Case #1]") || !strings.Contains(w.text, "maandag 30 november 2026 om 13:00 (CET)") {
		t.Errorf("warning text names neither the case token nor the deadline:\n%s", w.text)
	}
	if w.auto != "auto-generated" {
		t.Errorf("warning Auto-Submitted %q", w.auto)
	}
	s.expectSLA(1, 0)

	s.moveTo(ams(time.November, 30, 13, 0)) // the 4 hours are up
	b := s.waitSLA(kindBreach, 1)[0]
	if !slices.Equal(b.to, []string{slaEscalation}) {
		t.Errorf("breach went to %v, want staff.escalation %s", b.to, slaEscalation)
	}
	if !strings.Contains(b.subject, "[Case #1]") || !strings.Contains(b.subject, "reactietijd") {
		t.Errorf("breach subject %q", b.subject)
	}

	for range 3 {
		s.d.CheckDeadlines()
	}
	s.expectSLA(1, 1)
	s.moveTo(ams(time.November, 30, 13, 30))
	s.d.CheckDeadlines()
	s.expectSLA(1, 1)

	want := []string{"sla_warning first_response/warning/4h0m0s", "sla_breach first_response/breach/4h0m0s"}
	if got := s.slaEvents(id); !slices.Equal(got, want) {
		t.Errorf("sla events %q, want %q", got, want)
	}
	if v := slaCounter(t, s.d, "deskd_sla_warnings_total", "first_response"); v != 1 {
		t.Errorf("deskd_sla_warnings_total{kind=first_response} = %v, want 1", v)
	}
	if v := slaCounter(t, s.d, "deskd_sla_breaches_total", "first_response"); v != 1 {
		t.Errorf("deskd_sla_breaches_total{kind=first_response} = %v, want 1", v)
	}
}

// A restart between the warning and the breach: the new daemon on the
// same store sends the breach once and not the warning again (the events
// recorded with the mails survive, R11d "exactly once").
func TestSLARestartSendsBreachOnce(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil)
	id := s.newPremiumCase()
	s.moveTo(ams(time.November, 30, 12, 0))
	s.waitSLA(kindWarning, 1)
	s.expectSLA(1, 0)
	s.stop()

	s.clock.freeze(ams(time.November, 30, 13, 30)) // past the breach while down
	s.start()
	s.d.CheckDeadlines()
	b := s.waitSLA(kindBreach, 1)[0]
	if !slices.Equal(b.to, []string{slaEscalation}) {
		t.Errorf("breach went to %v", b.to)
	}
	s.expectSLA(1, 1)
	want := []string{"sla_warning first_response/warning/4h0m0s", "sla_breach first_response/breach/4h0m0s"}
	if got := s.slaEvents(id); !slices.Equal(got, want) {
		t.Errorf("sla events %q, want %q", got, want)
	}
	if v := slaCounter(t, s.d, "deskd_sla_warnings_total", "first_response"); v != 0 {
		t.Errorf("the restarted daemon counted %v warnings, want 0", v)
	}
	if v := slaCounter(t, s.d, "deskd_sla_breaches_total", "first_response"); v != 1 {
		t.Errorf("the restarted daemon counted %v breaches, want 1", v)
	}
}

// R11d: non-Urgent alerts wait for working time. A High case's resolution
// target (1 working day, R7) used up at 17:00 exactly is due at 08:00 the
// next working day (R11a); a High priority set in the evening on a case
// already past it is in breach from then (R11c), and that breach too
// waits for 08:00. Nothing goes out at 17:00, 20:00 or 07:59.
func TestSLANonUrgentBreachWaitsForWorkingTime(t *testing.T) {
	t.Run("target ends at 17:00", func(t *testing.T) {
		s := newSLAHarness(t, ams(time.November, 30, 8, 0), nil)
		id := s.newPremiumCase()
		s.moveTo(ams(time.November, 30, 8, 30))
		s.staffReply(2, "[hoog]", "We kijken ernaar.") // the first response too (R9)

		breachKey := "resolution/breach/9h0m0s"
		if at, ok := s.deadlines(id)[breachKey]; !ok || !at.Equal(ams(time.December, 1, 8, 0)) {
			t.Errorf("deadline index: %s at %v, want Tuesday 08:00 (R11a, R11d)", breachKey, at.In(amsterdam))
		}
		s.moveTo(ams(time.November, 30, 15, 0)) // past 75%: 14:45
		w := s.waitSLA(kindWarning, 1)[0]
		if !strings.Contains(w.subject, "oplossing (90%-norm)") {
			t.Errorf("warning subject %q", w.subject)
		}
		for _, at := range []time.Time{
			ams(time.November, 30, 17, 0), // used up, but working time is over
			ams(time.November, 30, 20, 0),
			ams(time.December, 1, 7, 59),
		} {
			s.moveTo(at)
			s.expectSLA(1, 0)
		}
		s.moveTo(ams(time.December, 1, 8, 0))
		b := s.waitSLA(kindBreach, 1)[0]
		if !slices.Equal(b.to, []string{slaEscalation}) || !strings.Contains(b.subject, "oplostijd (90%-norm)") {
			t.Errorf("breach %q to %v", b.subject, b.to)
		}
		s.expectSLA(1, 1)
	})
	t.Run("priority set at 20:00", func(t *testing.T) {
		s := newSLAHarness(t, ams(time.November, 30, 8, 0), nil)
		s.newPremiumCase()
		s.moveTo(ams(time.November, 30, 8, 30))
		s.staffReply(2, "", "We kijken ernaar.") // Medium: nothing due for days
		s.moveTo(ams(time.December, 1, 20, 0))   // Tuesday evening: both High tiers used up
		s.staffReply(3, "[hoog]", "Dit krijgt voorrang.")
		s.expectSLA(0, 0)
		s.moveTo(ams(time.December, 2, 7, 59))
		s.expectSLA(0, 0)
		s.moveTo(ams(time.December, 2, 8, 0))
		s.waitSLA(kindBreach, 2)
		s.expectSLA(0, 2)
	})
}

// R11d: an alert that fell due in working time but was not sent then (the
// daemon was down) waits for the next working period like any other
// non-Urgent alert; it does not go out at 20:00.
func TestSLAOverdueWarningWaitsForWorkingTime(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 8, 0), nil)
	id := s.newPremiumCase()
	s.moveTo(ams(time.November, 30, 8, 30))
	s.staffReply(2, "[hoog]", "We kijken ernaar.")
	s.stop() // down from 08:30 to 20:00: the 14:45 warning was not sent
	s.clock.freeze(ams(time.November, 30, 20, 0))
	s.start()
	s.expectSLA(0, 0)
	if got := s.slaEvents(id); len(got) != 0 {
		t.Errorf("at 20:00 a High case's alerts were sent: %q (R11d: working hours only)", got)
	}
	s.moveTo(ams(time.December, 1, 8, 0))
	s.waitSLA(kindWarning, 1)
}

// R11d: an Urgent case escalates at once at any hour. Staff raise a case
// to Urgent after working time (Friday 17:00 or 20:00, or on Saturday)
// when its 4 and 6 working hours (R7) are long used up: it is in breach
// from that moment (R11c), and both breaches go out at once.
func TestSLAUrgentEscalatesAtAnyHour(t *testing.T) {
	for _, at := range []time.Time{
		ams(time.December, 4, 17, 0),
		ams(time.December, 4, 20, 0),
		ams(time.December, 5, 11, 0), // Saturday
	} {
		t.Run(at.Format("Mon15:04"), func(t *testing.T) {
			s := newSLAHarness(t, ams(time.December, 4, 8, 0), nil) // a Friday
			s.newPremiumCase()
			s.moveTo(ams(time.December, 4, 8, 10))
			s.staffReply(2, "", "We kijken ernaar.")
			s.moveTo(at)
			s.staffReply(3, "[urgent]", "Dit heeft nu voorrang.")
			bs := s.waitSLA(kindBreach, 2)
			for _, b := range bs {
				if !slices.Equal(b.to, []string{slaEscalation}) || !strings.Contains(b.subject, "oplostijd") {
					t.Errorf("breach %q to %v", b.subject, b.to)
				}
			}
			s.expectSLA(0, 2)
		})
	}
}

// R11c: a case waiting on the customer ([pending]) gets no resolution
// alerts however long it waits, and an out-of-office reply changes
// nothing; the customer's real reply resumes the clock with the time
// already used, and the alerts come back, later by the pause.
func TestSLAPendingPausesEscalations(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil)
	id := s.newPremiumCase()
	s.moveTo(ams(time.November, 30, 9, 30))
	s.staffReply(2, "[pending]", "Kunt u een schermafdruk sturen?") // 30 min used
	if ds := s.deadlines(id); len(ds) != 0 {
		t.Errorf("a pending case has deadlines: %v", ds)
	}
	// An automatic reply does not resume the clock (R11c).
	s.moveTo(ams(time.November, 30, 9, 31))
	s.deliverNowExtra(slaAnna, "Afwezig: Re: [Case #1] Kassa kapot", "ooo@jansen.example", "Auto-Submitted: auto-replied\n", "Ik ben afwezig.")
	if rep := s.waitReports(3)[2]; rep.Decision != string(cases.OutcomeAutoRecord) || rep.CaseID != id {
		t.Fatalf("out-of-office decided as %+v", rep)
	}
	if ds := s.deadlines(id); len(ds) != 0 {
		t.Errorf("an automatic reply resumed the clock: %v", ds)
	}
	// Two weeks on: unpaused, both Medium tiers (5 and 10 working days)
	// would have run out.
	s.moveTo(ams(time.December, 14, 10, 0))
	s.expectSLA(0, 0)

	s.deliverNow(slaAnna, "Re: [Case #1] Kassa kapot", "k2@jansen.example", "Hierbij de schermafdruk.")
	if rep := s.waitReports(4)[3]; rep.Decision != string(cases.OutcomeReply) || rep.CaseID != id {
		t.Fatalf("customer reply decided as %+v", rep)
	}
	s.expectSLA(0, 0)
	// 45 h, warned at 33.75 h; 0.5 h were used before the pause.
	ds := s.deadlines(id)
	for key, want := range map[string]time.Time{
		"resolution/warning/45h0m0s": ams(time.December, 17, 16, 15),
		"resolution/breach/45h0m0s":  ams(time.December, 21, 9, 30),
	} {
		if got, ok := ds[key]; !ok || !got.Equal(want) {
			t.Errorf("deadline %s at %v, want %v (all: %v)", key, got.In(amsterdam), want, ds)
		}
	}
	s.moveTo(ams(time.December, 17, 16, 15))
	w := s.waitSLA(kindWarning, 1)[0]
	if !strings.Contains(w.subject, "oplossing (90%-norm)") {
		t.Errorf("warning subject %q", w.subject)
	}
	s.moveTo(ams(time.December, 21, 9, 30))
	s.waitSLA(kindBreach, 1)
	s.expectSLA(1, 1)
}

// R7, R4: when staff set the priority ([hoog]) the customer hears it once,
// with the resolution target and its deadline; a reply without a keyword,
// or one repeating the same priority, sends no second notice.
func TestSLAPrioritySetMailOnce(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil)
	s.newPremiumCase()
	s.moveTo(ams(time.November, 30, 9, 30))
	rep := s.staffReply(2, "[hoog]", "We kijken ernaar.")
	ids := queuedOfKind(rep, cases.MailPrioritySet)
	if len(ids) != 1 {
		t.Fatalf("the [hoog] reply queued %d priority_set mails: %v", len(ids), rep.Mails)
	}
	var notice *sentMail
	for _, m := range s.sentMails() {
		if m.id == ids[0] {
			notice = &m
		}
	}
	if notice == nil {
		t.Fatalf("priority_set mail %s was not sent", ids[0])
	}
	if !slices.Equal(notice.to, []string{"anna@jansen.example"}) {
		t.Errorf("priority_set went to %v", notice.to)
	}
	for _, want := range []string{
		"vastgesteld op: Hoog",
		"Oplostijd:   1 werkdag",
		"Uiterlijk:   dinsdag 1 december 2026 om 09:00 (CET)", // 9 working hours from Monday 09:00
	} {
		if !strings.Contains(notice.text, want) {
			t.Errorf("priority_set text lacks %q:\n%s", want, notice.text)
		}
	}

	s.moveTo(ams(time.November, 30, 10, 0))
	rep = s.staffReply(3, "", "Nog even geduld.")
	if ids := queuedOfKind(rep, cases.MailPrioritySet); len(ids) != 0 {
		t.Errorf("a reply without keyword queued priority_set: %v", rep.Mails)
	}
	rep = s.staffReply(4, "[hoog]", "Nog steeds hoog.")
	if ids := queuedOfKind(rep, cases.MailPrioritySet); len(ids) != 0 {
		t.Errorf("repeating [hoog] queued priority_set: %v", rep.Mails)
	}
	n := 0
	for _, m := range s.sentMails() {
		if strings.Contains(m.text, "prioriteit vastgesteld") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d priority notices sent, want 1", n)
	}
}

// queuedOfKind are the Message-IDs of the mails of kind a decision queued.
func queuedOfKind(rep Report, kind cases.MailKind) []string {
	var ids []string
	for _, m := range rep.Mails {
		if k, id, ok := strings.Cut(m, " "); ok && k == string(kind) {
			ids = append(ids, id)
		}
	}
	return ids
}

// The second tier's breach (R7 99.9%) goes to staff.escalation_tier2 when
// it is set, to staff.escalation when it is not; the first tier's always
// to staff.escalation.
func TestSLAEscalationTier2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tier2 []string
		want  string
	}{
		{"tier2 set", []string{slaTier2}, slaTier2},
		{"tier2 empty", nil, slaEscalation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSLAHarness(t, ams(time.November, 30, 9, 0), func(o *Options) { o.EscalationTier2 = tc.tier2 })
			s.newPremiumCase()
			s.moveTo(ams(time.November, 30, 9, 10))
			s.staffReply(2, "[urgent]", "We zijn ermee bezig.") // 4 h and 6 h: 13:00 and 15:00
			s.moveTo(ams(time.November, 30, 15, 0))
			bs := s.waitSLA(kindBreach, 2)
			s.expectSLA(1, 2)
			got := map[string][]string{}
			for _, b := range bs {
				got[b.subject] = b.to
			}
			for subject, to := range map[string]string{
				"[Case #1] SLA overschreden: oplostijd (90%-norm)":   slaEscalation,
				"[Case #1] SLA overschreden: oplostijd (99,9%-norm)": tc.want,
			} {
				if !slices.Equal(got[subject], []string{to}) {
					t.Errorf("%q went to %v, want %s (all: %v)", subject, got[subject], to, got)
				}
			}
		})
	}
}

// R9: the acknowledgement names the first-response deadline, in the
// customer's language and the SLA's zone: Premium 4 working hours from
// Monday 09:00, Business 8 from Monday 10:00.
func TestSLAAckNamesDeadline(t *testing.T) {
	s := newSLAHarness(t, ams(time.November, 30, 9, 0), nil)
	s.deliverNow(slaAnna, "Kassa kapot", "a1@jansen.example", "Hallo.")
	s.waitReports(1)
	s.clock.freeze(ams(time.November, 30, 10, 0))
	s.deliverNow(slaBob, "Printer", "b1@acme.example", "Hello.")
	s.waitReports(2)
	s.waitOutboxEmpty()
	for addr, want := range map[string]string{
		"anna@jansen.example": "uiterlijk maandag 30 november 2026 om 13:00 (CET) een eerste reactie",
		"bob@acme.example":    "by\nTuesday 1 December 2026, 09:00 CET.",
	} {
		var acks []sentMail
		for _, m := range s.sentMails() {
			if slices.Equal(m.to, []string{addr}) && m.auto == "auto-replied" {
				acks = append(acks, m)
			}
		}
		if len(acks) != 1 {
			t.Fatalf("%d acknowledgements to %s", len(acks), addr)
		}
		if text := strings.ReplaceAll(acks[0].text, "\r\n", "\n"); !strings.Contains(text, want) {
			t.Errorf("ack to %s lacks %q:\n%s", addr, want, text)
		}
	}
}
