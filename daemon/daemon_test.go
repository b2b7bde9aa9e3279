package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/internal/peers"
	"deskd/mail"
	"deskd/sla"
	"deskd/store"
)

// harness runs a real daemon against the in-process IMAP server and SMTP
// sink (real protocol peers on loopback).
type harness struct {
	t       *testing.T
	imap    *peers.IMAP
	smtp    *peers.SMTP
	opts    Options
	d       *Daemon
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	reports []Report
	sent    []SendReport
	// prepare, if set, sees the daemon between Open and Run.
	prepare func(*Daemon)
}

const support = "support@example.test"

func testOptions(t *testing.T, imapSrv *peers.IMAP, smtpSrv *peers.SMTP, dir string) Options {
	return Options{
		IMAP: mail.IMAPConfig{
			Host: "127.0.0.1", Port: imapSrv.Port(), TLS: "none", Username: support, Password: "pw",
			Mailbox: "INBOX", ProcessedMailbox: "Processed", QuarantineMailbox: "Quarantine",
			// A short poll: go-imap's memory server does not announce, when
			// IDLE starts, a message that arrived just before it (its
			// tracker only reports updates that come during IDLE; Dovecot
			// sends pending ones at once), so a test could wait for the
			// safety-net scan. Two seconds keep that wait short.
			Idle: true, PollInterval: 2 * time.Second, IdleRefresh: time.Minute,
		},
		SMTP: mail.SMTPConfig{Host: "127.0.0.1", Port: smtpSrv.Port(), TLS: "none", Auth: "none", Timeout: 10 * time.Second},
		Policy: cases.Policy{
			SupportAddress: support, TokenPrefix: "Case", ReopenWindow: 14 * 24 * time.Hour,
			StaffDomains:    []string{"example.test"},
			DefaultCustomer: "unknown", DefaultPlan: "Basic", DefaultLanguage: "nl",
			AutoPerHour: 5, AutoPerDay: 20, UndeliverableFor: 72 * time.Hour,
			Customers: []cases.Customer{{
				Name: "Bakkerij Jansen", Plan: "Premium", Language: "nl", Domains: []string{"jansen.example"},
				Contacts: []cases.Address{{Name: "Anna", Email: "anna@jansen.example"}},
			}, {
				Name: "Acme", Plan: "Business", Language: "en", Domains: []string{"acme.example"},
				Contacts: []cases.Address{{Name: "Bob", Email: "bob@acme.example"}},
			}},
		},
		SupportName:     "Example Support",
		SLA:             sla.Default(),
		StorePath:       filepath.Join(dir, "deskd.db"),
		AdminSocket:     filepath.Join(dir, "admin.sock"),
		MaxMessageBytes: 1 << 20,
		RetryInitial:    50 * time.Millisecond,
		RetryMax:        200 * time.Millisecond,
		GiveUpAfter:     time.Hour,
		Log:             slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// testLogWriter sends the daemon's warnings and errors to the test log, so
// a failing test shows why.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newHarness(t *testing.T, tweak func(*Options)) *harness {
	t.Helper()
	h := newHarnessNotStarted(t, tweak)
	h.start()
	return h
}

// newHarnessNotStarted is newHarness without start: the peers and the
// options only.
func newHarnessNotStarted(t *testing.T, tweak func(*Options)) *harness {
	t.Helper()
	imapSrv, err := peers.StartIMAP(support, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Close() })
	smtpSrv, err := peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	h := &harness{t: t, imap: imapSrv, smtp: smtpSrv}
	h.opts = testOptions(t, imapSrv, smtpSrv, t.TempDir())
	if tweak != nil {
		tweak(&h.opts)
	}
	return h
}

func (h *harness) start() {
	h.t.Helper()
	opts := h.opts
	also := opts.OnDecision // a test's own, after the harness's
	opts.OnDecision = func(r Report) {
		h.mu.Lock()
		h.reports = append(h.reports, r)
		h.mu.Unlock()
		if also != nil {
			also(r)
		}
	}
	opts.OnSent = func(r SendReport) { h.mu.Lock(); h.sent = append(h.sent, r); h.mu.Unlock() }
	d, err := Open(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.prepare != nil {
		h.prepare(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.cancel, h.done = d, cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("daemon stopped with error: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Error("daemon did not stop within 15s")
	}
	h.cancel = nil
}

func (h *harness) deliver(raw string) {
	h.t.Helper()
	if err := h.imap.Deliver("INBOX", []byte(strings.ReplaceAll(raw, "\n", "\r\n")), time.Now()); err != nil {
		h.t.Fatal(err)
	}
}

// waitReports waits until n decisions were committed.
func (h *harness) waitReports(n int) []Report {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.mu.Lock()
		got := append([]Report(nil), h.reports...)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waited for %d decisions, got %d", n, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitMails(n int) []peers.Mail {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := h.smtp.WaitFor(ctx, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) waitInboxEmpty() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.imap.Count("INBOX") != 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("inbox still holds %d messages", h.imap.Count("INBOX"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func header(t *testing.T, raw []byte) gomail.Header {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("sent mail does not parse: %v", err)
	}
	return r.Header
}

func question(id, from, subject string, extra string) string {
	return fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\nDate: Mon, 2 Nov 2026 10:00:00 +0100\n%sContent-Type: text/plain; charset=utf-8\n\nHallo, de kassa doet het niet.\n", from, support, subject, id, extra)
}

// A new question gets a case and exactly one acknowledgement that threads
// to it and carries the RFC 3834 markers; the customer's reply to the
// acknowledgement lands in the same case; the inbox ends empty.
func TestNewCaseAckAndReply(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("q1@jansen.example", "Anna <anna@jansen.example>", "Kassa kapot", ""))
	reps := h.waitReports(1)
	if reps[0].Decision != string(cases.OutcomeNewCase) || reps[0].CaseID != 1 || reps[0].Ack == "" {
		t.Fatalf("first decision = %+v", reps[0])
	}
	mails := h.waitMails(1)
	ack := mails[0]
	if len(ack.To) != 1 || ack.To[0] != "anna@jansen.example" || ack.From != support {
		t.Fatalf("ack envelope from %s to %v", ack.From, ack.To)
	}
	hdr := header(t, ack.Data)
	subject, _ := hdr.Subject()
	if subject != "[Case #1] Kassa kapot" {
		t.Errorf("ack subject %q", subject)
	}
	if got := hdr.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted %q (RFC 3834 §5)", got)
	}
	if got := hdr.Get("X-Auto-Response-Suppress"); got == "" {
		t.Error("no X-Auto-Response-Suppress")
	}
	if irt := hdr.Get("In-Reply-To"); irt != "<q1@jansen.example>" {
		t.Errorf("In-Reply-To %q", irt)
	}
	ackID, _ := hdr.MessageID()
	if id, ok := mail.VerifyMessageID(h.d.rt.Load().hmacKey, ackID); !ok || id != 1 {
		t.Errorf("ack Message-ID %q does not verify for case 1", ackID)
	}
	body := string(ack.Data)
	if !strings.Contains(body, "4 werkuren") {
		t.Errorf("ack does not name the Premium first-response target (R9): %s", body)
	}

	// The reply answers the acknowledgement.
	h.deliver(question("q2@jansen.example", "Anna <anna@jansen.example>", "Re: [Case #1] Kassa kapot",
		"In-Reply-To: <"+ackID+">\nReferences: <q1@jansen.example> <"+ackID+">\n"))
	reps = h.waitReports(2)
	if reps[1].Decision != string(cases.OutcomeReply) || reps[1].CaseID != 1 {
		t.Fatalf("reply decision = %+v", reps[1])
	}
	h.waitInboxEmpty()
	if n := h.imap.Count("Processed"); n != 2 {
		t.Errorf("Processed holds %d, want 2", n)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.smtp.Mails()); n != 1 {
		t.Errorf("%d mails sent, want 1 (no ack for a reply)", n)
	}

	var det CaseDetail
	if err := AdminCall(h.opts.AdminSocket, AdminRequest{Op: "cases.show", ID: 1}, &det); err != nil {
		t.Fatal(err)
	}
	if len(det.Messages) != 3 || det.Messages[1].Direction != cases.DirectionOut {
		t.Errorf("case 1 messages: %+v", det.Messages)
	}
	list, err := ListAll(h.opts.AdminSocket, "all")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Messages != 3 || list[0].Customer != "Bakkerij Jansen" {
		t.Errorf("list: %+v", list)
	}
}

// The same mail twice (To + Cc, a redelivery) is one record and gets one
// acknowledgement.
func TestDuplicateIsOneRecord(t *testing.T) {
	h := newHarness(t, nil)
	raw := question("dup@acme.example", "bob@acme.example", "Printer", "")
	h.deliver(raw)
	h.deliver(raw)
	reps := h.waitReports(2)
	if reps[0].Decision != string(cases.OutcomeNewCase) || reps[1].Decision != "duplicate" || reps[1].CaseID != reps[0].CaseID {
		t.Fatalf("decisions %+v", reps)
	}
	h.waitInboxEmpty()
	h.waitMails(1)
	time.Sleep(100 * time.Millisecond)
	if n := len(h.smtp.Mails()); n != 1 {
		t.Errorf("%d acknowledgements, want 1", n)
	}
}

// Machines never get an automatic answer (RFC 3834), and a robot cannot
// reopen a case.
func TestMachinesGetNoAnswer(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("ooo@acme.example", "bob@acme.example", "Out of office", "Auto-Submitted: auto-replied\n"))
	h.deliver(question("list@lists.example", "news@lists.example", "Newsletter", "List-Id: <news.lists.example>\nPrecedence: bulk\n"))
	h.deliver("From: MAILER-DAEMON@mx.example\nTo: support@example.test\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <b1@mx.example>\nReturn-Path: <>\n\nbounce\n")
	reps := h.waitReports(3)
	for _, r := range reps {
		if r.Ack != "" || r.Decision != string(cases.OutcomeMachineCase) {
			t.Errorf("machine mail %s: %+v", r.MessageID, r)
		}
	}
	h.waitInboxEmpty()
	time.Sleep(200 * time.Millisecond)
	if n := len(h.smtp.Mails()); n != 0 {
		t.Errorf("%d mails sent to machines", n)
	}
}

// Mail over max_message_bytes and mail that cannot be parsed end in
// quarantine with a reason; nothing is lost and nothing crashes.
func TestQuarantine(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxMessageBytes = 2048; o.IMAP.MaxBytes = 2048 })
	h.deliver(question("big@acme.example", "bob@acme.example", "Huge", "") + strings.Repeat("x", 5000) + "\n")
	reps := h.waitReports(1)
	// One check, one reason (mail.TooLarge), by the message's real size.
	if reps[0].Decision != "quarantine" || !strings.HasPrefix(reps[0].Reason, "too large: ") || !strings.HasSuffix(reps[0].Reason, " bytes (max_message_bytes 2048)") {
		t.Fatalf("decision %+v", reps[0])
	}
	h.waitInboxEmpty()
	if n := h.imap.Count("Quarantine"); n != 1 {
		t.Errorf("Quarantine holds %d", n)
	}
	err := h.d.DB().View(func(tx *store.Tx) error {
		n := 0
		err := tx.ForEachQuarantine(func(r *store.QuarantineRecord) error {
			n++
			if r.Reason == "" {
				t.Error("quarantine record without reason")
			}
			return nil
		})
		if n != 1 {
			t.Errorf("%d quarantine records", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The outbox keeps working while the SMTP server refuses: a temporary
// failure is retried with the same Message-ID, and ingest never waits.
func TestOutboxRetriesWithSameMessageID(t *testing.T) {
	h := newHarness(t, nil)
	h.smtp.FailNext(2)
	h.deliver(question("r1@acme.example", "bob@acme.example", "Retry me", ""))
	h.deliver(question("r2@acme.example", "bob@acme.example", "And me", ""))
	h.waitReports(2) // both decided while SMTP refuses
	mails := h.waitMails(2)
	// The sink accepts before the sender records the attempt: wait for
	// the records too.
	attempts := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		attempts = len(h.sent)
		h.mu.Unlock()
		if attempts >= 4 {
			break
		}
	}
	if attempts < 4 {
		t.Errorf("%d send attempts, want at least 4 (2 refused + 2 accepted)", attempts)
	}
	seen := map[string]bool{}
	for _, m := range mails {
		hdr := header(t, m.Data)
		id, _ := hdr.MessageID()
		seen[id] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sent {
		if !seen[s.MessageID] {
			t.Errorf("attempt with Message-ID %s never delivered", s.MessageID)
		}
	}
}

// A stranger who quotes another customer's case token gets a new case of
// their own: no hijacking.
func TestStrangerCannotHijack(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("a1@acme.example", "bob@acme.example", "Secret project", ""))
	h.waitReports(1)
	h.deliver(question("x1@evil.example", "mallory@evil.example", "Re: [Case #1] Secret project", "In-Reply-To: <a1@acme.example>\n"))
	reps := h.waitReports(2)
	if reps[1].CaseID == 1 || reps[1].Decision != string(cases.OutcomeNewCase) {
		t.Fatalf("stranger decision %+v", reps[1])
	}
}

// The daemon picks up where it stopped: mail that arrived while it was down
// is handled on start-up, and case numbers continue.
func TestRestartContinues(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("s1@acme.example", "bob@acme.example", "One", ""))
	h.waitReports(1)
	h.waitInboxEmpty()
	h.stop()
	h.deliver(question("s2@acme.example", "bob@acme.example", "Two", ""))
	h.mu.Lock()
	h.reports = nil
	h.mu.Unlock()
	h.start()
	reps := h.waitReports(1)
	if reps[0].CaseID != 2 {
		t.Fatalf("after restart: %+v", reps[0])
	}
}

// A bounce of deskd's own acknowledgement (a DSN naming its signed
// Message-ID) marks the bounced address undeliverable: the next mail from
// that address gets no automatic answer, so deskd never keeps mailing a
// dead mailbox (RFC 3834, loop protection).
func TestBounceSilencesAddress(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("g1@acme.example", "gone@acme.example", "Printer", ""))
	reps := h.waitReports(1)
	ackID := reps[0].Ack
	if ackID == "" {
		t.Fatalf("no ack: %+v", reps[0])
	}
	h.waitMails(1)
	h.deliver(`Return-Path: <>
From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)
To: support@example.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.acme.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

Your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example

Final-Recipient: rfc822; gone@acme.example
Action: failed
Status: 5.1.1

--B1
Content-Type: text/rfc822-headers

From: support@example.test
To: gone@acme.example
Message-ID: <` + ackID + `>

--B1--
`)
	reps = h.waitReports(2)
	if reps[1].Decision != string(cases.OutcomeAutoRecord) || reps[1].CaseID != 1 {
		t.Fatalf("bounce decided as %+v", reps[1])
	}
	err := h.d.DB().View(func(tx *store.Tx) error {
		until, err := tx.UndeliverableUntil("gone@acme.example")
		if err == nil && !until.After(time.Now()) {
			t.Errorf("gone@acme.example not marked undeliverable (until %v)", until)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.deliver(question("g2@acme.example", "gone@acme.example", "Another question", ""))
	reps = h.waitReports(3)
	if reps[2].Ack != "" || !strings.Contains(reps[2].NoAck, "bounced") {
		t.Errorf("mail from a bounced address: %+v", reps[2])
	}
}

// SIGTERM's promise at the daemon level: Run returns promptly when its
// context ends, even with mail waiting to be sent to a server that does
// not answer.
func TestStopWhileSMTPHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and say nothing: a hung relay
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	h := newHarness(t, func(o *Options) {
		o.SMTP.Port = ln.Addr().(*net.TCPAddr).Port
		o.SMTP.Timeout = time.Minute
	})
	h.deliver(question("h1@acme.example", "bob@acme.example", "Hang", ""))
	h.waitReports(1)
	select { // the send is now stuck in the greeting
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("deskd never connected to the relay")
	}
	// An "exits after stop" bound, the one kind of clock this suite keeps:
	// the send is stuck with a minute's timeout, so a stop that waited for
	// it would take a minute; 10 s is far above a stop that cancels it
	// (milliseconds) and far below the hung send, whatever the load.
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %v, want under 10s", d)
	}
}

// A mail whose commit keeps failing is retried on the next scans, then
// quarantined with the error as its reason instead of sitting in the inbox
// for ever.
func TestRepeatedCommitFailureQuarantines(t *testing.T) {
	h := newHarness(t, nil)
	f := &mail.Fetched{UID: 7, Mailbox: "INBOX", UIDValidity: 1, Raw: []byte("Subject: x\r\n\r\nbody\r\n"), Size: 20}
	in := &cases.Inbound{DedupeKey: "mid:stuck@x.example", MessageID: "stuck@x.example", Subject: "x"}
	log := h.opts.Log
	cause := errors.New("disk says no")
	for i := 1; i < maxCommitFailures; i++ {
		if got := h.d.commitFailed(f, in, Report{UID: 7}, cause, log); got != mail.Leave {
			t.Fatalf("failure %d: disposition %v, want Leave", i, got)
		}
	}
	if got := h.d.commitFailed(f, in, Report{UID: 7}, cause, log); got != mail.Quarantine {
		t.Fatalf("failure %d: disposition %v, want Quarantine", maxCommitFailures, got)
	}
	err := h.d.DB().View(func(tx *store.Tx) error {
		q, err := tx.Quarantined("mid:stuck@x.example")
		if err == nil && (q == nil || !strings.Contains(q.Reason, "disk says no")) {
			t.Errorf("quarantine record %+v", q)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
