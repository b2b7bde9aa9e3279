package e2e

// Benchmarks for the throughput and latency the issue asks about. They run
// the real daemon in-process against a private Dovecot + Postfix
// (internal/mailstack), so they need root and the mail packages; without
// them they skip. They only run with -bench, e.g.
//
//	go test -run '^$' -bench . -benchtime=1x ./e2e/
//
// None of them asserts on timings: they report figures with b.ReportMetric.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"deskd/cases"
	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/mail"
)

// benchCustomer is one sender of the benchmark corpus.
type benchCustomer struct {
	addr, name string
}

// benchCustomers returns n distinct senders: a quarter named contacts of
// the Premium customer (jansen.test), a quarter named contacts of the
// Business customer (acme.test), and half strangers spread over other
// domains (they get the default customer's acknowledgement).
func benchCustomers(n int) []benchCustomer {
	out := make([]benchCustomer, 0, n)
	for i := range n {
		var c benchCustomer
		switch i % 4 {
		case 0:
			c = benchCustomer{fmt.Sprintf("klant%03d@jansen.test", i), fmt.Sprintf("Klant %d Jansen", i)}
		case 1:
			c = benchCustomer{fmt.Sprintf("buyer%03d@acme.test", i), fmt.Sprintf("Buyer %d", i)}
		default:
			c = benchCustomer{fmt.Sprintf("person%03d@shop%02d.test", i, i%20), fmt.Sprintf("Person %d", i)}
		}
		out = append(out, c)
	}
	return out
}

// benchStack starts a stack with support@ and a mailbox for every customer,
// so that Postfix accepts (and delivers) every acknowledgement.
func benchStack(b *testing.B, custs []benchCustomer) *mailstack.Stack {
	b.Helper()
	users := []mailstack.User{{Address: support, Password: "support-pw"}}
	for _, c := range custs {
		users = append(users, mailstack.User{Address: c.addr, Password: "pw-" + c.addr})
	}
	return mailstack.Start(b, mailstack.Options{Users: users})
}

// benchOptions are options(...) — deskd's defaults — with the customers'
// named contacts added to the configured customers.
func benchOptions(b *testing.B, stack *mailstack.Stack, custs []benchCustomer) daemon.Options {
	b.Helper()
	opts := options(b, stack, b.TempDir())
	pol := opts.Policy
	pol.Customers = slices.Clone(pol.Customers)
	for i := range pol.Customers {
		pol.Customers[i].Contacts = slices.Clone(pol.Customers[i].Contacts)
	}
	for _, c := range custs {
		for i := range pol.Customers {
			if slices.Contains(pol.Customers[i].Domains, domainOf(c.addr)) {
				pol.Customers[i].Contacts = append(pol.Customers[i].Contacts, cases.Address{Name: c.name, Email: c.addr})
			}
		}
	}
	opts.Policy = pol
	return opts
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// benchMail is a small, distinct customer mail (about 500 bytes) with CRLF
// line ends.
func benchMail(c benchCustomer, i int, tag string) []byte {
	subject := fmt.Sprintf("Vraag %d over bestelling %d", i, 10000+i)
	body := fmt.Sprintf("Beste support,\n\nIk heb een vraag over bestelling %d (%s). De levering is nog niet binnen\n"+
		"en de track-and-trace code werkt niet. Kunnen jullie kijken wat er aan de hand is?\n\nMet vriendelijke groet,\n%s",
		10000+i, tag, c.name)
	raw := mailText(fmt.Sprintf("%q <%s>", c.name, c.addr), subject, fmt.Sprintf("%s-%d-%d@%s", tag, i, time.Now().UnixNano(), domainOf(c.addr)), "", body)
	return []byte(strings.ReplaceAll(raw, "\n", "\r\n"))
}

// backlog is n mails from len(custs) senders, n/len(custs) each (deskd's
// default rate limit is 5 automatic mails per address per hour, so with
// 400 customers × 5 every mail gets an acknowledgement).
func backlog(custs []benchCustomer, n int, tag string) [][]byte {
	msgs := make([][]byte, 0, n)
	for i := range n {
		msgs = append(msgs, benchMail(custs[i%len(custs)], i, tag))
	}
	return msgs
}

// runningDeskd is deskd started in-process by a benchmark.
type runningDeskd struct {
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error
}

func startDeskd(b *testing.B, opts daemon.Options) *runningDeskd {
	b.Helper()
	d, err := daemon.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningDeskd{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	return r
}

// settle waits until the daemon's background refresh of the store's
// derived records is done (daemon.Daemon.Settled): a store made by
// cmd/deskd-gen, or last run under other SLA clocks, has every case's
// report figures recomputed at the first start (about a minute at
// 1,000,000 cases), and a benchmark of steady-state work must not
// measure that once-only job.
func (r *runningDeskd) settle(b *testing.B) {
	b.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := r.d.WaitSettled(ctx); err != nil {
		b.Fatal(err)
	}
	if waited := time.Since(began); waited > time.Second {
		b.Logf("waited %s for deskd's one-time refresh of the store's derived records", waited.Round(time.Second))
	}
}

func (r *runningDeskd) stop(b *testing.B) {
	b.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			b.Errorf("daemon: %v", err)
		}
	case <-time.After(15 * time.Second):
		b.Error("daemon did not stop within 15s")
	}
}

// idleSignal returns an OnSourceStatus hook and a channel closed after the
// first successful scan round of a session that uses IDLE: from then on
// deskd waits in IDLE (it enters IDLE right after reporting).
func idleSignal() (func(mail.SourceStatus), <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return func(st mail.SourceStatus) {
		if st.Connected && st.Idle && st.Err == nil && st.Handled == 0 {
			once.Do(func() { close(ch) })
		}
	}, ch
}

func skipWithoutMailstack(b *testing.B) {
	b.Helper()
	if !mailstack.Available() {
		b.Skip("mailstack: dovecot/postfix binaries not installed")
	}
}

const backlogSize = 2000

// BenchmarkBacklog2000 starts deskd against an inbox that already holds
// 2,000 small, distinct mails from 400 customers (5 each) and measures the
// wall time from daemon.Open until every mail's decision is committed
// (OnDecision) and every acknowledgement has been handed to Postfix
// (OnSent with Err == nil) and every mail has left the inbox (moved-s:
// the IMAP loop's scan rounds, each reported once all its moves were
// answered, account for all 2,000). Filling the inbox (pipelined IMAP
// APPEND) is not timed; every iteration gets a fresh stack and store.
//
// Two runs: group=64 is deskd's default (imap.commit_batch 64: up to 64
// mails decided and committed in one transaction and moved with one
// command); group=1 commits every mail alone, as deskd did before group
// commit, for comparison in the same run.
func BenchmarkBacklog2000(b *testing.B) {
	skipWithoutMailstack(b)
	for _, group := range []int{64, 1} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) { backlog2000(b, group) })
	}
}

func backlog2000(b *testing.B, group int) {
	custs := benchCustomers(400)
	var sumDecided, sumSent, sumFirst, sumMoved time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stack := benchStack(b, custs)
		stack.AppendIMAP(b, support, "INBOX", backlog(custs, backlogSize, fmt.Sprintf("bl%d", i))...)
		opts := benchOptions(b, stack, custs)
		opts.IMAP.CommitBatch = group

		var (
			decided, sentOK, sentErr, moved atomic.Int64
			mu                              sync.Mutex
			problems                        []string
			tFirst, tDecided, tSent, tMoved atomic.Int64 // UnixNano
			allDone                         = make(chan struct{})
			doneOnce                        sync.Once
		)
		problem := func(s string) {
			mu.Lock()
			if len(problems) < 10 {
				problems = append(problems, s)
			}
			mu.Unlock()
		}
		check := func() {
			if decided.Load() >= backlogSize && sentOK.Load() >= backlogSize && moved.Load() >= backlogSize {
				doneOnce.Do(func() { close(allDone) })
			}
		}
		opts.OnDecision = func(r daemon.Report) {
			if r.Ack == "" {
				problem(fmt.Sprintf("decision %s for %s without ack: %s %s", r.Decision, r.From, r.NoAck, r.Reason))
			}
			now := time.Now().UnixNano()
			switch decided.Add(1) {
			case 1:
				tFirst.Store(now)
			case backlogSize:
				tDecided.Store(now)
			}
			check()
		}
		opts.OnSourceStatus = func(st mail.SourceStatus) {
			// A scan round reports after every move it sent was answered.
			if st.Handled > 0 && moved.Add(int64(st.Handled)) >= backlogSize && tMoved.Load() == 0 {
				tMoved.Store(time.Now().UnixNano())
			}
			check()
		}
		opts.OnSent = func(r daemon.SendReport) {
			if r.Err != nil {
				sentErr.Add(1)
				problem(fmt.Sprintf("send %s to %v: %v", r.MessageID, r.To, r.Err))
				return
			}
			if sentOK.Add(1) == backlogSize {
				tSent.Store(time.Now().UnixNano())
			}
			check()
		}

		b.StartTimer()
		start := time.Now()
		d := startDeskd(b, opts)
		select {
		case <-allDone:
		case <-time.After(10 * time.Minute):
			b.StopTimer()
			d.stop(b)
			b.Fatalf("after 10 minutes: %d decisions, %d acks sent, %d send errors, %d moved; first problems: %q",
				decided.Load(), sentOK.Load(), sentErr.Load(), moved.Load(), problems)
		}
		b.StopTimer()
		d.stop(b)
		if len(problems) > 0 {
			b.Errorf("problems (first %d): %q", len(problems), problems)
		}
		if err := stack.Stop(); err != nil {
			b.Errorf("stack stop: %v", err)
		}
		sumFirst += time.Unix(0, tFirst.Load()).Sub(start)
		sumDecided += time.Unix(0, tDecided.Load()).Sub(start)
		sumSent += time.Unix(0, tSent.Load()).Sub(start)
		sumMoved += time.Unix(0, tMoved.Load()).Sub(start)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(backlogSize/(sumDecided.Seconds()/n), "mails/s")
	b.ReportMetric(backlogSize/(sumSent.Seconds()/n), "acks/s")
	b.ReportMetric(sumMoved.Seconds()/n, "moved-s")
	b.ReportMetric(max(sumDecided, sumSent, sumMoved).Seconds()/n, "total-s")
	b.ReportMetric(float64(sumFirst.Milliseconds())/n, "first-decision-ms")
}

// BenchmarkBareFetch2000 is the limit BenchmarkBacklog2000 chases: a bare
// go-imap v2 client logging in, selecting INBOX and fetching the same kind
// of 2,000-mail inbox with one UID FETCH 1:* (BODY.PEEK[] INTERNALDATE).
// One unmeasured fetch first warms Dovecot's index and cache (the inbox was
// just written, so the files are in the page cache either way).
func BenchmarkBareFetch2000(b *testing.B) {
	skipWithoutMailstack(b)
	custs := benchCustomers(400)
	stack := benchStack(b, custs)
	stack.AppendIMAP(b, support, "INBOX", backlog(custs, backlogSize, "bf")...)

	// fetchAll returns the number of messages and bytes it got, and how
	// long the UID FETCH command alone took.
	fetchAll := func() (int, int, time.Duration) {
		c, err := imapclient.DialInsecure(stack.IMAPAddr, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.Login(support, stack.Password(support)).Wait(); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			b.Fatal(err)
		}
		section := &imap.FetchItemBodySection{Peek: true}
		all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
		start := time.Now()
		msgs, err := c.Fetch(all, &imap.FetchOptions{
			InternalDate: true,
			BodySection:  []*imap.FetchItemBodySection{section},
		}).Collect()
		fetch := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		size := 0
		for _, m := range msgs {
			size += len(m.FindBodySection(section))
		}
		_ = c.Logout().Wait()
		return len(msgs), size, fetch
	}

	n, _, cold := fetchAll()
	if n != backlogSize {
		b.Fatalf("warm-up fetch got %d messages, want %d", n, backlogSize)
	}

	var total, fetch time.Duration
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n, got, f := fetchAll()
		total += time.Since(start)
		fetch += f
		if n != backlogSize {
			b.Fatalf("fetch got %d messages, want %d", n, backlogSize)
		}
		size = got
	}
	b.StopTimer()
	per := total.Seconds() / float64(b.N)
	b.ReportMetric(backlogSize/per, "mails/s")
	b.ReportMetric(per*1000, "ms-total")
	b.ReportMetric(fetch.Seconds()*1000/float64(b.N), "fetch-ms")
	b.ReportMetric(cold.Seconds()*1000, "first-fetch-ms")
	b.ReportMetric(float64(size)/backlogSize, "bytes/mail")
}

const (
	latencyMails = 200
	// latencyPoll is how often a watcher asks Dovecot (STATUS INBOX
	// MESSAGES) whether the acknowledgement has arrived. STATUS sees a
	// delivery at once; IDLE on the customer's mailbox would not do: Dovecot
	// tells an IDLE client about new mail only after a ~500 ms delay
	// (mailbox-watch's notify delay), which would inflate every figure.
	latencyPoll = 20 * time.Millisecond
	// In the "spaced" run sends are spaced uniformly at random in
	// [latencyGapMin, latencyGapMax], about 13 mails/s: a steady stream, so
	// several mails may share one IDLE wake-up of deskd. The "sequential"
	// run sends the next mail latencyGapMin after the previous
	// acknowledgement arrived: every mail meets deskd with nothing to do,
	// and, coming within 2 s of the one before, polling for more
	// (mail.IMAPConfig.BurstFor) rather than in IDLE.
	latencyGapMin = 50 * time.Millisecond
	latencyGapMax = 100 * time.Millisecond
)

// BenchmarkAckLatency200 measures the latency a customer sees: deskd runs
// idle in IMAP IDLE; 200 customers (distinct senders) each send one mail
// through Postfix's SMTP listener, either spaced 50–100 ms apart (spaced)
// or one at a time, each after the previous acknowledgement arrived
// (sequential); for each mail the
// time from SMTP's acceptance (SendSMTP's return: the 250 to DATA plus one
// QUIT round trip on loopback) to the moment deskd's acknowledgement is in
// the customer's Dovecot INBOX (STATUS polled every 20 ms on a connection
// opened before the send).
//
// Both legs go through Postfix (customer → Postfix → LMTP → support@, and
// deskd → Postfix → LMTP → customer), so Postfix's delivery latency counts
// twice. And deskd learns of a new mail through IDLE, which Dovecot delays
// by ~500 ms after the delivery: that is the floor for the first leg of a
// mail that meets deskd in IDLE (in both runs here, mails come within 2 s
// of each other, and deskd polls every 25 ms instead).
// The medians of the split reported alongside (in-p50-ms: SMTP accepted →
// decision committed; queue-p50-ms: committed → OnSent, i.e. the ack handed
// to Postfix and the outcome recorded; out-p50-ms: OnSent → visible in the
// customer's INBOX) show where the time goes. The watchers' STATUS polling
// (a few hundred commands/s in the spaced run) loads Dovecot a little.
func BenchmarkAckLatency200(b *testing.B) {
	skipWithoutMailstack(b)
	b.Run("spaced", func(b *testing.B) { ackLatency(b, false) })
	b.Run("sequential", func(b *testing.B) { ackLatency(b, true) })
}

func ackLatency(b *testing.B, sequential bool) {
	custs := benchCustomers(latencyMails)
	var lat, in, queue, out []time.Duration
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		stack := benchStack(b, custs)
		opts := benchOptions(b, stack, custs)
		onStatus, idle := idleSignal()
		opts.OnSourceStatus = onStatus

		var mu sync.Mutex
		decidedAt := map[string]time.Time{} // sender → commit time
		sentAt := map[string]time.Time{}    // recipient → handed to Postfix
		var problems []string
		opts.OnDecision = func(r daemon.Report) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			decidedAt[strings.ToLower(r.From)] = now
			if r.Ack == "" {
				problems = append(problems, fmt.Sprintf("%s: %s without ack: %s", r.From, r.Decision, r.NoAck))
			}
		}
		opts.OnSent = func(r daemon.SendReport) {
			now := r.At // the relay's answer, not the record after it
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil {
				problems = append(problems, fmt.Sprintf("send to %v: %v", r.To, r.Err))
				return
			}
			for _, to := range r.To {
				sentAt[strings.ToLower(to)] = now
			}
		}
		d := startDeskd(b, opts)
		select {
		case <-idle:
		case <-time.After(30 * time.Second):
			b.Fatal("deskd did not go idle within 30s")
		}
		time.Sleep(500 * time.Millisecond) // let it settle in IDLE

		type result struct {
			i                int
			accepted, arrive time.Time
			err              error
		}
		results := make(chan result, latencyMails)
		accepted := make([]time.Time, latencyMails)
		rng := rand.New(rand.NewPCG(1, uint64(iter)))
		arrived := make([]time.Time, latencyMails)
		var failed []string
		take := func(r result) {
			if r.err != nil {
				failed = append(failed, fmt.Sprintf("mail %d (%s): %v", r.i, custs[r.i].addr, r.err))
				return
			}
			arrived[r.i] = r.arrive
			lat = append(lat, r.arrive.Sub(r.accepted))
		}
		pending := 0
		b.StartTimer()
		next := time.Now()
		for i, c := range custs {
			// The watcher logs in before the send, so login is not timed.
			w, err := imapclient.DialInsecure(stack.IMAPAddr, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Login(c.addr, stack.Password(c.addr)).Wait(); err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Until(next))
			if err := stack.SendSMTP(c.addr, []string{support}, benchMail(c, i, "lat")); err != nil {
				b.Fatalf("send %d: %v", i, err)
			}
			accepted[i] = time.Now()
			go func(i int, w *imapclient.Client, acc time.Time) {
				defer w.Close()
				deadline := acc.Add(2 * time.Minute)
				for {
					st, err := w.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
					now := time.Now()
					if err != nil {
						results <- result{i: i, err: err}
						return
					}
					if st.NumMessages != nil && *st.NumMessages > 0 {
						results <- result{i: i, accepted: acc, arrive: now}
						return
					}
					if now.After(deadline) {
						results <- result{i: i, err: fmt.Errorf("no acknowledgement after %s", deadline.Sub(acc))}
						return
					}
					time.Sleep(latencyPoll)
				}
			}(i, w, accepted[i])
			if sequential {
				take(<-results)
				next = time.Now().Add(latencyGapMin)
			} else {
				pending++
				next = next.Add(latencyGapMin + time.Duration(rng.Int64N(int64(latencyGapMax-latencyGapMin))))
			}
		}
		for ; pending > 0; pending-- {
			take(<-results)
		}
		b.StopTimer()
		d.stop(b)
		if err := stack.Stop(); err != nil {
			b.Errorf("stack stop: %v", err)
		}
		mu.Lock()
		for i, c := range custs {
			dt, okD := decidedAt[c.addr]
			st, okS := sentAt[c.addr]
			if !okD || !okS || arrived[i].IsZero() {
				continue
			}
			in = append(in, dt.Sub(accepted[i]))
			queue = append(queue, st.Sub(dt))
			out = append(out, arrived[i].Sub(st))
		}
		if len(problems) > 0 {
			b.Errorf("deskd problems: %q", problems)
		}
		mu.Unlock()
		if len(failed) > 0 {
			b.Fatalf("%d of %d acknowledgements missing: %q", len(failed), latencyMails, failed)
		}
		b.StartTimer()
	}
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 90)), "p90-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(lat, 100)), "max-ms")
	b.ReportMetric(ms(percentile(in, 50)), "in-p50-ms")
	b.ReportMetric(ms(percentile(queue, 50)), "queue-p50-ms")
	b.ReportMetric(ms(percentile(out, 50)), "out-p50-ms")
}

// percentile is the nearest-rank p-th percentile of ds (0 if empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

const idleWindow = 10 * time.Second

// cpuTime is the process's user + system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleCPU is the CPU deskd burns while it waits in IDLE: the
// process's CPU time (getrusage RUSAGE_SELF, user + system) over 10 s with
// deskd running in-process and the benchmark goroutine asleep. The same
// window measured before deskd starts (baseline-cpu-ms) is what the test
// binary's own runtime costs; the Dovecot and Postfix processes are not
// counted.
func BenchmarkIdleCPU(b *testing.B) {
	skipWithoutMailstack(b)
	stack := newStack(b)
	opts := options(b, stack, b.TempDir())
	onStatus, idle := idleSignal()
	opts.OnSourceStatus = onStatus

	before := cpuTime(b)
	time.Sleep(idleWindow)
	baseline := cpuTime(b) - before

	d := startDeskd(b, opts)
	defer d.stop(b)
	select {
	case <-idle:
	case <-time.After(30 * time.Second):
		b.Fatal("deskd did not go idle within 30s")
	}
	time.Sleep(time.Second) // let start-up work (GC, store open) finish

	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := cpuTime(b)
		time.Sleep(idleWindow)
		total += cpuTime(b) - before
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "cpu-ms/10s")
	b.ReportMetric(float64(baseline.Microseconds())/1000, "baseline-cpu-ms/10s")
}

// BenchmarkBareSMTP2000 is Postfix alone, the limit deskd's outbound side
// chases (BenchmarkBacklog2000's acks/s, in the same run): a bare go-smtp
// client submits 2,000 acknowledgement-sized mails (about 1.5 KB) from
// support@ to the same 400 customers to the private Postfix, which
// delivers them into their Dovecot mailboxes over LMTP. conn-per-mail
// opens a connection per mail (EHLO, MAIL, RCPT, DATA, QUIT); one-conn
// sends them all over one connection (RSET between mails). accepted/s
// counts Postfix's 250 to DATA; delivered/s runs until Postfix's queue is
// empty, every mail in Dovecot.
func BenchmarkBareSMTP2000(b *testing.B) {
	skipWithoutMailstack(b)
	custs := benchCustomers(400)
	for _, mode := range []string{"conn-per-mail", "one-conn"} {
		b.Run(mode, func(b *testing.B) {
			stack := benchStack(b, custs)
			var sumAccepted, sumDelivered time.Duration
			for range b.N {
				b.StopTimer()
				msgs := make([][]byte, backlogSize)
				rcpts := make([]string, backlogSize)
				for i := range msgs {
					rcpts[i], msgs[i] = ackMail(custs, i, "bare")
				}
				all := func(yield func(string, []byte) bool) {
					for i := range msgs {
						if !yield(rcpts[i], msgs[i]) {
							return
						}
					}
				}
				b.StartTimer()
				start := time.Now()
				if mode == "one-conn" {
					if err := bareSMTP(stack.SMTPAddr, all); err != nil {
						b.Fatal(err)
					}
				} else {
					for to, raw := range all {
						if err := stack.SendSMTP(support, []string{to}, raw); err != nil {
							b.Fatal(err)
						}
					}
				}
				sumAccepted += time.Since(start)
				stack.WaitQueueEmpty(b, 5*time.Minute)
				sumDelivered += time.Since(start)
			}
			b.StopTimer()
			// Every mail is in its customer's mailbox, so the figure is
			// Postfix and Dovecot doing the whole job.
			total := 0
			for _, c := range custs {
				total += len(stack.WaitForMessages(b, c.addr, "INBOX", 0, 30*time.Second))
			}
			if total != b.N*backlogSize {
				b.Fatalf("%d mails in the customers' mailboxes, want %d", total, b.N*backlogSize)
			}
			n := float64(b.N)
			b.ReportMetric(backlogSize/(sumAccepted.Seconds()/n), "accepted/s")
			b.ReportMetric(backlogSize/(sumDelivered.Seconds()/n), "delivered/s")
		})
	}
}

// ackMail is the i-th acknowledgement-sized mail (about 1.5 KB) from
// support@ to one of custs, and its recipient; tag keeps the Message-IDs
// of different senders apart.
func ackMail(custs []benchCustomer, i int, tag string) (string, []byte) {
	c := custs[i%len(custs)]
	raw := fmt.Sprintf("From: Desk Support <%s>\r\nTo: %q <%s>\r\nSubject: [Case #%d] Ontvangen: Vraag %d\r\n"+
		"Message-ID: <%s-%d-%d@desk.test>\r\nDate: %s\r\nAuto-Submitted: auto-replied\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		support, c.name, c.addr, i+1, i, tag, i, time.Now().UnixNano(), time.Now().Format(time.RFC1123Z),
		strings.Repeat("Wij hebben uw vraag ontvangen en behandelen die binnen de afgesproken tijd.\r\n", 16))
	return c.addr, []byte(raw)
}

// bareSMTP is the bare go-smtp client: one connection, EHLO once, then
// MAIL, RCPT, DATA for each mail with RSET between them, and QUIT.
func bareSMTP(addr string, msgs func(yield func(string, []byte) bool)) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("bare.desk.test"); err != nil {
		return err
	}
	for to, raw := range msgs {
		if err := c.SendMail(support, []string{to}, bytes.NewReader(raw)); err != nil {
			return err
		}
		if err := c.Reset(); err != nil {
			return err
		}
	}
	return c.Quit()
}
