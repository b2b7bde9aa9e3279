package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/store"
)

// testClock is the daemon's clock in these tests: the real time plus an
// offset the test moves, or a frozen instant. Ages on /healthz and
// /metrics are driven by it, so no test waits for real time to pass.
type testClock struct {
	mu     sync.Mutex
	off    time.Duration
	frozen time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen
	}
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }
func (c *testClock) freeze(t time.Time)      { c.mu.Lock(); c.frozen = t; c.mu.Unlock() }

// newOpsHarness is newHarness with the HTTP listener on 127.0.0.1:0, the
// test clock, and a chance to adjust the daemon (health probe pacing)
// before it runs.
func newOpsHarness(t *testing.T, tweak func(*Options), tweakDaemon func(*Daemon)) (*harness, *testClock) {
	t.Helper()
	clock := &testClock{}
	h := newHarnessNotStarted(t, func(o *Options) {
		o.HTTPListen = "127.0.0.1:0"
		o.HealthMaxAge = time.Hour
		o.Version = "1.2.3-test"
		o.Now = clock.now
		if tweak != nil {
			tweak(o)
		}
	})
	opts := h.opts
	opts.OnDecision = func(r Report) { h.mu.Lock(); h.reports = append(h.reports, r); h.mu.Unlock() }
	opts.OnSent = func(r SendReport) { h.mu.Lock(); h.sent = append(h.sent, r); h.mu.Unlock() }
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if tweakDaemon != nil {
		tweakDaemon(d) // before Run: its goroutines see the change
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.d, h.cancel, h.done = d, cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	t.Cleanup(h.stop)
	return h, clock
}

// httpURL waits until Run has bound the listener and returns its base URL.
func (h *harness) httpURL() string {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if a := h.d.HTTPAddr(); a != "" {
			return "http://" + a
		}
	}
	h.t.Fatal("the HTTP listener was not bound")
	return ""
}

// waitIMAPOK waits for a successful IMAP round.
func (h *harness) waitIMAPOK() {
	h.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); h.d.imapState().ok.IsZero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatal("no successful IMAP round")
		}
	}
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// A healthy daemon answers 200 "ok" with its facts (GET and HEAD); other
// methods get 405 and other paths 404. When the IMAP server goes away and
// no round succeeds for longer than HealthMaxAge, /healthz answers 503
// with the one problem and the last error.
func TestHealthzIMAPDown(t *testing.T) {
	h, clock := newOpsHarness(t, nil, nil)
	base := h.httpURL()
	h.waitIMAPOK()

	code, body := httpDo(t, "GET", base+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("GET /healthz = %d\n%s", code, body)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	want := []string{"ok", "imap: last successful round ", "store: writable (checked ", "outbox: empty", "backup: scheduled backups off"}
	if len(lines) != len(want) {
		t.Fatalf("healthy body has %d lines, want %d:\n%s", len(lines), len(want), body)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], w)
		}
	}
	if code, body := httpDo(t, "HEAD", base+"/healthz"); code != http.StatusOK || body != "" {
		t.Errorf("HEAD /healthz = %d %q", code, body)
	}
	if code, _ := httpDo(t, "POST", base+"/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", code)
	}
	for _, path := range []string{"/", "/health", "/metrics/x"} {
		if code, _ := httpDo(t, "GET", base+path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}

	h.imap.Close()
	for deadline := time.Now().Add(20 * time.Second); h.d.imapState().err == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the IMAP loop did not notice the server going away")
		}
	}
	// Within HealthMaxAge of the last good round: still healthy.
	if code, body := httpDo(t, "GET", base+"/healthz"); code != http.StatusOK || !strings.Contains(body, "; last error ") {
		t.Errorf("right after the server went away: %d\n%s", code, body)
	}
	clock.advance(2 * time.Hour)
	code, body = httpDo(t, "GET", base+"/healthz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("IMAP down for 2h: GET /healthz = %d\n%s", code, body)
	}
	lines = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "imap: last successful round 2h0m") ||
		!strings.Contains(lines[0], "(max 1h0m0s); last error ") {
		t.Errorf("503 body, want one imap line:\n%s", body)
	}
	if code, body := httpDo(t, "HEAD", base+"/healthz"); code != http.StatusServiceUnavailable || body != "" {
		t.Errorf("HEAD /healthz = %d %q", code, body)
	}

	fams := scrape(t, base)
	if n := metricValue(t, fams, "deskd_imap_reconnects_total"); n < 1 {
		t.Errorf("deskd_imap_reconnects_total = %v after the server went away", n)
	}
	if s := metricValue(t, fams, "deskd_imap_seconds_since_last_success"); s < 7200 {
		t.Errorf("deskd_imap_seconds_since_last_success = %v, want >= 7200", s)
	}
}

// Before the first successful IMAP round the daemon is "starting": healthy
// for HealthMaxAge after its start (it must not flap while it connects),
// then unhealthy if it never got a round through.
func TestHealthzStarting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // connection refused from here on
	h, clock := newOpsHarness(t, func(o *Options) { o.IMAP.Port = deadPort }, nil)
	base := h.httpURL()

	code, body := httpDo(t, "GET", base+"/healthz")
	if code != http.StatusOK || !strings.Contains(body, "\nimap: starting, no successful round yet (up ") {
		t.Errorf("fresh daemon: %d\n%s", code, body)
	}
	clock.advance(2 * time.Hour)
	code, body = httpDo(t, "GET", base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "imap: no successful round since the start 2h0m") ||
		strings.Count(body, "\n") != 1 {
		t.Errorf("2h without a round: %d\n%s", code, body)
	}
	fams := scrape(t, base)
	if v := metricValue(t, fams, "deskd_imap_last_success_timestamp_seconds"); v != 0 {
		t.Errorf("deskd_imap_last_success_timestamp_seconds = %v before any success, want 0", v)
	}
	if s := metricValue(t, fams, "deskd_imap_seconds_since_last_success"); s < 7200 {
		t.Errorf("deskd_imap_seconds_since_last_success = %v, want >= 7200 (counted from the start)", s)
	}
}

// A store that cannot take a write fails the check: here the writer lock
// is held by a transaction that does not end (what a hung disk or a
// wedged commit looks like). When it ends, the daemon is healthy again.
func TestHealthzStoreNotWritable(t *testing.T) {
	h, _ := newOpsHarness(t, nil, func(d *Daemon) {
		d.ops.probeEvery = 0 // probe on every request
		d.ops.probeWithin = 100 * time.Millisecond
	})
	base := h.httpURL()
	h.waitIMAPOK()
	if code, body := httpDo(t, "GET", base+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d\n%s", code, body)
	}

	held, release := make(chan struct{}), make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- h.d.DB().Update(func(*store.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	code, body := httpDo(t, "GET", base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store: not writable: write probe still waiting after ") ||
		strings.Count(body, "\n") != 1 {
		t.Errorf("writer held: %d\n%s", code, body)
	}
	close(release)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body = httpDo(t, "GET", base+"/healthz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unhealthy after the writer let go: %d\n%s", code, body)
		}
	}
}

// A scraper hammering /healthz does not write each time: the probe's
// result stands for probeEvery.
func TestHealthzProbeIsCached(t *testing.T) {
	h, clock := newOpsHarness(t, nil, func(d *Daemon) { d.ops.probeEvery = time.Hour })
	base := h.httpURL()
	t1 := time.Now().Truncate(time.Second)
	touched := func() time.Time {
		var at time.Time
		err := h.d.DB().View(func(tx *store.Tx) error {
			var err error
			at, err = tx.HealthTouched()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	clock.freeze(t1)
	for range 5 {
		if code, body := httpDo(t, "GET", base+"/healthz"); code != http.StatusOK {
			t.Fatalf("GET /healthz = %d\n%s", code, body)
		}
		clock.freeze(clock.now().Add(time.Minute))
	}
	if at := touched(); !at.Equal(t1) {
		t.Errorf("health key written at %v, want only the first probe's %v", at, t1)
	}
}
