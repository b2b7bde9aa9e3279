package mail

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// hookLog records what a Source's hooks saw.
type hookLog struct {
	beats  atomic.Int64
	mu     sync.Mutex
	logins []error
}

func (h *hookLog) hooks(every time.Duration) *SourceHooks {
	return &SourceHooks{
		Heartbeat:      func() { h.beats.Add(1) },
		HeartbeatEvery: every,
		OnLogin:        func(err error) { h.mu.Lock(); h.logins = append(h.logins, err); h.mu.Unlock() },
	}
}

func (h *hookLog) loginResults() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.logins...)
}

func hookWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The source beats while it waits in IDLE (RFC 2177) and while it polls,
// and reports its login; the hooks are optional (nil Hooks works, see the
// other tests).
func TestSourceHeartbeatAndLogin(t *testing.T) {
	for _, idle := range []bool{true, false} {
		t.Run(fmt.Sprintf("idle=%v", idle), func(t *testing.T) {
			p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
			cfg := p.sourceConfig(t, "none")
			cfg.Idle = idle
			if !idle {
				cfg.PollInterval = 200 * time.Millisecond // the mail below is found by a poll
			}
			var h hookLog
			cfg.Hooks = h.hooks(10 * time.Millisecond)
			rec := newRecorder(nil)
			stop := runSource(t, cfg, rec.handle)
			defer stop()
			hookWait(t, "a login", func() bool { return len(h.loginResults()) == 1 })
			if err := h.loginResults()[0]; err != nil {
				t.Fatalf("login reported %v", err)
			}
			// No mail: the source waits (IDLE or poll) and beats meanwhile.
			start := h.beats.Load()
			hookWait(t, "heartbeats while waiting", func() bool { return h.beats.Load() >= start+3 })
			p.deliver(t, fmt.Sprintf(sample, 1, 1))
			rec.wait(t, 1)
		})
	}
}

// Every failed connect or login is reported, and the source beats while it
// waits to retry.
func TestSourceReportsFailedLogins(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cfg := IMAPConfig{Host: "127.0.0.1", Port: port, TLS: "none", Username: "u", Password: "p", ConnectTimeout: 5 * time.Second}
		var h hookLog
		cfg.Hooks = h.hooks(10 * time.Millisecond)
		stop := runSource(t, cfg, newRecorder(nil).handle)
		defer stop()
		hookWait(t, "two failed attempts", func() bool { return len(h.loginResults()) >= 2 })
		for _, err := range h.loginResults() {
			if err == nil {
				t.Error("a refused connection reported as a login")
			}
		}
		if h.beats.Load() == 0 {
			t.Error("no heartbeat during the backoff")
		}
	})
	t.Run("bad password", func(t *testing.T) {
		p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
		cfg := p.sourceConfig(t, "none")
		cfg.Password = "wrong"
		var h hookLog
		cfg.Hooks = h.hooks(10 * time.Millisecond)
		stop := runSource(t, cfg, newRecorder(nil).handle)
		defer stop()
		hookWait(t, "a failed login", func() bool { return len(h.loginResults()) >= 1 })
		if err := h.loginResults()[0]; err == nil {
			t.Error("a wrong password reported as a login")
		}
	})
}

// A handler that does not return stops the heartbeats: that is what makes
// a wedged loop visible to the watchdog.
func TestSourceHeartbeatStopsInWedgedHandler(t *testing.T) {
	p := startIMAPPeer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, nil, false)
	cfg := p.sourceConfig(t, "none")
	var h hookLog
	cfg.Hooks = h.hooks(10 * time.Millisecond)
	entered := make(chan struct{})
	release := make(chan struct{})
	stop := runSource(t, cfg, func(ctx context.Context, m *Fetched) Disposition {
		close(entered)
		<-release
		return Processed
	})
	defer stop()
	p.deliver(t, fmt.Sprintf(sample, 1, 1))
	<-entered
	// Whatever beat was on its way when the handler began has landed
	// once two reads agree across a few heartbeat periods; then no more
	// come while the handler blocks.
	var frozen int64
	hookWait(t, "beats to stop", func() bool {
		a := h.beats.Load()
		time.Sleep(50 * time.Millisecond)
		frozen = h.beats.Load()
		return a == frozen
	})
	close(release)
	hookWait(t, "beats again after the handler", func() bool { return h.beats.Load() > frozen })
	waitCount(t, p, "Processed", 1)
}
