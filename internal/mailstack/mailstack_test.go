package mailstack

import (
	"bytes"
	"deskd/internal/ciskip"
	"fmt"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

var testUsers = []User{
	{Address: "support@example.test", Password: "support-secret"},
	{Address: "alice@customer.test", Password: "alice-secret"},
}

func testMessage(from, to, subject, id string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: Alice <%s>
To: Support <%s>
Subject: %s
Message-ID: <%s>
Date: Mon, 02 Jan 2006 15:04:05 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

My printer is on fire.
`, from, to, subject, id), "\n", "\r\n"))
}

// roundTrip sends one message from alice to support through Postfix and reads
// it back over IMAP.
func roundTrip(t *testing.T, s *Stack) {
	t.Helper()
	id := fmt.Sprintf("%d.roundtrip@customer.test", time.Now().UnixNano())
	raw := testMessage("alice@customer.test", "support@example.test", "Help: printer", id)
	s.Deliver(t, "alice@customer.test", []string{"support@example.test"}, raw)

	msgs := s.WaitForMessages(t, "support@example.test", "INBOX", 1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0]))
	if err != nil {
		t.Fatalf("parse delivered message: %v\n%s", err, msgs[0])
	}
	for k, want := range map[string]string{
		"Subject":    "Help: printer",
		"Message-Id": "<" + id + ">",
		"From":       "Alice <alice@customer.test>",
		"To":         "Support <support@example.test>",
		// Added by Dovecot's LMTP: proves the Postfix -> LMTP path, and
		// that the envelope recipient survived.
		"Delivered-To": "support@example.test",
		"Return-Path":  "<alice@customer.test>",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r := m.Header["Received"]; len(r) == 0 || !strings.Contains(strings.Join(r, "\n"), "mailstack.test") {
		t.Errorf("Received headers %q do not mention Postfix's mailstack.test", r)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(m.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body.String(), "My printer is on fire.") {
		t.Errorf("body = %q", body.String())
	}

	// The sender's own mailbox must stay untouched.
	if got := s.WaitForMessages(t, "alice@customer.test", "INBOX", 0, time.Second); len(got) != 0 {
		t.Errorf("alice has %d messages, want 0", len(got))
	}
}

func TestDeliverAndRead(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: testUsers})
	roundTrip(t, s)
}

// TestParallelStacks runs independent stacks at the same time to prove they
// share no ports, sockets, queues or mailboxes.
func TestParallelStacks(t *testing.T) {
	t.Parallel()
	for i := 0; i < 2; i++ {
		t.Run(fmt.Sprintf("stack%d", i), func(t *testing.T) {
			t.Parallel()
			s := Start(t, Options{Users: testUsers})
			roundTrip(t, s)
		})
	}
}

// Test binaries run side by side, and two stacks may pick the same free
// port: the one whose daemon binds it second must not take the other's
// greeting for its own (and deliver into the other's mailboxes). Each
// stack's Dovecot and Postfix greet with its name; another name counts as
// the port being in use, which Start retries with fresh ports.
func TestGreetingNamesTheStack(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: testUsers[:1]})
	name := filepath.Base(s.Dir)
	for _, g := range []struct{ addr, prefix string }{{s.IMAPAddr, "* OK"}, {s.SMTPAddr, "220 "}} {
		if err := waitGreeting(g.addr, g.prefix, name); err != nil {
			t.Errorf("own greeting at %s: %v", g.addr, err)
		}
		err := waitGreeting(g.addr, g.prefix, "ms-another-stack")
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("another stack's greeting at %s taken for its own: %v", g.addr, err)
		}
	}
}

func TestRejectsForeignRecipients(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: testUsers})
	raw := testMessage("support@example.test", "bob@elsewhere.invalid", "Re: help", "r1@example.test")
	err := s.SendSMTP("support@example.test", []string{"bob@elsewhere.invalid"}, raw)
	if err == nil || !strings.Contains(err.Error(), "Relay access denied") {
		t.Errorf("send to a foreign domain: err = %v, want Relay access denied", err)
	}
	err = s.SendSMTP("support@example.test", []string{"nobody@example.test"}, raw)
	if err == nil || !strings.Contains(err.Error(), "User unknown") {
		t.Errorf("send to an unknown local user: err = %v, want User unknown", err)
	}
}

func TestAppendIMAP(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: testUsers})
	const n = 200
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMessage("alice@customer.test", "support@example.test",
			fmt.Sprintf("bulk %d", i), fmt.Sprintf("bulk%d@customer.test", i))
	}
	s.AppendIMAP(t, "support@example.test", "INBOX", msgs...)
	s.AppendIMAP(t, "support@example.test", "Archive/2024", msgs[:3]...)

	got := s.WaitForMessages(t, "support@example.test", "INBOX", n, 10*time.Second)
	if len(got) != n {
		t.Fatalf("INBOX has %d messages, want %d", len(got), n)
	}
	for i, raw := range got {
		if !bytes.Equal(raw, msgs[i]) {
			t.Fatalf("message %d differs:\n%s\nwant:\n%s", i, raw, msgs[i])
		}
	}
	if got := s.WaitForMessages(t, "support@example.test", "Archive/2024", 3, 10*time.Second); len(got) != 3 {
		t.Errorf("Archive/2024 has %d messages, want 3", len(got))
	}

	// The documented mailbox layout: "/" separator, special-use folders.
	c := s.LoginIMAP(t, "support@example.test")
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, m := range list {
		var attrs []string
		for _, a := range m.Attrs {
			attrs = append(attrs, string(a))
		}
		listed[m.Mailbox] = strings.Join(attrs, " ")
		if m.Delim != '/' {
			t.Errorf("%s: delimiter %q, want '/'", m.Mailbox, m.Delim)
		}
	}
	for mbox, attr := range map[string]string{"INBOX": "", "Archive/2024": "", "Sent": `\Sent`,
		"Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`} {
		if a, ok := listed[mbox]; !ok || !strings.Contains(a, attr) {
			t.Errorf("mailbox %s: listed=%v attrs=%q, want %q", mbox, ok, a, attr)
		}
	}
}

func TestStopLeavesNoProcesses(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: testUsers[:1]})
	// Open an IMAP session so that a per-user imap process exists too.
	c := s.LoginIMAP(t, "support@example.test")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if len(stackProcesses(s.Dir)) < 2 {
		t.Fatalf("found %v processes for %s before Stop; the check below would prove nothing",
			stackProcesses(s.Dir), s.Dir)
	}
	dir := s.Dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := stackProcesses(dir); len(left) != 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestPassword(t *testing.T) {
	users, _, err := checkOptions(Options{Users: testUsers})
	if err != nil {
		t.Fatal(err)
	}
	s := &Stack{users: users}
	if got := s.Password("Support@Example.test"); got != "support-secret" {
		t.Errorf("Password = %q", got)
	}
	if got := s.Password("nobody@example.test"); got != "" {
		t.Errorf("Password(unknown) = %q", got)
	}
}

func TestCheckOptions(t *testing.T) {
	_, domains, err := checkOptions(Options{Users: testUsers, Domains: []string{"Extra.test", ""}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(domains, ","), "customer.test,example.test,extra.test"; got != want {
		t.Errorf("domains = %s, want %s", got, want)
	}
	for _, bad := range []Options{
		{},
		{Users: []User{{Address: "nodomain", Password: "x"}}},
		{Users: []User{{Address: "a@b.test", Password: ""}}},
		{Users: []User{{Address: "a@b.test", Password: "x:y"}}},
	} {
		if _, _, err := checkOptions(bad); err == nil {
			t.Errorf("checkOptions(%+v) accepted", bad)
		}
	}
}

// A missing mail stack must fail CI rather than skip the tests that need it.
func TestNeverSkipInCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := &ciskip.Recorder{TB: t}
	skipOrFail(r, "binaries missing")
	if r.SawSkip || !r.SawFatal {
		t.Errorf("with CI=true: skipped=%v failed=%v, want a failure", r.SawSkip, r.SawFatal)
	}
}
