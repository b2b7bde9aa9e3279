// Package oauth gets the OAuth 2.0 access tokens deskd signs in to IMAP and
// SMTP with (XOAUTH2, OAUTHBEARER): client credentials for Microsoft 365
// app-only access (a client secret, or a certificate as a signed JWT client
// assertion), a service account's JWT with domain-wide delegation for
// Google Workspace, and a refresh token for delegated access (written by
// "deskd oauth login"). All of it goes through golang.org/x/oauth2.
//
// One Source serves both sides: it caches the token and renews it once 80%
// of its lifetime has passed, so IMAP and SMTP never sign in with a token
// about to expire. Failures become an *Error carrying the provider's code
// (AADSTS7000222, invalid_grant, ...) and what the operator must do.
//
// The package imports nothing of deskd's; cmd/deskd builds a Config from
// the configuration file, the daemon reads Source's state for /healthz
// and /metrics.
package oauth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"deskd/internal/safeio"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"
)

// Providers of Config.Provider.
const (
	Microsoft = "microsoft"
	Google    = "google"
	Generic   = "generic"
)

// Config says how to get tokens. Exactly one credential is used, checked in
// this order: ServiceAccountJSON (Google domain-wide delegation),
// RefreshToken (delegated access), Certificate (Microsoft certificate
// credentials), ClientSecret (client credentials).
type Config struct {
	Provider string
	// Tenant is the Entra ID tenant (a GUID or contoso.onmicrosoft.com);
	// Microsoft only.
	Tenant   string
	ClientID string
	// ClientSecret is the app's secret (client credentials, or the OAuth
	// client's secret with a refresh token). Never logged.
	ClientSecret string
	// CertificatePEM and PrivateKeyPEM: an Entra certificate credential.
	// deskd signs a JWT client assertion with the key (RFC 7523 §2.2).
	CertificatePEM, PrivateKeyPEM []byte
	// ServiceAccountJSON is a Google service account key file's content;
	// Subject is the mailbox it acts for (domain-wide delegation).
	ServiceAccountJSON []byte
	Subject            string
	// RefreshToken is a delegated grant; RefreshTokenFile, when set, is
	// where a rotated refresh token is written back (mode 0600).
	RefreshToken     string
	RefreshTokenFile string
	// TokenURL and Scopes override the provider's preset; required for
	// Generic. DeviceAuthURL likewise, for "deskd oauth login".
	TokenURL      string
	DeviceAuthURL string
	Scopes        []string
	// CredentialExpires is when the secret expires, where the operator
	// knows it (Entra shows it); for a certificate its NotAfter is used
	// when this is zero.
	CredentialExpires time.Time

	// HTTPClient reaches the token endpoint (nil: http.DefaultClient).
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Grants (what Source.Grant reports).
const (
	GrantClientSecret   = "client_credentials"
	GrantCertificate    = "client_credentials (certificate)"
	GrantServiceAccount = "service_account"
	GrantRefreshToken   = "refresh_token"
)

// RenewAfter is the part of a token's lifetime after which Source fetches
// a new one.
const RenewAfter = 0.8

// defaultLifetime is assumed for a token whose response has no expires_in.
const defaultLifetime = time.Hour

// Source hands out access tokens, cached and renewed at RenewAfter of
// their lifetime. It is safe for concurrent use.
type Source struct {
	cfg       Config
	grant     string
	fetch     func(ctx context.Context) (*oauth2.Token, error)
	credUntil time.Time

	mu      sync.Mutex
	tok     *oauth2.Token
	renewAt time.Time
	refresh string // current refresh token (rotated ones replace it)
	lastErr error
	// observe sees every fetch's outcome (the daemon counts errors).
	observe func(error)
}

// New checks cfg and returns a Source; it does not fetch a token yet.
func New(cfg Config) (*Source, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	p, err := presetFor(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, credUntil: cfg.CredentialExpires, refresh: cfg.RefreshToken}
	switch {
	case len(cfg.ServiceAccountJSON) > 0:
		jc, err := google.JWTConfigFromJSON(cfg.ServiceAccountJSON, p.scopes...)
		if err != nil {
			return nil, fmt.Errorf("service account file: %w", err)
		}
		jc.Subject = cfg.Subject
		jc.TokenURL = p.tokenURL
		s.grant = GrantServiceAccount
		s.fetch = func(ctx context.Context) (*oauth2.Token, error) { return jc.TokenSource(ctx).Token() }
	case cfg.RefreshToken != "":
		oc := &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: p.scopes,
			Endpoint: oauth2.Endpoint{TokenURL: p.tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
		s.grant = GrantRefreshToken
		s.fetch = func(ctx context.Context) (*oauth2.Token, error) {
			t, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
			if err == nil && t.RefreshToken != "" && t.RefreshToken != s.refresh {
				// Microsoft rotates refresh tokens; the old one stops
				// working some day, so the new one must survive a restart.
				s.refresh = t.RefreshToken
				if err := s.saveRefreshToken(t.RefreshToken); err != nil {
					return nil, err
				}
			}
			return t, err
		}
	case len(cfg.CertificatePEM) > 0:
		a, err := newAssertion(cfg.ClientID, p.tokenURL, cfg.CertificatePEM, cfg.PrivateKeyPEM)
		if err != nil {
			return nil, err
		}
		if s.credUntil.IsZero() {
			s.credUntil = a.notAfter
		}
		s.grant = GrantCertificate
		s.fetch = func(ctx context.Context) (*oauth2.Token, error) {
			jwt, err := a.sign(cfg.Now())
			if err != nil {
				return nil, err
			}
			// A fresh assertion per request: each is valid 10 minutes.
			cc := &clientcredentials.Config{ClientID: cfg.ClientID, TokenURL: p.tokenURL, Scopes: p.scopes,
				AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: map[string][]string{
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
					"client_assertion":      {jwt},
				}}
			return cc.Token(ctx)
		}
	case cfg.ClientSecret != "":
		cc := &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			TokenURL: p.tokenURL, Scopes: p.scopes, AuthStyle: oauth2.AuthStyleInParams}
		s.grant = GrantClientSecret
		s.fetch = cc.Token
	default:
		return nil, errors.New("no credential: set a client secret, a certificate, a service account file or a refresh token")
	}
	return s, nil
}

// Grant names the way tokens are obtained (one of the Grant* constants).
func (s *Source) Grant() string { return s.grant }

// Provider is the configured provider.
func (s *Source) Provider() string { return s.cfg.Provider }

// CredentialExpiry is when the secret or certificate expires; zero when
// unknown.
func (s *Source) CredentialExpiry() time.Time { return s.credUntil }

// Observe sets a function that sees the outcome of every token fetch (nil
// on success). The daemon counts the errors and reports them on /healthz.
func (s *Source) Observe(f func(error)) {
	s.mu.Lock()
	s.observe = f
	s.mu.Unlock()
}

// Err is the outcome of the last fetch: nil, or an *Error.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Token returns a cached access token, or fetches a new one when none is
// cached or RenewAfter of the cached one's lifetime has passed.
func (s *Source) Token(ctx context.Context) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if s.tok != nil && now.Before(s.renewAt) {
		return s.tok.AccessToken, s.tok.Expiry, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
	t, err := s.fetch(ctx)
	if err == nil && t.AccessToken == "" {
		err = errors.New("token endpoint answered without an access token")
	}
	if err != nil {
		err = Classify(s.cfg.Provider, err)
		s.lastErr = err
		if s.observe != nil {
			s.observe(err)
		}
		return "", time.Time{}, err
	}
	if t.Expiry.IsZero() {
		t.Expiry = now.Add(defaultLifetime)
	}
	s.tok = t
	s.renewAt = now.Add(time.Duration(float64(t.Expiry.Sub(now)) * RenewAfter))
	s.lastErr = nil
	if s.observe != nil {
		s.observe(nil)
	}
	return t.AccessToken, t.Expiry, nil
}

// Invalidate drops token from the cache when it is the cached one: a
// server refused it (revoked, or expired early), and the next Token must
// fetch a new one rather than offer it again.
func (s *Source) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken == token {
		s.tok = nil
	}
}

func (s *Source) saveRefreshToken(tok string) error {
	if s.cfg.RefreshTokenFile == "" {
		return nil
	}
	return WriteSecretFile(s.cfg.RefreshTokenFile, tok)
}

// WriteSecretFile replaces path with content, mode 0600, atomically
// (internal/safeio): a crash leaves the old token or the new one.
func WriteSecretFile(path, content string) error {
	if err := safeio.WriteFile(path, []byte(content+"\n"), safeio.Options{Perm: 0o600}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CertificateNotAfter reads the expiry of the first certificate in a PEM
// file's content.
func CertificateNotAfter(certPEM []byte) (time.Time, error) {
	c, err := parseCertificate(certPEM)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

func parseCertificate(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("certificate file: no PEM CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate file: %w", err)
			}
			return c, nil
		}
	}
}

// hostOf is the host of a URL, for error messages.
func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	h, _, _ := strings.Cut(u, "/")
	return h
}
