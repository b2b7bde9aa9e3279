package mailstack_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"deskd/internal/mailstack"
	"deskd/internal/oauth"
	"deskd/internal/peers"
	"deskd/mail"
)

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// Dovecot checks the token itself (passdb oauth2, introspection at
// peers.OAuth) on IMAP and, through its auth service, on Postfix's
// submission: XOAUTH2 and OAUTHBEARER both sign in, a revoked token does
// not.
func TestOAuth2DovecotAndSubmission(t *testing.T) {
	o, err := peers.StartOAuth(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	const box = "support@example.test"
	o.AddClient("deskd", "secret", box)
	s := mailstack.Start(t, mailstack.Options{
		Users:               []mailstack.User{{Address: box, Password: "pw"}, {Address: "c@example.test", Password: "pw2"}},
		OAuth2IntrospectURL: o.IntrospectURL,
	})
	src, err := oauth.New(oauth.Config{Provider: oauth.Generic, TokenURL: o.TokenURL, ClientID: "deskd", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ih, ip := hostPort(t, s.IMAPAddr)
	sh, sp := hostPort(t, s.SubmissionAddr)
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	for _, mech := range []string{mail.AuthXOAUTH2, mail.AuthOAuthBearer} {
		imapCfg := mail.IMAPConfig{Host: ih, Port: ip, TLS: "none", Username: box, Auth: mech, Tokens: src, Mailbox: "INBOX"}
		if _, err := mail.NewSource(imapCfg, quiet, nil).CheckMailbox(ctx); err != nil {
			t.Fatalf("imap %s: %v", mech, err)
		}
		smtpCfg := mail.SMTPConfig{Host: sh, Port: sp, TLS: "none", Username: box, Auth: mech, Tokens: src, Timeout: 20 * time.Second}
		raw := []byte("From: support@example.test\r\nTo: c@example.test\r\nSubject: " + mech + "\r\nMessage-ID: <" + mech + "@example.test>\r\n\r\nhi\r\n")
		if err := mail.NewSender(smtpCfg, quiet).Send(ctx, box, []string{"c@example.test"}, raw); err != nil {
			t.Fatalf("submission %s: %v", mech, err)
		}
	}
	s.WaitForMessages(t, "c@example.test", "INBOX", 2, 30*time.Second)

	// Without a token, submission refuses the mail.
	noAuth := mail.SMTPConfig{Host: sh, Port: sp, TLS: "none", Auth: "none", Timeout: 20 * time.Second}
	if err := mail.NewSender(noAuth, quiet).Send(ctx, box, []string{"c@example.test"}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
		t.Error("submission took mail without AUTH")
	}
	// A token the server no longer knows is refused by Dovecot.
	o.ExpireAll()
	o.RevokeSecret("deskd", "AADSTS7000222")
	imapCfg := mail.IMAPConfig{Host: ih, Port: ip, TLS: "none", Username: box, Auth: mail.AuthXOAUTH2, Tokens: src, Mailbox: "INBOX"}
	_, err = mail.NewSource(imapCfg, quiet, nil).CheckMailbox(ctx)
	var sie *mail.SignInError
	if !errors.As(err, &sie) {
		t.Fatalf("expired token: %v", err)
	}
}
