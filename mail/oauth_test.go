package mail

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/internal/oauth"
	"deskd/internal/peers"
)

// oauthPeers is the token server and IMAP and SMTP peers that take only its
// tokens, the way Exchange Online and Gmail do.
type oauthPeers struct {
	o    *peers.OAuth
	imap *peers.IMAP
	smtp *peers.SMTP
	src  *oauth.Source
}

const oauthMailbox = "support@example.test"

func startOAuthPeers(t *testing.T, ttl time.Duration) *oauthPeers {
	t.Helper()
	o, err := peers.StartOAuth(ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	o.AddClient("deskd", "secret", oauthMailbox)
	im, err := peers.StartIMAP(oauthMailbox, "unused")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	im.EnableOAuth(o)
	sm, err := peers.StartSMTP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	sm.EnableOAuth(o)
	src, err := oauth.New(oauth.Config{Provider: oauth.Generic, TokenURL: o.TokenURL, ClientID: "deskd", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return &oauthPeers{o: o, imap: im, smtp: sm, src: src}
}

func (p *oauthPeers) imapConfig(mech string, hooks *SourceHooks) IMAPConfig {
	return IMAPConfig{Host: "127.0.0.1", Port: p.imap.Port(), TLS: "none", Username: oauthMailbox,
		Auth: mech, Tokens: p.src, Idle: true, PollInterval: time.Hour, ProcessedMailbox: "Processed",
		QuarantineMailbox: "Quarantine", ConnectTimeout: 5 * time.Second, Hooks: hooks}
}

func (p *oauthPeers) smtpConfig(mech string) SMTPConfig {
	return SMTPConfig{Host: "127.0.0.1", Port: p.smtp.Port(), TLS: "none", Username: oauthMailbox, Auth: mech, Tokens: p.src}
}

func mailNo(i int) []byte {
	return []byte("From: c@example.com\r\nTo: support@example.test\r\nSubject: n" + strconv.Itoa(i) +
		"\r\nMessage-ID: <" + strconv.Itoa(i) + "@example.com>\r\n\r\nbody\r\n")
}

// reasons records OnReconnect.
type reasons struct {
	mu  sync.Mutex
	got []string
}

func (r *reasons) add(s string) { r.mu.Lock(); r.got = append(r.got, s); r.mu.Unlock() }
func (r *reasons) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.got {
		if g == s {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Both mechanisms sign in to IMAP and SMTP with one token source: one token
// serves both sides.
func TestOAuthSignInBothSides(t *testing.T) {
	for _, mech := range []string{AuthXOAUTH2, AuthOAuthBearer} {
		t.Run(mech, func(t *testing.T) {
			p := startOAuthPeers(t, time.Hour)
			if err := p.imap.Deliver("INBOX", mailNo(1), time.Time{}); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder(nil)
			stop := runSource(t, p.imapConfig(mech, nil), rec.handle)
			defer stop()
			rec.wait(t, 1)
			s := NewSender(p.smtpConfig(mech), nil)
			if err := s.Send(context.Background(), "support@example.test", []string{"c@example.com"}, mailNo(2)); err != nil {
				t.Fatal(err)
			}
			if n := len(p.smtp.Mails()); n != 1 {
				t.Fatalf("smtp got %d mails", n)
			}
			if n := p.o.Issued(); n != 1 {
				t.Errorf("%d tokens issued for one IMAP and one SMTP sign-in, want 1 shared", n)
			}
		})
	}
}

// A session the server ends for its token (Exchange: "BYE Session
// invalidated - AccessTokenExpired") reconnects at once, without the
// backoff (which would report the reason "error"), and handles what came
// meanwhile; one whose token is about to expire is ended by deskd itself
// and signs in with a fresh token.
func TestOAuthSessionEndsForItsToken(t *testing.T) {
	p := startOAuthPeers(t, time.Hour)
	var why reasons
	cfg := p.imapConfig(AuthXOAUTH2, &SourceHooks{OnReconnect: why.add})
	rec := newRecorder(nil)
	ctx, cancel := context.WithCancel(context.Background())
	src := NewSource(cfg, slog.New(slog.DiscardHandler), nil)
	done := make(chan struct{})
	go func() { _ = src.Run(ctx, rec.handle); close(done) }()
	defer func() { cancel(); <-done }()
	if err := p.imap.Deliver("INBOX", mailNo(1), time.Time{}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	p.imap.EndSessions()
	waitFor(t, "the reconnect", func() bool { return why.count("expired") == 1 })
	if err := p.imap.Deliver("INBOX", mailNo(2), time.Time{}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 2)
	if why.count("error") != 0 {
		t.Errorf("reconnect reasons %v", why.got)
	}
}

func TestOAuthRenewsBeforeExpiry(t *testing.T) {
	// Tokens live 3 s: the session ends itself a second before, signs in
	// with a fresh token (the source renewed it at 80%), and keeps
	// handling mail; the server never has to end a session.
	p := startOAuthPeers(t, 3*time.Second)
	var why reasons
	rec := newRecorder(nil)
	stop := runSource(t, p.imapConfig(AuthOAuthBearer, &SourceHooks{OnReconnect: why.add}), rec.handle)
	defer stop()
	waitFor(t, "two renewals", func() bool { return why.count("renew") >= 2 })
	if err := p.imap.Deliver("INBOX", mailNo(1), time.Time{}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 1)
	if p.imap.Byes() != 0 || why.count("error") != 0 || why.count("expired") != 0 {
		t.Errorf("byes %d, reasons %v", p.imap.Byes(), why.got)
	}
	if p.o.Issued() < 3 {
		t.Errorf("%d tokens issued over two renewals", p.o.Issued())
	}
}

// SMTP: a token the server refuses is dropped and the send tried once more
// with a fresh one, in the same Send.
func TestOAuthSMTPRetriesWithFreshToken(t *testing.T) {
	p := startOAuthPeers(t, time.Hour)
	s := NewSender(p.smtpConfig(AuthXOAUTH2), nil)
	ctx := context.Background()
	if err := s.Send(ctx, "support@example.test", []string{"c@example.com"}, mailNo(1)); err != nil {
		t.Fatal(err)
	}
	p.o.ExpireAll() // the server forgets the cached token
	if err := s.Send(ctx, "support@example.test", []string{"c@example.com"}, mailNo(2)); err != nil {
		t.Fatal(err)
	}
	if n := len(p.smtp.Mails()); n != 2 || p.o.Issued() != 2 {
		t.Errorf("mails %d, tokens %d", n, p.o.Issued())
	}
}

// A revoked secret: the token endpoint's error reaches the caller whole,
// with its code and fix, on both sides.
func TestOAuthRevokedSecret(t *testing.T) {
	p := startOAuthPeers(t, time.Hour)
	p.o.RevokeSecret("deskd", "AADSTS7000222")
	err := NewSender(p.smtpConfig(AuthXOAUTH2), nil).Send(context.Background(), "support@example.test", []string{"c@example.com"}, mailNo(1))
	var oe *oauth.Error
	if !errors.As(err, &oe) || oe.Code != "AADSTS7000222" || !IsTemporary(err) {
		t.Fatalf("smtp: %v", err)
	}
	_, err = NewSource(p.imapConfig(AuthXOAUTH2, nil), slog.New(slog.DiscardHandler), nil).Login(context.Background())
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "Certificates & secrets") {
		t.Fatalf("imap: %v", err)
	}
	// A token for another mailbox is refused by the server: a SignInError.
	p.o.SetSecret("deskd", "secret")
	cfg := p.imapConfig(AuthXOAUTH2, nil)
	cfg.Username = "other@example.test"
	_, err = NewSource(cfg, slog.New(slog.DiscardHandler), nil).Login(context.Background())
	var sie *SignInError
	if !errors.As(err, &sie) {
		t.Fatalf("wrong mailbox: %v", err)
	}
}
