package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/daemon"
	"deskd/mail"
	"deskd/store"
)

// Staff steer cases by mail (cases/staff.go): they hear of customer mail
// on the staff.notify list, answer it from their own mail client, and
// deskd relays the answer to the customer from the support address. These
// tests run that conversation through the real Dovecot + Postfix.

// staffWait is the generous deadline for anything that crosses the stack.
const staffWait = 60 * time.Second

// staffWorld is a world with a staff.notify list (a mailbox of its own)
// and Dutch staff mail.
func staffWorld(t *testing.T, tweak func(*daemon.Options)) *world {
	t.Helper()
	return newWorld(t, func(o *daemon.Options) {
		o.Policy.StaffNotify = []string{staffNotify}
		o.Policy.StaffLanguage = "nl"
		if tweak != nil {
			tweak(o)
		}
	})
}

// parsedMail is one mail as deskd's own parser reads it, plus a header lookup
// for the fields the parser does not keep.
type parsedMail struct {
	raw []byte
	in  *cases.Inbound
}

func parseStaffMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	in, err := mail.Parse(raw, time.Now(), mail.ParseOptions{})
	if err != nil {
		t.Fatalf("mail does not parse: %v\n%s", err, raw)
	}
	return parsedMail{raw: raw, in: in}
}

func (p parsedMail) header(t *testing.T, key string) string {
	t.Helper()
	h := parseHeader(t, p.raw)
	return h.Get(key)
}

// queuedIDs returns the Message-IDs of the mails of kind a decision queued
// (Report.Mails holds "<kind> <message-id>").
func queuedIDs(rep daemon.Report, kind cases.MailKind) []string {
	var ids []string
	for _, m := range rep.Mails {
		if k, id, ok := strings.Cut(m, " "); ok && k == string(kind) {
			ids = append(ids, id)
		}
	}
	return ids
}

// queuedOne is the Message-ID of the one mail of kind rep queued.
func queuedOne(t *testing.T, rep daemon.Report, kind cases.MailKind) string {
	t.Helper()
	ids := queuedIDs(rep, kind)
	if len(ids) != 1 {
		t.Fatalf("decision queued %d %s mails, want 1: %+v", len(ids), kind, rep)
	}
	return ids[0]
}

// mailWithID waits until user's INBOX holds at least n mails and returns
// the one with Message-ID id.
func (w *world) mailWithID(t *testing.T, user string, n int, id string) parsedMail {
	t.Helper()
	msgs := w.stack.WaitForMessages(t, user, "INBOX", n, staffWait)
	for _, raw := range msgs {
		if p := parseStaffMail(t, raw); p.in.MessageID == id {
			return p
		}
	}
	t.Fatalf("%s has %d mails, none with Message-ID <%s>", user, len(msgs), id)
	return parsedMail{}
}

// report waits for decision n (1-based) and returns it.
func (w *world) report(n int) daemon.Report {
	w.t.Helper()
	return w.waitReports(n, staffWait)[n-1]
}

// caseDetail reads a case from the running daemon's store.
func (w *world) caseDetail(t *testing.T, id uint64) *daemon.CaseDetail {
	t.Helper()
	var det *daemon.CaseDetail
	err := w.d.DB().View(func(tx *store.Tx) error {
		var err error
		det, err = daemon.ShowCase(tx, id, daemon.DefaultSLAView(nil, time.Now()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return det
}

// waitOutboxEmpty waits until every queued mail was handed to Postfix.
func (w *world) waitOutboxEmpty(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(staffWait)
	for {
		var n int
		err := w.d.DB().View(func(tx *store.Tx) error {
			var err error
			n, _, err = tx.OutboxStats(time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d mails after %s", n, staffWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientReply builds what a mail client sends when someone answers parent:
// "Re"-style subject as given, In-Reply-To the parent, References the
// parent's References plus the parent (RFC 5322 §3.6.4), the new text on
// top and, below it, the parent quoted under an "Op ... schreef ...:"
// attribution, as Thunderbird does in Dutch.
func clientReply(from, subject, msgID string, parent parsedMail, text string) string {
	refs := append(slices.Clone(parent.in.References), parent.in.MessageID)
	var quoted strings.Builder
	for _, l := range strings.Split(strings.TrimRight(parent.in.Text, "\n"), "\n") {
		if l = strings.TrimRight(l, " "); l == "" {
			quoted.WriteString(">\n")
		} else {
			quoted.WriteString("> " + l + "\n")
		}
	}
	body := text + "\n\nOp 09-03-2026 om 10:15 schreef " + parent.in.From.Name + ":\n" + quoted.String()
	extra := "In-Reply-To: <" + parent.in.MessageID + ">\nReferences: <" + strings.Join(refs, ">\n <") + ">\n"
	return mailText(from, subject, msgID, extra, body)
}

func caseHasEvent(det *daemon.CaseDetail, typ string) bool {
	return slices.ContainsFunc(det.Events, func(e cases.Event) bool { return e.Type == typ })
}

// The whole conversation by mail: a customer writes, staff are notified,
// a staff member answers from their mail client with [hoog] (R7), the
// customer gets the answer from the support address without the staff
// member's quoted history, the staff member gets a confirmation, staff
// close the case with [opgelost] and a last word (one closing mail to the
// customer), and the customer's reply reopens it (R11c).
func TestStaffByMail(t *testing.T) {
	w := staffWorld(t, nil)
	const first = "staff-1@jansen.test"
	customerText := "Goedemorgen,\n\nDe kassa start niet meer op sinds de update van gisteren.\n\nAnna"
	w.send(anna, mailText("Anna Jansen <"+anna+">", "[urgent] Kassa start niet op", first, "", customerText))

	rep := w.report(1)
	if rep.Decision != string(cases.OutcomeNewCase) || rep.CaseID != 1 || rep.Ack == "" {
		t.Fatalf("customer mail decided as %+v", rep)
	}
	ack := w.mailWithID(t, anna, 1, rep.Ack)

	// Staff hear of it: the token in the subject (so their reply
	// threads), replies to the desk, the customer's words and the facts
	// they need to set a priority, marked automatic (RFC 3834 §5).
	notif := w.mailWithID(t, staffNotify, 1, queuedOne(t, rep, cases.MailNotify))
	if s := notif.in.Subject; !strings.Contains(s, "[Case #1]") || !strings.Contains(s, "Kassa start niet op") {
		t.Errorf("notification subject %q", s)
	}
	if rt := notif.in.ReplyTo; len(rt) != 1 || rt[0].Email != support {
		t.Errorf("notification Reply-To %+v, want %s", rt, support)
	}
	if got := notif.header(t, "Auto-Submitted"); got != "auto-generated" {
		t.Errorf("notification Auto-Submitted %q", got)
	}
	for _, want := range []string{
		"De kassa start niet meer op sinds de update van gisteren.",
		"Anna Jansen <" + anna + ">", // who wrote
		"Bakkerij Jansen",            // customer
		"Premium",                    // plan (R9)
		"klant stelt urgent voor",    // the customer's proposal, not yet set (R7)
	} {
		if !strings.Contains(notif.in.Text, want) {
			t.Errorf("notification lacks %q:\n%s", want, notif.in.Text)
		}
	}

	// Piet answers the notification from his mail client and sets the
	// priority.
	staffText := "Dag Anna,\n\nWe hebben de kassa op afstand opnieuw gestart; probeer het nog eens.\n\n-- \nPiet"
	w.send(staffAddr, clientReply("Piet Pieters <"+staffAddr+">", "RE: [Case #1] [hoog] Kassa start niet op", "staff-2@desk.test", notif, staffText))
	rep = w.report(2)
	if rep.Decision != string(cases.OutcomeReply) || rep.CaseID != 1 || rep.Role != cases.RoleStaff || rep.Suspicious != "" {
		t.Fatalf("staff reply decided as %+v", rep)
	}
	// Anna gets the relay and, as staff set the priority, one mail
	// stating it and its resolution target (R7, R4): three mails now.
	relay := w.mailWithID(t, anna, 3, queuedOne(t, rep, cases.MailRelay))
	prio := w.mailWithID(t, anna, 3, queuedOne(t, rep, cases.MailPrioritySet))
	if !strings.Contains(prio.in.Text, "Hoog") || !strings.Contains(prio.in.Text, "1 werkdag") || !strings.Contains(prio.in.Subject, "[Case #1]") {
		t.Errorf("priority mail %q:\n%s", prio.in.Subject, prio.in.Text)
	}
	if f := relay.in.From; f.Email != support || f.Name != "Piet Pieters via Desk Support" {
		t.Errorf("relay From %+v, want \"Piet Pieters via Desk Support\" <%s>", f, support)
	}
	if rt := relay.in.ReplyTo; len(rt) != 1 || rt[0].Email != support {
		t.Errorf("relay Reply-To %+v, want %s", rt, support)
	}
	if to := relay.in.To; len(to) != 1 || to[0].Email != anna {
		t.Errorf("relay To %+v", to)
	}
	if s := relay.in.Subject; !strings.Contains(s, "[Case #1]") || strings.Contains(strings.ToLower(s), "hoog") {
		t.Errorf("relay subject %q: want the token and no staff keyword", s)
	}
	// RFC 5322 §3.6.4: it answers the customer's thread (her mail or the
	// last mail deskd sent her), never the staff-only notification.
	if irt := relay.in.InReplyTo; len(irt) != 1 || (irt[0] != first && irt[0] != ack.in.MessageID) {
		t.Errorf("relay In-Reply-To %v, want <%s> or the acknowledgement <%s>", irt, first, ack.in.MessageID)
	}
	if !slices.Contains(relay.in.References, first) {
		t.Errorf("relay References %v lack the customer's first mail <%s>", relay.in.References, first)
	}
	if slices.Contains(relay.in.References, notif.in.MessageID) || slices.Contains(relay.in.References, "staff-2@desk.test") {
		t.Errorf("relay References %v leak the staff side of the conversation", relay.in.References)
	}
	if got := relay.header(t, "Auto-Submitted"); got != "" {
		t.Errorf("relay Auto-Submitted %q: a person's words are not automatic", got)
	}
	if !strings.Contains(relay.in.Text, "We hebben de kassa op afstand opnieuw gestart; probeer het nog eens.") ||
		!strings.Contains(relay.in.Text, "-- \nPiet") {
		t.Errorf("relay body lacks the staff text or signature:\n%s", relay.in.Text)
	}
	for _, leak := range []string{"schreef", "> ", "De kassa start niet meer op", "Trefwoorden", "Bakkerij Jansen"} {
		if strings.Contains(relay.in.Text, leak) {
			t.Errorf("relay body carries the quoted notification (%q):\n%s", leak, relay.in.Text)
		}
	}
	// R7: staff set the priority definitively; Piet hears what changed.
	det := w.caseDetail(t, 1)
	if det.Priority != cases.PriorityHigh || det.ProposedPriority != cases.PriorityUrgent {
		t.Errorf("priority %q (proposed %q), want high (proposed urgent)", det.Priority, det.ProposedPriority)
	}
	if !caseHasEvent(det, cases.EventStaffResponse) || !caseHasEvent(det, cases.EventRelayed) {
		t.Errorf("events %+v lack staff_response/relayed (R9)", det.Events)
	}
	confirm := w.mailWithID(t, staffAddr, 1, queuedOne(t, rep, cases.MailConfirm))
	if !strings.Contains(confirm.in.Subject, "[Case #1]") || !(strings.Contains(confirm.in.Text, "high") || strings.Contains(confirm.in.Text, "hoog")) {
		t.Errorf("confirmation %q:\n%s", confirm.in.Subject, confirm.in.Text)
	}
	if irt := confirm.in.InReplyTo; len(irt) != 1 || irt[0] != "staff-2@desk.test" {
		t.Errorf("confirmation In-Reply-To %v, want Piet's mail", irt)
	}

	// Piet closes the case, answering his confirmation, with a last word:
	// the customer gets one mail, the closing mail carrying it.
	w.send(staffAddr, clientReply("Piet Pieters <"+staffAddr+">", "RE: [Case #1] [opgelost] Kassa start niet op", "staff-3@desk.test", confirm,
		"De kassa draait weer na de herstart.\n\n-- \nPiet"))
	rep = w.report(3)
	if rep.Decision != string(cases.OutcomeReply) || rep.CaseID != 1 || rep.Role != cases.RoleStaff {
		t.Fatalf("closing mail decided as %+v", rep)
	}
	if r := queuedIDs(rep, cases.MailRelay); len(r) != 0 {
		t.Errorf("closing with text also queued a relay %v: the customer gets two mails", r)
	}
	closing := w.mailWithID(t, anna, 4, queuedOne(t, rep, cases.MailClosing))
	if !strings.Contains(closing.in.Text, "De kassa draait weer na de herstart.") || !strings.Contains(closing.in.Text, "gesloten") {
		t.Errorf("closing mail lacks the staff text or the closing words:\n%s", closing.in.Text)
	}
	if strings.Contains(closing.in.Text, "> ") || strings.Contains(closing.in.Text, "Hallo Piet") {
		t.Errorf("closing mail carries Piet's quoted confirmation:\n%s", closing.in.Text)
	}
	if s := closing.in.Subject; !strings.Contains(s, "[Case #1]") || strings.Contains(strings.ToLower(s), "opgelost") {
		t.Errorf("closing subject %q", s)
	}
	if f := closing.in.From; f.Email != support {
		t.Errorf("closing From %+v", f)
	}
	if irt := closing.in.InReplyTo; len(irt) != 1 || irt[0] != relay.in.MessageID {
		t.Errorf("closing In-Reply-To %v, want the relay <%s>", irt, relay.in.MessageID)
	}
	if det := w.caseDetail(t, 1); det.Status != cases.StatusClosed {
		t.Errorf("status %q after [opgelost]", det.Status)
	}
	w.mailWithID(t, staffAddr, 2, queuedOne(t, rep, cases.MailConfirm))

	// The customer answers the closing mail in her thread: the case
	// reopens (R11c) with the priority staff set, and staff hear of it.
	w.send(anna, clientReply("Anna Jansen <"+anna+">", "Re: [Case #1] Kassa start niet op", "staff-4@jansen.test", closing,
		"Hij start helaas weer niet op.\n\nAnna"))
	rep = w.report(4)
	if rep.Decision != string(cases.OutcomeReopened) || rep.CaseID != 1 || rep.Ack != "" {
		t.Fatalf("customer's reply to the closing mail decided as %+v", rep)
	}
	det = w.caseDetail(t, 1)
	if det.Status != cases.StatusOpen || det.Priority != cases.PriorityHigh {
		t.Errorf("after the reopen: status %q priority %q", det.Status, det.Priority)
	}
	reopened := w.mailWithID(t, staffNotify, 2, queuedOne(t, rep, cases.MailNotify))
	if !strings.Contains(reopened.in.Text, "heropend") || !strings.Contains(reopened.in.Text, "Hij start helaas weer niet op.") ||
		strings.Contains(reopened.in.Text, "De kassa draait weer") {
		t.Errorf("reopen notification:\n%s", reopened.in.Text)
	}
	// Exactly these, no more: a duplicate relay or confirmation fails.
	w.exactInboxes(t, map[string]int{anna: 4, staffNotify: 2, staffAddr: 2})
}

// exactInboxes waits until deskd's outbox and Postfix's queue are both
// empty, so that every mail deskd sent has been delivered, then asserts
// that each user's INBOX holds exactly want[user] mails, with no
// Message-ID twice.
func (w *world) exactInboxes(t *testing.T, want map[string]int) {
	t.Helper()
	w.waitOutboxEmpty(t)
	w.stack.WaitQueueEmpty(t, staffWait)
	for user, n := range want {
		msgs := w.inbox(user, n)
		seen := map[string]bool{}
		for _, raw := range msgs {
			id := parseStaffMail(t, raw).in.MessageID
			if seen[id] {
				t.Errorf("%s got <%s> twice", user, id)
			}
			seen[id] = true
		}
		if len(msgs) != n {
			t.Errorf("%s has %d mails, want exactly %d", user, len(msgs), n)
		}
	}
}

// A mail that claims a staff address but whose topmost
// Authentication-Results (the one the receiving server adds, RFC 8601 §5)
// shows a DKIM failure is not staff, whatever a lower, sender-written
// header says: its keywords change nothing, it becomes a stranger's case,
// and the report says why. The private Postfix adds no
// Authentication-Results of its own, so the test writes the topmost header
// as the receiving server would; a control mail with a passing topmost
// header shows that the configuration does accept real staff.
func TestForgedStaffMail(t *testing.T) {
	w := staffWorld(t, func(o *daemon.Options) { o.Policy.TrustedAuthservID = "desk.test" })
	w.send(anna, mailText("Anna Jansen <"+anna+">", "Kassa start niet op", "forged-1@jansen.test", "", "De kassa start niet op."))
	w.report(1)
	before := len(w.caseDetail(t, 1).Messages)

	forged := mailText("Piet Pieters <"+staffAddr+">", "RE: [Case #1] [opgelost][laag] Kassa start niet op", "forged-2@elders.test",
		"Authentication-Results: desk.test; dkim=fail (signature did not verify) header.d=desk.test; spf=fail smtp.mailfrom=piet@desk.test\n"+
			"Authentication-Results: desk.test; dkim=pass header.d=desk.test; spf=pass smtp.mailfrom=piet@desk.test\n"+
			"In-Reply-To: <forged-1@jansen.test>\nReferences: <forged-1@jansen.test>\n",
		"Opgelost, de case mag dicht.")
	// Delivered as an outside sender would: through Postfix, envelope
	// sender the forged address.
	w.stack.Deliver(t, staffAddr, []string{support}, []byte(strings.ReplaceAll(forged, "\n", "\r\n")))
	rep := w.report(2)
	if rep.Suspicious == "" {
		t.Errorf("report of the forged mail has no Suspicious: %+v", rep)
	}
	if rep.Role == cases.RoleStaff || rep.CaseID == 1 || rep.Decision != string(cases.OutcomeNewCase) {
		t.Fatalf("forged staff mail decided as %+v: want a stranger's new case", rep)
	}
	if len(rep.Changes) != 0 || len(queuedIDs(rep, cases.MailRelay)) != 0 || len(queuedIDs(rep, cases.MailClosing)) != 0 || len(queuedIDs(rep, cases.MailConfirm)) != 0 {
		t.Errorf("forged mail acted as staff: changes %v, mails %v", rep.Changes, rep.Mails)
	}
	det := w.caseDetail(t, 1)
	if det.Status != cases.StatusOpen || det.Priority != "" || len(det.Messages) != before {
		t.Errorf("case 1 after the forged mail: status %q priority %q, %d messages; want open, unset, %d", det.Status, det.Priority, len(det.Messages), before)
	}
	forgedCase := w.caseDetail(t, rep.CaseID)
	if forgedCase.QuotedToken != 1 || !caseHasEvent(forgedCase, cases.EventSuspicious) {
		t.Errorf("forged mail's case: quoted token %d, events %+v", forgedCase.QuotedToken, forgedCase.Events)
	}
	// Staff are warned, in the notification, not to trust its From.
	notif := w.mailWithID(t, staffNotify, 2, queuedOne(t, rep, cases.MailNotify))
	if !strings.Contains(notif.in.Text, "LET OP") || !strings.Contains(notif.in.Text, "dkim=") {
		t.Errorf("notification of the forged mail carries no warning:\n%s", notif.in.Text)
	}

	// Control: the same address with a passing topmost header is staff.
	control := mailText("Piet Pieters <"+staffAddr+">", "RE: [Case #1] [laag] Kassa start niet op", "forged-3@desk.test",
		"Authentication-Results: desk.test; dkim=pass header.d=desk.test\nIn-Reply-To: <forged-1@jansen.test>\n", "")
	w.stack.Deliver(t, staffAddr, []string{support}, []byte(strings.ReplaceAll(control, "\n", "\r\n")))
	rep = w.report(3)
	if rep.Role != cases.RoleStaff || rep.CaseID != 1 || rep.Suspicious != "" {
		t.Fatalf("authenticated staff mail decided as %+v", rep)
	}
	if det := w.caseDetail(t, 1); det.Priority != cases.PriorityLow || det.Status != cases.StatusOpen {
		t.Errorf("after the authenticated [laag]: priority %q status %q", det.Priority, det.Status)
	}
}

// An internal note ([note]) stays inside: it is recorded on the case, the
// staff member gets a confirmation, and the customer gets nothing. The
// count is taken once the note's decision is committed and the outbox has
// handed everything to Postfix, and a later real reply (which must arrive
// as the customer's only new mail) closes the gap to LMTP delivery.
func TestNoteIsNotRelayed(t *testing.T) {
	w := staffWorld(t, nil)
	w.send(anna, mailText("Anna Jansen <"+anna+">", "Bonprinter piept", "note-1@jansen.test", "", "De bonprinter piept de hele dag."))
	rep := w.report(1)
	w.mailWithID(t, anna, 1, rep.Ack)
	notif := w.mailWithID(t, staffNotify, 1, queuedOne(t, rep, cases.MailNotify))

	const noteText = "Interne notitie: klant belde ook al; waarschijnlijk de firmware."
	w.send(staffAddr, clientReply("Piet Pieters <"+staffAddr+">", "RE: [Case #1] [note] Bonprinter piept", "note-2@desk.test", notif, noteText+"\n\n-- \nPiet"))
	rep = w.report(2)
	if rep.Role != cases.RoleStaff || rep.CaseID != 1 {
		t.Fatalf("note decided as %+v", rep)
	}
	if r, c := queuedIDs(rep, cases.MailRelay), queuedIDs(rep, cases.MailClosing); len(r)+len(c) != 0 {
		t.Fatalf("the note was queued for the customer: %v", rep.Mails)
	}
	w.waitOutboxEmpty(t)
	w.mailWithID(t, staffAddr, 1, queuedOne(t, rep, cases.MailConfirm))
	det := w.caseDetail(t, 1)
	if !caseHasEvent(det, cases.EventNote) || caseHasEvent(det, cases.EventRelayed) || caseHasEvent(det, cases.EventStaffResponse) {
		t.Errorf("events after the note: %+v", det.Events)
	}
	if n := len(w.inbox(anna, 1)); n != 1 {
		t.Errorf("anna has %d mails after the note, want 1 (the acknowledgement)", n)
	}

	// A real answer afterwards reaches her, and is all that does.
	w.send(staffAddr, clientReply("Piet Pieters <"+staffAddr+">", "RE: [Case #1] Bonprinter piept", "note-3@desk.test", notif, "Wij sturen een monteur.\n\n-- \nPiet"))
	rep = w.report(3)
	relayID := queuedOne(t, rep, cases.MailRelay)
	w.mailWithID(t, anna, 2, relayID)
	w.waitOutboxEmpty(t)
	msgs := w.inbox(anna, 2)
	if len(msgs) != 2 {
		t.Errorf("anna has %d mails, want 2 (acknowledgement, relay)", len(msgs))
	}
	for _, raw := range msgs {
		if p := parseStaffMail(t, raw); strings.Contains(p.in.Text, "Interne notitie") {
			t.Errorf("the note reached the customer in <%s>:\n%s", p.in.MessageID, p.in.Text)
		}
	}
}
