package daemon

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"deskd/internal/oauth"
	"deskd/internal/peers"
	"deskd/mail"
)

// oauthHarness is the daemon signing in to the peers with XOAUTH2 tokens
// of peers.OAuth, for IMAP and SMTP alike.
func oauthHarness(t *testing.T, expires time.Time) (*harness, *peers.OAuth, func() *oauth.Source) {
	t.Helper()
	o, err := peers.StartOAuth(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	o.AddClient("deskd", "secret", support)
	newSource := func() *oauth.Source {
		src, err := oauth.New(oauth.Config{Provider: oauth.Microsoft, Tenant: "contoso", TokenURL: o.TokenURL,
			ClientID: "deskd", ClientSecret: "secret", CredentialExpires: expires})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	h := newHarnessNotStarted(t, func(opts *Options) {
		src := newSource()
		opts.OAuth, opts.OAuthExpiryWarning = src, 14*24*time.Hour
		opts.IMAP.Auth, opts.IMAP.Tokens, opts.IMAP.Password = mail.AuthXOAUTH2, src, ""
		opts.SMTP.Auth, opts.SMTP.Tokens, opts.SMTP.Username = mail.AuthXOAUTH2, src, support
		opts.HTTPListen = "127.0.0.1:0"
		opts.Escalation = []string{"boss@example.test"}
	})
	h.imap.EnableOAuth(o)
	h.smtp.EnableOAuth(o)
	return h, o, newSource
}

// A revoked secret: one clear line on /healthz with the code and the fix,
// 503, counted; a good secret and a reload (SIGHUP) bring it back.
func TestOAuthRevokedSecretHealthAndRecovery(t *testing.T) {
	h, o, newSource := oauthHarness(t, time.Time{})
	o.RevokeSecret("deskd", "AADSTS7000222")
	h.start()
	base := h.httpURL()
	var body string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var code int
		code, body = httpDo(t, http.MethodGet, base+"/healthz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %q, want 503", code, body)
		}
	}
	want := "oauth: cannot get a token: AADSTS7000222: the client secret has expired: create a new one in Entra ID > App registrations > Certificates & secrets"
	if !strings.Contains(body, want) {
		t.Errorf("healthz says %q, want %q", body, want)
	}
	if n := metricValue(t, scrape(t, base), "deskd_oauth_token_errors_total", "code", "AADSTS7000222"); n < 1 {
		t.Errorf("deskd_oauth_token_errors_total{code=AADSTS7000222} = %v", n)
	}

	// The operator puts a good secret in place and reloads.
	o.SetSecret("deskd", "secret")
	opts := h.d.rt.Load().opts // with the harness's callbacks
	src := newSource()
	opts.OAuth, opts.IMAP.Tokens, opts.SMTP.Tokens = src, src, src
	if err := h.d.Reload(opts); err != nil {
		t.Fatal(err)
	}
	h.deliver("From: Anna <anna@jansen.example>\nTo: " + support + "\nSubject: printer\nMessage-ID: <p1@jansen.example>\n\nIt is broken.\n")
	h.waitReports(1)
	h.waitMails(1) // the acknowledgement, sent over XOAUTH2 with the same source
	if code, body := httpDo(t, http.MethodGet, base+"/healthz"); code != http.StatusOK || strings.Contains(body, "oauth") {
		t.Errorf("after the reload: %d %q", code, body)
	}
}

// The credential expires within 14 days: staff.escalation get one warning,
// not one per check nor one per restart; the expiry is exported.
func TestOAuthCredentialExpiryWarnedOnce(t *testing.T) {
	expires := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	h, _, _ := oauthHarness(t, expires)
	h.start()
	mails := h.waitMails(1)
	m := string(mails[0].Data)
	if mails[0].To[0] != "boss@example.test" || !strings.Contains(m, "Entra ID > App registrations") {
		t.Fatalf("warning to %v:\n%s", mails[0].To, m)
	}
	if got := metricValue(t, scrape(t, h.httpURL()), "deskd_oauth_credential_expiry_seconds"); got != float64(expires.Unix()) {
		t.Errorf("deskd_oauth_credential_expiry_seconds = %v, want %d", got, expires.Unix())
	}
	h.d.checkCredentialExpiry()
	h.stop()
	h.start() // a restart checks again at once
	h.d.checkCredentialExpiry()
	// Anything queued above goes out before the acknowledgement queued
	// after it.
	h.deliver("From: Anna <anna@jansen.example>\nTo: " + support + "\nSubject: printer\nMessage-ID: <p2@jansen.example>\n\nIt is broken.\n")
	h.waitReports(1)
	h.waitMails(2) // the acknowledgement
	warnings := 0
	for _, m := range h.smtp.Mails() {
		if strings.Contains(string(m.Data), "Subject: deskd:") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d expiry warnings, want 1", warnings)
	}
}
