package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/store"
)

// The SLA escalation loop through the real Dovecot + Postfix: warnings
// reach the staff.notify mailbox, breaches the staff.escalation mailbox,
// each once, across a restart of deskd (R9, R11d). deskd's clock is moved
// by hand; Dovecot's INTERNALDATE is real, so the instants come from the
// store's deadline index rather than from a fixed calendar date.

// escalationBox is staff.escalation: a mailbox of its own in the staff
// domain.
const escalationBox = "escalatie@desk.test"

// slaClock is deskd's clock in this test: the real time until frozen.
type slaClock struct {
	mu     sync.Mutex
	frozen time.Time
}

func (c *slaClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen.IsZero() {
		return time.Now()
	}
	return c.frozen
}

func (c *slaClock) set(t time.Time) { c.mu.Lock(); c.frozen = t; c.mu.Unlock() }

// slaWorld is newWorld with an escalation mailbox besides the usual ones:
// newStack has none.
func slaWorld(t *testing.T, tweak func(*daemon.Options)) *world {
	t.Helper()
	stack := mailstack.Start(t, mailstack.Options{Users: []mailstack.User{
		{Address: support, Password: "support-pw"},
		{Address: anna, Password: "anna-pw"},
		{Address: bob, Password: "bob-pw"},
		{Address: staffNotify, Password: "helpdesk-pw"},
		{Address: escalationBox, Password: "escalatie-pw"},
	}})
	w := &world{t: t, stack: stack, opts: options(t, stack, t.TempDir())}
	tweak(&w.opts)
	w.start()
	return w
}

// deadlinesOf reads case id's entries in the deadline index.
func (w *world) deadlinesOf(t *testing.T, id uint64) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := w.d.DB().View(func(tx *store.Tx) error {
		ds, err := tx.CaseDeadlines(id)
		for _, d := range ds {
			out[d.Kind] = d.At
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// subjectsIn are the subjects in user's INBOX, now.
func (w *world) subjectsIn(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	for _, raw := range w.stack.WaitForMessages(t, user, "INBOX", 0, staffWait) {
		h := parseHeader(t, raw)
		s, _ := h.Subject()
		out = append(out, s)
	}
	return out
}

func countPrefix(subjects []string, prefix string) int {
	n := 0
	for _, s := range subjects {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// waitSubject waits until user's INBOX holds a mail whose subject starts
// with prefix.
func (w *world) waitSubject(t *testing.T, user, prefix string) {
	t.Helper()
	deadline := time.Now().Add(staffWait)
	for {
		subjects := w.subjectsIn(t, user)
		if countPrefix(subjects, prefix) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after %s; it holds %q", user, prefix, staffWait, subjects)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A Premium case nobody answers: the first-response warning (R9, 75%)
// reaches staff.notify; deskd restarts; the breach reaches
// staff.escalation; neither is ever sent twice. A Business case received
// alongside is the barrier at the end: its own warning falls due after
// both of the Premium case's alerts, so the escalation round that sends
// it has looked at every due entry, the Premium case's included.
func TestSLAEscalationThroughStack(t *testing.T) {
	clock := &slaClock{}
	var mu sync.Mutex
	var sent []daemon.SendReport
	w := slaWorld(t, func(o *daemon.Options) {
		o.Now = clock.now
		o.Policy.StaffNotify = []string{staffNotify}
		o.Policy.StaffLanguage = "nl"
		o.Escalation = []string{escalationBox}
		o.OnSent = func(r daemon.SendReport) { mu.Lock(); sent = append(sent, r); mu.Unlock() }
	})
	w.send(anna, mailText("Anna Jansen <"+anna+">", "Kassa kapot", "sla-1@jansen.test", "", "De kassa doet het niet."))
	w.send(bob, mailText("Bob <"+bob+">", "Printer", "sla-2@acme.test", "", "The printer is broken."))
	var annaCase, bobCase uint64
	for _, r := range w.waitReports(2, staffWait) {
		switch {
		case r.From == anna:
			annaCase = r.CaseID
		case r.From == bob:
			bobCase = r.CaseID
		}
	}
	if annaCase == 0 || bobCase == 0 {
		t.Fatalf("cases: anna %d, bob %d", annaCase, bobCase)
	}
	w.waitOutboxEmpty(t)
	annaDue := w.deadlinesOf(t, annaCase)
	warnAt, breachAt := annaDue["first_response/warning/4h0m0s"], annaDue["first_response/breach/4h0m0s"]
	barrierAt := w.deadlinesOf(t, bobCase)["first_response/warning/8h0m0s"]
	if warnAt.IsZero() || breachAt.IsZero() || barrierAt.IsZero() || !barrierAt.After(breachAt) {
		t.Fatalf("deadlines: Premium case %v, Business warning %v", annaDue, barrierAt)
	}
	warning := fmt.Sprintf("[Case #%d] SLA-waarschuwing: eerste reactie", annaCase)
	breach := fmt.Sprintf("[Case #%d] SLA overschreden: reactietijd", annaCase)

	clock.set(warnAt)
	w.d.CheckDeadlines()
	w.waitSubject(t, staffNotify, warning)
	w.waitOutboxEmpty(t)

	w.stop()
	clock.set(breachAt.Add(time.Minute))
	w.start()
	w.d.CheckDeadlines()
	w.waitSubject(t, escalationBox, breach)

	for range 3 {
		w.d.CheckDeadlines()
	}
	clock.set(barrierAt)
	w.d.CheckDeadlines()
	w.waitSubject(t, staffNotify, fmt.Sprintf("[Case #%d] SLA-waarschuwing", bobCase))
	w.waitOutboxEmpty(t)

	kinds := map[string]int{}
	mu.Lock()
	for _, r := range sent {
		if r.CaseID == annaCase && r.Err == nil {
			kinds[r.Kind]++
		}
	}
	mu.Unlock()
	if kinds["sla_warning"] != 1 || kinds["sla_breach"] != 1 {
		t.Errorf("deskd sent the Premium case's alerts %v times, want one sla_warning and one sla_breach", kinds)
	}
	staff, esc := w.subjectsIn(t, staffNotify), w.subjectsIn(t, escalationBox)
	t.Logf("%s holds %q; %s holds %q", staffNotify, staff, escalationBox, esc)
	if n := countPrefix(staff, warning); n != 1 {
		t.Errorf("%s holds %d %q, want 1: %q", staffNotify, n, warning, staff)
	}
	if n := countPrefix(esc, breach); n != 1 {
		t.Errorf("%s holds %d %q, want 1: %q", escalationBox, n, breach, esc)
	}
	slaMails := 0
	for _, s := range staff {
		if strings.Contains(s, " SLA") {
			slaMails++
		}
	}
	if slaMails != 2 {
		t.Errorf("%s holds %d SLA mails, want 2 (one warning per case): %q", staffNotify, slaMails, staff)
	}
	if len(esc) != 1 {
		t.Errorf("%s holds %d mails, want the one breach: %q", escalationBox, len(esc), esc)
	}
}
