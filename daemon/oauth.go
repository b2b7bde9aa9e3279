package daemon

// The daemon's side of OAuth 2.0 sign-in (issue 13): token failures are
// logged once with the provider's code and the fix, counted
// (deskd_oauth_token_errors_total) and fail /healthz in the same words;
// a server refusing a good token (a missing mailbox permission) likewise;
// the credential's expiry is exported (deskd_oauth_credential_expiry_seconds)
// and staff.escalation are warned OAuthExpiryWarning before it, once.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"deskd/cases"
	"deskd/internal/oauth"
	"deskd/mail"
	"deskd/store"
	"deskd/templates"

	"github.com/prometheus/client_golang/prometheus"
)

// mailOAuthExpiry is the staff warning that the credential expires soon
// (template "oauth_expiry").
const mailOAuthExpiry cases.MailKind = "oauth_expiry"

// oauthState is what /healthz and the log know of the sign-in.
type oauthState struct {
	mu        sync.Mutex
	tokenErr  error // the last token fetch's error; nil after a success
	signInErr error // the last IMAP sign-in's refusal; nil after a success
}

// oauthMetrics are the OAuth 2.0 series.
type oauthMetrics struct {
	d           *Daemon
	tokenErrors *prometheus.CounterVec
	reconnects  *prometheus.CounterVec
	expiry      *prometheus.Desc
}

func newOAuthMetrics(d *Daemon) *oauthMetrics {
	m := &oauthMetrics{
		d: d,
		tokenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_oauth_token_errors_total",
			Help: "Failed OAuth 2.0 token requests, by the provider's error code (AADSTS7000222, invalid_grant, unreachable, ...).",
		}, []string{"code"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deskd_imap_token_reconnects_total",
			Help: "IMAP sessions that ended for their OAuth 2.0 token and signed in again at once: renew (deskd, before expiry), expired (the server's BYE), refused (the server refused the token).",
		}, []string{"reason"}),
		expiry: prometheus.NewDesc("deskd_oauth_credential_expiry_seconds",
			"Unix time the OAuth 2.0 client secret (oauth2.credential_expires) or certificate (its NotAfter) expires; absent when unknown.", nil, nil),
	}
	for _, r := range []string{"renew", "expired", "refused"} {
		m.reconnects.WithLabelValues(r)
	}
	return m
}

func (m *oauthMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.tokenErrors.Describe(ch)
	m.reconnects.Describe(ch)
	ch <- m.expiry
}

func (m *oauthMetrics) Collect(ch chan<- prometheus.Metric) {
	m.tokenErrors.Collect(ch)
	m.reconnects.Collect(ch)
	if src := m.d.rt.Load().opts.OAuth; src != nil {
		if exp := src.CredentialExpiry(); !exp.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.expiry, prometheus.GaugeValue, unixSeconds(exp))
		}
	}
}

// watchOAuth makes the runtime's token source report to the daemon.
func (d *Daemon) watchOAuth(opts Options) {
	if opts.OAuth == nil {
		d.oauth.mu.Lock()
		d.oauth.tokenErr, d.oauth.signInErr = nil, nil
		d.oauth.mu.Unlock()
		return
	}
	opts.OAuth.Observe(d.tokenFetched)
}

// tokenFetched sees every token fetch: an error is counted each time but
// logged only when it differs from the last one, so a daemon retrying a
// revoked secret says so once, not every minute.
func (d *Daemon) tokenFetched(err error) {
	o := &d.oauth
	o.mu.Lock()
	prev := o.tokenErr
	o.tokenErr = err
	o.mu.Unlock()
	if err == nil {
		if prev != nil {
			d.log.Info("oauth: token obtained again")
		}
		return
	}
	code := "token_error"
	var oe *oauth.Error
	if errors.As(err, &oe) {
		code = oe.Code
	}
	d.ops.oauth.tokenErrors.WithLabelValues(code).Inc()
	if prev == nil || prev.Error() != err.Error() {
		d.log.Error("oauth: cannot get a token: "+err.Error(), "code", code)
	}
}

// imapSignedIn sees each IMAP sign-in: a server refusing the token is an
// operator's problem (a missing mailbox permission) with its own fix.
func (d *Daemon) imapSignedIn(err error) {
	var sie *mail.SignInError
	o := &d.oauth
	o.mu.Lock()
	prev := o.signInErr
	if errors.As(err, &sie) {
		o.signInErr = err
	} else if err == nil {
		o.signInErr = nil
	}
	cur := o.signInErr
	o.mu.Unlock()
	if cur != nil && (prev == nil || prev.Error() != cur.Error()) {
		d.log.Error("oauth: "+cur.Error()+": "+oauth.SignInFix(d.oauthProvider()), "code", "sign_in_refused")
	}
}

func (d *Daemon) imapTokenReconnect(reason string) {
	if reason != "error" {
		d.ops.oauth.reconnects.WithLabelValues(reason).Inc()
	}
}

func (d *Daemon) oauthProvider() string {
	if src := d.rt.Load().opts.OAuth; src != nil {
		return src.Provider()
	}
	return ""
}

// oauthProblems are /healthz's lines for the sign-in: the same words as
// the log line.
func (d *Daemon) oauthProblems() []string {
	if d.rt.Load().opts.OAuth == nil {
		return nil
	}
	o := &d.oauth
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	if o.tokenErr != nil {
		out = append(out, "oauth: cannot get a token: "+o.tokenErr.Error())
	}
	if o.signInErr != nil {
		out = append(out, "oauth: "+o.signInErr.Error()+": "+oauth.SignInFix(d.oauthProvider()))
	}
	return out
}

// credentialWatchEvery is how often the expiry is looked at; the warning
// is due days ahead, an hour late is no matter.
const credentialWatchEvery = time.Hour

func (d *Daemon) runCredentialWatch(ctx context.Context) {
	for {
		d.checkCredentialExpiry()
		select {
		case <-ctx.Done():
			return
		case <-time.After(credentialWatchEvery):
		}
	}
}

// checkCredentialExpiry queues the warning to staff.escalation once the
// credential expires within OAuthExpiryWarning: once per expiry time (a
// new secret with a new date gets its own warning), recorded in the same
// transaction that queues it.
func (d *Daemon) checkCredentialExpiry() {
	rt := d.rt.Load()
	src := rt.opts.OAuth
	if src == nil || rt.opts.OAuthExpiryWarning <= 0 || len(rt.opts.Escalation) == 0 {
		return
	}
	exp := src.CredentialExpiry()
	now := d.now()
	if exp.IsZero() || now.Before(exp.Add(-rt.opts.OAuthExpiryWarning)) {
		return
	}
	lang := rt.opts.Policy.StaffLanguage
	loc := rt.opts.BackupZone // support.timezone
	if loc == nil {
		loc = time.UTC
	}
	m := &cases.OutMail{
		Kind:      mailOAuthExpiry,
		Language:  lang,
		Subject:   templates.FormatWhen(exp, loc, lang),
		Text:      credentialFix(src),
		Automatic: "auto-generated",
	}
	for _, a := range rt.opts.Escalation {
		m.To = append(m.To, cases.Address{Email: a})
	}
	var queued bool
	err := d.db.Update(func(tx *store.Tx) error {
		first, err := tx.MarkOnce("oauth_expiry:"+exp.UTC().Format(time.RFC3339), now)
		if err != nil || !first {
			return err
		}
		queued = true
		_, err = d.queueMails(tx, rt, nil, []*cases.OutMail{m}, now)
		return err
	})
	if err != nil {
		d.log.Error("oauth: credential expiry warning not queued", "err", err)
		return
	}
	if queued {
		d.log.Warn("oauth: the sign-in credential expires soon; staff.escalation warned", "expires", exp, "grant", src.Grant())
		d.wakeOutbox()
	}
}

// credentialFix says how to replace the credential in use.
func credentialFix(src *oauth.Source) string {
	switch {
	case src.Grant() == oauth.GrantCertificate:
		return "Create a new certificate, upload it in Entra ID > App registrations >\nCertificates & secrets > Certificates, point oauth2.certificate_file and\noauth2.private_key_file at it, and reload deskd (systemctl reload deskd).\nRun deskd oauth test --config FILE first."
	case src.Provider() == oauth.Microsoft:
		return "Create a new client secret in Entra ID > App registrations > Certificates &\nsecrets, put its Value in oauth2.client_secret_file, set\noauth2.credential_expires to its new expiry date, and reload deskd\n(systemctl reload deskd). Run deskd oauth test --config FILE first."
	}
	return fmt.Sprintf("Replace the %s credential at the provider, update the oauth2 section, and\nreload deskd (systemctl reload deskd). Run deskd oauth test --config FILE first.", src.Grant())
}
