package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"deskd/daemon"
)

// notifier speaks systemd's notify protocol (sd_notify(3)) for `deskd run`
// under Type=notify: READY=1 once the store is open and the first IMAP
// login succeeded (or its retry failed: a mail outage must not fail the
// unit), RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 on SIGTERM,
// STATUS= lines for `systemctl status`, and WATCHDOG=1 pings while the
// daemon's loops beat. With NOTIFY_SOCKET unset every method is a no-op.
type notifier struct {
	log     *slog.Logger
	enabled bool

	mu       sync.Mutex
	ready    bool // READY=1 was sent: reloads may now say RELOADING=1
	stopping bool
	status   string
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, enabled: os.Getenv("NOTIFY_SOCKET") != ""}
}

// send writes one datagram of newline-separated assignments. Failures are
// logged at debug level only: systemd going away must not stop deskd.
func (n *notifier) send(state string) {
	if !n.enabled {
		return
	}
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Debug("sd_notify", "state", state, "err", err)
	}
}

// statusLine makes s fit one STATUS= assignment: the protocol separates
// assignments with newlines.
func statusLine(s string) string {
	return "STATUS=" + strings.Join(strings.Fields(s), " ")
}

// options wires the daemon's readiness and status callbacks to n, and
// makes the loops beat often enough for the watchdog interval (if any).
func (n *notifier) options(opts daemon.Options) daemon.Options {
	opts.OnReady = n.Ready
	opts.OnStatus = n.Status
	if wd := n.watchdogInterval(); wd > 0 {
		// Several beats within the age the watchdog accepts (wd).
		opts.HeartbeatEvery = min(5*time.Second, wd/4)
	}
	return opts
}

// Status sends STATUS=s.
func (n *notifier) Status(s string) {
	n.mu.Lock()
	n.status = s
	stopping := n.stopping
	n.mu.Unlock()
	if !stopping {
		n.send(statusLine(s))
	}
}

// Ready sends READY=1 with the status; the daemon calls it once.
func (n *notifier) Ready(status string) {
	n.mu.Lock()
	n.ready, n.status = true, status
	n.mu.Unlock()
	n.send(sd.SdNotifyReady + "\n" + statusLine(status))
}

// Reloading says a SIGHUP is being handled; it returns the function that
// says it is done. Before READY=1 (a SIGHUP during start-up) both say
// nothing: READY=1 must keep meaning "started".
func (n *notifier) Reloading() (done func(problem error)) {
	n.mu.Lock()
	ready := n.ready
	n.mu.Unlock()
	if !ready {
		return func(error) {}
	}
	// MONOTONIC_USEC is what Type=notify-reload (systemd 253+) matches the
	// reload with; older managers ignore it.
	n.send(sd.SdNotifyReloading + "\n" + strings.TrimSuffix(sd.SdNotifyMonotonicUsec(), "\n") + "\n" + statusLine("reloading configuration"))
	return func(problem error) {
		n.mu.Lock()
		status := n.status
		n.mu.Unlock()
		if problem != nil {
			status = "reload refused, running the previous configuration: " + problem.Error()
		}
		n.send(sd.SdNotifyReady + "\n" + statusLine(status))
	}
}

// Stopping sends STOPPING=1 (once): SIGTERM arrived, deskd finishes the
// transaction and the send in flight.
func (n *notifier) Stopping() {
	n.mu.Lock()
	already := n.stopping
	n.stopping = true
	n.mu.Unlock()
	if !already {
		n.send(sd.SdNotifyStopping + "\n" + statusLine("stopping: finishing the mail in flight"))
	}
}

// watchdogInterval is WatchdogSec= as systemd passed it (WATCHDOG_USEC,
// for this process per WATCHDOG_PID), or 0.
func (n *notifier) watchdogInterval() time.Duration {
	if !n.enabled {
		return 0
	}
	wd, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("watchdog settings ignored", "err", err)
		return 0
	}
	return wd
}

// startWatchdog pings WATCHDOG=1 every half watchdog interval, but only
// while alive says every loop beat within the interval: a loop wedged in
// a handler or a commit stops the pings, and systemd kills and restarts
// deskd (WatchdogSignal, SIGABRT by default: the Go runtime then writes
// every goroutine's stack to the journal). stop ends the goroutine and
// waits for it.
func (n *notifier) startWatchdog(alive func(maxAge time.Duration) (bool, []string)) (stop func()) {
	wd := n.watchdogInterval()
	if wd <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.watchdog(ctx, wd, alive)
	}()
	return func() { cancel(); <-done }
}

func (n *notifier) watchdog(ctx context.Context, wd time.Duration, alive func(time.Duration) (bool, []string)) {
	tick := time.NewTicker(wd / 2)
	defer tick.Stop()
	stalled := false
	for {
		ok, stale := alive(wd)
		switch {
		case ok:
			if stalled {
				n.log.Info("watchdog: every loop beats again")
				stalled = false
			}
			n.send(sd.SdNotifyWatchdog)
		case !stalled:
			stalled = true
			n.log.Error("watchdog: loop stalled, not pinging systemd", "stale", stale, "max_age", wd)
			n.send(statusLine("stalled: " + strings.Join(stale, ", ") + " loop silent for over " + wd.String() + "; systemd will restart deskd"))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
