package daemon

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"deskd/cases"
	"deskd/mail"
	"deskd/store"
)

// ops is what the operators' listener (http.go) reports: the Prometheus
// registry with deskd's metrics, and the facts /healthz judges by. Each
// Daemon has its own (no global registry: a test binary opens many).
type ops struct {
	reg     *prometheus.Registry
	started time.Time // Open, on the daemon's clock

	ingested       *prometheus.CounterVec
	ingestDuration prometheus.Histogram
	storeWrite     prometheus.Histogram
	sent           *prometheus.CounterVec
	sendFailures   *prometheus.CounterVec
	imapReconnects prometheus.Counter
	oauth          *oauthMetrics
	slaWarnings    *prometheus.CounterVec
	slaBreaches    *prometheus.CounterVec
	backups        *prometheus.CounterVec
	// The customer portal's (portal.go).
	portalRequests *prometheus.CounterVec
	portalLatency  *prometheus.HistogramVec
	portalSignIns  prometheus.Counter
	portalDenied   prometheus.Counter
	// applyLatency is a cluster member's (cluster.go); nil on a single
	// node.
	applyLatency prometheus.Histogram

	mu          sync.Mutex
	imapOK      time.Time // last successful IMAP round (zero: none yet)
	imapErr     error     // last IMAP failure, for /healthz
	imapErrAt   time.Time
	imapCounted error     // the failure last counted as a reconnect
	lastBackup  time.Time // last good backup (zero: none known)
	probe       healthProbe
	probeEvery  time.Duration // see http.go
	probeWithin time.Duration
	httpAddr    string // the bound listener (http.go)
	portalAddr  string // the portal's bound listener (portal.go)
}

// Metric names, for the collector and the tests.
const (
	metricQuarantined  = "deskd_quarantined_messages"
	metricOutboxQueued = "deskd_outbox_queued"
	metricOutboxOldest = "deskd_outbox_oldest_age_seconds"
	metricOpenCases    = "deskd_open_cases"
)

// decisionsKnown are set to 0 at start, so that rate() sees the first mail
// of each kind (a series that appears at 1 has no increase to show).
func decisionsKnown() []string {
	return []string{
		string(cases.OutcomeNewCase), string(cases.OutcomeReply), string(cases.OutcomeReopened),
		string(cases.OutcomeLinkedCase), string(cases.OutcomeAutoRecord), string(cases.OutcomeMachineCase),
		"duplicate", "quarantine",
	}
}

// prioritiesKnown are the label values of deskd_open_cases{priority}; each
// is reported, 0 included, for both open and pending.
func prioritiesKnown() []cases.Priority {
	return []cases.Priority{cases.PriorityUrgent, cases.PriorityHigh, cases.PriorityMedium, cases.PriorityLow, ""}
}

func newOps(d *Daemon, version string) *ops {
	o := &ops{
		reg:         prometheus.NewRegistry(),
		started:     d.now(),
		probeEvery:  defaultProbeEvery,
		probeWithin: defaultProbeWithin,
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_messages_ingested_total",
			Help: "Inbound mails committed, by decision (a cases outcome, duplicate or quarantine).",
		}, []string{"decision"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "deskd_ingest_duration_seconds",
			Help:    "Time from fetching a mail to committing its decision.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		storeWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deskd_store_write_duration_seconds",
			Help: "Store write transactions (decisions, outbox marks, index refreshes), from waiting for the writer lock to the end of the commit's fsync; a long tail means ingest stalled behind another writer or a long read (issue 11).",
			// Finer at the low end than ingest's: a commit is a few ms;
			// the 100 ms bound is the goal during a backup.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_mails_sent_total",
			Help: "Outgoing mails the SMTP relay accepted for every recipient, by kind.",
		}, []string{"kind"}),
		sendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_send_failures_total",
			Help: "Failed SMTP delivery attempts, by kind; final=\"true\" when deskd gives the mail up (or some recipients were refused for good), \"false\" when it will retry.",
		}, []string{"kind", "final"}),
		imapReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskd_imap_reconnects_total",
			Help: "IMAP sessions that ended in an error (or never got going); deskd reconnects after each with backoff.",
		}),
		slaWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_sla_warnings_total",
			Help: "SLA warnings sent to staff, by target.",
		}, []string{"kind"}),
		slaBreaches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_sla_breaches_total",
			Help: "SLA breach mails sent to staff, by target.",
		}, []string{"kind"}),
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_backups_total",
			Help: "Store backups finished, by result (ok, failed).",
		}, []string{"result"}),
		portalRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_portal_requests_total",
			Help: "Customer portal requests, by page and HTTP status code.",
		}, []string{"page", "code"}),
		portalLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deskd_portal_request_duration_seconds",
			Help:    "Time to answer a customer portal request, by page.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"page"}),
		portalSignIns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskd_portal_signin_mails_total",
			Help: "Sign-in mails the customer portal queued.",
		}),
		portalDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deskd_portal_denied_total",
			Help: "Portal requests for a case the visitor may not see (answered \"not found\", logged as portal_denied).",
		}),
	}
	for _, dec := range decisionsKnown() {
		o.ingested.WithLabelValues(dec)
	}
	for _, r := range []string{"ok", "failed"} {
		o.backups.WithLabelValues(r)
	}
	if version == "" {
		version = "unknown"
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "deskd_build_info",
		Help:        "Always 1; the label names the running deskd's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)
	o.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		o.ingested, o.ingestDuration, o.storeWrite, o.sent, o.sendFailures, o.imapReconnects,
		o.slaWarnings, o.slaBreaches, o.backups,
		o.portalRequests, o.portalLatency, o.portalSignIns, o.portalDenied,
		newScrapeCollector(d),
	)
	o.oauth = newOAuthMetrics(d)
	o.reg.MustRegister(o.oauth)
	return o
}

// observePortal counts one portal request.
func (o *ops) observePortal(page string, code int, took time.Duration) {
	o.portalRequests.WithLabelValues(page, strconv.Itoa(code)).Inc()
	o.portalLatency.WithLabelValues(page).Observe(took.Seconds())
}

// observeDecision, observeSend and observeSource are the points where the
// loops report to the metrics and the health check.

func (d *Daemon) observeDecision(rep Report, took time.Duration) {
	d.ops.ingested.WithLabelValues(rep.Decision).Inc()
	// A mail quarantined after repeated commit failures (or a panic)
	// reports 0: it has no single handling time worth a bucket.
	if took > 0 {
		d.ops.ingestDuration.Observe(took.Seconds())
	}
}

func (d *Daemon) observeSend(r SendReport) {
	if r.Err == nil {
		d.ops.sent.WithLabelValues(r.Kind).Inc()
		return
	}
	final := "false"
	if r.Final {
		final = "true"
	}
	d.ops.sendFailures.WithLabelValues(r.Kind, final).Inc()
}

func (d *Daemon) observeSource(st mail.SourceStatus) {
	o := d.ops
	now := d.now() // the daemon's clock, not st.At: tests drive ages through Options.Now
	o.mu.Lock()
	defer o.mu.Unlock()
	if st.Err == nil {
		o.imapOK, o.imapCounted = now, nil
		return
	}
	// A scan round that fails reports its error, and then the session
	// ends with the same error value and reports it again: that is one
	// reconnect, not two, so the repeat is skipped (once). errors.Is
	// compares only comparable errors, so it never panics on an error
	// type that is not.
	if o.imapCounted != nil && errors.Is(st.Err, o.imapCounted) {
		o.imapCounted = nil
	} else {
		o.imapReconnects.Inc()
		o.imapCounted = st.Err
	}
	o.imapErr, o.imapErrAt = st.Err, now
}

// slaWarned and slaBreached count the escalation loop's mails (sla.go): it
// calls them when a case nears or misses a deadline of the given kind
// (first_response, resolution, ...).
func (d *Daemon) slaWarned(kind string)   { d.ops.slaWarnings.WithLabelValues(kind).Inc() }
func (d *Daemon) slaBreached(kind string) { d.ops.slaBreaches.WithLabelValues(kind).Inc() }

// backupDone is for the backup loop: it calls it after each scheduled (or
// manual) backup, with the time the copy was taken and whether it was
// written completely. At start-up it may call it once with the newest good
// backup it finds on disk, so the age survives a restart.
func (d *Daemon) backupDone(at time.Time, ok bool) {
	o := d.ops
	if !ok {
		o.backups.WithLabelValues("failed").Inc()
		return
	}
	o.backups.WithLabelValues("ok").Inc()
	o.mu.Lock()
	if at.After(o.lastBackup) {
		o.lastBackup = at
	}
	o.mu.Unlock()
}

// sinceBackup is the age of the last good backup; before one is known it
// counts from the daemon's start, so a fresh daemon is not at once overdue
// and a daemon that never manages one becomes so.
func (d *Daemon) sinceBackup(now time.Time) (age time.Duration, known bool) {
	last := d.lastBackup()
	if last.IsZero() {
		return now.Sub(d.ops.started), false
	}
	return now.Sub(last), true
}

// lastBackup is the time of the last good backup (zero: none known).
func (d *Daemon) lastBackup() time.Time {
	o := d.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastBackup
}

// backupHealth says how old the last good backup is and whether scheduled
// backups are on (only then does /healthz judge it, against
// backupMaxAge). The backup loop (backup.go) calls d.backupDone after
// each scheduled backup and once at start-up.
func (d *Daemon) backupHealth() (age time.Duration, enabled bool) {
	age, _ = d.sinceBackup(d.now())
	return age, backupsEnabled(d.rt.Load().opts)
}

// backupMaxAge is how old the last good backup may be before /healthz
// fails (when backupHealth says enabled); 0 means no limit: backup.max_age.
func (d *Daemon) backupMaxAge() time.Duration { return d.rt.Load().opts.BackupMaxAge }

// imapState is a copy of what the health check and the metrics need.
type imapState struct {
	ok    time.Time // zero: no successful round yet
	err   error
	errAt time.Time
}

func (d *Daemon) imapState() imapState {
	o := d.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	return imapState{ok: o.imapOK, err: o.imapErr, errAt: o.imapErrAt}
}

// scrapeCollector reports, at scrape time, the gauges that are facts of
// the store (all from one read transaction: a scrape costs one View, not a
// walk per metric) and the ages computed from the daemon's clock.
type scrapeCollector struct {
	d            *Daemon
	quarantined  *prometheus.Desc
	outboxQueued *prometheus.Desc
	outboxOldest *prometheus.Desc
	openCases    *prometheus.Desc
	imapLastOK   *prometheus.Desc
	imapSinceOK  *prometheus.Desc
	backupLast   *prometheus.Desc
	backupAge    *prometheus.Desc
}

func newScrapeCollector(d *Daemon) *scrapeCollector {
	return &scrapeCollector{
		d:            d,
		quarantined:  prometheus.NewDesc(metricQuarantined, "Mails in the store's quarantine, waiting for an operator.", nil, nil),
		outboxQueued: prometheus.NewDesc(metricOutboxQueued, "Outgoing mails queued (not yet sent, not given up).", nil, nil),
		outboxOldest: prometheus.NewDesc(metricOutboxOldest, "Age of the longest-queued outgoing mail; 0 when the outbox is empty.", nil, nil),
		openCases:    prometheus.NewDesc(metricOpenCases, "Open and pending cases by priority (\"unset\" when staff has not set one).", []string{"priority", "status"}, nil),
		imapLastOK:   prometheus.NewDesc("deskd_imap_last_success_timestamp_seconds", "Unix time of the last successful IMAP scan round; 0 before the first.", nil, nil),
		imapSinceOK:  prometheus.NewDesc("deskd_imap_seconds_since_last_success", "Seconds since the last successful IMAP scan round (before the first: since deskd started).", nil, nil),
		backupLast:   prometheus.NewDesc("deskd_last_backup_timestamp_seconds", "Unix time of the last good store backup; 0 when none is known.", nil, nil),
		backupAge:    prometheus.NewDesc("deskd_last_backup_age_seconds", "Seconds since the last good store backup (before the first: since deskd started); only while scheduled backups are on or one is known.", nil, nil),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.quarantined, c.outboxQueued, c.outboxOldest, c.openCases, c.imapLastOK, c.imapSinceOK, c.backupLast, c.backupAge} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	now := d.now()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}

	st, err := d.storeStats(now)
	if err != nil {
		// The other metrics still go out (promhttp.ContinueOnError); the
		// error is logged and counted by the handler.
		for _, desc := range []*prometheus.Desc{c.quarantined, c.outboxQueued, c.outboxOldest, c.openCases} {
			ch <- prometheus.NewInvalidMetric(desc, err)
		}
	} else {
		gauge(c.quarantined, float64(st.quarantined))
		gauge(c.outboxQueued, float64(st.outboxQueued))
		gauge(c.outboxOldest, st.outboxOldest.Seconds())
		for _, status := range []cases.Status{cases.StatusOpen, cases.StatusPending} {
			for _, p := range prioritiesKnown() {
				gauge(c.openCases, float64(st.open[store.StatusPriority{Status: status, Priority: p}]), priorityLabel(p), string(status))
			}
		}
		// A priority this binary does not know (a newer deskd wrote it)
		// is still counted.
		for k, n := range st.open {
			if !knownPriority(k.Priority) {
				gauge(c.openCases, float64(n), priorityLabel(k.Priority), string(k.Status))
			}
		}
	}

	im := d.imapState()
	if im.ok.IsZero() {
		gauge(c.imapLastOK, 0)
		gauge(c.imapSinceOK, max(now.Sub(d.ops.started), 0).Seconds())
	} else {
		gauge(c.imapLastOK, unixSeconds(im.ok))
		gauge(c.imapSinceOK, max(now.Sub(im.ok), 0).Seconds())
	}

	last := d.lastBackup()
	_, enabled := d.backupHealth()
	switch {
	case !last.IsZero():
		gauge(c.backupLast, unixSeconds(last))
		gauge(c.backupAge, max(now.Sub(last), 0).Seconds())
	case enabled:
		gauge(c.backupLast, 0)
		gauge(c.backupAge, max(now.Sub(d.ops.started), 0).Seconds())
	default:
		gauge(c.backupLast, 0)
	}
}

func priorityLabel(p cases.Priority) string {
	if p == "" {
		return "unset"
	}
	return string(p)
}

func knownPriority(p cases.Priority) bool {
	for _, k := range prioritiesKnown() {
		if p == k {
			return true
		}
	}
	return false
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// storeStats are the store's figures for a scrape or a health check.
type storeStats struct {
	quarantined  int
	outboxQueued int
	outboxOldest time.Duration // 0 when the outbox is empty
	open         map[store.StatusPriority]int
}

// storeStats reads every store figure in one read transaction.
func (d *Daemon) storeStats(now time.Time) (storeStats, error) {
	var st storeStats
	err := d.db.View(func(tx *store.Tx) error {
		var err error
		if st.quarantined, err = tx.CountQuarantine(); err != nil {
			return err
		}
		var oldest time.Time
		if st.outboxQueued, oldest, err = tx.OutboxStats(now); err != nil {
			return err
		}
		if !oldest.IsZero() {
			st.outboxOldest = max(now.Sub(oldest), 0)
		}
		st.open, err = tx.OpenCasesByPriority()
		return err
	})
	return st, err
}
