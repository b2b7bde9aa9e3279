package peers

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A message that arrives between a client's last command and its IDLE is
// announced in the IDLE (idleFlush), as Dovecot does, not held back until
// the next change.
func TestIdleReportsMailFromBeforeIt(t *testing.T) {
	s, err := StartIMAP("support@example.test", "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exists := make(chan uint32, 10)
	c, err := imapclient.DialInsecure(s.Addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				exists <- *data.NumMessages
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("support@example.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver("INBOX", []byte("Subject: x\r\n\r\nx\r\n"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("the message delivered before IDLE was not announced in it")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
