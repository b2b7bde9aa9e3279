package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNoticeDigestBurst: a burst of mails from a customer's colleagues who
// are not named contacts, amid the named contact's own questions. The
// named contact gets every acknowledgement of their own (each kind of
// automatic mail has its own budget), one R1 notice at once, and then at
// most one digest per limits.notice_digest listing every case since, across
// a restart without loss or doubling (R1; RFC 3834 §2 budgets).
func TestNoticeDigestBurst(t *testing.T) {
	start := ams(time.November, 24, 10, 0)
	s := newSLAHarness(t, start, func(o *Options) {
		o.NoticeDigest = time.Hour // auto_reply_per_hour stays 5: below 4 acks + 6 notices
	})
	const colleagues = 6
	n := 0
	for i := range 4 {
		// Bob (Acme's named contact) asks; colleagues write around it.
		s.deliverNow(slaBob, fmt.Sprintf("Question %d", i), fmt.Sprintf("bob-%d@acme.example", i), "Hello.")
		n++
		for j := i; j < colleagues; j += 4 {
			s.deliverNow(fmt.Sprintf("Colleague %d <coll%d@acme.example>", j, j), fmt.Sprintf("Issue %d", j), fmt.Sprintf("coll-%d@acme.example", j), "Hi.")
			n++
		}
	}
	reps := s.waitReports(n)
	s.settle()
	for _, r := range reps {
		if r.From == "bob@acme.example" && r.Ack == "" {
			t.Errorf("bob's %q got no acknowledgement: %s", r.Subject, r.NoAck)
		}
	}
	bobs := func(kind string) []sentMail {
		var out []sentMail
		for _, m := range s.sentMails() {
			if slices.Contains(m.to, "bob@acme.example") && strings.Contains(m.subject, kind) {
				out = append(out, m)
			}
		}
		return out
	}
	const single, digest = "Issue", "not named contacts"
	if got := bobs("Question"); len(got) != 4 {
		t.Errorf("bob got %d acknowledgements of his 4 questions: %v", len(got), subjects(got))
	}
	first := bobs(single)
	if len(first) != 1 || !strings.Contains(first[0].text, "coll0@acme.example") {
		t.Fatalf("bob got %d immediate notices, want 1 about coll0: %v", len(first), subjects(first))
	}

	// A restart within the period sends nothing more, and loses nothing.
	s.stop()
	s.start()
	s.settle()
	if err := s.d.sendDueDigests(); err != nil {
		t.Fatal(err)
	}
	s.waitOutboxEmpty()
	if got := bobs(digest); len(got) != 0 {
		t.Errorf("a digest before the period ended: %v", subjects(got))
	}

	// The period over: one digest with the five other colleagues' cases.
	s.moveTo(start.Add(time.Hour + time.Minute))
	if err := s.d.sendDueDigests(); err != nil {
		t.Fatal(err)
	}
	s.waitOutboxEmpty()
	got := bobs(digest)
	if len(got) != 1 {
		t.Fatalf("bob got %d digests, want 1: %v", len(got), subjects(got))
	}
	for j := 1; j < colleagues; j++ {
		if !strings.Contains(got[0].text, fmt.Sprintf("coll%d@acme.example", j)) {
			t.Errorf("digest lacks colleague %d:\n%s", j, got[0].text)
		}
	}
	if strings.Contains(got[0].text, "coll0@") {
		t.Errorf("digest repeats the notice sent at once:\n%s", got[0].text)
	}
	// Nothing pending: a later round sends nothing.
	s.moveTo(start.Add(3 * time.Hour))
	if err := s.d.sendDueDigests(); err != nil {
		t.Fatal(err)
	}
	s.waitOutboxEmpty()
	if n := len(bobs(digest)) + len(bobs(single)); n != 2 {
		t.Errorf("bob got %d notices in all, want 2", n)
	}
}
