package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode"

	"deskd/sla"
)

// Validate reports every problem of c, each naming its key, in the order of
// the keys; nil means c is usable. It does no I/O beyond loading the
// timezone, and never resolves a host name. It judges the values as given:
// Load normalises spelling (case, "@" before a domain) before it validates.
func (c *Config) Validate() []Problem {
	var v validator
	c.validateIMAP(&v)
	c.validateSMTP(&v)
	c.validateOAuth2(&v)
	c.validateSupport(&v)
	c.validateStaff(&v)
	c.validateCustomers(&v)
	c.validateRest(&v)
	c.validateSLA(&v)
	c.validateCluster(&v)
	return v.problems
}

type validator struct{ problems []Problem }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) required(key, value string) bool {
	if value == "" {
		v.add(key, "required")
		return false
	}
	return true
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, "must be a positive duration, not %v", d)
	}
}

func (v *validator) port(key string, p int) {
	if p < 1 || p > 65535 {
		v.add(key, "must be between 1 and 65535, not %d", p)
	}
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
}

// host checks a server name: a host name or an IP literal, no port.
func (v *validator) host(key, h string) bool {
	if !v.required(key, h) {
		return false
	}
	if net.ParseIP(h) == nil && !validHostname(h) {
		v.add(key, "%q is not a host name or IP address (give the port in its own key)", h)
		return false
	}
	return true
}

// server checks what imap and smtp share: host, port, TLS mode, and
// clear text and skipped certificate checks only towards this machine.
func (v *validator) server(section, host string, port int, tls string, insecure bool) {
	okHost := v.host(section+".host", host)
	v.port(section+".port", port)
	v.oneOf(section+".tls", tls, TLSImplicit, TLSStartTLS, TLSNone)
	if okHost {
		v.transport(section, host, tls, insecure)
	}
}

// transport checks clear text and skipped certificate checks: only
// towards this machine.
func (v *validator) transport(section, host, tls string, insecure bool) {
	if tls == TLSNone && !isLoopback(host) {
		v.add(section+".tls", "%q would send the password in clear text; it is allowed only for localhost or a loopback IP, not %q", tls, host)
	}
	if insecure && !isLoopback(host) {
		v.add(section+".insecure_skip_verify", "is for tests against localhost or a loopback IP only, not %q", host)
	}
}

// isLoopback is true for "localhost" and loopback IP literals. It never
// resolves a name: what a name resolves to can change under us.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHostname checks RFC 1123 host name syntax (one label is allowed).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// addrSpec checks a bare address ("support@example.com"): no display name,
// no angle brackets, a domain after the "@".
func (v *validator) addrSpec(key, addr string) bool {
	if !v.required(key, addr) {
		return false
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || strings.ContainsAny(addr, "<>") || !strings.Contains(a.Address, "@") {
		v.add(key, "%q is not an e-mail address (addr-spec, e.g. support@example.com)", addr)
		return false
	}
	return true
}

func (v *validator) addrList(key string, addrs []string) {
	for i, a := range addrs {
		v.addrSpec(fmt.Sprintf("%s[%d]", key, i), a)
	}
}

// domain checks a mail domain; Load has lower-cased it already.
func (v *validator) domain(key, d string) bool {
	if !v.required(key, d) {
		return false
	}
	if d != strings.ToLower(d) {
		v.add(key, "%q must be lower-case", d)
		return false
	}
	if !validHostname(d) || strings.HasSuffix(d, ".") {
		v.add(key, "%q is not a domain name", d)
		return false
	}
	return true
}

// noControl refuses CR, LF and other control characters in values that end
// up in mail headers.
func (v *validator) noControl(key, s string) bool {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		v.add(key, "must not contain control characters (line breaks would inject mail headers)")
		return false
	}
	return true
}

func (c *Config) validateIMAP(v *validator) {
	m := &c.IMAP
	v.server("imap", m.Host, m.Port, m.TLS, m.InsecureSkipVerify)
	v.required("imap.username", m.Username)
	v.oneOf("imap.auth", m.Auth, AuthPassword, AuthXOAUTH2, AuthOAuthBearer)
	if m.Auth == AuthPassword && m.Password == "" {
		v.add("imap.password", "required: set %s or imap.password_file", EnvName("imap.password"))
	}
	if v.required("imap.mailbox", m.Mailbox) {
		for _, b := range []struct{ key, box string }{
			{"imap.processed_mailbox", m.ProcessedMailbox},
			{"imap.quarantine_mailbox", m.QuarantineMailbox},
		} {
			if b.box != "" && strings.EqualFold(b.box, m.Mailbox) {
				v.add(b.key, "must differ from imap.mailbox %q, or messages would be fetched again", m.Mailbox)
			}
		}
	}
	v.required("imap.processed_mailbox", m.ProcessedMailbox)
	v.required("imap.quarantine_mailbox", m.QuarantineMailbox)
	v.positive("imap.poll_interval", m.PollInterval)
	v.positive("imap.idle_refresh", m.IdleRefresh)
	if m.IdleRefresh >= MaxIdleRefresh {
		v.add("imap.idle_refresh", "must be below %v: servers may drop an IDLE after 30 minutes (RFC 2177), not %v", MaxIdleRefresh, m.IdleRefresh)
	}
	v.positive("imap.connect_timeout", m.ConnectTimeout)
	if m.CommitBatch < 1 || m.CommitBatch > MaxCommitBatch {
		v.add("imap.commit_batch", "must be between 1 and %d, not %d", MaxCommitBatch, m.CommitBatch)
	}
}

func (c *Config) validateSMTP(v *validator) {
	s := &c.SMTP
	v.server("smtp", s.Host, s.Port, s.TLS, s.InsecureSkipVerify)
	v.oneOf("smtp.auth", s.Auth, AuthPlain, AuthLogin, AuthNone, AuthXOAUTH2, AuthOAuthBearer)
	if isOAuthMech(s.Auth) && s.Username == "" {
		v.add("smtp.username", "required when smtp.auth is %q: the mailbox deskd sends as", s.Auth)
	}
	if s.Auth == AuthPlain || s.Auth == AuthLogin {
		if s.Username == "" {
			v.add("smtp.username", "required when smtp.auth is %q", s.Auth)
		}
		if s.Password == "" {
			v.add("smtp.password", "required when smtp.auth is %q: set %s or smtp.password_file", s.Auth, EnvName("smtp.password"))
		}
	}
	if v.required("smtp.helo", s.HELO) && !validHostname(s.HELO) {
		v.add("smtp.helo", "%q is not a host name", s.HELO)
	}
	v.positive("smtp.give_up_after", s.GiveUpAfter)
	v.positive("smtp.retry_initial", s.RetryInitial)
	v.positive("smtp.retry_max", s.RetryMax)
	if s.RetryInitial > s.RetryMax {
		v.add("smtp.retry_initial", "%v exceeds smtp.retry_max %v", s.RetryInitial, s.RetryMax)
	}
	v.positive("smtp.timeout", s.Timeout)
	if s.IdleTimeout < 0 {
		v.add("smtp.idle_timeout", "must not be negative (0 closes each connection after its mail), not %v", s.IdleTimeout)
	}
}

// validateOAuth2 checks the oauth2 section when imap.auth or smtp.auth
// needs a token: a provider, one credential, and what that credential and
// provider need with it.
func (c *Config) validateOAuth2(v *validator) {
	o := &c.OAuth2
	if o.CredentialExpires != "" && o.CredentialExpiry().IsZero() {
		v.add("oauth2.credential_expires", "%q is not a date (YYYY-MM-DD) or an RFC 3339 time", o.CredentialExpires)
	}
	if o.ExpiryWarning < 0 {
		v.add("oauth2.expiry_warning", "must not be negative, not %v", o.ExpiryWarning)
	}
	for _, k := range []struct{ key, u string }{{"oauth2.token_url", o.TokenURL}, {"oauth2.device_auth_url", o.DeviceAuthURL}} {
		if k.u == "" {
			continue
		}
		u, err := url.Parse(k.u)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			v.add(k.key, "%q is not an http(s) URL", k.u)
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			v.add(k.key, "%q would send the client's credentials in clear text; http is allowed only for localhost or a loopback IP", k.u)
		}
	}
	if !c.UsesOAuth2() {
		return
	}
	if !v.required("oauth2.provider", o.Provider) {
		return
	}
	v.oneOf("oauth2.provider", o.Provider, ProviderMicrosoft, ProviderGoogle, ProviderGeneric)
	var creds []string
	if o.ClientSecret != "" && o.RefreshToken == "" {
		creds = append(creds, "client_secret")
	}
	if o.CertificateFile != "" || o.PrivateKeyFile != "" {
		creds = append(creds, "certificate_file")
		if o.CertificateFile == "" || o.PrivateKeyFile == "" {
			v.add("oauth2.certificate_file", "certificate_file and private_key_file go together")
		}
	}
	if o.ServiceAccountFile != "" {
		creds = append(creds, "service_account_file")
		if o.Subject == "" {
			v.add("oauth2.subject", "required with service_account_file: the mailbox the service account acts for")
		}
	}
	if o.RefreshToken != "" {
		creds = append(creds, "refresh_token")
	}
	switch {
	case len(creds) == 0:
		v.add("oauth2", "%s needs a credential: client_secret_file, certificate_file and private_key_file, service_account_file with subject, or refresh_token_file (written by deskd oauth login)", c.oauthSides())
	case len(creds) > 1:
		v.add("oauth2", "set one credential, not %s", strings.Join(creds, " and "))
	}
	if o.ServiceAccountFile == "" {
		v.required("oauth2.client_id", o.ClientID)
	}
	switch o.Provider {
	case ProviderMicrosoft:
		v.required("oauth2.tenant", o.Tenant)
		if o.ServiceAccountFile != "" {
			v.add("oauth2.service_account_file", "is for provider google (or generic), not microsoft")
		}
	case ProviderGeneric:
		v.required("oauth2.token_url", o.TokenURL)
	}
}

// oauthSides names the keys that asked for a token.
func (c *Config) oauthSides() string {
	var sides []string
	if isOAuthMech(c.IMAP.Auth) {
		sides = append(sides, "imap.auth "+c.IMAP.Auth)
	}
	if isOAuthMech(c.SMTP.Auth) {
		sides = append(sides, "smtp.auth "+c.SMTP.Auth)
	}
	return strings.Join(sides, " and ")
}

func (c *Config) validateSupport(v *validator) {
	s := &c.Support
	v.addrSpec("support.address", s.Address)
	v.addrList("support.aliases", s.Aliases)
	v.noControl("support.name", s.Name)
	if v.required("support.token_prefix", s.TokenPrefix) {
		for _, r := range s.TokenPrefix {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
				v.add("support.token_prefix", "%q may hold only letters, digits, '-', '_' and '.' (it goes inside \"[<prefix> #<n>]\")", s.TokenPrefix)
				break
			}
		}
	}
	v.positive("support.reopen_window", s.ReopenWindow)
	v.oneOf("support.default_language", s.DefaultLanguage, LangDutch, LangEnglish)
	v.required("support.default_customer", s.DefaultCustomer)
	v.oneOf("support.default_plan", s.DefaultPlan, PlanPremium, PlanBusiness, PlanBasic)
	if s.HMACKey != "" && len(s.HMACKey) < 32 {
		v.add("support.hmac_key", "too short: use at least 32 bytes (e.g. openssl rand -base64 48), or leave it empty and deskd generates one")
	}
	if v.required("support.timezone", s.Timezone) {
		if _, err := s.Location(); err != nil {
			v.add("support.timezone", "%q is not an IANA time zone (e.g. Europe/Amsterdam)", s.Timezone)
		}
	}
}

func (c *Config) validateStaff(v *validator) {
	s := &c.Staff
	v.addrList("staff.addresses", s.Addresses)
	for i, a := range s.Addresses {
		if a != "" && strings.EqualFold(a, c.Support.Address) {
			v.add(fmt.Sprintf("staff.addresses[%d]", i), "%q is support.address itself: deskd would take its own mail for staff mail", a)
		}
	}
	for i, d := range s.Domains {
		v.domain(fmt.Sprintf("staff.domains[%d]", i), d)
	}
	v.addrList("staff.notify", s.Notify)
	v.addrList("staff.second_line", s.SecondLine)
	v.addrList("staff.escalation", s.Escalation)
	v.addrList("staff.escalation_tier2", s.EscalationTier2)
	if strings.IndexFunc(s.TrustedAuthservID, func(r rune) bool { return unicode.IsSpace(r) || r == ';' }) >= 0 {
		v.add("staff.trusted_authserv_id", "%q must be a single token (RFC 8601 authserv-id)", s.TrustedAuthservID)
	}
}

func (c *Config) validateCustomers(v *validator) {
	names := map[string]int{}    // lower-cased name → index
	domains := map[string]int{}  // domain → customer index
	contacts := map[string]int{} // address → customer index
	staffDomains := map[string]bool{}
	for _, d := range c.Staff.Domains {
		staffDomains[strings.ToLower(d)] = true
	}
	for i, cu := range c.Customers {
		key := fmt.Sprintf("customers[%d]", i)
		if v.required(key+".name", cu.Name) {
			if j, dup := names[strings.ToLower(cu.Name)]; dup {
				v.add(key+".name", "%q is also the name of customers[%d]", cu.Name, j)
			} else {
				names[strings.ToLower(cu.Name)] = i
			}
			v.noControl(key+".name", cu.Name)
		}
		if v.required(key+".plan", cu.Plan) {
			v.oneOf(key+".plan", cu.Plan, PlanPremium, PlanBusiness, PlanBasic)
		}
		if cu.Language != "" { // "" is support.default_language
			v.oneOf(key+".language", cu.Language, LangDutch, LangEnglish)
		}
		for j, d := range cu.Domains {
			dk := fmt.Sprintf("%s.domains[%d]", key, j)
			if !v.domain(dk, d) {
				continue
			}
			switch other, dup := domains[d]; {
			case dup && other == i:
				v.add(dk, "%q is listed twice", d)
			case dup:
				v.add(dk, "%q is also claimed by customers[%d] (%s)", d, other, c.Customers[other].Name)
			case staffDomains[d]:
				v.add(dk, "%q is a staff domain (staff.domains)", d)
			default:
				domains[d] = i
			}
		}
		if cu.MaxContacts < 0 {
			v.add(key+".max_contacts", "must be at least 1, not %d", cu.MaxContacts)
		} else if len(cu.Contacts) > cu.ContactLimit() {
			v.add(key+".contacts", "%d contacts, more than max_contacts %d (R1)", len(cu.Contacts), cu.ContactLimit())
		}
		for j, ct := range cu.Contacts {
			ck := fmt.Sprintf("%s.contacts[%d]", key, j)
			v.noControl(ck+".name", ct.Name)
			if !v.addrSpec(ck+".email", ct.Email) {
				continue
			}
			addr := strings.ToLower(ct.Email)
			if other, dup := contacts[addr]; dup {
				v.add(ck+".email", "%q is also a contact of customers[%d] (%s)", ct.Email, other, c.Customers[other].Name)
			} else {
				contacts[addr] = i
			}
		}
		// Per-customer calendar (R11): extra days off, and days worked
		// against the calendar. One date in both would be off and open.
		closed := v.dates(key+".closures", cu.Closures)
		v.dates(key+".open_dates", cu.OpenDates)
		for j, d := range cu.OpenDates {
			if closed[d] {
				v.add(fmt.Sprintf("%s.open_dates[%d]", key, j), "%s is also in %s.closures: a day cannot be both off and worked", d, key)
			}
		}
	}
}

func (c *Config) validateRest(v *validator) {
	l := &c.Limits
	if l.MaxMessageBytes <= 0 {
		v.add("limits.max_message_bytes", "must be positive, not %d", l.MaxMessageBytes)
	}
	if l.AutoReplyPerHour < 1 {
		v.add("limits.auto_reply_per_hour", "must be at least 1, not %d", l.AutoReplyPerHour)
	}
	if l.AutoReplyPerDay < 1 {
		v.add("limits.auto_reply_per_day", "must be at least 1, not %d", l.AutoReplyPerDay)
	} else if l.AutoReplyPerHour > l.AutoReplyPerDay {
		v.add("limits.auto_reply_per_hour", "%d exceeds limits.auto_reply_per_day %d", l.AutoReplyPerHour, l.AutoReplyPerDay)
	}
	v.positive("limits.undeliverable_for", l.UndeliverableFor)
	v.positive("limits.notice_digest", l.NoticeDigest)

	v.required("store.path", c.Store.Path)
	v.positive("store.lock_timeout", c.Store.LockTimeout)

	v.required("admin.socket", c.Admin.Socket)
	if c.Admin.SocketMode == 0 || c.Admin.SocketMode > 0o777 {
		v.add("admin.socket_mode", "%#o is not a permission mode between 0001 and 0777 (write it as a string: \"0660\")", uint32(c.Admin.SocketMode))
	}
	v.positive("admin.inactivity_timeout", c.Admin.InactivityTimeout)

	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			v.add("http.listen", "%q is not host:port: %v", c.HTTP.Listen, err)
		}
	}
	v.positive("http.health_max_age", c.HTTP.HealthMaxAge)
	if c.HTTP.HealthMaxAge > 0 && c.HTTP.HealthMaxAge <= c.IMAP.PollInterval {
		v.add("http.health_max_age", "%s must be longer than imap.poll_interval %s, or a healthy idle daemon fails its check", c.HTTP.HealthMaxAge, c.IMAP.PollInterval)
	}

	v.portal(c)

	b := &c.Backup
	v.oneOf("backup.compression", b.Compression, "zstd", "gzip")
	if b.SnapshotEvery < 0 {
		v.add("backup.snapshot_every", "must not be negative, not %s", b.SnapshotEvery)
	}
	if b.SnapshotEvery > 0 {
		v.positive("backup.snapshot_keep", b.SnapshotKeep)
	}
	if b.DailyAt != nil { // parsed by Load (textHook)
		v.positive("backup.daily_keep", b.DailyKeep)
	}
	if b.Dir != "" && (b.SnapshotEvery > 0 || b.DailyAt != nil) {
		v.positive("backup.max_age", b.MaxAge)
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
}

func (c *Config) validateSLA(v *validator) {
	s := &c.SLA
	fr := &s.FirstResponse
	v.positive("sla.first_response.premium", fr.Premium) // R9
	v.positive("sla.first_response.business", fr.Business)
	v.positive("sla.first_response.basic", fr.Basic)

	r := &s.Resolution
	v.tier("sla.resolution.urgent", r.Urgent) // R7
	v.tier("sla.resolution.high", r.High)
	v.tier("sla.resolution.medium", r.Medium)
	v.tier("sla.resolution.low", r.Low)
	v.tier("sla.question", s.Question) // R10

	// Written so that NaN fails too. At 0 every case would be warned of at
	// once, at 1 the warning would coincide with the breach.
	if !(s.WarnAt > 0 && s.WarnAt < 1) {
		v.add("sla.warn_at", "must be a share of the target between 0 and 1 exclusive (e.g. 0.75), not %v", s.WarnAt)
	}

	// R11: the window is [start, end) within one day, in support.timezone.
	// Load has parsed both (textHook).
	if start, end := s.WorkingHours.Start, s.WorkingHours.End; !start.Before(end) {
		v.add("sla.working_hours.start", "%q is not before sla.working_hours.end %q (the window is [start, end) within one day)", s.WorkingHours.Start, s.WorkingHours.End)
	}

	h := &s.Holidays
	v.oneOf("sla.holidays.liberation_day", h.LiberationDay, LiberationLustrum, LiberationAlways, LiberationNever)
	// Which keys exist is the calendar's business (package sla checks
	// them); here only their spelling.
	for i, k := range h.Skip {
		if !holidayKeySyntax(k) {
			v.add(fmt.Sprintf("sla.holidays.skip[%d]", i), "%q is not a holiday key (lower-case letters and '_', e.g. easter_monday)", k)
		}
	}
	v.dates("sla.closures", s.Closures)
}

// tier checks a two-level target (R7, R10): both positive, tier1 <= tier2.
func (v *validator) tier(key string, t Tier) {
	v.positive(key+".tier1", t.Tier1)
	v.positive(key+".tier2", t.Tier2)
	if t.Tier1 > 0 && t.Tier2 > 0 && t.Tier1 > t.Tier2 {
		v.add(key+".tier1", "%v exceeds %s.tier2 %v (90%% of cases cannot have longer than all but 0.1%%)", t.Tier1, key, t.Tier2)
	}
}

// dates checks a list of days, at most MaxDates of them (Load has parsed
// each), and returns them as a set.
func (v *validator) dates(key string, ds []sla.Date) map[sla.Date]bool {
	if len(ds) > MaxDates {
		v.add(key, "%d dates, more than the %d allowed", len(ds), MaxDates)
	}
	set := make(map[sla.Date]bool, len(ds))
	for _, d := range ds {
		set[d] = true
	}
	return set
}

// holidayKeySyntax: a lower-case word, '_' between parts ("whit_monday").
func holidayKeySyntax(k string) bool {
	if k == "" || k[0] == '_' || k[len(k)-1] == '_' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return false
		}
	}
	return true
}

// portal checks the portal section: off when listen is empty; when on, a
// public base_url that is https unless it is loopback (session cookies
// and sign-in links must not cross the network in the clear), a listener
// apart from the operators' one, and sane lifetimes and limits.
func (v *validator) portal(c *Config) {
	p := &c.Portal
	v.positive("portal.session_lifetime", p.SessionLifetime)
	v.positive("portal.link_lifetime", p.LinkLifetime)
	if p.LinkLifetime > 24*time.Hour {
		v.add("portal.link_lifetime", "%s is too long for a sign-in link (at most 24h)", p.LinkLifetime)
	}
	if p.SignInPerAddress <= 0 {
		v.add("portal.signin_per_address", "must be positive, not %d", p.SignInPerAddress)
	}
	if p.SignInPerIP <= 0 {
		v.add("portal.signin_per_ip", "must be positive, not %d", p.SignInPerIP)
	}
	if p.Listen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(p.Listen); err != nil {
		v.add("portal.listen", "%q is not host:port: %v", p.Listen, err)
	} else if p.Listen == c.HTTP.Listen {
		v.add("portal.listen", "%q is the operators' listener (http.listen): the portal needs its own", p.Listen)
	}
	if !v.required("portal.base_url", p.BaseURL) {
		return
	}
	u, err := url.Parse(p.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.add("portal.base_url", "%q is not an absolute http(s) URL without user, query or fragment", p.BaseURL)
		return
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		v.add("portal.base_url", "%q is plain http on a host that is not loopback: customers' sign-in links and cookies would cross the network unencrypted; use https (a reverse proxy, see the README)", p.BaseURL)
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validateCluster checks the cluster section when it is on (node_id set):
// this node among the peers, every address host:port, ids unique, an odd
// number of voters that can fail over, and mutual TLS unless every
// address is loopback: Raft entries carry every mail and case in the
// clear otherwise.
func (c *Config) validateCluster(v *validator) {
	cl := &c.Cluster
	if !cl.Enabled() {
		return
	}
	hostPort := func(key, addr string) (host string, ok bool) {
		h, _, err := net.SplitHostPort(addr)
		if err != nil || h == "" {
			v.add(key, "%q is not host:port", addr)
			return "", false
		}
		return h, true
	}
	loopback := true
	check := func(key, addr string) {
		if h, ok := hostPort(key, addr); ok && !loopbackHost(h) {
			loopback = false
		}
	}
	if v.required("cluster.bind", cl.Bind) {
		check("cluster.bind", cl.Bind)
	}
	if cl.Advertise != "" {
		check("cluster.advertise", cl.Advertise)
	}
	v.required("cluster.dir", cl.Dir)
	if cl.MaxEntryBytes < 64<<10 || cl.MaxEntryBytes > 64<<20 {
		v.add("cluster.max_entry_bytes", "%d is outside 65536..67108864", cl.MaxEntryBytes)
	}
	ids := map[string]bool{}
	for i, p := range cl.Peers {
		key := fmt.Sprintf("cluster.peers[%d]", i)
		if p.ID == "" {
			v.add(key+".id", "is required")
		} else if ids[p.ID] {
			v.add(key+".id", "%q is listed twice", p.ID)
		}
		ids[p.ID] = true
		check(key+".address", p.Address)
	}
	switch {
	case len(cl.Peers) == 0:
		v.add("cluster.peers", "lists no node: name every voter, this node (%q) included", cl.NodeID)
	case !ids[cl.NodeID]:
		v.add("cluster.peers", "does not list this node (%q)", cl.NodeID)
	case len(cl.Peers) == 2:
		v.add("cluster.peers", "two voters cannot fail over (the survivor of a failure is no majority): use three, e.g. two sites and a small witness")
	}
	t := cl.TLS
	switch {
	case t.Cert == "" && t.Key == "" && t.CA == "":
		if !loopback {
			v.add("cluster.tls", "required: the nodes' traffic carries every mail and case; without cert, key and ca the cluster may only use loopback addresses")
		}
	default:
		v.required("cluster.tls.cert", t.Cert)
		v.required("cluster.tls.key", t.Key)
		v.required("cluster.tls.ca", t.CA)
	}
}
