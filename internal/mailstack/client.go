package mailstack

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// Deliver sends raw through Postfix's SMTP listener with envelope sender from
// and recipients to. It returns once Postfix has queued the message; use
// WaitForMessages to wait for the LMTP delivery into Dovecot.
func (s *Stack) Deliver(t testing.TB, from string, to []string, raw []byte) {
	t.Helper()
	if err := s.SendSMTP(from, to, raw); err != nil {
		t.Fatalf("mailstack: deliver: %v", err)
	}
}

// SendSMTP is Deliver without a testing.TB, for use from goroutines.
func (s *Stack) SendSMTP(from string, to []string, raw []byte) error {
	conn, err := net.DialTimeout("tcp", s.SMTPAddr, 10*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("mailstack-client.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM:<%s>: %w", from, err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// LoginIMAP returns an IMAP client logged in as user; it is logged out on
// test cleanup.
func (s *Stack) LoginIMAP(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := s.dialIMAP(user)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Stack) dialIMAP(user string) (*imapclient.Client, error) {
	pw := s.Password(user)
	if pw == "" {
		return nil, fmt.Errorf("no such user %q", user)
	}
	c, err := imapclient.DialInsecure(s.IMAPAddr, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 10 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("imap dial: %w", err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap login %s: %w", user, err)
	}
	return c, nil
}

// WaitForMessages polls mailbox of user over IMAP until it holds at least n
// messages, then returns the full raw text of all of them, in mailbox order.
// It fails the test (with the logs and the Postfix queue) after timeout.
func (s *Stack) WaitForMessages(t testing.TB, user, mailbox string, n int, timeout time.Duration) [][]byte {
	t.Helper()
	msgs, err := s.waitForMessages(user, mailbox, n, timeout)
	if err != nil {
		s.DumpLogs(t)
		q, _ := run("/usr/sbin/postqueue", "-c", s.postfixConf, "-p")
		t.Fatalf("mailstack: %v\npostfix queue:\n%s", err, q)
	}
	return msgs
}

// WaitQueueEmpty waits until Postfix holds no mail (postqueue -j lists
// nothing): everything handed to it was delivered or bounced, so mailbox
// counts are final and a test can assert exact numbers. It fails the test
// after timeout.
func (s *Stack) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q, err := run("/usr/sbin/postqueue", "-c", s.postfixConf, "-j")
		if err == nil && strings.TrimSpace(q) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailstack: postfix queue not empty after %s (%v):\n%s", timeout, err, q)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Stack) waitForMessages(user, mailbox string, n int, timeout time.Duration) ([][]byte, error) {
	c, err := s.dialIMAP(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var have uint32
	var lastErr error
	for {
		// STATUS sees new deliveries without the 500 ms IDLE notification delay
		// and works before the mailbox exists (it fails until then).
		st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err == nil && st.NumMessages != nil {
			have = *st.NumMessages
			if int(have) >= n {
				break
			}
		} else if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s %s: have %d messages, want %d after %v (last error: %v)",
				user, mailbox, have, n, timeout, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("select %s: %w", mailbox, err)
	}
	if have == 0 {
		return [][]byte{}, nil
	}
	var set imap.SeqSet
	set.AddRange(1, have)
	section := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(set, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	sort.Slice(bufs, func(i, j int) bool { return bufs[i].SeqNum < bufs[j].SeqNum })
	out := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, b.FindBodySection(section))
	}
	return out, nil
}

// AppendIMAP stores msgs into mailbox of user over IMAP APPEND on one
// pipelined connection, creating the mailbox if needed. It bypasses Postfix,
// so it is the quick way to fill an inbox for benchmarks.
func (s *Stack) AppendIMAP(t testing.TB, user, mailbox string, msgs ...[]byte) {
	t.Helper()
	c, err := s.dialIMAP(user)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}
	defer c.Close()
	if !strings.EqualFold(mailbox, "INBOX") {
		if err := c.Create(mailbox, nil).Wait(); err != nil {
			var ierr *imap.Error
			if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAlreadyExists {
				t.Fatalf("mailstack: create %s: %v", mailbox, err)
			}
		}
	}
	// Dovecot announces LITERAL+, so the client streams each message without
	// waiting for a continuation; waiting in batches keeps the pipeline full
	// while bounding memory.
	const batch = 64
	pending := make([]*imapclient.AppendCommand, 0, batch)
	flush := func() {
		for _, cmd := range pending {
			if _, err := cmd.Wait(); err != nil {
				t.Fatalf("mailstack: append to %s: %v", mailbox, err)
			}
		}
		pending = pending[:0]
	}
	for _, raw := range msgs {
		cmd := c.Append(mailbox, int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			t.Fatalf("mailstack: append write: %v", err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatalf("mailstack: append close: %v", err)
		}
		pending = append(pending, cmd)
		if len(pending) == batch {
			flush()
		}
	}
	flush()
	if err := c.Logout().Wait(); err != nil {
		t.Logf("mailstack: logout: %v", err)
	}
}

// MoveAll moves every message of user's mailbox from into to with one
// UID MOVE, so that they appear there at once: a backlog arriving at a
// running deskd (benchmarks), rather than one present when it starts.
func (s *Stack) MoveAll(t testing.TB, user, from, to string) {
	t.Helper()
	c, err := s.dialIMAP(user)
	if err != nil {
		t.Fatalf("mailstack: %v", err)
	}
	defer c.Close()
	if _, err := c.Select(from, nil).Wait(); err != nil {
		t.Fatalf("mailstack: select %s: %v", from, err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	if _, err := c.Move(all, to).Wait(); err != nil {
		t.Fatalf("mailstack: move %s to %s: %v", from, to, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Logf("mailstack: logout: %v", err)
	}
}
