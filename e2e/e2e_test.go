package e2e

import (
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/daemon"
)

// A customer writes through Postfix; deskd hears of it over IDLE from
// Dovecot, opens a case, and its acknowledgement arrives in the customer's
// own Dovecot mailbox, threaded to the customer's mail, marked as automatic
// (RFC 3834 §5), naming the Premium first-response target (R9). The
// customer's reply to the acknowledgement lands in the same case and gets
// no second acknowledgement. support@'s inbox ends empty; the mails are in
// Processed.
func TestCustomerRoundTrip(t *testing.T) {
	w := newWorld(t, nil)
	w.send(anna, mailText("Anna Jansen <"+anna+">", "Kassa start niet op", "e2e-1@jansen.test", "", "Goedemorgen, de kassa start niet meer op."))

	acks := w.inbox(anna, 1)
	h := parseHeader(t, acks[0])
	subject, _ := h.Subject()
	if subject != "[Case #1] Kassa start niet op" {
		t.Errorf("ack subject %q", subject)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted %q", got)
	}
	if got := h.Get("In-Reply-To"); got != "<e2e-1@jansen.test>" {
		t.Errorf("In-Reply-To %q", got)
	}
	if !strings.Contains(string(acks[0]), "4 werkuren") {
		t.Errorf("acknowledgement does not name the R9 target for Premium:\n%s", acks[0])
	}
	ackID, _ := h.MessageID()

	w.send(anna, mailText("Anna Jansen <"+anna+">", "Re: [Case #1] Kassa start niet op", "e2e-2@jansen.test",
		"In-Reply-To: <"+ackID+">\nReferences: <e2e-1@jansen.test> <"+ackID+">\n", "Het scherm blijft zwart."))
	reps := w.waitReports(2, 30*time.Second)
	if reps[1].Decision != string(cases.OutcomeReply) || reps[1].CaseID != 1 {
		t.Fatalf("reply decided as %+v", reps[1])
	}
	support := w.stack.LoginIMAP(t, support)
	for _, mbox := range []struct {
		name string
		want uint32
	}{{"INBOX", 0}, {"Processed", 2}} {
		st, err := support.Status(mbox.name, statusMessages()).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages != mbox.want {
			t.Errorf("%s holds %d messages, want %d", mbox.name, *st.NumMessages, mbox.want)
		}
	}
	// The reply queued nothing, and nothing is left in Postfix: anna's
	// mailbox is final.
	if reps[1].Ack != "" || len(reps[1].Mails) != 0 {
		t.Errorf("the reply queued %q %v, want nothing", reps[1].Ack, reps[1].Mails)
	}
	w.stack.WaitQueueEmpty(t, 30*time.Second)
	if n := len(w.inbox(anna, 1)); n != 1 {
		t.Errorf("anna has %d mails from deskd, want 1 (a reply gets no acknowledgement)", n)
	}

	var det daemon.CaseDetail
	if err := daemon.AdminCall(w.opts.AdminSocket, daemon.AdminRequest{Op: "cases.show", ID: 1}, &det); err != nil {
		t.Fatal(err)
	}
	if det.Customer != "Bakkerij Jansen" || det.Plan != "Premium" || len(det.Messages) != 3 {
		t.Errorf("case 1: customer %q plan %q, %d messages", det.Customer, det.Plan, len(det.Messages))
	}
	// R11b: the clock starts at the server's receipt, which comes before
	// the decision (TestReceiptTimeIsInternalDate checks it to the second
	// against INTERNALDATEs that differ from Date:).
	if det.ReceivedAt.IsZero() || det.ReceivedAt.After(det.CreatedAt) {
		t.Errorf("received_at %v: want Dovecot's receipt, before the decision at %v", det.ReceivedAt, det.CreatedAt)
	}
}

// An out-of-office robot answering the acknowledgement is recorded on the
// case and gets no answer: no loop (RFC 3834). A bounce of deskd's own mail
// silences the bounced address.
func TestNoLoopWithRobots(t *testing.T) {
	w := newWorld(t, nil)
	w.send(bob, mailText("Bob <"+bob+">", "Printer offline", "e2e-r1@acme.test", "", "The printer is offline."))
	acks := w.inbox(bob, 1)
	h := parseHeader(t, acks[0])
	ackID, _ := h.MessageID()

	w.send(bob, mailText("Bob <"+bob+">", "Automatic reply: [Case #1] Printer offline", "e2e-r2@acme.test",
		"In-Reply-To: <"+ackID+">\nAuto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n", "I am out of the office."))
	reps := w.waitReports(2, 30*time.Second)
	if reps[1].Decision != string(cases.OutcomeAutoRecord) || reps[1].CaseID != 1 || reps[1].Ack != "" {
		t.Fatalf("robot reply decided as %+v", reps[1])
	}
	// Nothing queued for the robot's mail (Ack is empty above, Mails
	// here), and nothing left in Postfix: bob's mailbox is final.
	if len(reps[1].Mails) != 0 {
		t.Errorf("robot reply queued %v", reps[1].Mails)
	}
	w.stack.WaitQueueEmpty(t, 30*time.Second)
	if n := len(w.inbox(bob, 1)); n != 1 {
		t.Errorf("bob got %d mails from deskd, want 1", n)
	}

	// A real bounce: deskd acknowledges a mail from an address whose
	// mailbox no longer exists; Postfix accepts the acknowledgement,
	// Dovecot's LMTP refuses it, and Postfix returns it to support@ as a
	// DSN (RFC 3464). That bounce silences the address: its next mail gets
	// no acknowledgement.
	w.send(gone, mailText("Gone <"+gone+">", "Licentie verlopen", "e2e-r3@acme.test", "", "Onze licentie is verlopen."))
	// Generous: the ack's way out and the bounce's way back cross the
	// outbox, Postfix and Dovecot; 60 s once ran out on a machine at load
	// 28. The wait ends as soon as the bounce is decided.
	reps = w.waitReports(4, 3*time.Minute)
	if reps[2].Ack == "" {
		t.Fatalf("first mail from %s decided as %+v, want an acknowledgement", gone, reps[2])
	}
	if reps[3].Role != cases.RoleMachine || reps[3].Ack != "" || reps[3].CaseID != reps[2].CaseID {
		t.Errorf("Postfix's bounce decided as %+v, want a machine's mail on case %d, unanswered", reps[3], reps[2].CaseID)
	}
	w.send(gone, mailText("Gone <"+gone+">", "Nog een vraag", "e2e-r4@acme.test", "", "Hallo?"))
	reps = w.waitReports(5, 30*time.Second)
	if reps[4].Ack != "" || !strings.Contains(reps[4].NoAck, "bounced") {
		t.Errorf("mail from the bounced address after the bounce decided as %+v, want no acknowledgement, for the bounce", reps[4])
	}
}

// A stranger who copies a customer's Message-ID and case token gets a case
// of their own: the customer's case is not reachable (no hijack).
func TestStrangerCannotHijack(t *testing.T) {
	w := newWorld(t, nil)
	w.send(anna, mailText(anna, "Vertrouwelijk", "e2e-h1@jansen.test", "", "Intern verhaal."))
	w.waitReports(1, 30*time.Second)
	w.send(stranger, mailText(stranger, "Re: [Case #1] Vertrouwelijk", "e2e-h2@elders.test",
		"In-Reply-To: <e2e-h1@jansen.test>\nReferences: <e2e-h1@jansen.test>\n", "Let me in."))
	reps := w.waitReports(2, 30*time.Second)
	if reps[1].CaseID == 1 || reps[1].Decision != string(cases.OutcomeNewCase) {
		t.Fatalf("stranger decided as %+v", reps[1])
	}
	acks := w.inbox(stranger, 1)
	h := parseHeader(t, acks[0])
	if s, _ := h.Subject(); !strings.HasPrefix(s, "[Case #2] ") {
		t.Errorf("stranger's ack subject %q", s)
	}
}

// Marking a mail \Seen in another client changes nothing: deskd never
// relies on the flag.
func TestSeenFlagIsIgnored(t *testing.T) {
	w := newWorld(t, nil)
	w.stop()
	w.send(bob, mailText(bob, "Read by a colleague", "e2e-s1@acme.test", "", "Someone opened this in Thunderbird."))
	w.stack.WaitForMessages(t, support, "INBOX", 1, 30*time.Second)
	c := w.stack.LoginIMAP(t, support)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(seqAll(), seenFlag(), nil).Close(); err != nil {
		t.Fatal(err)
	}
	w.start()
	reps := w.waitReports(1, 30*time.Second)
	if reps[0].Decision != string(cases.OutcomeNewCase) {
		t.Fatalf("seen mail decided as %+v", reps[0])
	}
	w.inbox(bob, 1)
}
