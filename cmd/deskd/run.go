package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"deskd/cases"
	"deskd/config"
	"deskd/daemon"
	"deskd/mail"
)

const defaultConfigPath = "/etc/deskd/config.yaml"

// loadConfig loads and validates path; problems come back as a
// configError whose text has one line per problem, naming the key.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, configError{err}
	}
	// The calendar knows its holidays; building it here makes an unknown
	// one a configuration error (exit 78), like any other bad key.
	if _, err := slaClocks(cfg); err != nil {
		return nil, configError{err}
	}
	// Likewise the OAuth 2.0 files: a certificate that does not parse, a
	// key that is not its own, a service account file that is not one.
	if _, err := tokenSource(cfg); err != nil {
		return nil, configError{err}
	}
	// And the cluster's certificates.
	if _, err := clusterConfig(cfg); err != nil {
		return nil, configError{err}
	}
	return cfg, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemonOptions turns the configuration into the daemon's plain values.
func daemonOptions(cfg *config.Config, log *slog.Logger) daemon.Options {
	policy := cases.Policy{
		SupportAddress:  cfg.Support.Address,
		OwnAddresses:    cfg.Support.Aliases,
		TokenPrefix:     cfg.Support.TokenPrefix,
		ReopenWindow:    cfg.Support.ReopenWindow,
		StaffAddresses:  cfg.Staff.Addresses,
		StaffDomains:    cfg.Staff.Domains,
		StaffNotify:     cfg.Staff.Notify,
		SecondLine:      cfg.Staff.SecondLine,
		EscalationLists: append(slices.Clone(cfg.Staff.Escalation), cfg.Staff.EscalationTier2...),
		// Staff read the desk's own language.
		StaffLanguage:     cfg.Support.DefaultLanguage,
		TrustedAuthservID: cfg.Staff.TrustedAuthservID,
		DefaultCustomer:   cfg.Support.DefaultCustomer,
		DefaultPlan:       cfg.Support.DefaultPlan,
		DefaultLanguage:   cfg.Support.DefaultLanguage,
		AutoPerHour:       cfg.Limits.AutoReplyPerHour,
		AutoPerDay:        cfg.Limits.AutoReplyPerDay,
		UndeliverableFor:  cfg.Limits.UndeliverableFor,
	}
	for _, c := range cfg.Customers {
		cc := cases.Customer{Name: c.Name, Plan: c.Plan, Language: c.Language, Domains: c.Domains}
		for _, ct := range c.Contacts {
			cc.Contacts = append(cc.Contacts, cases.Address{Name: ct.Name, Email: ct.Email})
		}
		policy.Customers = append(policy.Customers, cc)
	}
	// loadConfig has built the clocks once: no error is left here.
	clocks, _ := slaClocks(cfg)
	// loadConfig has built a token source once: an error here means a
	// file changed in between; sign-in then fails and says so.
	tokens, err := tokenSource(cfg)
	if err != nil {
		log.Error("oauth2: " + err.Error())
	}
	opts := daemon.Options{
		IMAP: mail.IMAPConfig{
			Host: cfg.IMAP.Host, Port: cfg.IMAP.Port, TLS: cfg.IMAP.TLS,
			Username: cfg.IMAP.Username, Password: string(cfg.IMAP.Password),
			Mailbox: cfg.IMAP.Mailbox, ProcessedMailbox: cfg.IMAP.ProcessedMailbox, QuarantineMailbox: cfg.IMAP.QuarantineMailbox,
			Idle: cfg.IMAP.IDLE, PollInterval: cfg.IMAP.PollInterval, IdleRefresh: cfg.IMAP.IdleRefresh,
			ConnectTimeout: cfg.IMAP.ConnectTimeout, CommitBatch: cfg.IMAP.CommitBatch, InsecureSkipVerify: cfg.IMAP.InsecureSkipVerify,
			MaxBytes: cfg.Limits.MaxMessageBytes,
		},
		SMTP: mail.SMTPConfig{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, TLS: cfg.SMTP.TLS,
			Username: cfg.SMTP.Username, Password: string(cfg.SMTP.Password), Auth: cfg.SMTP.Auth,
			HELO: cfg.SMTP.HELO, Timeout: cfg.SMTP.Timeout, IdleTimeout: cfg.SMTP.IdleTimeout, InsecureSkipVerify: cfg.SMTP.InsecureSkipVerify,
		},
		Policy:           policy,
		SupportName:      cfg.Support.Name,
		SLA:              cfg.SLA.Targets(),
		SLAClocks:        clocks,
		Escalation:       cfg.Staff.Escalation,
		EscalationTier2:  cfg.Staff.EscalationTier2,
		TemplatesDir:     cfg.Templates.Dir,
		StorePath:        cfg.Store.Path,
		StoreLockTimeout: cfg.Store.LockTimeout,
		AdminSocket:      cfg.Admin.Socket,
		AdminSocketMode:  uint32(cfg.Admin.SocketMode),
		AdminTimeout:     cfg.Admin.InactivityTimeout,
		MaxMessageBytes:  int(cfg.Limits.MaxMessageBytes),
		NoticeDigest:     cfg.Limits.NoticeDigest,
		HMACKey:          []byte(string(cfg.Support.HMACKey)),
		RetryInitial:     cfg.SMTP.RetryInitial,
		RetryMax:         cfg.SMTP.RetryMax,
		GiveUpAfter:      cfg.SMTP.GiveUpAfter,
		Log:              log,
		// The operators' HTTP listener: /healthz and /metrics.
		HTTPListen: cfg.HTTP.Listen,
		Portal: daemon.PortalOptions{
			Listen: cfg.Portal.Listen, BaseURL: cfg.Portal.BaseURL,
			SessionLifetime: cfg.Portal.SessionLifetime, LinkLifetime: cfg.Portal.LinkLifetime,
			SignInPerAddress: cfg.Portal.SignInPerAddress, SignInPerIP: cfg.Portal.SignInPerIP,
		},
		HealthMaxAge: cfg.HTTP.HealthMaxAge,
		Version:      version,
		// Scheduled backups (daemon/backup.go, cmd/deskd/backup.go).
		BackupDir:           cfg.Backup.Dir,
		BackupCompression:   cfg.Backup.Compression,
		BackupSnapshotEvery: cfg.Backup.SnapshotEvery,
		BackupSnapshotKeep:  cfg.Backup.SnapshotKeep,
		BackupDailyAt:       cfg.Backup.DailyAt,
		BackupDailyKeep:     cfg.Backup.DailyKeep,
		BackupMaxAge:        cfg.Backup.MaxAge,
		BackupZone:          supportZone(cfg),
		OAuthExpiryWarning:  cfg.OAuth2.ExpiryWarning,
	}
	if tokens != nil {
		opts.OAuth = tokens
	}
	// loadConfig has loaded the certificates once, like the tokens.
	if cl, err := clusterConfig(cfg); err != nil {
		log.Error("cluster: " + err.Error())
	} else {
		opts.Cluster = cl
	}
	withTokens(cfg, &opts.IMAP, &opts.SMTP, tokens)
	return opts
}

// configSummary is what the start and reload log lines say of the
// configuration: a few counts and addresses, and a digest of the whole
// (secrets redacted) that tells two configurations apart. The whole
// configuration on one line was about 90 KB with 200 customers.
func configSummary(cfg *config.Config) []any {
	digest := "unknown"
	if b, err := json.Marshal(cfg.Redacted()); err == nil {
		sum := sha256.Sum256(b)
		digest = hex.EncodeToString(sum[:8])
	}
	return []any{
		"config_sha256", digest,
		"customers", len(cfg.Customers),
		"staff_addresses", len(cfg.Staff.Addresses),
		"staff_domains", len(cfg.Staff.Domains),
		"imap", net.JoinHostPort(cfg.IMAP.Host, strconv.Itoa(cfg.IMAP.Port)),
		"smtp", net.JoinHostPort(cfg.SMTP.Host, strconv.Itoa(cfg.SMTP.Port)),
		"store", cfg.Store.Path,
	}
}

// cmdRun runs the daemon until SIGTERM/SIGINT (ctx), reloading the
// configuration on SIGHUP.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("deskd starting", append([]any{"version", version, "config", *configPath}, configSummary(cfg)...)...)
	n := newNotifier(log) // systemd's notify protocol (notify.go)
	n.Status("opening store " + cfg.Store.Path)
	opts := daemonOptions(cfg, log)
	if cfg.Cluster.Enabled() && opts.Cluster == nil {
		// Never run a cluster node as a single node: it would ingest
		// beside the leader.
		return errors.New("cluster: the certificates did not load (see above); not starting")
	}
	d, err := daemon.Open(n.options(opts))
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloaded := n.Reloading()
				next, err := loadConfig(*configPath)
				if err != nil {
					log.Error("reload refused; keeping the running configuration", "err", err)
					reloaded(err)
					continue
				}
				if err := d.Reload(n.options(daemonOptions(next, newLogger(next, stderr)))); err != nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
					reloaded(err)
					continue
				}
				reloaded(nil)
			}
		}
	}()
	stopWatchdog := n.startWatchdog(d.Alive)
	stopStopping := context.AfterFunc(ctx, n.Stopping) // SIGTERM
	err = d.Run(ctx)
	stopStopping()
	n.Stopping()
	stopWatchdog()
	log.Info("deskd stopped", "err", err)
	return err
}

// cmdCheckConfig validates a configuration file: exit 0, or one line per
// problem naming the key (exit status 78).
func cmdCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		var le *config.LoadError
		if errors.As(err, &le) {
			for _, p := range le.Problems {
				fmt.Fprintln(stdout, p.String())
			}
			return configError{fmt.Errorf("%s: %d problem(s)", *configPath, len(le.Problems))}
		}
		return configError{err}
	}
	// What only the SLA calendar knows (a holiday key it does not have).
	if _, err := slaClocks(cfg); err != nil {
		fmt.Fprintln(stdout, err)
		return configError{fmt.Errorf("%s: 1 problem(s)", *configPath)}
	}
	fmt.Fprintf(stdout, "%s: ok\n", *configPath)
	return nil
}

// loadConfigOrDefaults reads a configuration for the CLI's reading
// commands, without validating it (they need no mailbox): a file that
// exists but does not load is an error; no file at all means the
// defaults (and whatever the flags say).
func loadConfigOrDefaults(path string) (*config.Config, error) {
	cfg, err := config.LoadUnvalidated(path)
	if err != nil {
		if _, statErr := os.Stat(path); statErr == nil {
			return nil, configError{err}
		}
		return config.Default(), nil
	}
	return cfg, nil
}

// storeFlags are the flags of every command that reads the store: --config
// for store.path, admin.socket and the SLA, and --socket and --store,
// which override the first two.
type storeFlags struct{ config, socket, store *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		config: fs.String("config", defaultConfigPath, "configuration file (store.path, admin.socket, the SLA)"),
		socket: fs.String("socket", "", "admin socket (overrides admin.socket)"),
		store:  fs.String("store", "", "store file (overrides store.path)"),
	}
}

// locate is locateStore for the flags' values.
func (f storeFlags) locate() (storeLocation, error) {
	return locateStore(*f.config, *f.socket, *f.store)
}

// locateStore finds the daemon's admin socket and store file from the
// configuration (if it loads) and the flags, which win, and builds the
// SLA clocks the configuration describes for reading a stopped store.
func locateStore(configPath, socket, storePath string) (storeLocation, error) {
	loc := storeLocation{socket: socket, path: storePath, zone: time.Local}
	cfg, err := loadConfigOrDefaults(configPath)
	if err != nil {
		return loc, err
	}
	if loc.socket == "" && storePath == "" {
		// --store alone names a file to read, e.g. a restored old
		// backup: asking the running daemon would answer from its live
		// store instead.
		loc.socket = cfg.Admin.Socket
	}
	if loc.path == "" {
		loc.path = cfg.Store.Path
	}
	if z, err := cfg.Support.Location(); err == nil {
		loc.zone = z
	}
	loc.cfg = cfg
	loc.clocks, loc.clocksErr = slaClocks(cfg)
	return loc, nil
}
