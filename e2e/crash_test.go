package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"deskd/internal/crashtest"
	"deskd/internal/mailstack"
)

// TestCrashSafety is cmd/deskd's crash scenario (internal/crashtest)
// against the servers users run: deskd, built and started as its own
// process, reads a backlog of 500 mails from a private Dovecot and sends
// its acknowledgements through Postfix into the customers' Dovecot
// mailboxes, and is SIGKILLed at random moments while it does. Afterwards
// every mail is in exactly one case, support's inbox is empty and every
// case's requester holds exactly one distinct acknowledgement.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is long; run without -short")
	}
	const (
		crashSupport = "support@crash.test"
		customers    = 20
	)
	customer := func(i int) string { return fmt.Sprintf("c%d@klant.test", i%customers) }
	users := []mailstack.User{{Address: crashSupport, Password: "support-pw"}}
	for i := range customers {
		users = append(users, mailstack.User{Address: customer(i), Password: "pw"})
	}
	stack := mailstack.Start(t, mailstack.Options{Users: users})
	dir := t.TempDir()
	bin := buildDeskd(t, dir)
	configPath := filepath.Join(dir, "config.yaml")
	imapHost, imapPort := hostPort(t, stack.IMAPAddr)
	smtpHost, smtpPort := hostPort(t, stack.SMTPAddr)
	cfg := fmt.Sprintf(`imap:
  host: %s
  port: %d
  tls: none
  username: %s
  password: %s
smtp:
  host: %s
  port: %d
  tls: none
  auth: none
  retry_initial: 100ms
  retry_max: 1s
support:
  address: %s
  name: Crash Support
staff:
  domains: [crash.test]
limits:
  auto_reply_per_hour: 1000
  auto_reply_per_day: 1000
store:
  path: %s
admin:
  socket: %s
http:
  listen: 127.0.0.1:0
backup:
  dir: %s
`, imapHost, imapPort, crashSupport, stack.Password(crashSupport), smtpHost, smtpPort, crashSupport,
		filepath.Join(dir, "deskd.db"), filepath.Join(dir, "admin.sock"), filepath.Join(dir, "backups"))
	if err := os.WriteFile(configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// One IMAP session counts support's mailboxes throughout (STATUS sees
	// a move at once; a mailbox not yet created counts as empty).
	counter := stack.LoginIMAP(t, crashSupport)
	count := func(mailbox string) int {
		st, err := counter.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || st.NumMessages == nil {
			return 0
		}
		return int(*st.NumMessages)
	}

	crashtest.Run(t, crashtest.World{
		Support:  crashSupport,
		Customer: customer,
		Deliver:  func(raws [][]byte) { stack.AppendIMAP(t, crashSupport, "INBOX", raws...) },
		Count:    count,
		Sent: func() []crashtest.Mail {
			// Everything deskd handed Postfix is delivered or bounced
			// once its queue is empty; then each customer's inbox holds
			// what was sent to them.
			stack.WaitQueueEmpty(t, 60*time.Second)
			var out []crashtest.Mail
			for i := range customers {
				addr := customer(i)
				for _, raw := range stack.WaitForMessages(t, addr, "INBOX", 0, 30*time.Second) {
					out = append(out, crashtest.Mail{From: returnPath(t, raw), To: []string{addr}, Data: raw})
				}
			}
			return out
		},
		Command: func() *exec.Cmd {
			return exec.Command(bin, "run", "--config", configPath)
		},
		StorePath: filepath.Join(dir, "deskd.db"),
	})
}

// buildDeskd builds cmd/deskd into dir: the crash test needs deskd as a
// process of its own to SIGKILL.
func buildDeskd(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "deskd")
	out, err := exec.Command("go", "build", "-o", bin, "deskd/cmd/deskd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build deskd/cmd/deskd: %v\n%s", err, out)
	}
	return bin
}

// returnPath is the envelope sender Dovecot's LMTP recorded in Return-Path.
func returnPath(t *testing.T, raw []byte) string {
	t.Helper()
	h := parseHeader(t, raw)
	return strings.Trim(h.Get("Return-Path"), "<> ")
}
