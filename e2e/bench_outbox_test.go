package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/store"
)

// outboxConns is the number of connections the parallel bare client of
// BenchmarkOutbox2000 uses.
const outboxConns = 4

// BenchmarkOutbox2000 is deskd's outgoing side alone against its limit, in
// the same run on the same Postfix: an outbox holding 2,000
// acknowledgement-sized mails (queued through store.Tx.Enqueue, the
// outbox's own store code; the same bytes the bare client sends) drained by
// a started deskd, beside a bare go-smtp client handing Postfix the same
// 2,000 mails on one connection (RSET between mails) and on outboxConns
// connections at once. Each iteration runs the three in turn (the order
// rotating), each after Postfix's queue is empty again; every figure is
// mails accepted by Postfix (its 250 to DATA; for deskd the latest
// SendReport.At of the 2,000) per second of wall time, deskd's counted
// from Run (the store is opened before). deskd/bare1-% and deskd/bareN-% are the ratios of the
// sums, which the issue asks to be at least 90.
func BenchmarkOutbox2000(b *testing.B) {
	skipWithoutMailstack(b)
	custs := benchCustomers(400)
	stack := benchStack(b, custs)
	bareN := fmt.Sprintf("bare%d", outboxConns)
	modes := []string{"bare1", bareN, "deskd"}
	sums := map[string]time.Duration{}
	for iter := range b.N {
		b.StopTimer()
		for k := range modes {
			mode := modes[(iter+k)%len(modes)]
			tag := fmt.Sprintf("%s-%d", mode, iter)
			rcpts := make([]string, backlogSize)
			msgs := make([][]byte, backlogSize)
			for i := range msgs {
				rcpts[i], msgs[i] = ackMail(custs, i, tag)
			}
			stack.WaitQueueEmpty(b, 5*time.Minute)
			var took time.Duration
			switch mode {
			case "deskd":
				took = drainOutbox(b, stack, custs, rcpts, msgs)
			default:
				conns := 1
				if mode == bareN {
					conns = outboxConns
				}
				took = bareSMTPConns(b, stack, conns, rcpts, msgs)
			}
			sums[mode] += took
		}
	}
	stack.WaitQueueEmpty(b, 5*time.Minute)
	total := 0
	for _, c := range custs {
		total += len(stack.WaitForMessages(b, c.addr, "INBOX", 0, 30*time.Second))
	}
	if want := b.N * backlogSize * len(modes); total != want {
		b.Fatalf("%d mails in the customers' mailboxes, want %d", total, want)
	}
	n := float64(b.N)
	rate := func(mode string) float64 { return backlogSize / (sums[mode].Seconds() / n) }
	b.ReportMetric(rate("deskd"), "deskd-acks/s")
	b.ReportMetric(rate("bare1"), "bare1/s")
	b.ReportMetric(rate(bareN), bareN+"/s")
	b.ReportMetric(100*rate("deskd")/rate("bare1"), "deskd/bare1-%")
	b.ReportMetric(100*rate("deskd")/rate(bareN), "deskd/"+bareN+"-%")
}

// bareSMTPConns hands the mails to Postfix over conns connections at once
// (mail i on connection i%conns) and returns the wall time.
func bareSMTPConns(b *testing.B, stack *mailstack.Stack, conns int, rcpts []string, msgs [][]byte) time.Duration {
	b.Helper()
	errs := make(chan error, conns)
	b.StartTimer()
	start := time.Now()
	for k := range conns {
		go func() {
			errs <- bareSMTP(stack.SMTPAddr, func(yield func(string, []byte) bool) {
				for i := k; i < len(msgs); i += conns {
					if !yield(rcpts[i], msgs[i]) {
						return
					}
				}
			})
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	return took
}

// drainOutbox queues the mails in a new store's outbox, starts deskd on it
// and returns the wall time from Run to the last mail's acceptance.
func drainOutbox(b *testing.B, stack *mailstack.Stack, custs []benchCustomer, rcpts []string, msgs [][]byte) time.Duration {
	b.Helper()
	opts := benchOptions(b, stack, custs)
	db, err := store.Open(opts.StorePath, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	err = db.Update(func(tx *store.Tx) error {
		for i, raw := range msgs {
			e := &store.OutboxEntry{Kind: "ack", MessageID: messageIDOf(b, raw), EnvelopeFrom: support,
				Recipients: []string{rcpts[i]}, Raw: raw, CreatedAt: now}
			if err := tx.Enqueue(e); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}

	var sent atomic.Int64
	var mu sync.Mutex
	var problems []string
	var last time.Time // the latest acceptance by the relay (SendReport.At)
	done := make(chan struct{})
	opts.OnSent = func(r daemon.SendReport) {
		mu.Lock()
		defer mu.Unlock()
		if r.Err != nil {
			problems = append(problems, fmt.Sprintf("send %s: %v", r.MessageID, r.Err))
			return
		}
		if r.At.After(last) {
			last = r.At
		}
		if sent.Add(1) == int64(len(msgs)) {
			close(done)
		}
	}
	d, err := daemon.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDeskd{cancel: cancel, done: make(chan error, 1)}
	b.StartTimer()
	start := time.Now()
	go func() { r.done <- d.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Errorf("after 10 minutes %d of %d sent", sent.Load(), len(msgs))
	}
	b.StopTimer()
	r.stop(b)
	mu.Lock()
	defer mu.Unlock()
	took := last.Sub(start)
	if len(problems) > 0 {
		b.Fatalf("send problems (first 5): %q", first(problems, 5))
	}
	return took
}
