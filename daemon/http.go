package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"deskd/store"
)

const (
	// defaultHealthMaxAge applies when Options.HealthMaxAge is 0 (the
	// configuration's default too).
	defaultHealthMaxAge = 15 * time.Minute
	// defaultProbeEvery is how often /healthz may write to the store; in
	// between, the last probe's result stands, so a scraper hammering
	// /healthz does not cost a disk flush per request.
	defaultProbeEvery = 10 * time.Second
	// defaultProbeWithin is how long a request waits for the write probe.
	// A writer stuck longer (a hung disk, a wedged transaction) means
	// deskd cannot commit mail either: unhealthy.
	defaultProbeWithin = 2 * time.Second
	// httpShutdownGrace bounds the wait for requests in flight at
	// shutdown (SIGTERM must end the process within 10 s).
	httpShutdownGrace = 3 * time.Second
)

// HTTPAddr is the address the operators' listener is bound to ("" when it
// is off or Run has not bound it yet). With Options.HTTPListen
// "127.0.0.1:0" this is how a test learns the port.
func (d *Daemon) HTTPAddr() string {
	d.ops.mu.Lock()
	defer d.ops.mu.Unlock()
	return d.ops.httpAddr
}

// listenHTTP binds the operators' listener, so that a port in use fails
// start-up rather than going unnoticed.
func (d *Daemon) listenHTTP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", addr, err)
	}
	d.ops.mu.Lock()
	d.ops.httpAddr = ln.Addr().String()
	d.ops.mu.Unlock()
	d.log.Info("http listening", "addr", ln.Addr().String())
	return ln, nil
}

// serveHTTP serves /healthz and /metrics on ln until ctx ends, then lets
// the requests in flight finish (for at most httpShutdownGrace).
func (d *Daemon) serveHTTP(ctx context.Context, ln net.Listener) {
	srv := &http.Server{
		Handler: d.httpHandler(),
		// A client that opens a connection and sends nothing, or
		// trickles its headers, must not hold a goroutine for ever.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	shutdown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutdown)
		sctx, cancel := context.WithTimeout(context.Background(), httpShutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	})
	err := srv.Serve(ln)
	if stop() {
		// The listener was closed under us (start-up failed later on):
		// drop whatever is still connected.
		srv.Close()
	} else {
		<-shutdown
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
		d.log.Error("http server", "err", err)
	}
}

func (d *Daemon) httpHandler() http.Handler {
	mux := http.NewServeMux()
	// "GET" patterns match HEAD too; other methods get 405, other paths 404.
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.ops.reg, promhttp.HandlerOpts{
		ErrorLog: promLogger{d.log.With("component", "metrics")},
		// A store that cannot be read costs its own gauges (and an
		// error in the log), not the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            d.ops.reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", d.serveHealthz)
	return mux
}

type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error(strings.TrimSpace(fmt.Sprintln(v...))) }

// serveHealthz answers 200 "ok" and a few facts when deskd is doing its
// job, 503 and one line per problem when it is not. The rules:
//
//   - the store takes a write (TouchHealth, at most once per probeEvery;
//     a probe that has not finished within probeWithin counts as failed);
//   - the last successful IMAP round is at most HealthMaxAge old. Before
//     the first one, the daemon's start stands in for it: a freshly
//     started daemon is "starting" and healthy (200) for HealthMaxAge, so
//     it does not flap while it connects, and fails after that if it
//     never got a round through;
//   - when scheduled backups are on, the last good backup is at most
//     their max age old (counted from the start, likewise, before the
//     first).
func (d *Daemon) serveHealthz(w http.ResponseWriter, r *http.Request) {
	now := d.now()
	rt := d.rt.Load()
	maxAge := rt.opts.HealthMaxAge
	if maxAge <= 0 {
		maxAge = defaultHealthMaxAge
	}
	var facts, problems []string
	if d.node != nil {
		fact, problem := d.clusterHealth()
		if !d.acts() {
			// A follower ingests nothing, sends nothing, writes
			// nothing itself: it is healthy while it follows a leader.
			d.writeHealth(w, []string{fact}, nonEmpty(problem))
			return
		}
		facts = append(facts, fact)
	}

	im := d.imapState()
	lastErr := ""
	if im.err != nil && !im.errAt.Before(im.ok) {
		lastErr = fmt.Sprintf("; last error %s ago: %v", ago(now, im.errAt), im.err)
	}
	switch {
	case im.ok.IsZero() && now.Sub(d.ops.started) <= maxAge:
		facts = append(facts, fmt.Sprintf("imap: starting, no successful round yet (up %s)%s", ago(now, d.ops.started), lastErr))
	case im.ok.IsZero():
		problems = append(problems, fmt.Sprintf("imap: no successful round since the start %s ago (max %s)%s", ago(now, d.ops.started), maxAge, lastErr))
	case now.Sub(im.ok) > maxAge:
		problems = append(problems, fmt.Sprintf("imap: last successful round %s ago (max %s)%s", ago(now, im.ok), maxAge, lastErr))
	default:
		facts = append(facts, fmt.Sprintf("imap: last successful round %s ago%s", ago(now, im.ok), lastErr))
	}

	problems = append(problems, d.oauthProblems()...)

	if checked, err := d.storeWritable(r.Context()); err != nil {
		problems = append(problems, "store: not writable: "+err.Error())
	} else {
		facts = append(facts, fmt.Sprintf("store: writable (checked %s ago)", time.Since(checked).Round(time.Second)))
	}

	var queued int
	var oldest time.Time
	err := d.db.View(func(tx *store.Tx) error {
		var err error
		queued, oldest, err = tx.OutboxStats(now)
		return err
	})
	switch {
	case err != nil:
		problems = append(problems, "store: not readable: "+err.Error())
	case queued == 0:
		facts = append(facts, "outbox: empty")
	default:
		facts = append(facts, fmt.Sprintf("outbox: %d queued, oldest %s ago", queued, ago(now, oldest)))
	}

	age, enabled := d.backupHealth()
	limit := d.backupMaxAge()
	_, known := d.sinceBackup(now)
	what := "last good backup"
	if !known {
		what = "no good backup since the start"
	}
	switch {
	case !enabled:
		facts = append(facts, "backup: scheduled backups off")
	case limit > 0 && age > limit:
		problems = append(problems, fmt.Sprintf("backup: %s %s ago (max %s)", what, age.Round(time.Second), limit))
	default:
		facts = append(facts, fmt.Sprintf("backup: %s %s ago", what, age.Round(time.Second)))
	}

	d.writeHealth(w, facts, problems)
}

func (d *Daemon) writeHealth(w http.ResponseWriter, facts, problems []string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, strings.Join(problems, "\n")+"\n")
		return
	}
	fmt.Fprint(w, "ok\n"+strings.Join(facts, "\n")+"\n")
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func ago(now, t time.Time) time.Duration { return max(now.Sub(t), 0).Round(time.Second) }

// healthProbe caches the store's write probe. Its times are the monotonic
// wall clock, not the daemon's (possibly fixed) clock: they pace disk
// writes.
type healthProbe struct {
	mu      sync.Mutex
	at      time.Time // when the last probe finished
	err     error     // and its result
	running chan struct{}
	started time.Time
}

// storeWritable proves that the store takes a write, at most once per
// probeEvery; it returns when that proof was made. Concurrent callers share
// one probe. A probe that takes longer than probeWithin fails the check
// but keeps running; its result is cached when it ends.
func (d *Daemon) storeWritable(ctx context.Context) (time.Time, error) {
	o := d.ops
	p := &o.probe
	p.mu.Lock()
	if p.running == nil && !p.at.IsZero() && time.Since(p.at) < o.probeEvery {
		at, err := p.at, p.err
		p.mu.Unlock()
		return at, err
	}
	if p.running == nil {
		p.running, p.started = make(chan struct{}), time.Now()
		go func(done chan struct{}) {
			err := d.db.Update(func(tx *store.Tx) error { return tx.TouchHealth(d.now()) })
			p.mu.Lock()
			p.at, p.err, p.running = time.Now(), err, nil
			p.mu.Unlock()
			close(done)
		}(p.running)
	}
	done, started := p.running, p.started
	p.mu.Unlock()

	timer := time.NewTimer(o.probeWithin - time.Since(started))
	defer timer.Stop()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.at, p.err
	case <-timer.C:
		return time.Time{}, fmt.Errorf("write probe still waiting after %s (writer stuck?)", time.Since(started).Round(time.Millisecond))
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}
