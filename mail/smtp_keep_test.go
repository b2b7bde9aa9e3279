package mail

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"deskd/internal/peers"
)

// keptSender is a Sender for the in-process go-smtp peer that keeps its
// connections for idle.
func keptSender(t *testing.T, idle time.Duration) (*Sender, *peers.SMTP) {
	t.Helper()
	sink, err := peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	cfg := cfgFor(sink.Port())
	cfg.IdleTimeout = idle
	s := NewSender(cfg, nil)
	t.Cleanup(s.Close)
	return s, sink
}

func numbered(i int) []byte {
	return fmt.Appendf(nil, "From: support@desk.example.com\r\nTo: a@klant.example\r\nMessage-ID: <m%d@desk.example.com>\r\nSubject: %d\r\n\r\nHallo.\r\n", i, i)
}

// distinctData fails t when the sink holds a mail twice, and returns how
// many it holds.
func distinctData(t *testing.T, sink *peers.SMTP) int {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range sink.Mails() {
		if seen[string(m.Data)] {
			t.Errorf("mail delivered twice:\n%s", m.Data)
		}
		seen[string(m.Data)] = true
	}
	return len(seen)
}

// Mails one after another share one connection, with an RSET before each
// mail on the kept connection; when the relay drops the idle connection
// the next mail notices at its RSET and goes on a new connection, once;
// Close ends the kept connection.
func TestSenderKeepsConnection(t *testing.T) {
	s, sink := keptSender(t, time.Minute)
	ctx := context.Background()
	for i := range 5 {
		if err := s.Send(ctx, "support@desk.example.com", []string{"a@klant.example"}, numbered(i)); err != nil {
			t.Fatalf("mail %d: %v", i, err)
		}
	}
	if n := sink.Sessions(); n != 1 {
		t.Errorf("5 mails took %d connections, want 1", n)
	}
	if n := sink.Resets(); n != 4 {
		t.Errorf("%d RSETs, want 4 (one before each mail on the kept connection)", n)
	}

	if n := sink.DropConnections(); n != 1 {
		t.Fatalf("the relay dropped %d connections, want the kept one", n)
	}
	if err := s.Send(ctx, "support@desk.example.com", []string{"a@klant.example"}, numbered(5)); err != nil {
		t.Fatalf("mail after the relay dropped the connection: %v", err)
	}
	if n := sink.Sessions(); n != 2 {
		t.Errorf("%d connections after the drop, want 2", n)
	}
	if n := distinctData(t, sink); n != 6 || len(sink.Mails()) != 6 {
		t.Errorf("the relay holds %d mails (%d distinct), want 6", len(sink.Mails()), n)
	}

	s.Close()
	waitOpen(t, sink, 0)
}

// An idle connection ends after IdleTimeout; IdleTimeout 0 keeps none.
func TestSenderIdleClose(t *testing.T) {
	s, sink := keptSender(t, 50*time.Millisecond)
	if err := s.Send(context.Background(), "support@desk.example.com", []string{"a@klant.example"}, numbered(1)); err != nil {
		t.Fatal(err)
	}
	waitOpen(t, sink, 0)

	s, sink = keptSender(t, 0)
	for i := range 3 {
		if err := s.Send(context.Background(), "support@desk.example.com", []string{"a@klant.example"}, numbered(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := sink.Sessions(); n != 3 {
		t.Errorf("idle_timeout 0: 3 mails took %d connections, want 3", n)
	}
	waitOpen(t, sink, 0)
}

// Sends in parallel each get a connection of their own, and keep it: no
// mail lost or doubled, no more connections than senders at once.
func TestSenderParallel(t *testing.T) {
	s, sink := keptSender(t, time.Minute)
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.Send(context.Background(), "support@desk.example.com", []string{"a@klant.example"}, numbered(w*each+i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := distinctData(t, sink); n != workers*each {
		t.Errorf("%d distinct mails, want %d", n, workers*each)
	}
	if n := sink.Sessions(); n > workers {
		t.Errorf("%d connections for %d parallel senders", n, workers)
	}
}

// A relay that takes fewer recipients per transaction than a mail has
// (452, RFC 5321 §4.5.3.1.10) gets the rest in the next transactions on
// the same connection; every recipient gets the mail once.
func TestSendTooManyRecipients(t *testing.T) {
	be := &testBackend{maxRcpts: 2}
	port := startServer(t, be, serverOpts{})
	cfg := cfgFor(port)
	cfg.IdleTimeout = time.Minute
	s := NewSender(cfg, nil)
	defer s.Close()
	rcpts := []string{"a@klant.example", "b@klant.example", "c@klant.example", "d@klant.example", "e@klant.example"}
	if err := s.Send(context.Background(), "support@desk.example.com", rcpts, testRaw); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, m := range be.received() {
		got = append(got, m.to)
	}
	want := [][]string{rcpts[:2], rcpts[2:4], rcpts[4:]}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("transactions %v, want %v", got, want)
	}
	if be.attempts != 1 {
		t.Errorf("%d connections, want 1", be.attempts)
	}
}

func waitOpen(t *testing.T, sink *peers.SMTP, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); sink.OpenConnections() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", sink.OpenConnections(), n)
		}
	}
}
