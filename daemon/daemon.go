// Package daemon runs deskd: the ingest loop (IMAP → decision → one bbolt
// transaction → move), the outbox loop (SMTP with retries) and the admin
// socket the CLI talks to while the daemon holds the store's lock.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"deskd/cases"
	"deskd/internal/cluster"
	"deskd/internal/oauth"
	"deskd/mail"
	"deskd/portal"
	"deskd/sla"
	"deskd/store"
	"deskd/templates"
)

// Options is everything the daemon needs, as plain values; cmd/deskd builds
// it from the configuration.
type Options struct {
	IMAP mail.IMAPConfig
	SMTP mail.SMTPConfig
	// OAuth is the token source of IMAP and SMTP when they sign in with
	// OAuth 2.0 (nil: passwords); the daemon reports its failures
	// (oauth.go). OAuthExpiryWarning is how long before the credential
	// expires staff.escalation are warned (0: never).
	OAuth              *oauth.Source
	OAuthExpiryWarning time.Duration
	// Policy drives the decision engine.
	Policy cases.Policy
	// SupportName is the display name of the support address.
	SupportName string
	// SLA holds the agreement's targets; the acknowledgement names the
	// first-response target of the customer's plan (R9).
	SLA sla.Targets
	// SLAClocks replay every case's clock (R7..R11d): the deadline index,
	// escalations, the acknowledgement's deadline and reports use them.
	// nil means the agreement's defaults in support's zone.
	SLAClocks *sla.Clocks
	// Escalation receives breach mails (staff.escalation);
	// EscalationTier2 those of second tiers (staff.escalation_tier2;
	// empty = Escalation). Warnings go to Policy.StaffNotify (R11d).
	Escalation, EscalationTier2 []string

	// NoticeDigest is the shortest time between two digests of R1
	// notices to one named contact (limits.notice_digest; 0 = 1h): the
	// first notice goes at once, what follows within it waits for the
	// next digest.
	NoticeDigest time.Duration

	StorePath        string
	StoreLockTimeout time.Duration
	// AdminSocket is the unix socket the CLI uses while the daemon runs
	// ("" = none); AdminSocketMode its permission bits (0660).
	AdminSocket     string
	AdminSocketMode uint32
	// AdminTimeout ends an admin-socket request after this long without
	// progress either way (0 = a minute); admin.go.
	AdminTimeout time.Duration
	// TemplatesDir overrides the embedded templates ("" = embedded only).
	TemplatesDir string

	MaxMessageBytes int
	// HMACKey signs deskd's Message-IDs; nil means the key generated once
	// and kept in the store.
	HMACKey []byte

	// Outbox retry policy: first retry after RetryInitial, doubling up to
	// RetryMax, giving up GiveUpAfter after the mail was queued.
	RetryInitial time.Duration
	RetryMax     time.Duration
	GiveUpAfter  time.Duration

	Log *slog.Logger
	// Now is the clock; nil means time.Now. Tests pass a fixed clock.
	Now func() time.Time
	// OnDecision, if set, is called after each committed decision (the demo
	// prints them; tests count them).
	OnDecision func(Report)
	// OnSent, if set, is called after each outbox delivery attempt.
	OnSent func(SendReport)
	// OnSourceStatus, if set, receives the IMAP loop's status after every
	// scan round.
	OnSourceStatus func(mail.SourceStatus)

	// Operators' HTTP listener (http.go, metrics.go). HTTPListen is
	// host:port for /healthz and /metrics ("" = off; a change needs a
	// restart). HealthMaxAge is how old the last successful IMAP round may
	// be before /healthz fails (0 = 15m). Version is reported as
	// deskd_build_info{version}.
	HTTPListen   string
	HealthMaxAge time.Duration
	Version      string

	// Service manager (liveness.go; cmd/deskd speaks sd_notify with
	// these). OnReady, if set, is called once: when the store is open and
	// the first IMAP login succeeded, or its retry failed too (a mail
	// outage must not fail the service); status says which. OnStatus, if
	// set, receives a one-line status whenever it changes ("watching INBOX
	// (IDLE), 3 open cases", "IMAP unreachable: ..., retrying").
	// HeartbeatEvery is how often the IMAP and outbox loops beat while
	// they wait (see Alive); 0 means 5s.
	OnReady        func(status string)
	OnStatus       func(status string)
	HeartbeatEvery time.Duration

	// Scheduled backups (backup.go; R19, R20). BackupDir "" turns them
	// off. A snapshot every BackupSnapshotEvery (0 = none) is kept for
	// BackupSnapshotKeep; a daily one at BackupDailyAt (local time in
	// BackupZone, nil = UTC; nil = none) is kept for BackupDailyKeep.
	// BackupCompression is "zstd" ("" = zstd) or "gzip". /healthz fails
	// when the newest good backup is older than BackupMaxAge (0 = never).
	BackupDir           string
	BackupCompression   string
	BackupSnapshotEvery time.Duration
	BackupSnapshotKeep  time.Duration
	BackupDailyAt       *sla.ClockTime
	BackupDailyKeep     time.Duration
	BackupMaxAge        time.Duration
	BackupZone          *time.Location

	// Portal is the customer case portal (portal.go); off when Listen is
	// "".
	Portal PortalOptions

	// Cluster makes this daemon a member of a deskd cluster (cluster.go,
	// internal/cluster; issue 14). nil: the single-node daemon, with no
	// Raft at all.
	Cluster *cluster.Config
}

// Report describes one inbound mail's fate, for logs, the demo and tests.
type Report struct {
	UID       uint32
	MessageID string
	DedupeKey string
	From      string
	Subject   string
	// Decision is a cases.Outcome, or "duplicate", "quarantine".
	Decision string
	CaseID   uint64
	Role     cases.Role
	// Ack is the Message-ID of the queued acknowledgement ("" if none);
	// NoAck why there is none.
	Ack    string
	NoAck  string
	Reason string // quarantine reason, or how the mail was threaded
	// Mails lists the other mails queued ("<kind> <message-id>"): staff
	// notifications, relays, confirmations, closing mails, notices.
	Mails []string
	// Changes lists what a staff member's keywords changed.
	Changes []string
	// Suspicious says why a mail from a staff address was not believed.
	Suspicious string
	// Fetched is when the IMAP source fetched the mail (zero for one
	// delivered otherwise): with the time OnDecision runs, the part of a
	// mail's latency that is deskd's own.
	Fetched time.Time
}

// SendReport describes one outbox delivery attempt.
type SendReport struct {
	OutboxID  uint64
	CaseID    uint64
	Kind      string
	MessageID string
	To        []string
	Err       error
	Final     bool // sent, or given up
	// At is when the relay answered (accepted, refused, or the attempt
	// failed); OnSent runs later, once the outcome is recorded in the
	// store, with others finished meanwhile.
	At time.Time
}

// runtime is what a SIGHUP can swap while the loops run.
type runtime struct {
	opts      Options
	engine    *cases.Engine
	templates *templates.Set
	sender    *mail.Sender
	hmacKey   []byte
	domain    string
	clocks    *sla.Clocks
	// stamp is sla.FiguresStamp(clocks), the version of the report figures
	// putCase keeps (reportindex.go).
	stamp string
	// follow makes the portal's "follow your case" link of a case for an
	// address; nil when the portal is off.
	follow func(caseID uint64, email string) string
}

// Daemon is a running deskd.
type Daemon struct {
	db   *store.DB
	log  *slog.Logger
	now  func() time.Time
	rt   atomic.Pointer[runtime]
	kick chan struct{} // wakes the outbox loop
	// ingestBacklog is how many mails the IMAP scan found and has not
	// handled yet (mail.SourceHooks.Backlog); the outbox reads it
	// (ingestFirst).
	ingestBacklog atomic.Int64
	// slaKick wakes the escalation loop (sla.go) after a case changed.
	slaKick chan struct{}
	// linesKick asks for the case list lines' rebuild (caselines.go).
	linesKick chan struct{}
	// figuresKick restarts the report figures' refresh after a reload.
	figuresKick chan struct{}
	// failures counts failed commits per mail (see commitFailed).
	failures failureCounts
	// commitFault, set only by tests before Run, fails the commit of the
	// mails it returns an error for: how a test makes one mail of a group
	// commit fail (a store error of its own) without breaking the store.
	commitFault func(*arrival) error
	// health is liveness (the loops' heartbeats) and readiness.
	health health

	// sourceCancel restarts the IMAP loop when a reload changes it.
	mu           sync.Mutex
	sourceCancel context.CancelFunc
	sourceCfg    mail.IMAPConfig
	reloadSource chan struct{}

	// ops holds the metrics registry and the health check's state
	// (metrics.go, http.go).
	ops *ops

	// backupSched is the backup loop's own state (backup.go).
	backupSched backupSchedule

	// oauth is what the OAuth 2.0 sign-in reported (oauth.go).
	oauth oauthState

	// admin counts the admin-socket requests in flight, which Run
	// cancels and waits for (boundedly) before closing the store.
	admin sync.WaitGroup

	// node is this daemon's cluster membership (nil: a single node);
	// leading is set while this node leads and runs the loops.
	node    *cluster.Node
	leading atomic.Bool
}

// adminStopWait bounds how long Run waits, at the stop, for cancelled
// admin requests to end (SIGTERM stops within 10 s, README).
const adminStopWait = 5 * time.Second

// Open opens the store and prepares a daemon; Run starts it. The store is
// locked from here on: the CLI must go through the admin socket.
func Open(opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	db, err := store.Open(opts.StorePath, store.Options{Timeout: opts.StoreLockTimeout})
	if err != nil {
		return nil, err
	}
	d := &Daemon{db: db, log: opts.Log, now: now, kick: make(chan struct{}, 1), slaKick: make(chan struct{}, 1), linesKick: make(chan struct{}, 1), figuresKick: make(chan struct{}, 1), reloadSource: make(chan struct{}, 1)}
	d.ops = newOps(d, opts.Version)
	db.ObserveWrites(func(took time.Duration) { d.ops.storeWrite.Observe(took.Seconds()) })
	if opts.Cluster != nil {
		// A member writes only as the leader: the rest of the set-up
		// that writes waits for that (becomeLeader).
		return d, d.openMember(opts)
	}
	rt, err := d.newRuntime(opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	d.rt.Store(rt)
	d.watchOAuth(opts)
	// Every case change from here on keeps the SLA deadline index in its
	// own transaction (putCase); the index is rebuilt once now, for
	// stores written before it existed or under other targets.
	if err := d.reindexDeadlines(); err != nil {
		db.Close()
		return nil, fmt.Errorf("sla deadline index: %w", err)
	}
	return d, nil
}

// DB returns the daemon's store (for in-process tests and the demo).
func (d *Daemon) DB() *store.DB { return d.db }

// Settled says whether the store's derived records are current for the
// running SLA clocks: the report figures (refreshClockFigures) and the
// case list lines (rebuildCaseLines). Both are redone in the background
// after an upgrade, a change of calendar or targets, or on a store
// written by deskd-gen; a benchmark of steady-state work waits for them.
func (d *Daemon) Settled() (bool, error) {
	rt := d.rt.Load()
	var settled bool
	err := d.db.View(func(tx *store.Tx) error {
		figures, err := tx.ClockFiguresVersion()
		if err != nil {
			return err
		}
		lines, err := tx.CaseLineVersion()
		settled = figures == rt.stamp && lines == linesVersion(rt.clocks)
		return err
	})
	return settled, err
}

// WaitSettled waits until Settled says yes, or ctx ends.
func (d *Daemon) WaitSettled(ctx context.Context) error {
	for {
		ok, err := d.Settled()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the store's derived records are not current yet: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (d *Daemon) newRuntime(opts Options) (*runtime, error) {
	tpl, err := templates.Load(opts.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	key := opts.HMACKey
	if len(key) == 0 && d.node != nil {
		// A member reads the cluster's key; the leader makes it once
		// (becomeLeader).
		err := d.db.View(func(tx *store.Tx) error {
			k, err := tx.HMACKey()
			key = k
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("hmac key: %w", err)
		}
	} else if len(key) == 0 {
		// Generated once and kept, so Message-IDs deskd sent before a
		// restart still verify after it.
		err := d.db.Update(func(tx *store.Tx) error {
			k, err := tx.HMACKey()
			key = k
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("hmac key: %w", err)
		}
	}
	policy := opts.Policy
	policy.VerifyOwnMessageID = func(id string) (uint64, bool) { return mail.VerifyMessageID(key, id) }
	domain := opts.Policy.SupportAddress
	if i := strings.LastIndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	var follow func(uint64, string) string
	if opts.Portal.Listen != "" && opts.Portal.BaseURL != "" {
		follow = portal.CaseLinker(opts.Portal.BaseURL, key, d.now)
	}
	clocks := defaultClocks(opts)
	return &runtime{
		follow:    follow,
		opts:      opts,
		engine:    cases.NewEngine(&policy),
		templates: tpl,
		sender:    mail.NewSender(opts.SMTP, opts.Log.With("component", "smtp")),
		hmacKey:   key,
		domain:    domain,
		clocks:    clocks,
		stamp:     sla.FiguresStamp(clocks),
	}, nil
}

func (rt *runtime) supportAddress() cases.Address {
	return cases.Address{Name: rt.opts.SupportName, Email: rt.opts.Policy.SupportAddress}
}

// Reload swaps in new options (SIGHUP). On error the old ones stay. The
// store path and admin socket are fixed for the daemon's life; a change to
// them needs a restart and is logged.
func (d *Daemon) Reload(opts Options) error {
	if opts.Log == nil {
		opts.Log = d.log
	}
	old := d.rt.Load()
	if opts.StorePath != old.opts.StorePath || opts.AdminSocket != old.opts.AdminSocket {
		d.log.Warn("reload: store.path and admin.socket changes take effect after a restart")
		opts.StorePath, opts.AdminSocket = old.opts.StorePath, old.opts.AdminSocket
	}
	if opts.HTTPListen != old.opts.HTTPListen {
		d.log.Warn("reload: http.listen changes take effect after a restart")
		opts.HTTPListen = old.opts.HTTPListen
	}
	rt, err := d.newRuntime(opts)
	if err != nil {
		return err
	}
	d.rt.Store(rt)
	// The old runtime's kept SMTP connections end (a send in flight on
	// one finishes first); the new sender opens its own.
	old.sender.Close()
	// The calendar or the targets may have changed: every deadline with
	// them (a cluster's followers leave it to the leader).
	if d.acts() {
		if err := d.reindexDeadlines(); err != nil {
			d.log.Error("reload: sla deadline index not rebuilt", "err", err)
		}
	}
	d.CheckDeadlines()
	select {
	case d.linesKick <- struct{}{}:
	default:
	}
	if rt.stamp != old.stamp {
		// Figures kept under the old clocks are stale: recompute them.
		select {
		case d.figuresKick <- struct{}{}:
		default:
		}
	}
	d.watchOAuth(opts)
	if d.acts() {
		d.checkCredentialExpiry()
	}
	if rt.opts.IMAP != old.opts.IMAP {
		select {
		case d.reloadSource <- struct{}{}:
		default:
		}
	}
	d.wakeOutbox()
	d.log.Info("configuration reloaded")
	return nil
}

// Run runs the loops until ctx ends, then finishes the transaction and the
// send in flight and closes the store. Admin-socket requests in flight
// are cancelled, not waited for: their reads stop between two records
// (admin.go), and should one still hold its read transaction after
// adminStopWait, Run returns without closing the store rather than wait
// for it (bbolt's Close would), which the exit that follows makes safe:
// every write transaction has ended by then.
func (d *Daemon) Run(ctx context.Context) error {
	closeDB := true
	defer func() {
		if closeDB {
			d.db.Close()
		}
	}()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	rt := d.rt.Load()
	if rt.opts.HTTPListen != "" {
		// Bound first, so a port in use fails start-up (http.go).
		ln, err := d.listenHTTP(rt.opts.HTTPListen)
		if err != nil {
			return err
		}
		defer ln.Close() // when a later start-up step fails
		wg.Add(1)
		go func() { defer wg.Done(); d.serveHTTP(ctx, ln) }()
	}
	if rt.opts.Portal.Listen != "" {
		// Bound at start like the operators' listener: a port in use
		// fails start-up rather than leaving customers without a portal.
		srv, ln, err := d.newPortal(rt)
		if err != nil {
			return err
		}
		defer ln.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				d.log.Error("portal stopped", "err", err)
			}
		}()
	}
	if rt.opts.AdminSocket != "" {
		ln, err := d.listenAdmin(rt.opts.AdminSocket, rt.opts.AdminSocketMode)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); d.serveAdmin(ctx, ln) }()
	}
	d.health.reset()
	if d.node == nil {
		d.runLoops(ctx, errc)
	} else {
		d.runMember(ctx, errc)
	}
	wg.Wait()
	adminDone := make(chan struct{})
	go func() { d.admin.Wait(); close(adminDone) }()
	select {
	case <-adminDone:
	case <-time.After(adminStopWait):
		closeDB = false
		d.log.Error("admin requests still reading after the stop; leaving the store to the exit", "waited", adminStopWait)
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	return nil
}

// runLoops runs the loops that act, until ctx ends: the IMAP ingest, the
// outbox, the backups, the escalations and the credential watch. In a
// cluster only the leader runs them (cluster.go).
func (d *Daemon) runLoops(ctx context.Context, errc chan<- error) {
	var wg sync.WaitGroup
	rt := d.rt.Load()
	d.setStatus(fmt.Sprintf("connecting to IMAP %s:%d", rt.opts.IMAP.Host, rt.opts.IMAP.Port))
	wg.Add(2)
	go func() { defer wg.Done(); d.runOutbox(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.runBackups(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.runEscalations(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.runCaseLines(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.runClockRefresh(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); d.runCredentialWatch(ctx) }()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			sctx, cancel := context.WithCancel(ctx)
			rt := d.rt.Load()
			onStatus := rt.opts.OnSourceStatus
			imapCfg := rt.opts.IMAP
			imapCfg.Hooks = d.sourceHooks(rt)
			src := mail.NewSource(imapCfg, d.log.With("component", "imap"), func(st mail.SourceStatus) {
				d.observeSource(st)
				d.sourceStatus(st)
				if onStatus != nil {
					onStatus(st)
				}
			})
			src.SetClock(d.now) // R11b: no INTERNALDATE after deskd's now
			done := make(chan error, 1)
			go func() { done <- src.RunBatch(sctx, d.handleBatch) }()
			select {
			case err := <-done:
				cancel()
				if err != nil {
					errc <- err
				}
				return
			case <-d.reloadSource:
				d.log.Info("imap settings changed: reconnecting")
				cancel()
				<-done
			}
		}
	}()
	wg.Wait()
}

func (d *Daemon) wakeOutbox() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}
