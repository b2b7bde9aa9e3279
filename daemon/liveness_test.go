package daemon

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/internal/peers"
)

// livenessEvents records what the daemon tells the service manager.
type livenessEvents struct {
	mu     sync.Mutex
	ready  []string
	status []string
}

func (e *livenessEvents) wire(o *Options) {
	o.OnReady = func(s string) { e.mu.Lock(); e.ready = append(e.ready, s); e.mu.Unlock() }
	o.OnStatus = func(s string) { e.mu.Lock(); e.status = append(e.status, s); e.mu.Unlock() }
}

func (e *livenessEvents) snapshot() (ready, status []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ready...), append([]string(nil), e.status...)
}

// eventually polls cond until it holds (a generous deadline, no timing
// assertion).
func livenessWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runDaemon opens and runs a daemon with opts; the returned stop ends it.
func livenessDaemon(t *testing.T, opts Options) (*Daemon, func()) {
	t.Helper()
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with error: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop within 15s")
		}
	}
	t.Cleanup(stop)
	return d, stop
}

func livenessPeers(t *testing.T) (*peers.IMAP, *peers.SMTP) {
	t.Helper()
	imapSrv, err := peers.StartIMAP(support, "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imapSrv.Close() })
	smtpSrv, err := peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtpSrv.Close() })
	return imapSrv, smtpSrv
}

// A handler that never returns (a wedged commit) stops the IMAP loop's
// heartbeats: Alive names the imap loop while the outbox loop still beats,
// and every loop is alive again once the handler returns. This is what
// stops systemd's watchdog pings (cmd/deskd/notify.go).
func TestWedgedIMAPLoopIsNotAlive(t *testing.T) {
	imapSrv, smtpSrv := livenessPeers(t)
	opts := testOptions(t, imapSrv, smtpSrv, t.TempDir())
	opts.HeartbeatEvery = 20 * time.Millisecond
	var ev livenessEvents
	ev.wire(&opts)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	opts.OnDecision = func(Report) {
		// Runs inside the IMAP loop's handler, as a commit would.
		once.Do(func() { close(entered); <-release })
	}
	d, stop := livenessDaemon(t, opts)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the daemon's stop (cleanups run last first)

	livenessWait(t, "OnReady after the login", func() bool { r, _ := ev.snapshot(); return len(r) == 1 })
	if r, _ := ev.snapshot(); !strings.Contains(r[0], "logged in to IMAP") {
		t.Errorf("ready status %q", r[0])
	}
	livenessWait(t, "every loop alive", func() bool { ok, _ := d.Alive(2 * time.Second); return ok })

	if err := imapSrv.Deliver("INBOX", []byte(strings.ReplaceAll(question("wedge@acme.example", "Bob <bob@acme.example>", "Vraag", ""), "\n", "\r\n")), time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never ran")
	}
	// The imap loop goes stale; the outbox loop keeps beating.
	livenessWait(t, "imap (and only imap) stale", func() bool {
		ok, stale := d.Alive(time.Second)
		return !ok && slices.Equal(stale, []string{"imap"})
	})

	unblock()
	livenessWait(t, "every loop alive again", func() bool { ok, _ := d.Alive(time.Second); return ok })
	stop()
	if r, _ := ev.snapshot(); len(r) != 1 {
		t.Errorf("OnReady called %d times, want once: %q", len(r), r)
	}
}

// With the mailbox unreachable, the daemon still becomes ready, after the
// retry, with a status naming the problem: a mail outage must not fail
// the service. A later login does not make it ready a second time.
func TestReadyAfterFailedRetry(t *testing.T) {
	imapSrv, smtpSrv := livenessPeers(t)
	// A closed loopback port: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := testOptions(t, imapSrv, smtpSrv, t.TempDir())
	opts.IMAP.Port = closedPort
	opts.HeartbeatEvery = 20 * time.Millisecond
	var ev livenessEvents
	ev.wire(&opts)
	d, stop := livenessDaemon(t, opts)

	livenessWait(t, "OnReady despite the outage", func() bool { r, _ := ev.snapshot(); return len(r) == 1 })
	ready, status := ev.snapshot()
	if !strings.Contains(ready[0], "IMAP unreachable") || !strings.Contains(ready[0], "connection refused") {
		t.Errorf("ready status %q, want the IMAP problem", ready[0])
	}
	// The first failure was a status of its own: ready came with the retry.
	if !slices.ContainsFunc(status, func(s string) bool { return strings.Contains(s, "IMAP unreachable") }) {
		t.Errorf("no status for the first failed login before ready: %q", status)
	}
	// The retrying loop still beats: no watchdog restart for a mail outage.
	livenessWait(t, "every loop alive while IMAP is down", func() bool { ok, _ := d.Alive(2 * time.Second); return ok })

	// The server comes back (a reload points deskd at it): a status, but
	// no second OnReady.
	fixed := opts
	fixed.IMAP.Port = imapSrv.Port()
	if err := d.Reload(fixed); err != nil {
		t.Fatal(err)
	}
	livenessWait(t, "status after the login", func() bool {
		_, st := ev.snapshot()
		return slices.ContainsFunc(st, func(s string) bool { return strings.HasPrefix(s, "watching INBOX (IDLE), 0 open cases") })
	})
	stop()
	if r, _ := ev.snapshot(); len(r) != 1 {
		t.Errorf("OnReady called %d times, want once: %q", len(r), r)
	}
}

// Alive counts a loop that never beat from when Run started, and names
// every stale loop.
func TestAliveBookkeeping(t *testing.T) {
	var d Daemon
	d.health.reset()
	if ok, stale := d.Alive(time.Hour); !ok || stale != nil {
		t.Errorf("fresh: %v %v", ok, stale)
	}
	d.health.mu.Lock()
	d.health.since = time.Now().Add(-time.Minute)
	d.health.mu.Unlock()
	if ok, stale := d.Alive(time.Second); ok || !slices.Equal(stale, []string{"imap", "outbox"}) {
		t.Errorf("never beat: %v %v", ok, stale)
	}
	d.beat("outbox")
	if ok, stale := d.Alive(time.Second); ok || !slices.Equal(stale, []string{"imap"}) {
		t.Errorf("outbox beat: %v %v", ok, stale)
	}
	d.beat("imap")
	if ok, stale := d.Alive(time.Second); !ok || stale != nil {
		t.Errorf("both beat: %v %v", ok, stale)
	}
}
