package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"deskd/config"
	"deskd/internal/oauth"
	"deskd/mail"
)

// tokenSource builds the OAuth 2.0 token source of cfg's oauth2 section,
// reading the certificate, key and service account files; nil when
// neither side signs in with a token.
func tokenSource(cfg *config.Config) (*oauth.Source, error) {
	if !cfg.UsesOAuth2() {
		return nil, nil
	}
	oc, err := oauthConfig(cfg)
	if err != nil {
		return nil, err
	}
	src, err := oauth.New(oc)
	if err != nil {
		return nil, fmt.Errorf("oauth2: %w", err)
	}
	return src, nil
}

// oauthConfig turns the oauth2 section into oauth.Config, reading its
// files (the secrets themselves config has read already).
func oauthConfig(cfg *config.Config) (oauth.Config, error) {
	o := cfg.OAuth2
	oc := oauth.Config{
		Provider: o.Provider, Tenant: o.Tenant, ClientID: o.ClientID,
		ClientSecret: o.ClientSecret.Reveal(), Subject: o.Subject,
		RefreshToken: o.RefreshToken.Reveal(), RefreshTokenFile: o.RefreshTokenFile,
		TokenURL: o.TokenURL, DeviceAuthURL: o.DeviceAuthURL, Scopes: o.Scopes,
		CredentialExpires: o.CredentialExpiry(),
	}
	for _, f := range []struct {
		key, path string
		into      *[]byte
	}{
		{"oauth2.certificate_file", o.CertificateFile, &oc.CertificatePEM},
		{"oauth2.private_key_file", o.PrivateKeyFile, &oc.PrivateKeyPEM},
		{"oauth2.service_account_file", o.ServiceAccountFile, &oc.ServiceAccountJSON},
	} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return oc, fmt.Errorf("%s: %w", f.key, err)
		}
		*f.into = b
	}
	return oc, nil
}

// withTokens puts src into the daemon's mail settings.
func withTokens(cfg *config.Config, imapCfg *mail.IMAPConfig, smtpCfg *mail.SMTPConfig, src *oauth.Source) {
	imapCfg.Auth = cfg.IMAP.Auth
	if src != nil {
		imapCfg.Tokens, smtpCfg.Tokens = src, src
	}
}

const oauthUsage = `usage: deskd oauth <test|login> --config FILE

  test    get a token, sign in to IMAP (and SELECT the mailbox) and to SMTP
          (AUTH only, nothing is sent); prints what worked and the fix for
          what did not
  login   delegated access: sign in once in a browser (device code), and
          write the refresh token to oauth2.refresh_token_file (mode 0600)
`

// cmdOAuth runs "deskd oauth test" and "deskd oauth login".
func cmdOAuth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, oauthUsage)
		return usageError{"oauth: test or login?"}
	}
	fs := flag.NewFlagSet("oauth "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfigPath, "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	switch args[0] {
	case "test":
		return oauthTest(ctx, *configPath, stdout)
	case "login":
		return oauthLogin(ctx, *configPath, stdout)
	}
	fmt.Fprint(stderr, oauthUsage)
	return usageError{fmt.Sprintf("oauth: unknown command %q", args[0])}
}

// oauthTest checks the whole road an operator has just set up, step by
// step, and says for each what worked and what to do about what did not.
func oauthTest(ctx context.Context, path string, stdout io.Writer) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	if !cfg.UsesOAuth2() {
		return configError{errors.New("neither imap.auth nor smtp.auth is xoauth2 or oauthbearer: nothing to test")}
	}
	src, err := tokenSource(cfg)
	if err != nil {
		return configError{err}
	}
	failed := 0
	report := func(step string, err error, ok string) {
		if err == nil {
			fmt.Fprintf(stdout, "ok    %s: %s\n", step, ok)
			return
		}
		failed++
		fmt.Fprintf(stdout, "FAIL  %s: %v\n", step, err)
		var sie *mail.SignInError
		if errors.As(err, &sie) {
			fmt.Fprintf(stdout, "      fix: %s\n", oauth.SignInFix(cfg.OAuth2.Provider))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, exp, err := src.Token(ctx)
	report("token", err, fmt.Sprintf("%s from %s, valid until %s", src.Grant(), cfg.OAuth2.Provider, exp.Format(time.RFC3339)))
	if err != nil {
		return fmt.Errorf("oauth test: %d step(s) failed", failed)
	}
	if ce := src.CredentialExpiry(); !ce.IsZero() {
		fmt.Fprintf(stdout, "      the credential expires %s (in %d days)\n", ce.Format(time.DateOnly), int(time.Until(ce).Hours()/24))
	}
	quiet := slog.New(slog.DiscardHandler)
	opts := daemonOptions(cfg, quiet)
	opts.IMAP.Tokens, opts.SMTP.Tokens = src, src
	n, err := mail.NewSource(opts.IMAP, quiet, nil).CheckMailbox(ctx)
	report("imap", err, fmt.Sprintf("signed in to %s as %s (%s), %s holds %d message(s)",
		cfg.IMAPAddr(), cfg.IMAP.Username, strings.ToUpper(cfg.IMAP.Auth), cfg.IMAP.Mailbox, n))
	if cfg.SMTP.Auth == config.AuthNone {
		fmt.Fprintln(stdout, "skip  smtp: smtp.auth is none")
	} else {
		err = mail.NewSender(opts.SMTP, quiet).CheckAuth(ctx)
		report("smtp", err, fmt.Sprintf("signed in to %s as %s (%s); nothing sent", cfg.SMTPAddr(), cfg.SMTP.Username, strings.ToUpper(cfg.SMTP.Auth)))
	}
	if failed > 0 {
		return fmt.Errorf("oauth test: %d step(s) failed", failed)
	}
	return nil
}

// oauthLogin runs the device-code flow and writes the refresh token.
func oauthLogin(ctx context.Context, path string, stdout io.Writer) error {
	// The refresh token file need not exist yet: that is what this
	// command writes.
	cfg, err := config.LoadUnvalidated(path)
	if err != nil {
		return configError{err}
	}
	o := cfg.OAuth2
	switch {
	case o.Provider == "":
		return configError{errors.New("oauth2.provider: required")}
	case o.ClientID == "":
		return configError{errors.New("oauth2.client_id: required (the app registration's client ID)")}
	case o.RefreshTokenFile == "":
		return configError{errors.New("oauth2.refresh_token_file: required: where the refresh token goes")}
	}
	oc, err := oauthConfig(cfg)
	if err != nil {
		return configError{err}
	}
	refresh, err := oauth.Login(ctx, oc, func(uri, code string) {
		fmt.Fprintf(stdout, "Open %s in a browser on any machine, enter the code %s,\nand sign in as the mailbox %s (or a user with access to it).\nWaiting for the sign-in...\n", uri, code, cfg.IMAP.Username)
	})
	if err != nil {
		return err
	}
	if err := oauth.WriteSecretFile(o.RefreshTokenFile, refresh); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Signed in. The refresh token is in %s (mode 0600).\nNext: deskd oauth test --config %s, then systemctl reload deskd.\n", o.RefreshTokenFile, path)
	return nil
}
