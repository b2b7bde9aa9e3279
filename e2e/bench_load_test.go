package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"deskd/daemon"
	"deskd/internal/mailstack"
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

// BenchmarkSustained50 is the latency under load: customers send 50
// mails/s for 60 s (3,000 mails, each through Postfix's SMTP listener, one
// connection per mail, from 600 customers, 5 each, so every one gets its
// acknowledgement under the default rate limit) to a support mailbox
// watched by
//
//   - bare: the least a responder must do, with nothing stored (see
//     runBareResponder): the limit the mail servers on this machine set;
//   - deskd: deskd, idle in IMAP IDLE when the mails begin.
//
// For each mail: from SMTP's acceptance of the customer's mail (SendSMTP's
// return) to Postfix's acceptance of the acknowledgement (deskd's
// SendReport.At of an OnSent without error), reported as ack-p50/p99/max-ms;
// in-p50/p99-ms are the first leg alone (acceptance → decision committed),
// and server-, commit- and send- split the whole into the mail servers'
// part (acceptance → the IMAP fetch), the decision (fetch → committed; none
// for bare) and the acknowledgement (committed → accepted by Postfix).
// The arrivals are spaced evenly (paced). Five seconds
// of the same traffic to another mailbox warm the mail servers up first
// (warmUp).
//
// DESKD_BENCH_TRACE names a file to write each mail's legs to (tab
// separated, by acceptance; "-bare" or "-deskd" added to the name), to
// see when the slow ones came.
//
// DESKD_BENCH_STORE names a store for deskd to run against, written to by
// the benchmark (give it a fresh copy for each run, e.g. of a store made
// by cmd/deskd-gen: a copy used again keeps what earlier runs left, as
// ScaleIngest's doc says); without it the store starts empty.
func BenchmarkSustained50(b *testing.B) {
	skipWithoutMailstack(b)
	b.Run("bare", func(b *testing.B) { sustained(b, false) })
	b.Run("deskd", func(b *testing.B) { sustained(b, true) })
}

// warmupAddr receives the mails that warm the mail servers up.
const warmupAddr = "warmup@desk.test"

// warmUp sends warmupAddr 5 s of the same traffic (50 mails/s, one SMTP
// connection each) and waits for its delivery, so that the measured
// minute starts with the mail servers' processes running (Postfix's smtpd,
// cleanup and lmtp, Dovecot's lmtp), as on a server that has been up:
// without it both the bare responder and deskd spend their first seconds
// at 0.4-1.1 s (p50) while those start on the loaded 2 cores. Nothing of
// it reaches support@ (deskd's store stays as cold as it was).
func warmUp(b *testing.B, stack *mailstack.Stack, custs []benchCustomer) {
	const n = sustainedRate * 5
	paced(n, func(i int) {
		c := custs[i%len(custs)]
		if err := stack.SendSMTP(c.addr, []string{warmupAddr}, benchMail(c, i, "warm")); err != nil {
			b.Errorf("warm-up send %d: %v", i, err)
		}
	})
	stack.WaitForMessages(b, warmupAddr, "INBOX", n, time.Minute)
}

// paced calls send(0) to send(n-1) sustainedRate times a second, evenly
// spaced, each on its own goroutine (a send that takes longer than its
// slot does not delay the next), waits for all of them and returns when
// the first began.
func paced(n int, send func(i int)) time.Time {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / sustainedRate)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(i)
		}()
	}
	wg.Wait()
	return start
}

// sustainedLegs are the moments of each inbound mail, by its Message-ID.
type sustainedLegs struct {
	mu                               sync.Mutex
	accepted, fetched, decided, sent map[string]time.Time
	problems                         []string
}

func (l *sustainedLegs) note(m map[string]time.Time, id string, at time.Time) {
	l.mu.Lock()
	m[id] = at
	l.mu.Unlock()
}

func (l *sustainedLegs) problem(format string, args ...any) {
	l.mu.Lock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func sustained(b *testing.B, deskd bool) {
	n := int(sustainedRate * sustainedFor / time.Second)
	custs := benchCustomers(n / 5)
	if deskd && os.Getenv("DESKD_BENCH_STORE") != "" {
		// A store kept from an earlier run remembers its customers'
		// automatic mails for an hour (the rate limit): new addresses
		// get their acknowledgements in this run too.
		custs = withLocalSuffix(custs, fmt.Sprintf("r%d", time.Now().Unix()))
	}
	var ack, in, server, commit, send []time.Duration
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		stack := benchStack(b, append(slices.Clone(custs), benchCustomer{addr: warmupAddr}))
		warmUp(b, stack, custs)
		l := &sustainedLegs{accepted: map[string]time.Time{}, fetched: map[string]time.Time{},
			decided: map[string]time.Time{}, sent: map[string]time.Time{}}
		allSent := make(chan struct{})
		var sentOnce sync.Once
		onSent := func(inID string, at time.Time) {
			l.mu.Lock()
			l.sent[inID] = at
			done := len(l.sent) == n
			l.mu.Unlock()
			if done {
				sentOnce.Do(func() { close(allSent) })
			}
		}
		var stop func()
		if deskd {
			stop = startSustainedDeskd(b, stack, custs, l, onSent)
		} else {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			ready := make(chan struct{})
			go func() {
				done <- runBareResponder(ctx, stack, ready, func(id string, at time.Time) {
					l.note(l.fetched, id, at)
					l.note(l.decided, id, at)
				}, onSent)
			}()
			select {
			case <-ready:
			case err := <-done:
				b.Fatalf("bare responder: %v", err)
			}
			stop = func() {
				cancel()
				if err := <-done; err != nil {
					b.Errorf("bare responder: %v", err)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)

		msgs := make([][]byte, n)
		ids := make([]string, n)
		for i := range msgs {
			msgs[i] = benchMail(custs[i%len(custs)], i, fmt.Sprintf("sus%d", iter))
			ids[i] = messageIDOf(b, msgs[i])
		}
		b.StartTimer()
		start := paced(n, func(i int) {
			if err := stack.SendSMTP(custs[i%len(custs)].addr, []string{support}, msgs[i]); err != nil {
				l.problem("send %d: %v", i, err)
				return
			}
			l.note(l.accepted, ids[i], time.Now())
		})
		select {
		case <-allSent:
		case <-time.After(5 * time.Minute):
			l.mu.Lock()
			b.Errorf("after 5 minutes %d of %d acknowledgements sent", len(l.sent), n)
			l.mu.Unlock()
		}
		b.StopTimer()
		stop()
		if err := stack.Stop(); err != nil {
			b.Errorf("stack stop: %v", err)
		}
		l.mu.Lock()
		if len(l.problems) > 0 {
			b.Errorf("%d problems, the first %q", len(l.problems), first(l.problems, 5))
		}
		var trace []string
		for id, st := range l.sent {
			acc, ok := l.accepted[id]
			if !ok {
				continue
			}
			f, dec := l.fetched[id], l.decided[id]
			ack = append(ack, st.Sub(acc))
			in = append(in, dec.Sub(acc))
			server = append(server, f.Sub(acc))
			commit = append(commit, dec.Sub(f))
			send = append(send, st.Sub(dec))
			trace = append(trace, fmt.Sprintf("%07.3f\t%.1f\t%.1f\t%.1f", acc.Sub(start).Seconds(), ms(f.Sub(acc)), ms(dec.Sub(f)), ms(st.Sub(dec))))
		}
		l.mu.Unlock()
		if path := os.Getenv("DESKD_BENCH_TRACE"); path != "" {
			slices.Sort(trace)
			text := "accepted-s\tserver-ms\tcommit-ms\tsend-ms\n" + strings.Join(trace, "\n") + "\n"
			name := "-bare"
			if deskd {
				name = "-deskd"
			}
			if err := os.WriteFile(path+name, []byte(text), 0o644); err != nil {
				b.Error(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(percentile(ack, 50)), "ack-p50-ms")
	b.ReportMetric(ms(percentile(ack, 99)), "ack-p99-ms")
	b.ReportMetric(ms(percentile(ack, 100)), "ack-max-ms")
	b.ReportMetric(ms(percentile(in, 50)), "in-p50-ms")
	b.ReportMetric(ms(percentile(in, 99)), "in-p99-ms")
	b.ReportMetric(ms(percentile(server, 99)), "server-p99-ms")
	if deskd {
		b.ReportMetric(ms(percentile(commit, 50)), "commit-p50-ms")
		b.ReportMetric(ms(percentile(commit, 99)), "commit-p99-ms")
	}
	b.ReportMetric(ms(percentile(send, 99)), "send-p99-ms")
	b.ReportMetric(float64(len(ack))/float64(b.N), "acks")
}

// startSustainedDeskd starts deskd on stack, waits until it is idle in
// IDLE, and returns how to stop it; its reports fill l.
func startSustainedDeskd(b *testing.B, stack *mailstack.Stack, custs []benchCustomer, l *sustainedLegs, onSent func(string, time.Time)) func() {
	opts := benchOptions(b, stack, custs)
	if path := os.Getenv("DESKD_BENCH_STORE"); path != "" {
		opts.StorePath = path
	}
	onStatus, idle := idleSignal()
	opts.OnSourceStatus = onStatus
	var mu sync.Mutex
	ackOf := map[string]string{} // ack Message-ID → inbound Message-ID
	opts.OnDecision = func(r daemon.Report) {
		now := time.Now()
		l.note(l.decided, r.MessageID, now)
		l.note(l.fetched, r.MessageID, r.Fetched)
		if r.Ack == "" {
			l.problem("%s: %s without ack: %s", r.From, r.Decision, r.NoAck)
			return
		}
		mu.Lock()
		ackOf[r.Ack] = r.MessageID
		mu.Unlock()
	}
	ours := make(map[string]bool, len(custs))
	for _, c := range custs {
		ours[c.addr] = true
	}
	opts.OnSent = func(r daemon.SendReport) {
		if r.Err != nil {
			// A kept store may still hold mail of other runs (another
			// benchmark's customers, whom this stack does not relay to).
			if slices.ContainsFunc(r.To, func(a string) bool { return ours[a] }) {
				l.problem("send to %v: %v", r.To, r.Err)
			}
			return
		}
		if r.Kind != "ack" {
			return
		}
		// By the acknowledgement's Message-ID until the stop: OnSent may
		// come before OnDecision.
		onSent(r.MessageID, r.At) // the relay's answer, not the record after it
	}
	d := startDeskd(b, opts)
	select {
	case <-idle:
	case <-time.After(5 * time.Minute):
		b.Fatal("deskd did not go idle within 5 minutes")
	}
	d.settle(b)
	return func() {
		d.stop(b)
		l.mu.Lock()
		defer l.mu.Unlock()
		byInbound := make(map[string]time.Time, len(l.sent))
		for ackID, at := range l.sent {
			if inID, ok := ackOf[ackID]; ok {
				byInbound[inID] = at
			}
		}
		l.sent = byInbound
	}
}

// withLocalSuffix is custs with "-suffix" added to each local part.
func withLocalSuffix(custs []benchCustomer, suffix string) []benchCustomer {
	out := make([]benchCustomer, len(custs))
	for i, c := range custs {
		at := strings.LastIndexByte(c.addr, '@')
		out[i] = benchCustomer{addr: c.addr[:at] + "-" + suffix + c.addr[at:], name: c.name}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

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
