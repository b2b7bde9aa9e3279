package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func oauthConfig() *Config {
	c := validConfig()
	c.IMAP.Auth, c.IMAP.Password = AuthXOAUTH2, ""
	c.SMTP.Auth, c.SMTP.Password = AuthXOAUTH2, ""
	c.OAuth2.Provider, c.OAuth2.Tenant, c.OAuth2.ClientID = ProviderMicrosoft, "contoso.onmicrosoft.com", "app-id"
	c.OAuth2.ClientSecret = "entra-secret-Qz8"
	return c
}

func TestOAuth2Validation(t *testing.T) {
	if p := oauthConfig().Validate(); p != nil {
		t.Fatalf("valid oauth config: %v", p)
	}
	for _, tc := range []struct {
		key, contains string
		breakIt       func(c *Config)
	}{
		{"imap.auth", `"kerberos" is not one of`, func(c *Config) { c.IMAP.Auth = "kerberos" }},
		{"oauth2.provider", "required", func(c *Config) { c.OAuth2.Provider = "" }},
		{"oauth2.provider", "not one of", func(c *Config) { c.OAuth2.Provider = "yahoo" }},
		{"oauth2.tenant", "required", func(c *Config) { c.OAuth2.Tenant = "" }},
		{"oauth2.client_id", "required", func(c *Config) { c.OAuth2.ClientID = "" }},
		{"oauth2", "needs a credential", func(c *Config) { c.OAuth2.ClientSecret = "" }},
		{"oauth2", "set one credential", func(c *Config) { c.OAuth2.CertificateFile, c.OAuth2.PrivateKeyFile = "c.pem", "k.pem" }},
		{"oauth2.certificate_file", "go together", func(c *Config) { c.OAuth2.ClientSecret, c.OAuth2.CertificateFile = "", "c.pem" }},
		{"oauth2.subject", "required with service_account_file", func(c *Config) {
			c.OAuth2.Provider, c.OAuth2.ClientSecret, c.OAuth2.ServiceAccountFile = ProviderGoogle, "", "sa.json"
		}},
		{"oauth2.token_url", "required", func(c *Config) { c.OAuth2.Provider = ProviderGeneric }},
		{"oauth2.token_url", "clear text", func(c *Config) { c.OAuth2.TokenURL = "http://login.example.com/token" }},
		{"oauth2.credential_expires", "not a date", func(c *Config) { c.OAuth2.CredentialExpires = "next year" }},
		{"smtp.username", "the mailbox deskd sends as", func(c *Config) { c.SMTP.Username = "" }},
	} {
		c := oauthConfig()
		tc.breakIt(c)
		if p := c.Validate(); !hasProblem(p, tc.key, tc.contains) {
			t.Errorf("%s %q: got %v", tc.key, tc.contains, p)
		}
	}
	// Loopback http is fine (tests, a local token service).
	c := oauthConfig()
	c.OAuth2.TokenURL = "http://127.0.0.1:8080/token"
	if p := c.Validate(); p != nil {
		t.Errorf("loopback token_url: %v", p)
	}
	// Password sign-in needs no oauth2 section, and an oauth one no password.
	c = validConfig()
	c.OAuth2 = OAuth2{Provider: "yahoo"}
	if p := c.Validate(); p != nil {
		t.Errorf("oauth2 checked without an oauth sign-in: %v", p)
	}
}

func TestOAuth2SecretsFromFilesAndNeverShown(t *testing.T) {
	isolateEnv(t)
	secretFile := writeFile(t, "secret", "entra-secret-Qz8\n")
	rtFile := writeFile(t, "rt", "refresh-Wk3")
	path := writeFile(t, "c.yaml", strings.Replace(minimalYAML, "  username: support\n", "  username: support\n  auth: xoauth2\n", 1)+fmt.Sprintf(`
oauth2:
  provider: microsoft
  tenant: contoso
  client_id: app
  client_secret_file: %s
  credential_expires: 2027-01-31
`, secretFile))
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.OAuth2.ClientSecret.Reveal() != "entra-secret-Qz8" {
		t.Errorf("client secret %q", c.OAuth2.ClientSecret.Reveal())
	}
	if want := time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC); !c.OAuth2.CredentialExpiry().Equal(want) {
		t.Errorf("expiry %v", c.OAuth2.CredentialExpiry())
	}
	if c.OAuth2.ExpiryWarning != 14*24*time.Hour {
		t.Errorf("expiry_warning default %v", c.OAuth2.ExpiryWarning)
	}
	t.Setenv("DESKD_OAUTH2_REFRESH_TOKEN_FILE", rtFile)
	c2, err := LoadUnvalidated(path)
	if err != nil {
		t.Fatal(err)
	}
	if c2.OAuth2.RefreshToken.Reveal() != "refresh-Wk3" {
		t.Errorf("refresh token %q", c2.OAuth2.RefreshToken.Reveal())
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "config", c2)
	fmt.Fprintf(&buf, "%+v %#v", c2, c2.Redacted())
	for _, s := range []string{"entra-secret-Qz8", "refresh-Wk3"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("secret %q shown", s)
		}
	}
	// A refresh token file that does not exist yet (before deskd oauth
	// login) is a problem for Load, not for LoadUnvalidated.
	t.Setenv("DESKD_OAUTH2_REFRESH_TOKEN_FILE", rtFile+".missing")
	if _, err := LoadUnvalidated(path); err != nil {
		t.Errorf("LoadUnvalidated with a missing refresh token file: %v", err)
	}
	_ = os.Remove(rtFile)
}

func TestSMTPAuthPasswordIsPlain(t *testing.T) {
	c := validConfig()
	c.SMTP.Auth = AuthPassword
	c.normalize()
	if c.SMTP.Auth != AuthPlain || c.IMAP.Auth != AuthPassword {
		t.Errorf("smtp.auth %q, imap.auth %q", c.SMTP.Auth, c.IMAP.Auth)
	}
}
