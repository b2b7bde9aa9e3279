package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/mail"
	"deskd/sla"
)

const (
	support   = "support@desk.test"
	anna      = "anna@jansen.test" // named contact of a Premium customer
	bob       = "bob@acme.test"    // named contact of a Business customer
	stranger  = "ivan@elders.test" // nobody's contact
	staffAddr = "piet@desk.test"
	// staffNotify is the staff.notify list: a mailbox of its own, in the
	// staff domain (the staff tests set it in their options).
	staffNotify = "helpdesk@desk.test"
	// gone is an address Postfix accepts and Dovecot refuses: mail to it
	// comes back to its sender as a real DSN (mailstack.Options.Vanished).
	gone = "gone@acme.test"
)

// world is one mail system (Dovecot + Postfix) with deskd running against
// it in-process.
type world struct {
	t     testing.TB
	stack *mailstack.Stack
	opts  daemon.Options

	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	reports []daemon.Report
}

func newStack(t testing.TB) *mailstack.Stack {
	return mailstack.Start(t, mailstack.Options{Users: []mailstack.User{
		{Address: support, Password: "support-pw"},
		{Address: anna, Password: "anna-pw"},
		{Address: bob, Password: "bob-pw"},
		{Address: stranger, Password: "ivan-pw"},
		{Address: staffAddr, Password: "piet-pw"},
		{Address: staffNotify, Password: "helpdesk-pw"},
	}, Vanished: []string{gone}})
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// options are deskd's defaults pointed at the stack.
func options(t testing.TB, stack *mailstack.Stack, dir string) daemon.Options {
	imapHost, imapPort := hostPort(t, stack.IMAPAddr)
	smtpHost, smtpPort := hostPort(t, stack.SMTPAddr)
	return daemon.Options{
		IMAP: mail.IMAPConfig{
			Host: imapHost, Port: imapPort, TLS: "none", Username: support, Password: stack.Password(support),
			Mailbox: "INBOX", ProcessedMailbox: "Processed", QuarantineMailbox: "Quarantine",
			Idle: true, PollInterval: 5 * time.Minute, IdleRefresh: 25 * time.Minute,
		},
		SMTP: mail.SMTPConfig{Host: smtpHost, Port: smtpPort, TLS: "none", Auth: "none", Timeout: 30 * time.Second},
		Policy: cases.Policy{
			SupportAddress: support, TokenPrefix: "Case", ReopenWindow: 14 * 24 * time.Hour,
			StaffDomains:    []string{"desk.test"},
			DefaultCustomer: "unknown", DefaultPlan: "Basic", DefaultLanguage: "nl",
			AutoPerHour: 5, AutoPerDay: 20, UndeliverableFor: 72 * time.Hour,
			Customers: []cases.Customer{
				{Name: "Bakkerij Jansen", Plan: "Premium", Language: "nl", Domains: []string{"jansen.test"},
					Contacts: []cases.Address{{Name: "Anna Jansen", Email: anna}}},
				{Name: "Acme", Plan: "Business", Language: "en", Domains: []string{"acme.test"},
					Contacts: []cases.Address{{Name: "Bob", Email: bob}}},
			},
		},
		SupportName:     "Desk Support",
		SLA:             sla.Default(),
		StorePath:       filepath.Join(dir, "deskd.db"),
		AdminSocket:     filepath.Join(dir, "admin.sock"),
		MaxMessageBytes: 25 << 20,
		RetryInitial:    200 * time.Millisecond,
		RetryMax:        2 * time.Second,
		GiveUpAfter:     time.Hour,
		Log:             slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newWorld starts a stack and deskd against it; tweak may change the
// options first.
func newWorld(t testing.TB, tweak func(*daemon.Options)) *world {
	t.Helper()
	stack := newStack(t)
	w := &world{t: t, stack: stack, opts: options(t, stack, t.TempDir())}
	if tweak != nil {
		tweak(&w.opts)
	}
	w.start()
	return w
}

func (w *world) start() {
	w.t.Helper()
	opts := w.opts
	opts.OnDecision = func(r daemon.Report) {
		w.mu.Lock()
		w.reports = append(w.reports, r)
		w.mu.Unlock()
	}
	d, err := daemon.Open(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.d, w.cancel, w.done = d, cancel, make(chan error, 1)
	go func() { w.done <- d.Run(ctx) }()
	w.t.Cleanup(w.stop)
}

func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("daemon: %v", err)
		}
	case <-time.After(15 * time.Second):
		w.t.Error("daemon did not stop within 15s")
	}
	w.cancel = nil
}

// send mails raw from one address to support@ through Postfix.
func (w *world) send(from string, raw string) {
	w.t.Helper()
	w.stack.Deliver(w.t, from, []string{support}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func (w *world) waitReports(n int, timeout time.Duration) []daemon.Report {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		got := append([]daemon.Report(nil), w.reports...)
		w.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("waited %s for %d decisions, got %d", timeout, n, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inbox returns the messages in user's mailbox, waiting for at least n.
func (w *world) inbox(user string, n int) [][]byte {
	w.t.Helper()
	return w.stack.WaitForMessages(w.t, user, "INBOX", n, 30*time.Second)
}

func parseHeader(t testing.TB, raw []byte) gomail.Header {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("mail does not parse: %v", err)
	}
	return r.Header
}

func mailText(from, subject, msgID, extra, body string) string {
	return "From: " + from + "\nTo: " + support + "\nSubject: " + subject + "\nMessage-ID: <" + msgID + ">\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\n" + extra +
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body + "\n"
}
