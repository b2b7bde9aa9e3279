package e2e

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"deskd/daemon"
)

// BenchmarkBareFetchMove2000 is the limit BenchmarkBacklog2000's mails/s
// chases on the IMAP side: a bare go-imap v2 client takes the same kind of
// 2,000-mail inbox out of Dovecot the way deskd does, with no decision
// and no store: log in, select INBOX, UID FETCH 1:* (RFC822.SIZE
// INTERNALDATE BODY.PEEK[]) and UID MOVE 1:* to Processed. Filling the
// inbox (pipelined APPEND) is not timed; every iteration gets a fresh
// stack, as the backlog benchmark does.
func BenchmarkBareFetchMove2000(b *testing.B) {
	skipWithoutMailstack(b)
	custs := benchCustomers(400)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stack := benchStack(b, custs)
		stack.AppendIMAP(b, support, "INBOX", backlog(custs, backlogSize, fmt.Sprintf("fm%d", i))...)
		b.StartTimer()
		start := time.Now()
		c, err := imapclient.DialInsecure(stack.IMAPAddr, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Login(support, stack.Password(support)).Wait(); err != nil {
			b.Fatal(err)
		}
		if err := c.Create("Processed", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			b.Fatal(err)
		}
		all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != backlogSize {
			b.Fatalf("fetched %d messages, want %d", len(msgs), backlogSize)
		}
		if _, err := c.Move(all, "Processed").Wait(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		_ = c.Logout().Wait()
		c.Close()
		if n := len(stack.WaitForMessages(b, support, "Processed", backlogSize, 30*time.Second)); n != backlogSize {
			b.Fatalf("Processed holds %d, want %d", n, backlogSize)
		}
		if err := stack.Stop(); err != nil {
			b.Errorf("stack stop: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(backlogSize/(total.Seconds()/float64(b.N)), "mails/s")
}

const (
	sustainedRate = 50               // mails per second
	sustainedFor  = 60 * time.Second // how long they keep coming
)

// BenchmarkSustained50 is the latency under load: deskd runs idle in IMAP
// IDLE, then customers send it 50 mails/s for 60 s (3,000 mails, each
// through Postfix's SMTP listener, one connection per mail, from 600
// customers, 5 each, so every one gets its acknowledgement under the
// default rate limit). For each mail: from SMTP's acceptance of the
// customer's mail (SendSMTP's return) to Postfix's acceptance of deskd's
// acknowledgement (SendReport.At of an OnSent without error), reported
// as ack-p50/p99/max-ms;
// in-p50/p99-ms are the first leg alone (acceptance → decision committed).
// The arrivals are spaced evenly; a send that takes longer than its 20 ms
// slot does not delay the next (each has its own goroutine).
//
// DESKD_BENCH_STORE names a store to run against, written to by the
// benchmark (give it a copy, e.g. of a store made by cmd/deskd-gen);
// without it the store starts empty.
func BenchmarkSustained50(b *testing.B) {
	skipWithoutMailstack(b)
	n := int(sustainedRate * sustainedFor / time.Second)
	custs := benchCustomers(n / 5)
	var ack, in []time.Duration
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		stack := benchStack(b, custs)
		opts := benchOptions(b, stack, custs)
		if path := os.Getenv("DESKD_BENCH_STORE"); path != "" {
			opts.StorePath = path
		}
		onStatus, idle := idleSignal()
		opts.OnSourceStatus = onStatus

		var mu sync.Mutex
		accepted := map[string]time.Time{} // inbound Message-ID → SMTP acceptance
		decided := map[string]time.Time{}  // inbound Message-ID → commit
		ackOf := map[string]string{}       // ack Message-ID → inbound Message-ID
		sent := map[string]time.Time{}     // ack Message-ID → accepted by Postfix
		var problems []string
		allSent := make(chan struct{})
		opts.OnDecision = func(r daemon.Report) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			decided[r.MessageID] = now
			if r.Ack == "" {
				problems = append(problems, fmt.Sprintf("%s: %s without ack: %s", r.From, r.Decision, r.NoAck))
				return
			}
			ackOf[r.Ack] = r.MessageID
		}
		opts.OnSent = func(r daemon.SendReport) {
			now := r.At // the relay's answer, not the record after it
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil {
				problems = append(problems, fmt.Sprintf("send to %v: %v", r.To, r.Err))
				return
			}
			if r.Kind != "ack" {
				return
			}
			sent[r.MessageID] = now
			if len(sent) == n {
				close(allSent)
			}
		}
		d := startDeskd(b, opts)
		select {
		case <-idle:
		case <-time.After(5 * time.Minute):
			b.Fatal("deskd did not go idle within 5 minutes")
		}
		time.Sleep(500 * time.Millisecond)

		msgs := make([][]byte, n)
		ids := make([]string, n)
		for i := range msgs {
			msgs[i] = benchMail(custs[i%len(custs)], i, fmt.Sprintf("sus%d", iter))
			ids[i] = messageIDOf(b, msgs[i])
		}
		var wg sync.WaitGroup
		var sendErrs []string
		b.StartTimer()
		start := time.Now()
		for i := range msgs {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / sustainedRate)))
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := custs[i%len(custs)]
				if err := stack.SendSMTP(c.addr, []string{support}, msgs[i]); err != nil {
					mu.Lock()
					sendErrs = append(sendErrs, fmt.Sprintf("send %d: %v", i, err))
					mu.Unlock()
					return
				}
				now := time.Now()
				mu.Lock()
				accepted[ids[i]] = now
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		select {
		case <-allSent:
		case <-time.After(5 * time.Minute):
			mu.Lock()
			b.Errorf("after 5 minutes %d of %d acknowledgements sent", len(sent), n)
			mu.Unlock()
		}
		b.StopTimer()
		d.stop(b)
		if err := stack.Stop(); err != nil {
			b.Errorf("stack stop: %v", err)
		}
		mu.Lock()
		if len(sendErrs) > 0 || len(problems) > 0 {
			b.Errorf("send errors %q; deskd problems %q", first(sendErrs, 5), first(problems, 5))
		}
		for ackID, inID := range ackOf {
			acc, okA := accepted[inID]
			st, okS := sent[ackID]
			if okA && okS {
				ack = append(ack, st.Sub(acc))
				in = append(in, decided[inID].Sub(acc))
			}
		}
		mu.Unlock()
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(ack, 50)), "ack-p50-ms")
	b.ReportMetric(ms(percentile(ack, 99)), "ack-p99-ms")
	b.ReportMetric(ms(percentile(ack, 100)), "ack-max-ms")
	b.ReportMetric(ms(percentile(in, 50)), "in-p50-ms")
	b.ReportMetric(ms(percentile(in, 99)), "in-p99-ms")
	b.ReportMetric(float64(len(ack))/float64(b.N), "acks")
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }

// messageIDOf is raw's Message-ID as deskd reports it (without brackets).
func messageIDOf(b *testing.B, raw []byte) string {
	for _, line := range strings.Split(string(raw), "\r\n") {
		if v, ok := strings.CutPrefix(line, "Message-ID: <"); ok {
			return strings.TrimSuffix(v, ">")
		}
	}
	b.Fatalf("no Message-ID in %q", raw)
	return ""
}
