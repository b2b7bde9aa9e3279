package daemon

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
)

// Liveness and readiness, for the service manager (cmd/deskd turns them
// into sd_notify(3) messages). The loops that must stay alive beat: the
// IMAP loop from inside mail.Source (SourceHooks.Heartbeat: while it
// waits, and between handled messages), the outbox loop each time around.
// Alive tells the watchdog whether every one of them beat recently, so a
// loop wedged in a handler or a commit stops the pings and systemd
// restarts deskd.

// watchedLoops are the loops Alive checks.
var watchedLoops = [...]string{"imap", "outbox"}

// defaultHeartbeatEvery is how often an idle loop beats when
// Options.HeartbeatEvery is unset.
const defaultHeartbeatEvery = 5 * time.Second

// health is the daemon's liveness and readiness state. Its clock is the
// wall clock (monotonic), never Options.Now: tests freeze that one.
type health struct {
	mu    sync.Mutex
	since time.Time            // a loop that never beat counts from here
	last  map[string]time.Time // loop name → last beat

	loginFailures int  // consecutive failed IMAP logins
	ready         bool // OnReady was called
	status        string
}

// reset starts the clock afresh (Run calls it as the loops start).
func (h *health) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.since, h.last = time.Now(), map[string]time.Time{}
}

func (d *Daemon) beat(loop string) {
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.since, h.last = time.Now(), map[string]time.Time{}
	}
	h.last[loop] = time.Now()
}

// Alive reports whether every watched loop (the IMAP loop and the outbox
// loop) beat within maxAge, and names those that did not. A loop that has
// not beaten yet counts from when Run started.
func (d *Daemon) Alive(maxAge time.Duration) (ok bool, stale []string) {
	if !d.acts() {
		return true, nil // a cluster follower runs neither loop
	}
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.last == nil {
		h.since, h.last = now, map[string]time.Time{}
	}
	for _, loop := range watchedLoops {
		t, beat := h.last[loop]
		if !beat {
			t = h.since
		}
		if now.Sub(t) > maxAge {
			stale = append(stale, loop)
		}
	}
	slices.Sort(stale)
	return len(stale) == 0, stale
}

// heartbeatEvery is how often the loops beat while they wait.
func (rt *runtime) heartbeatEvery() time.Duration {
	if rt.opts.HeartbeatEvery > 0 {
		return rt.opts.HeartbeatEvery
	}
	return defaultHeartbeatEvery
}

// sourceHooks connects a new mail.Source to the liveness tracker and to
// readiness.
func (d *Daemon) sourceHooks(rt *runtime) *mail.SourceHooks {
	return &mail.SourceHooks{
		Heartbeat:      func() { d.beat("imap") },
		HeartbeatEvery: rt.heartbeatEvery(),
		OnLogin:        func(err error) { d.loginAttempt(err); d.imapSignedIn(err) },
		OnReconnect:    d.imapTokenReconnect,
		Backlog:        func(n int) { d.ingestBacklog.Store(int64(n)) },
	}
}

// loginAttempt makes the daemon ready (OnReady, once) when the first IMAP
// login succeeds, or when the retry failed too: a mail outage is reported
// in the status, and must not fail the service's start.
func (d *Daemon) loginAttempt(err error) {
	h := &d.health
	h.mu.Lock()
	var status string
	if err == nil {
		h.loginFailures = 0
		status = "logged in to IMAP, watching " + mailboxName(d.rt.Load().opts.IMAP)
	} else {
		h.loginFailures++
		status = unreachable(err)
	}
	becomeReady := !h.ready && (err == nil || h.loginFailures >= 2)
	if becomeReady {
		h.ready = true
		h.status = status
	}
	h.mu.Unlock()
	if becomeReady {
		if f := d.rt.Load().opts.OnReady; f != nil {
			f(status)
		}
		return
	}
	d.setStatus(status)
}

func unreachable(err error) string {
	return fmt.Sprintf("IMAP unreachable: %v, retrying", err)
}

// setStatus passes a new status line to OnStatus, unless it says what the
// last one said.
func (d *Daemon) setStatus(s string) {
	h := &d.health
	h.mu.Lock()
	same := s == h.status
	h.status = s
	h.mu.Unlock()
	if same {
		return
	}
	if f := d.rt.Load().opts.OnStatus; f != nil {
		f(s)
	}
}

// sourceStatus turns the IMAP loop's report after a scan round (or a
// session's end) into a status line: "watching INBOX (IDLE), 3 open cases".
func (d *Daemon) sourceStatus(st mail.SourceStatus) {
	if st.Err != nil {
		d.setStatus(unreachable(st.Err))
		return
	}
	if !st.Connected {
		return
	}
	cfg := d.rt.Load().opts.IMAP
	how := "IDLE"
	if !st.Idle {
		every := cfg.PollInterval
		if every <= 0 {
			every = 5 * time.Minute // mail.NewSource's default
		}
		how = "polling every " + every.String()
	}
	// Every scan round lands here (40 a second while mail keeps coming):
	// the store keeps the count (one key), never a walk of the cases.
	var open int
	err := d.db.View(func(tx *store.Tx) (err error) {
		open, err = tx.CountCasesWithStatus(cases.StatusOpen)
		return err
	})
	s := fmt.Sprintf("watching %s (%s), %d open %s", mailboxName(cfg), how, open, plural(open, "case", "cases"))
	if err != nil {
		s = fmt.Sprintf("watching %s (%s)", mailboxName(cfg), how)
	}
	d.setStatus(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func mailboxName(cfg mail.IMAPConfig) string {
	if cfg.Mailbox == "" {
		return "INBOX" // mail.NewSource's default
	}
	return cfg.Mailbox
}
