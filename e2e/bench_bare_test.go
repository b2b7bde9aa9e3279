package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"deskd/internal/mailstack"
)

// The bare responder's watch, as deskd's IMAP source does it: IDLE when
// quiet, a NOOP every bareBurstPollEvery while mail keeps coming (Dovecot
// holds IDLE news back 500 ms).
const (
	bareBurstFor       = 2 * time.Second
	bareBurstPollEvery = 25 * time.Millisecond
	bareReplyConns     = 4 // deskd's outbox workers
)

// bareReply is one acknowledgement for the bare responder's SMTP workers.
type bareReply struct {
	inID, to string
	raw      []byte
}

// runBareResponder is the least a helpdesk must do for each mail, with
// nothing stored and nothing decided: it watches support@'s inbox (IDLE,
// or a poll during a burst, as deskd does), fetches each new mail whole,
// hands a short reply to the sender to one of bareReplyConns kept SMTP
// connections to Postfix, and moves the mail out of the inbox. It closes
// ready once it waits for mail, calls fetched(Message-ID, when) for each
// mail and sent(Message-ID, when) once Postfix accepted its reply, and
// returns when ctx ends.
func runBareResponder(ctx context.Context, stack *mailstack.Stack, ready chan<- struct{}, fetched, sent func(string, time.Time)) error {
	news := make(chan struct{}, 1)
	c, err := imapclient.DialInsecure(stack.IMAPAddr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case news <- struct{}{}:
					default:
					}
				}
			},
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(support, stack.Password(support)).Wait(); err != nil {
		return err
	}
	if err := c.Create("Processed", nil).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}

	replies := make(chan bareReply, 4096)
	smtpErrs := make(chan error, bareReplyConns)
	for range bareReplyConns {
		go func() { smtpErrs <- bareReplier(stack.SMTPAddr, replies, sent) }()
	}
	defer func() {
		close(replies)
		for range bareReplyConns {
			if serr := <-smtpErrs; serr != nil && err == nil {
				err = serr
			}
		}
	}()

	close(ready)
	whole := &imap.FetchItemBodySection{Peek: true}
	var last imap.UID
	var lastMail time.Time
	for ctx.Err() == nil {
		select {
		case <-news:
		default:
		}
		msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: last + 1, Stop: 0}},
			&imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{whole}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		now := time.Now()
		var handled imap.UIDSet
		for _, m := range msgs {
			if m.UID <= last { // "n:*" matches the highest UID even below n
				continue
			}
			last = m.UID
			handled.AddNum(m.UID)
			r, err := bareReplyTo(m.FindBodySection(whole))
			if err != nil {
				return err
			}
			fetched(r.inID, now)
			replies <- r
		}
		if len(handled) > 0 {
			if _, err := c.Move(handled, "Processed").Wait(); err != nil {
				return fmt.Errorf("move: %w", err)
			}
			lastMail = now
			continue
		}
		if time.Since(lastMail) < bareBurstFor {
			select {
			case <-ctx.Done():
			case <-time.After(bareBurstPollEvery):
			}
		} else {
			idle, err := c.Idle()
			if err != nil {
				return fmt.Errorf("idle: %w", err)
			}
			select {
			case <-ctx.Done():
			case <-news:
			}
			if err := idle.Close(); err != nil {
				return err
			}
			if err := idle.Wait(); err != nil {
				return err
			}
		}
		if err := c.Noop().Wait(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("noop: %w", err)
		}
	}
	return nil
}

// bareReplyTo is the reply to a customer's mail: to its sender, about its
// Message-ID.
func bareReplyTo(raw []byte) (bareReply, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return bareReply{}, fmt.Errorf("bare responder: %w", err)
	}
	from, err := mail.ParseAddress(m.Header.Get("From"))
	if err != nil {
		return bareReply{}, fmt.Errorf("bare responder: from: %w", err)
	}
	id := m.Header.Get("Message-ID")
	if len(id) < 2 {
		return bareReply{}, errors.New("bare responder: no Message-ID")
	}
	reply := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: Re: %s\r\nIn-Reply-To: %s\r\nMessage-ID: <bare-%s>\r\n\r\nWe have your question.\r\n",
		support, from.Address, m.Header.Get("Subject"), id, id[1:len(id)-1])
	return bareReply{inID: id[1 : len(id)-1], to: from.Address, raw: []byte(reply)}, nil
}

// bareReplier hands replies to Postfix over one kept connection until
// replies is closed (bareSMTP; the time a reply counts as sent includes
// the RSET after it).
func bareReplier(addr string, replies <-chan bareReply, sent func(string, time.Time)) error {
	return bareSMTP(addr, func(yield func(string, []byte) bool) {
		for r := range replies {
			if !yield(r.to, r.raw) {
				return
			}
			sent(r.inID, time.Now())
		}
	})
}
