package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/cases"
	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/mail"
	"deskd/store"
)

// The burst seen on a real stack (issue 10): 4 questions each from 9
// people of 2 customers at once, 4 of them named contacts (R1), 5
// colleagues who are not. Before each kind of automatic mail had its own
// budget, the R1 notices about the colleagues used up the named
// contacts' auto_reply_per_hour, and they got 2 of their 4
// acknowledgements. Now every person gets all 4 of their own, each named
// contact one R1 notice at once, and, a notice_digest later (across a
// restart of deskd), one digest listing every other colleague's case,
// never twice.

// burstPerson is one writer of the burst.
type burstPerson struct {
	addr, name string
	named      bool
	customer   string
}

func burstPeople() []burstPerson {
	return []burstPerson{
		{"anna@jansen.test", "Anna Jansen", true, "Bakkerij Jansen"},
		{"dirk@jansen.test", "Dirk Jansen", true, "Bakkerij Jansen"},
		{"els@jansen.test", "Els", false, "Bakkerij Jansen"},
		{"fons@jansen.test", "Fons", false, "Bakkerij Jansen"},
		{"gert@jansen.test", "Gert", false, "Bakkerij Jansen"},
		{"bob@acme.test", "Bob", true, "Acme"},
		{"carol@acme.test", "Carol", true, "Acme"},
		{"hank@acme.test", "Hank", false, "Acme"},
		{"iris@acme.test", "Iris", false, "Acme"},
	}
}

// TestBurstOwnAcksAndNoticeDigest is the burst above.
func TestBurstOwnAcksAndNoticeDigest(t *testing.T) {
	people := burstPeople()
	users := []mailstack.User{{Address: support, Password: "support-pw"}}
	for _, p := range people {
		users = append(users, mailstack.User{Address: p.addr, Password: p.name + "-pw"})
	}
	stack := mailstack.Start(t, mailstack.Options{Users: users})
	clock := &slaClock{}
	var mu sync.Mutex
	var sent []daemon.SendReport
	w := &world{t: t, stack: stack, opts: options(t, stack, t.TempDir())}
	w.opts.Now = clock.now
	w.opts.NoticeDigest = time.Hour
	w.opts.OnSent = func(r daemon.SendReport) { mu.Lock(); sent = append(sent, r); mu.Unlock() }
	// auto_reply_per_hour stays 5: each named contact's 4 acks and the
	// notices about 3 (or 2) colleagues' 12 (or 8) cases exceed it.
	for i := range w.opts.Policy.Customers {
		c := &w.opts.Policy.Customers[i]
		c.Contacts = nil
		for _, p := range people {
			if p.named && p.customer == c.Name {
				c.Contacts = append(c.Contacts, cases.Address{Name: p.name, Email: p.addr})
			}
		}
	}
	w.start()

	const questions = 4
	for q := range questions {
		for _, p := range people {
			w.send(p.addr, mailText(p.name+" <"+p.addr+">", fmt.Sprintf("Question %d of %s", q, p.name),
				fmt.Sprintf("burst-%d-%s", q, p.addr), "", "Please help."))
		}
	}
	reps := w.waitReports(questions*len(people), 2*time.Minute)
	colleagueCases := map[string][]uint64{} // customer → the colleagues' cases
	for _, r := range reps {
		if r.Ack == "" {
			t.Errorf("%s's %q got no acknowledgement: %s", r.From, r.Subject, r.NoAck)
		}
		for _, p := range people {
			if p.addr == r.From && !p.named {
				colleagueCases[p.customer] = append(colleagueCases[p.customer], r.CaseID)
			}
		}
	}
	waitOutboxEmpty(t, w, clock)

	// Every person's INBOX: their 4 acknowledgements; a named contact's
	// also the one notice sent at once.
	for _, p := range people {
		want := questions
		if p.named {
			want++
		}
		msgs := w.stack.WaitForMessages(t, p.addr, "INBOX", want, staffWait)
		acks, notices := classify(t, msgs, p.name)
		if acks != questions || len(msgs) != want {
			t.Errorf("%s: %d own acknowledgements of %d, %d mails in all, want %d", p.addr, acks, questions, len(msgs), want)
		}
		if p.named && len(notices) != 1 {
			t.Errorf("%s: %d R1 notices at once, want 1", p.addr, len(notices))
		}
	}

	// The rest waits for the digest, in the store, across a restart.
	w.stop()
	w.start()
	pending := map[string]int{}
	if err := w.d.DB().View(func(tx *store.Tx) error {
		all, err := tx.PendingNoticeDigests()
		for _, dg := range all {
			pending[dg.Contact.Email] = len(dg.Pending)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range people {
		if want := len(colleagueCases[p.customer]) - 1; p.named && pending[p.addr] != want {
			t.Errorf("%s: %d notices pending after the restart, want %d", p.addr, pending[p.addr], want)
		}
	}

	clock.set(time.Now().Add(time.Hour + time.Minute))
	w.d.CheckDeadlines()
	for _, p := range people {
		if !p.named {
			continue
		}
		msgs := w.stack.WaitForMessages(t, p.addr, "INBOX", questions+2, staffWait)
		_, notices := classify(t, msgs, p.name)
		if len(notices) != 2 {
			t.Fatalf("%s: %d notices after the digest period, want 2", p.addr, len(notices))
		}
		digest := notices[1]
		for _, id := range colleagueCases[p.customer] {
			line := fmt.Sprintf("[Case #%d]", id)
			if in := strings.Contains(digest, line); in == strings.Contains(notices[0], line) {
				t.Errorf("%s: case %d in the immediate notice %v, in the digest %v: want exactly one", p.addr, id, !in, in)
			}
		}
	}
	// Nothing doubled: after the digest round, exactly one more mail per
	// named contact was sent, and nothing is pending.
	waitOutboxEmpty(t, w, clock)
	mu.Lock()
	digests := 0
	for _, s := range sent {
		if s.Kind == string(cases.MailUnauthorised) && s.Err == nil && s.Final {
			digests++
		}
	}
	mu.Unlock()
	if digests != 8 { // 4 named contacts × (notice + digest)
		t.Errorf("%d R1 mails sent, want 8", digests)
	}
}

// classify counts the acknowledgements of name's own questions among
// msgs and returns the texts of the R1 notices, oldest first.
func classify(t *testing.T, msgs [][]byte, name string) (acks int, notices []string) {
	t.Helper()
	for _, raw := range msgs {
		in, err := mail.Parse(raw, time.Now(), mail.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.Contains(in.Subject, "of "+name) && slices.Contains(in.Auto.Reasons, "auto-submitted=auto-replied"):
			acks++
		case strings.Contains(in.Text, "named contact") || strings.Contains(in.Text, "vaste contactpersoon"):
			notices = append(notices, in.Text)
		default:
			t.Errorf("unexpected mail %q", in.Subject)
		}
	}
	return acks, notices
}

// waitOutboxEmpty waits until every queued mail was handed to Postfix.
func waitOutboxEmpty(t *testing.T, w *world, clock *slaClock) {
	t.Helper()
	deadline := time.Now().Add(staffWait)
	for {
		var n int
		if err := w.d.DB().View(func(tx *store.Tx) error {
			var err error
			n, _, err = tx.OutboxStats(clock.now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d mails", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
