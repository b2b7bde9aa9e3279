package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/store"
)

// TestDeliverTakesTheIngestSteps: a locally built message (the customer
// portal's web reply) goes through the same recognise, decide and commit
// steps as an IMAP mail: a new case with its acknowledgement, a reply
// threaded into it, the same message again a duplicate, nothing in the
// IMAP checkpoint; and SendMail queues a mail on the same road.
func TestDeliverTakesTheIngestSteps(t *testing.T) {
	h := newHarness(t, nil)
	raw := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	rep, err := h.d.Deliver(raw(question("web-1@jansen.example", "Anna <anna@jansen.example>", "Kassa", "")), at)
	if err != nil || rep.Decision != string(cases.OutcomeNewCase) || rep.CaseID == 0 || rep.Ack == "" {
		t.Fatalf("first delivery: %+v, %v", rep, err)
	}
	reply := question("web-2@jansen.example", "Anna <anna@jansen.example>", "Re: [Case #1] Kassa", "In-Reply-To: <"+rep.Ack+">\n")
	rep2, err := h.d.Deliver(raw(reply), at.Add(time.Minute))
	if err != nil || rep2.Decision != string(cases.OutcomeReply) || rep2.CaseID != rep.CaseID {
		t.Fatalf("reply: %+v, %v", rep2, err)
	}
	again, err := h.d.Deliver(raw(reply), at.Add(2*time.Minute))
	if err != nil || again.Decision != "duplicate" || again.CaseID != rep.CaseID {
		t.Errorf("the same reply again: %+v, %v", again, err)
	}
	h.waitMails(1) // the acknowledgement
	err = h.d.DB().View(func(tx *store.Tx) error {
		c, err := tx.Case(rep.CaseID)
		if err != nil {
			return err
		}
		if len(c.MessageKeys) != 3 { // question, ack, reply
			t.Errorf("case messages %v", c.MessageKeys)
		}
		if v, _, err := tx.Checkpoint(""); err != nil || v != 0 {
			t.Errorf("a delivered mail moved an IMAP checkpoint: %d, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The portal's own mail: the road renders, records and queues it.
	id, err := h.d.SendMail(rep.CaseID, &cases.OutMail{
		Kind: cases.MailPrioritySet, To: []cases.Address{{Email: "anna@jansen.example"}}, Language: "nl", Automatic: "auto-generated",
	})
	if err != nil || id == "" {
		t.Fatalf("SendMail: %q, %v", id, err)
	}
	h.waitMails(2)
	// A rate-limited kind over its budget is refused, and says so.
	for range 6 {
		_, err = h.d.SendMail(0, &cases.OutMail{
			Kind: cases.MailError, To: []cases.Address{{Email: "anna@jansen.example"}}, Language: "nl",
			Problems: []string{"x"}, Automatic: "auto-replied", RateLimited: true,
		})
	}
	if !errors.Is(err, ErrNotSent) || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("the sixth error mail in an hour: %v, want a rate limit", err)
	}
}
