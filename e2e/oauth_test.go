package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"deskd/daemon"
	"deskd/internal/mailstack"
	"deskd/internal/oauth"
	"deskd/internal/peers"
	"deskd/mail"
)

// oauthWorld is deskd signing in to Dovecot (IMAP) and Postfix's
// submission with tokens of peers.OAuth, which Dovecot checks itself by
// introspection: one token source for both sides.
func oauthWorld(t *testing.T, mech string, ttl time.Duration) (*world, *peers.OAuth) {
	t.Helper()
	o, err := peers.StartOAuth(ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	o.AddClient("deskd", "secret", support)
	stack := mailstack.Start(t, mailstack.Options{Users: []mailstack.User{
		{Address: support, Password: "support-pw"}, {Address: anna, Password: "anna-pw"},
	}, OAuth2IntrospectURL: o.IntrospectURL})
	src, err := oauth.New(oauth.Config{Provider: oauth.Microsoft, Tenant: "desk", TokenURL: o.TokenURL, ClientID: "deskd", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, stack: stack, opts: options(t, stack, t.TempDir())}
	subHost, subPort := hostPort(t, stack.SubmissionAddr)
	w.opts.IMAP.Auth, w.opts.IMAP.Tokens, w.opts.IMAP.Password = mech, src, ""
	w.opts.SMTP = mail.SMTPConfig{Host: subHost, Port: subPort, TLS: "none", Username: support, Auth: mech, Tokens: src, Timeout: 30 * time.Second}
	w.opts.OAuth = src
	w.opts.HTTPListen = "127.0.0.1:0"
	// Every mail comes from one contact: lift the auto-reply budget (RFC
	// 3834 §2) so that each one is acknowledged.
	w.opts.Policy.AutoPerHour, w.opts.Policy.AutoPerDay = 100000, 100000
	w.start()
	return w, o
}

// answeredOnce waits until anna holds n acknowledgements and checks that
// each of the n mails got exactly one.
func answeredOnce(t *testing.T, w *world, ids []string) {
	t.Helper()
	acks := w.inbox(anna, len(ids))
	seen := map[string]int{}
	for _, raw := range acks {
		h := parseHeader(t, raw)
		seen[h.Get("In-Reply-To")]++
	}
	for _, id := range ids {
		if seen["<"+id+">"] != 1 {
			t.Errorf("mail %s answered %d times", id, seen["<"+id+">"])
		}
	}
	if len(acks) != len(ids) {
		t.Errorf("%d acknowledgements for %d mails", len(acks), len(ids))
	}
}

func metric(t *testing.T, w *world, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + w.d.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// OAUTHBEARER: ingest and acknowledge through submission.
func TestOAuthBearerIngestAndAck(t *testing.T) {
	w, o := oauthWorld(t, mail.AuthOAuthBearer, time.Hour)
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("ob%d@jansen.test", i)
		ids = append(ids, id)
		w.send(anna, mailText(anna, fmt.Sprintf("printer %d", i), id, "", "It is broken."))
	}
	w.waitReports(len(ids), time.Minute)
	answeredOnce(t, w, ids)
	if n := o.Issued(); n != 1 {
		t.Errorf("%d tokens for IMAP and SMTP, want 1 shared", n)
	}
}

// XOAUTH2 with tokens that live 20 s during a 3-minute run with a mail
// every half second (issue 13): each mail answered exactly once, the
// renewals counted. A token is renewed at 80% of its life (16 s), so the
// run covers about eleven renewals; fewer than seven would mean a session
// outlived its token.
func TestOAuthShortTokensContinuousMail(t *testing.T) {
	w, o := oauthWorld(t, mail.AuthXOAUTH2, 20*time.Second)
	var ids []string
	end := time.Now().Add(3 * time.Minute)
	for i := 0; time.Now().Before(end); i++ {
		id := fmt.Sprintf("x%d@jansen.test", i)
		ids = append(ids, id)
		w.send(anna, mailText(anna, fmt.Sprintf("question %d", i), id, "", "Hello."))
		time.Sleep(500 * time.Millisecond)
	}
	w.waitReports(len(ids), 2*time.Minute)
	answeredOnce(t, w, ids)
	renewals := metric(t, w, `deskd_imap_token_reconnects_total{reason="renew"}`)
	t.Logf("%d mails, %v renewals, %d tokens issued", len(ids), renewals, o.Issued())
	if renewals < 7 {
		t.Errorf("%v token renewals in a 3-minute run with 20 s tokens", renewals)
	}
	if metric(t, w, `deskd_oauth_token_errors_total{code="AADSTS7000222"}`) != 0 {
		t.Error("token errors")
	}
}

// A revoked secret: the clear error on /healthz (503), then recovery once a
// good secret is in place and the configuration reloaded (SIGHUP).
func TestOAuthRevokedSecretRecovers(t *testing.T) {
	w, o := oauthWorld(t, mail.AuthXOAUTH2, 20*time.Second)
	w.send(anna, mailText(anna, "first", "r1@jansen.test", "", "Hello."))
	w.waitReports(1, time.Minute)
	o.RevokeSecret("deskd", "AADSTS7000222") // its tokens end too
	var body string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + w.d.HTTPAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz stayed %d: %s", resp.StatusCode, body)
		}
	}
	if !strings.Contains(body, "AADSTS7000222: the client secret has expired: create a new one in Entra ID > App registrations > Certificates & secrets") {
		t.Errorf("healthz: %s", body)
	}
	w.send(anna, mailText(anna, "second", "r2@jansen.test", "", "Hello."))
	o.SetSecret("deskd", "secret2")
	src, err := oauth.New(oauth.Config{Provider: oauth.Microsoft, Tenant: "desk", TokenURL: o.TokenURL, ClientID: "deskd", ClientSecret: "secret2"})
	if err != nil {
		t.Fatal(err)
	}
	opts := w.opts
	opts.OAuth, opts.IMAP.Tokens, opts.SMTP.Tokens = src, src, src
	opts.OnDecision = func(r daemon.Report) { w.mu.Lock(); w.reports = append(w.reports, r); w.mu.Unlock() }
	if err := w.d.Reload(opts); err != nil {
		t.Fatal(err)
	}
	w.waitReports(2, time.Minute)
	answeredOnce(t, w, []string{"r1@jansen.test", "r2@jansen.test"})
}
