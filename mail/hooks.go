package mail

import (
	"context"
	"time"
)

// SourceHooks lets the owner of a Source watch its loop: the daemon turns
// the heartbeats into systemd watchdog pings and the login results into
// readiness (sd_notify(3)). IMAPConfig holds a pointer to it so that
// IMAPConfig stays comparable (the daemon compares configurations on
// reload); every field is optional.
type SourceHooks struct {
	// Heartbeat is called at least every HeartbeatEvery while the loop is
	// healthy: while it waits in IDLE, between polls, during the reconnect
	// backoff, and between handled messages. A loop stuck in a handler
	// (a commit that never returns) stops calling it.
	Heartbeat func()
	// HeartbeatEvery is the longest gap between heartbeats while the loop
	// waits (default 5s). A single network command is bounded by
	// ConnectTimeout or CommandTimeout instead.
	HeartbeatEvery time.Duration
	// OnLogin is called after each connect-and-login attempt of the watch
	// loop, with its error (nil: logged in). Not called for Login, nor for
	// an attempt cut short because the context ended.
	OnLogin func(err error)
	// OnReconnect is called each time a session ended and the loop signs
	// in again, with why: "renew" (deskd ended it before its token
	// expired), "expired" (the server ended it for its token), "refused"
	// (the server refused the token; signing in with a fresh one) or
	// "error" (anything else; after the backoff).
	OnReconnect func(reason string)
	// Backlog is told how many of the messages a scan found are not yet
	// handled: the count at the start of a scan, after each group, and 0
	// when the scan ends (however it ends). The outbox uses it to let a
	// backlog be committed first (daemon: ingestFirst).
	Backlog func(n int)
}

const defaultHeartbeatEvery = 5 * time.Second

func (s *Source) heartbeat() {
	if h := s.cfg.Hooks; h != nil && h.Heartbeat != nil {
		h.Heartbeat()
	}
}

func (s *Source) heartbeatEvery() time.Duration {
	if h := s.cfg.Hooks; h != nil && h.HeartbeatEvery > 0 {
		return h.HeartbeatEvery
	}
	return defaultHeartbeatEvery
}

func (s *Source) backlog(n int) {
	if h := s.cfg.Hooks; h != nil && h.Backlog != nil {
		h.Backlog(n)
	}
}

func (s *Source) loginDone(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if h := s.cfg.Hooks; h != nil && h.OnLogin != nil {
		h.OnLogin(err)
	}
}

func (s *Source) reconnected(reason string) {
	if h := s.cfg.Hooks; h != nil && h.OnReconnect != nil {
		h.OnReconnect(reason)
	}
}

// sleep waits d, beating meanwhile; false when ctx ended first.
func (s *Source) sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(s.heartbeatEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-tick.C:
			s.heartbeat()
		}
	}
}
