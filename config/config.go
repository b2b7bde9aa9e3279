// Package config owns deskd's configuration: the typed Config, its embedded
// defaults, loading from a YAML file and the environment (DESKD_<SECTION>_<KEY>),
// secrets read from the environment or from *_file keys, and Validate, which
// names the key behind every problem. It is the only package that imports
// viper; everything else receives plain values from a *Config.
//
// Values are parsed once, here: times of day and dates arrive as the SLA's
// own types (sla.ClockTime, sla.Date), the support zone as a
// *time.Location (Support.Location), SLA targets as working-time
// durations. config imports no package of ours but sla, the leaf that
// defines those types and the working day (R11a).
//
// Layers, lowest first: Default(), the YAML file, the environment, then the
// secret files. Every key that is not inside a list (customers) can be set
// from the environment: imap.password is DESKD_IMAP_PASSWORD,
// sla.first_response.premium is DESKD_SLA_FIRST_RESPONSE_PREMIUM, and a list of
// strings takes a comma-separated value (DESKD_STAFF_ADDRESSES=a@x.nl,b@x.nl).
//
// Secrets (passwords, the HMAC key) are of type Secret, which prints, logs and
// marshals as "[redacted]"; Config.LogValue and Config.Redacted give a view of
// the whole configuration that is safe to show.
package config

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"deskd/sla"

	// The support timezone (R11) must load on hosts without
	// /usr/share/zoneinfo: deskd ships as one static binary.
	_ "time/tzdata"
)

// TLS modes of imap.tls and smtp.tls.
const (
	TLSImplicit = "implicit" // TLS from the first byte (IMAPS 993, SMTPS 465)
	TLSStartTLS = "starttls" // plain connect, then STARTTLS before anything else
	TLSNone     = "none"     // clear text; refused unless the host is loopback
)

// Authentication mechanisms of smtp.auth (all of them) and imap.auth
// (password, xoauth2, oauthbearer).
const (
	AuthPlain = "plain"
	AuthLogin = "login"
	AuthNone  = "none"
	// AuthPassword is imap.auth's default (IMAP LOGIN); for smtp.auth it
	// is another name for plain.
	AuthPassword = "password"
	// AuthXOAUTH2 and AuthOAuthBearer sign in with an OAuth 2.0 access
	// token from the oauth2 section (Microsoft 365, Google Workspace).
	AuthXOAUTH2     = "xoauth2"
	AuthOAuthBearer = "oauthbearer"
)

// OAuth 2.0 providers of oauth2.provider.
const (
	ProviderMicrosoft = "microsoft"
	ProviderGoogle    = "google"
	ProviderGeneric   = "generic"
)

// Plans a customer can have (R9): the SLA's own names.
const (
	PlanPremium  = sla.PlanPremium
	PlanBusiness = sla.PlanBusiness
	PlanBasic    = sla.PlanBasic
)

// Priorities that have a resolution target (R7), as Resolution.For takes
// them: the SLA's own names.
const (
	PriorityUrgent = sla.PriorityUrgent
	PriorityHigh   = sla.PriorityHigh
	PriorityMedium = sla.PriorityMedium
	PriorityLow    = sla.PriorityLow
)

// Readings of sla.holidays.liberation_day (R11).
const (
	LiberationLustrum = "lustrum" // 5 May only in lustrum years (2025, 2030, ...), the agreement's reading
	LiberationAlways  = "always"
	LiberationNever   = "never"
)

// MaxDates bounds each list of dates (sla.closures, a customer's closures
// and open_dates): the calendar checks every one of them for every day it
// looks at, and a list this long is a mistake, not a calendar.
const MaxDates = 1000

// Languages deskd has templates for.
const (
	LangDutch   = "nl"
	LangEnglish = "en"
)

// MaxIdleRefresh is the bound on imap.idle_refresh: RFC 2177 §3 lets a server
// drop an IDLE connection after 30 minutes, so a client re-issues IDLE before
// 29 minutes have passed.
const MaxIdleRefresh = 29 * time.Minute

// DefaultMaxContacts is the number of functional administrators a customer may
// name when customers[].max_contacts is not set (R1).
const DefaultMaxContacts = 3

// Config is deskd's whole configuration. The mapstructure tags are the YAML
// key names; the environment name of a key is DESKD_ followed by the dotted
// key upper-cased with "." replaced by "_".
type Config struct {
	IMAP      IMAP       `mapstructure:"imap"`
	SMTP      SMTP       `mapstructure:"smtp"`
	OAuth2    OAuth2     `mapstructure:"oauth2"`
	Support   Support    `mapstructure:"support"`
	Staff     Staff      `mapstructure:"staff"`
	Customers []Customer `mapstructure:"customers"`
	Limits    Limits     `mapstructure:"limits"`
	Store     Store      `mapstructure:"store"`
	Admin     Admin      `mapstructure:"admin"`
	HTTP      HTTP       `mapstructure:"http"`
	Portal    Portal     `mapstructure:"portal"`
	Backup    Backup     `mapstructure:"backup"`
	Log       Log        `mapstructure:"log"`
	Templates Templates  `mapstructure:"templates"`
	SLA       SLA        `mapstructure:"sla"`
	Cluster   Cluster    `mapstructure:"cluster"`
}

// IMAP is the support mailbox deskd watches.
type IMAP struct {
	Host string `mapstructure:"host"`
	Port int    `mapstructure:"port"`
	// TLS is TLSImplicit, TLSStartTLS or TLSNone.
	TLS string `mapstructure:"tls"`
	// Auth is AuthPassword (LOGIN, the default), AuthXOAUTH2 or
	// AuthOAuthBearer (a token from the oauth2 section).
	Auth     string `mapstructure:"auth"`
	Username string `mapstructure:"username"`
	Password Secret `mapstructure:"password"`
	// PasswordFile is the file Password was read from (content trimmed);
	// empty when the password came from the file's password key or the
	// environment.
	PasswordFile string `mapstructure:"password_file"`
	// Mailbox is watched; processed messages move to ProcessedMailbox, those
	// deskd refuses to handle to QuarantineMailbox.
	Mailbox           string `mapstructure:"mailbox"`
	ProcessedMailbox  string `mapstructure:"processed_mailbox"`
	QuarantineMailbox string `mapstructure:"quarantine_mailbox"`
	// IDLE enables RFC 2177 IDLE when the server offers it.
	IDLE bool `mapstructure:"idle"`
	// PollInterval is the safety net while IDLE runs and the main loop when
	// the server has no IDLE (or IDLE is off).
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// IdleRefresh re-issues IDLE; below MaxIdleRefresh (RFC 2177).
	IdleRefresh time.Duration `mapstructure:"idle_refresh"`
	// InsecureSkipVerify skips certificate checks; only for tests against a
	// loopback server, refused for any other host.
	InsecureSkipVerify bool          `mapstructure:"insecure_skip_verify"`
	ConnectTimeout     time.Duration `mapstructure:"connect_timeout"`
	// CommitBatch is the most mails decided and committed in one store
	// transaction (a group commit) when several are waiting; 1 commits
	// each alone. At most MaxCommitBatch.
	CommitBatch int `mapstructure:"commit_batch"`
}

// MaxCommitBatch bounds imap.commit_batch: one transaction of that many
// mails still commits within tens of milliseconds, so the other writers
// (the outbox, the escalation loop) never wait long.
const MaxCommitBatch = 1000

// SMTP is the relay deskd sends through.
type SMTP struct {
	Host string `mapstructure:"host"`
	// Port defaults by TLS: 465 implicit, 587 starttls, 25 none.
	Port int `mapstructure:"port"`
	// TLS is TLSImplicit, TLSStartTLS or TLSNone.
	TLS          string `mapstructure:"tls"`
	Username     string `mapstructure:"username"`
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
	// Auth is AuthPlain, AuthLogin, AuthNone, AuthXOAUTH2 or
	// AuthOAuthBearer (AuthPassword is read as AuthPlain). Load and Default
	// fill an empty value: plain when Username is set, none otherwise.
	Auth string `mapstructure:"auth"`
	// HELO is the name deskd greets with; Load and Default fill in the
	// machine's host name when it is empty.
	HELO string `mapstructure:"helo"`
	// GiveUpAfter is how long a queued mail is retried before it is
	// given up; retries back off from RetryInitial, doubling up to RetryMax.
	GiveUpAfter  time.Duration `mapstructure:"give_up_after"`
	RetryInitial time.Duration `mapstructure:"retry_initial"`
	RetryMax     time.Duration `mapstructure:"retry_max"`
	// Timeout bounds every step of an SMTP session (connect, each
	// command, the data transfer).
	Timeout time.Duration `mapstructure:"timeout"`
	// IdleTimeout is how long a connection to the relay stays open
	// without a mail to send; the next mail reuses it (RSET first).
	// 0 closes each connection after its mail.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// InsecureSkipVerify: see IMAP.InsecureSkipVerify.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// OAuth2 is how deskd gets the access token it signs in with when imap.auth
// or smtp.auth is xoauth2 or oauthbearer. One credential is used:
// service_account_file (Google domain-wide delegation), refresh_token
// (delegated access, written by "deskd oauth login"), certificate_file with
// private_key_file (Entra certificate credentials), or client_secret.
type OAuth2 struct {
	// Provider is ProviderMicrosoft, ProviderGoogle or ProviderGeneric; it
	// picks the token endpoint and the scopes.
	Provider string `mapstructure:"provider"`
	// Tenant is the Entra ID tenant (Microsoft only).
	Tenant   string `mapstructure:"tenant"`
	ClientID string `mapstructure:"client_id"`
	// ClientSecret (or ClientSecretFile) is the app's client secret.
	ClientSecret     Secret `mapstructure:"client_secret"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// CertificateFile and PrivateKeyFile are PEM files of an Entra
	// certificate credential.
	CertificateFile string `mapstructure:"certificate_file"`
	PrivateKeyFile  string `mapstructure:"private_key_file"`
	// ServiceAccountFile is a Google service account's JSON key; Subject
	// the mailbox it acts for.
	ServiceAccountFile string `mapstructure:"service_account_file"`
	Subject            string `mapstructure:"subject"`
	// RefreshToken (or RefreshTokenFile, which "deskd oauth login" writes
	// and deskd rewrites when the provider rotates the token).
	RefreshToken     Secret `mapstructure:"refresh_token"`
	RefreshTokenFile string `mapstructure:"refresh_token_file"`
	// TokenURL, DeviceAuthURL and Scopes override the provider's preset;
	// TokenURL is required for ProviderGeneric.
	TokenURL      string   `mapstructure:"token_url"`
	DeviceAuthURL string   `mapstructure:"device_auth_url"`
	Scopes        []string `mapstructure:"scopes"`
	// CredentialExpires is the secret's expiry date (YYYY-MM-DD) as the
	// provider shows it; for a certificate its NotAfter is used when this
	// is empty. ExpiryWarning before it, staff.escalation get a warning.
	CredentialExpires string        `mapstructure:"credential_expires"`
	ExpiryWarning     time.Duration `mapstructure:"expiry_warning"`
}

// UsesOAuth2 is true when imap.auth or smtp.auth takes a token.
func (c *Config) UsesOAuth2() bool {
	return isOAuthMech(c.IMAP.Auth) || isOAuthMech(c.SMTP.Auth)
}

func isOAuthMech(m string) bool { return m == AuthXOAUTH2 || m == AuthOAuthBearer }

// CredentialExpiry parses oauth2.credential_expires (the end of that day
// in UTC for a bare date); zero when unset. Validate has checked it.
func (o *OAuth2) CredentialExpiry() time.Time {
	if o.CredentialExpires == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, o.CredentialExpires); err == nil {
		return t
	}
	if d, err := time.Parse(time.DateOnly, o.CredentialExpires); err == nil {
		return d.Add(24*time.Hour - time.Second)
	}
	return time.Time{}
}

// Support describes the desk itself.
type Support struct {
	// Address is the addr-spec customers write to (R2), lower-cased.
	Address string `mapstructure:"address"`
	// Aliases are further addresses of the same mailbox (helpdesk@,
	// servicedesk@): mail from them is deskd itself, never answered, and
	// they are no party of a case.
	Aliases []string `mapstructure:"aliases"`
	// Name is the display name on deskd's mails.
	Name string `mapstructure:"name"`
	// TokenPrefix makes the subject token "[<prefix> #<n>]".
	TokenPrefix string `mapstructure:"token_prefix"`
	// ReopenWindow: a customer reply to a closed case within it reopens the
	// case (R11c); a later one opens a new case.
	ReopenWindow    time.Duration `mapstructure:"reopen_window"`
	DefaultLanguage string        `mapstructure:"default_language"`
	// DefaultCustomer is the customer unknown senders belong to; it need not
	// be one of Customers. DefaultPlan is that customer's plan unless it is
	// configured.
	DefaultCustomer string `mapstructure:"default_customer"`
	DefaultPlan     string `mapstructure:"default_plan"`
	// HMACKey signs deskd's own Message-IDs; empty means deskd generates one
	// and keeps it in the store.
	HMACKey     Secret `mapstructure:"hmac_key"`
	HMACKeyFile string `mapstructure:"hmac_key_file"`
	// Timezone is the IANA zone of working time and of times shown (R8, R11).
	Timezone string `mapstructure:"timezone"`
	// loc is Timezone loaded once, by Load and Default (normalize).
	loc *time.Location
}

// Location is the zone Timezone names, loaded once when the configuration
// was (Load, Default); Validate reports a zone that does not load. A
// Timezone changed since is loaded again.
func (s *Support) Location() (*time.Location, error) {
	if s.loc != nil && s.loc.String() == s.Timezone {
		return s.loc, nil
	}
	return time.LoadLocation(s.Timezone)
}

// Staff are the supplier's people. Every address is a lower-cased addr-spec
// and every domain lower-case. Notify, SecondLine, Escalation and
// EscalationTier2 each take one address or a list.
type Staff struct {
	Addresses []string `mapstructure:"addresses"`
	Domains   []string `mapstructure:"domains"`
	// Notify receives notifications about cases (e.g. unauthorised contacts).
	Notify []string `mapstructure:"notify"`
	// SecondLine receives cases that are faults of the system (R5).
	SecondLine []string `mapstructure:"second_line"`
	// Escalation receives breaches of first-response and tier-1 targets,
	// EscalationTier2 those of second tiers (empty = Escalation); the
	// warnings before them go to Notify (R11d).
	Escalation      []string `mapstructure:"escalation"`
	EscalationTier2 []string `mapstructure:"escalation_tier2"`
	// TrustedAuthservID is the authserv-id of the Authentication-Results
	// header (RFC 8601) that deskd's own mail server adds; empty means no
	// such header is trusted.
	TrustedAuthservID string `mapstructure:"trusted_authserv_id"`
}

// Customer is one customer organisation (R1).
type Customer struct {
	Name string `mapstructure:"name"`
	// Plan is PlanPremium, PlanBusiness or PlanBasic (R9).
	Plan string `mapstructure:"plan"`
	// Domains are lower-cased, without "@".
	Domains []string `mapstructure:"domains"`
	// Contacts are the functional administrators (R1).
	Contacts []Contact `mapstructure:"contacts"`
	// Language is "nl" or "en"; Load fills in support.default_language, and
	// Validate accepts "" as meaning that.
	Language string `mapstructure:"language"`
	// MaxContacts caps Contacts (R1); 0 means DefaultMaxContacts, which Load
	// fills in.
	MaxContacts int `mapstructure:"max_contacts"`
	// Closures are extra days off ("2006-01-02") for this customer only, on
	// top of the calendar of sla (R11): its clocks do not run on them.
	Closures []sla.Date `mapstructure:"closures"`
	// OpenDates are days ("2006-01-02") worked for this customer although
	// the calendar of sla says otherwise (a holiday, a closure). A date
	// cannot be in both lists.
	OpenDates []sla.Date `mapstructure:"open_dates"`
}

// ContactLimit is MaxContacts, or DefaultMaxContacts when it is 0 (R1).
func (cu *Customer) ContactLimit() int {
	if cu.MaxContacts == 0 {
		return DefaultMaxContacts
	}
	return cu.MaxContacts
}

// Contact is a named person of a customer; Email is a lower-cased addr-spec.
type Contact struct {
	Name  string `mapstructure:"name"`
	Email string `mapstructure:"email"`
}

// Limits bound what deskd accepts and sends.
type Limits struct {
	// MaxMessageBytes: larger inbound messages are quarantined.
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
	// AutoReplyPerHour and AutoReplyPerDay cap automatic mails to one
	// address (RFC 3834 §2), so that no loop with a robot can run away.
	AutoReplyPerHour int `mapstructure:"auto_reply_per_hour"`
	AutoReplyPerDay  int `mapstructure:"auto_reply_per_day"`
	// UndeliverableFor is how long an address whose mail bounced gets no
	// automatic mail.
	UndeliverableFor time.Duration `mapstructure:"undeliverable_for"`
	// NoticeDigest is the shortest time between two R1 notices to one
	// named contact: the first goes at once, what follows waits for the
	// next digest, which lists every writer and case since the last one.
	NoticeDigest time.Duration `mapstructure:"notice_digest"`
}

// Store is the bbolt database.
type Store struct {
	Path string `mapstructure:"path"`
	// LockTimeout bounds waiting for bbolt's file lock ("is another deskd
	// running?").
	LockTimeout time.Duration `mapstructure:"lock_timeout"`
}

// Admin is the unix socket the CLI talks to while the daemon runs.
type Admin struct {
	Socket string `mapstructure:"socket"`
	// SocketMode is given as an octal string ("0660") or a YAML integer
	// (0660 is octal in YAML).
	SocketMode os.FileMode `mapstructure:"socket_mode"`
	// InactivityTimeout ends an admin-socket request whose other side
	// has sent or taken nothing for this long (a client that stopped
	// reading, a daemon that stopped answering). No wall on the whole
	// request: a long answer streams, and each write pushes it on.
	InactivityTimeout time.Duration `mapstructure:"inactivity_timeout"`
}

// HTTP is the operators' listener: /healthz and Prometheus /metrics.
type HTTP struct {
	// Listen is host:port; "" turns the listener off. Loopback by default:
	// the figures are for the operator's scraper, not the world.
	Listen string `mapstructure:"listen"`
	// HealthMaxAge: /healthz fails when the last successful IMAP round
	// (a scan, which the poll safety net runs at least every
	// imap.poll_interval) is older than this.
	HealthMaxAge time.Duration `mapstructure:"health_max_age"`
}

// Portal is the customer case portal (R3): a web page on its own
// listener, never the operators' one.
type Portal struct {
	// Listen is host:port; "" (the default) turns the portal off.
	Listen string `mapstructure:"listen"`
	// BaseURL is the public address customers reach it at, used in the
	// links of mails ("https://support.example.nl"). It must be https
	// unless its host is loopback (a reverse proxy terminates TLS).
	BaseURL string `mapstructure:"base_url"`
	// SessionLifetime is how long a sign-in lasts; LinkLifetime how long
	// a sign-in link works (single use).
	SessionLifetime time.Duration `mapstructure:"session_lifetime"`
	LinkLifetime    time.Duration `mapstructure:"link_lifetime"`
	// SignInPerAddress and SignInPerIP cap sign-in requests per hour.
	SignInPerAddress int `mapstructure:"signin_per_address"`
	SignInPerIP      int `mapstructure:"signin_per_ip"`
}

// Cluster makes deskd one node of a Raft cluster (issue 14; R15, R20).
// Off (a single node, no Raft at all) while NodeID is empty.
type Cluster struct {
	// NodeID names this node; unique in the cluster.
	NodeID string `mapstructure:"node_id"`
	// Bind is host:port this node listens on for the others; Advertise
	// the address they dial ("" = Bind).
	Bind      string `mapstructure:"bind"`
	Advertise string `mapstructure:"advertise"`
	// Peers are the voters a new cluster starts with, this node
	// included (later changes: deskd cluster add-voter / remove).
	Peers []ClusterPeer `mapstructure:"peers"`
	TLS   ClusterTLS    `mapstructure:"tls"`
	// Dir holds the Raft log and snapshots.
	Dir string `mapstructure:"dir"`
	// MaxEntryBytes bounds one Raft log entry; larger transactions (a
	// big raw mail) go in several entries that apply together.
	MaxEntryBytes int `mapstructure:"max_entry_bytes"`
}

// Enabled says whether this deskd is a cluster node.
func (c Cluster) Enabled() bool { return c.NodeID != "" }

// ClusterPeer is one voter of the initial cluster.
type ClusterPeer struct {
	ID      string `mapstructure:"id"`
	Address string `mapstructure:"address"`
}

// ClusterTLS is the node's certificate and key and the CA that signs every
// node's certificate (mutual TLS between the nodes).
type ClusterTLS struct {
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
	CA   string `mapstructure:"ca"`
}

// Backup is where and how often the daemon copies its store (R19).
type Backup struct {
	// Dir receives the scheduled backups; "" turns them off (deskd backup
	// still works by hand).
	Dir string `mapstructure:"dir"`
	// Compression is "zstd" or "gzip".
	Compression string `mapstructure:"compression"`
	// SnapshotEvery is the interval of snapshots (0 = none), each kept for
	// SnapshotKeep.
	SnapshotEvery time.Duration `mapstructure:"snapshot_every"`
	SnapshotKeep  time.Duration `mapstructure:"snapshot_keep"`
	// DailyAt is the local time ("HH:MM", support.timezone) of the daily
	// backup (nil, written "", = none), each kept for DailyKeep.
	DailyAt   *sla.ClockTime `mapstructure:"daily_at"`
	DailyKeep time.Duration  `mapstructure:"daily_keep"`
	// MaxAge: /healthz fails when scheduled backups are on and the last
	// good one is older than this.
	MaxAge time.Duration `mapstructure:"max_age"`
}

// Templates says where operator overrides of the mail templates live.
type Templates struct {
	// Dir holds <lang>/<name>.<subject|txt|html>.tmpl files that replace the
	// embedded ones; "" means the embedded templates only.
	Dir string `mapstructure:"dir"`
}

// Log configures the slog handler.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn or error
	Format string `mapstructure:"format"` // text or json
}

// SlogLevel is Level as a slog.Level (info when Level is not valid).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// SLA holds the service-level targets and the working-time calendar they
// are counted in. Every target is working time (R11a: a duration such as
// "9h" is one working day, not nine wall-clock hours).
type SLA struct {
	// FirstResponse per plan (R9).
	FirstResponse FirstResponse `mapstructure:"first_response"`
	// Resolution per priority (R7).
	Resolution Resolution `mapstructure:"resolution"`
	// Question is the first substantive answer to a user question: 90%
	// within Tier1, 100% within Tier2 (R10).
	Question Tier `mapstructure:"question"`
	// WarnAt is the share of a target (0 < WarnAt < 1) at which staff.notify
	// is warned that a case nears its deadline; 0.75 of a 4h target warns
	// after 3 working hours. Warnings go out in working hours (R11d).
	WarnAt float64 `mapstructure:"warn_at"`
	// WorkingHours is the daily window of working time (R11).
	WorkingHours WorkingHours `mapstructure:"working_hours"`
	// Holidays says which Dutch public holidays are days off (R11).
	Holidays Holidays `mapstructure:"holidays"`
	// Closures are extra days off for every customer, "2006-01-02" (R11:
	// "extra closure days ... are configurable").
	Closures []sla.Date `mapstructure:"closures"`
}

// Resolution holds the resolution targets per priority (R7).
type Resolution struct {
	Urgent Tier `mapstructure:"urgent"`
	High   Tier `mapstructure:"high"`
	Medium Tier `mapstructure:"medium"`
	Low    Tier `mapstructure:"low"`
}

// For returns the targets of priority (PriorityUrgent, PriorityHigh,
// PriorityMedium or PriorityLow), and false for any other.
func (r Resolution) For(priority string) (Tier, bool) {
	switch priority {
	case PriorityUrgent:
		return r.Urgent, true
	case PriorityHigh:
		return r.High, true
	case PriorityMedium:
		return r.Medium, true
	case PriorityLow:
		return r.Low, true
	}
	return Tier{}, false
}

// Tier is a two-level target in working time: 90% of cases within Tier1,
// 99.9% (questions: 100%) within Tier2 (R7, R10). Tier1 <= Tier2.
type Tier struct {
	Tier1 time.Duration `mapstructure:"tier1"`
	Tier2 time.Duration `mapstructure:"tier2"`
}

// WorkingHours is the daily working window [Start, End) in
// support.timezone, each written "HH:MM" (R11: a mail at End starts the
// next working day).
type WorkingHours struct {
	Start sla.ClockTime `mapstructure:"start"`
	End   sla.ClockTime `mapstructure:"end"`
}

// Holidays are the rules for the Dutch public holidays of R11. The keys
// known to the calendar are new_year, good_friday, easter_monday,
// kings_day, liberation_day, ascension_day, whit_monday, christmas and
// boxing_day; the sla package checks Skip against them (config imports
// none of our packages).
type Holidays struct {
	// GoodFriday makes Good Friday a day off; R11 works it by default.
	GoodFriday bool `mapstructure:"good_friday"`
	// LiberationDay is LiberationLustrum (R11: 5 May only in 2025, 2030,
	// ...), LiberationAlways or LiberationNever.
	LiberationDay string `mapstructure:"liberation_day"`
	// Skip lists holiday keys that are worked all the same.
	Skip []string `mapstructure:"skip"`
}

// FirstResponse is the first-response target per plan, in working hours
// (R9): a duration such as "4h" counts working time, not wall time.
type FirstResponse struct {
	Premium  time.Duration `mapstructure:"premium"`
	Business time.Duration `mapstructure:"business"`
	Basic    time.Duration `mapstructure:"basic"`
}

// Targets are the configured targets as the SLA engine takes them: working
// time (R7, R9, R10, R11a).
func (s SLA) Targets() sla.Targets {
	t := sla.Default()
	for _, plan := range []string{PlanPremium, PlanBusiness, PlanBasic} {
		t.FirstResponse[plan], _ = s.FirstResponse.For(plan)
	}
	for _, p := range []string{PriorityUrgent, PriorityHigh, PriorityMedium, PriorityLow} {
		tier, _ := s.Resolution.For(p)
		t.Resolution[p] = sla.Tier(tier)
	}
	t.Question = sla.Tier(s.Question)
	return t
}

// For returns the target of plan, and false for an unknown plan.
func (f FirstResponse) For(plan string) (time.Duration, bool) {
	switch plan {
	case PlanPremium:
		return f.Premium, true
	case PlanBusiness:
		return f.Business, true
	case PlanBasic:
		return f.Basic, true
	}
	return 0, false
}

// defaults is the embedded default configuration before the derived values
// (SMTP port and auth, HELO, customers' fallbacks) are filled in. Load feeds
// it to viper as its default layer, so it is the only place a default lives.
func defaults() Config {
	target := sla.Default()
	return Config{
		IMAP: IMAP{
			Port:              993,
			TLS:               TLSImplicit,
			Auth:              AuthPassword,
			Mailbox:           "INBOX",
			ProcessedMailbox:  "Processed",
			QuarantineMailbox: "Quarantine",
			IDLE:              true,
			PollInterval:      5 * time.Minute,
			IdleRefresh:       25 * time.Minute,
			ConnectTimeout:    30 * time.Second,
			CommitBatch:       64,
		},
		SMTP: SMTP{
			TLS:          TLSImplicit,
			GiveUpAfter:  72 * time.Hour,
			RetryInitial: time.Minute,
			RetryMax:     time.Hour,
			Timeout:      30 * time.Second,
			IdleTimeout:  30 * time.Second,
		},
		OAuth2: OAuth2{
			// Exchange and Google warn 14 days ahead too, but only in
			// their portals; deskd says it where the operator reads.
			ExpiryWarning: 14 * 24 * time.Hour,
		},
		Support: Support{
			Name:            "Support",
			TokenPrefix:     "Case",
			ReopenWindow:    14 * 24 * time.Hour,
			DefaultLanguage: LangDutch,
			DefaultCustomer: "unknown",
			DefaultPlan:     PlanBasic,
			Timezone:        "Europe/Amsterdam",
		},
		Limits: Limits{
			MaxMessageBytes:  25 << 20,
			AutoReplyPerHour: 5,
			AutoReplyPerDay:  20,
			UndeliverableFor: 72 * time.Hour,
			NoticeDigest:     time.Hour,
		},
		Store: Store{
			Path:        "/var/lib/deskd/deskd.db",
			LockTimeout: time.Second,
		},
		Admin: Admin{
			Socket:            "/run/deskd/admin.sock",
			SocketMode:        0o660,
			InactivityTimeout: time.Minute,
		},
		HTTP: HTTP{
			Listen:       "127.0.0.1:9465",
			HealthMaxAge: 15 * time.Minute,
		},
		Portal: Portal{
			SessionLifetime:  8 * time.Hour,
			LinkLifetime:     15 * time.Minute,
			SignInPerAddress: 5,
			SignInPerIP:      30,
		},
		Backup: Backup{
			Dir:           "/var/lib/deskd/backups",
			Compression:   "zstd",
			SnapshotEvery: 30 * time.Minute, // R19
			SnapshotKeep:  48 * time.Hour,
			DailyAt:       &sla.ClockTime{Hour: 2, Minute: 5}, // R19: "every night just after 02:00"
			DailyKeep:     30 * 24 * time.Hour,
			MaxAge:        2 * time.Hour,
		},
		Log: Log{Level: "info", Format: "text"},
		Cluster: Cluster{
			Dir:           "/var/lib/deskd/raft",
			MaxEntryBytes: 512 << 10,
		},
		SLA: SLA{
			// The agreement's own targets (R7, R9, R10 in working time,
			// R11a), as package sla states them.
			FirstResponse: FirstResponse{
				Premium:  target.FirstResponse[PlanPremium],
				Business: target.FirstResponse[PlanBusiness],
				Basic:    target.FirstResponse[PlanBasic],
			},
			Resolution: Resolution{
				Urgent: Tier(target.Resolution[PriorityUrgent]),
				High:   Tier(target.Resolution[PriorityHigh]),
				Medium: Tier(target.Resolution[PriorityMedium]),
				Low:    Tier(target.Resolution[PriorityLow]),
			},
			Question:     Tier(target.Question),
			WarnAt:       0.75,
			WorkingHours: WorkingHours{Start: sla.ClockTime{Hour: 8}, End: sla.ClockTime{Hour: 17}}, // R11
			Holidays: Holidays{
				GoodFriday:    false,             // R11: worked by default
				LiberationDay: LiberationLustrum, // R11
			},
		},
	}
}

// Default returns the embedded defaults with the derived values filled in,
// as Load("") would return them with an empty environment. It does not pass
// Validate: imap.host, imap.username, the password, smtp.host and
// support.address have no default.
func Default() *Config {
	c := defaults()
	c.normalize()
	return &c
}

// IMAPAddr is host:port for dialing the IMAP server.
func (c *Config) IMAPAddr() string {
	return net.JoinHostPort(c.IMAP.Host, strconv.Itoa(c.IMAP.Port))
}

// SMTPAddr is host:port for dialing the SMTP server; a zero port is taken
// from the TLS mode.
func (c *Config) SMTPAddr() string {
	port := c.SMTP.Port
	if port == 0 {
		port = smtpDefaultPort(c.SMTP.TLS)
	}
	return net.JoinHostPort(c.SMTP.Host, strconv.Itoa(port))
}

func smtpDefaultPort(tls string) int {
	switch tls {
	case TLSStartTLS:
		return 587 // RFC 6409 submission
	case TLSNone:
		return 25
	}
	return 465 // RFC 8314 implicit TLS
}

// normalize canonicalises spellings (case, brackets, "@" before a domain) and
// fills the derived defaults. Validate does not normalise: it judges what it
// is given.
func (c *Config) normalize() {
	low := func(s *string) { *s = strings.ToLower(strings.TrimSpace(*s)) }
	trim := func(s *string) { *s = strings.TrimSpace(*s) }

	for _, s := range []*string{
		&c.IMAP.Host, &c.IMAP.TLS, &c.IMAP.Auth, &c.SMTP.Host, &c.SMTP.TLS, &c.SMTP.Auth,
		&c.OAuth2.Provider,
		&c.SMTP.HELO, &c.Support.Address, &c.Support.DefaultLanguage,
		&c.Log.Level, &c.Log.Format, &c.Backup.Compression,
		&c.SLA.Holidays.LiberationDay,
	} {
		low(s)
	}
	for _, s := range []*string{
		&c.IMAP.Username, &c.IMAP.PasswordFile, &c.IMAP.Mailbox,
		&c.IMAP.ProcessedMailbox, &c.IMAP.QuarantineMailbox,
		&c.SMTP.Username, &c.SMTP.PasswordFile, &c.Support.Name,
		&c.OAuth2.Tenant, &c.OAuth2.ClientID, &c.OAuth2.ClientSecretFile,
		&c.OAuth2.CertificateFile, &c.OAuth2.PrivateKeyFile,
		&c.OAuth2.ServiceAccountFile, &c.OAuth2.Subject,
		&c.OAuth2.RefreshTokenFile, &c.OAuth2.TokenURL, &c.OAuth2.DeviceAuthURL,
		&c.OAuth2.CredentialExpires,
		&c.Support.TokenPrefix, &c.Support.DefaultCustomer,
		&c.Support.HMACKeyFile, &c.Support.Timezone,
		&c.Staff.TrustedAuthservID, &c.Store.Path, &c.Admin.Socket,
		&c.HTTP.Listen, &c.Portal.Listen, &c.Portal.BaseURL, &c.Backup.Dir,
		&c.Cluster.NodeID, &c.Cluster.Bind, &c.Cluster.Advertise, &c.Cluster.Dir,
		&c.Cluster.TLS.Cert, &c.Cluster.TLS.Key, &c.Cluster.TLS.CA,
	} {
		trim(s)
	}
	c.IMAP.Host = unbracket(c.IMAP.Host)
	c.SMTP.Host = unbracket(c.SMTP.Host)
	c.Support.DefaultPlan = canonicalPlan(c.Support.DefaultPlan)

	if c.SMTP.Port == 0 {
		c.SMTP.Port = smtpDefaultPort(c.SMTP.TLS)
	}
	if c.SMTP.Auth == AuthPassword {
		c.SMTP.Auth = AuthPlain
	}
	if c.IMAP.Auth == "" {
		c.IMAP.Auth = AuthPassword
	}
	if c.SMTP.Auth == "" {
		c.SMTP.Auth = AuthNone
		if c.SMTP.Username != "" {
			c.SMTP.Auth = AuthPlain
		}
	}
	if c.SMTP.HELO == "" {
		c.SMTP.HELO = "localhost"
		if h, err := os.Hostname(); err == nil && validHostname(strings.ToLower(h)) {
			c.SMTP.HELO = strings.ToLower(h)
		}
	}

	lowAll(c.Support.Aliases)
	lowAll(c.Staff.Addresses)
	lowAll(c.Staff.Notify)
	lowAll(c.Staff.SecondLine)
	lowAll(c.Staff.Escalation)
	lowAll(c.Staff.EscalationTier2)
	normDomains(c.Staff.Domains)
	lowAll(c.SLA.Holidays.Skip)
	c.Support.loc, _ = time.LoadLocation(c.Support.Timezone) // nil: Validate says why

	for i := range c.Customers {
		cu := &c.Customers[i]
		trim(&cu.Name)
		cu.Plan = canonicalPlan(cu.Plan)
		low(&cu.Language)
		if cu.Language == "" {
			cu.Language = c.Support.DefaultLanguage
		}
		if cu.MaxContacts == 0 {
			cu.MaxContacts = DefaultMaxContacts
		}
		normDomains(cu.Domains)
		for j := range cu.Contacts {
			trim(&cu.Contacts[j].Name)
			low(&cu.Contacts[j].Email)
		}
	}
}

func lowAll(ss []string) {
	for i := range ss {
		ss[i] = strings.ToLower(strings.TrimSpace(ss[i]))
	}
}

func normDomains(ds []string) {
	for i := range ds {
		d := strings.ToLower(strings.TrimSpace(ds[i]))
		d = strings.TrimPrefix(d, "@")
		ds[i] = strings.TrimSuffix(d, ".")
	}
}

// unbracket turns "[::1]" into "::1"; net.JoinHostPort adds the brackets.
func unbracket(h string) string {
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// canonicalPlan spells a plan as the constants do, whatever its case; an
// unknown plan is returned trimmed for Validate to report.
func canonicalPlan(p string) string {
	p = strings.TrimSpace(p)
	for _, known := range []string{PlanPremium, PlanBusiness, PlanBasic} {
		if strings.EqualFold(p, known) {
			return known
		}
	}
	return p
}
