package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // checking the x5t thumbprint
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"deskd/internal/peers"
)

// redirect sends every request to the test's token server, whatever host
// the preset names, and records the URL the preset asked for: no test
// reaches the internet, and the preset's URL is still checked.
type redirect struct {
	to   *url.URL
	mu   sync.Mutex
	seen []string
}

func (r *redirect) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.URL.String())
	r.mu.Unlock()
	req = req.Clone(req.Context())
	path := "/token"
	if strings.HasSuffix(req.URL.Path, "/devicecode") || strings.HasSuffix(req.URL.Path, "/device/code") {
		path = "/devicecode"
	}
	req.URL.Scheme, req.URL.Host, req.URL.Path = r.to.Scheme, r.to.Host, path
	return http.DefaultTransport.RoundTrip(req)
}

func startServer(t *testing.T, ttl time.Duration) (*peers.OAuth, *redirect) {
	t.Helper()
	o, err := peers.StartOAuth(ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	u, _ := url.Parse(o.URL)
	return o, &redirect{to: u}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, key *rsa.PrivateKey, cert *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deskd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	return certPEM, keyPEM, key, cert
}

func TestMicrosoftClientSecretPreset(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	o.AddClient("app-id", "s3cret", "support@contoso.com")
	src, err := New(Config{Provider: Microsoft, Tenant: "contoso.onmicrosoft.com", ClientID: "app-id",
		ClientSecret: "s3cret", HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if user, _, ok := o.Check(tok); !ok || user != "support@contoso.com" {
		t.Fatalf("token %q opens %q, ok=%v", tok, user, ok)
	}
	if want := "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"; rt.seen[0] != want {
		t.Errorf("token URL %q, want %q", rt.seen[0], want)
	}
	form := o.Requests()[0]
	for k, want := range map[string]string{"grant_type": "client_credentials", "client_id": "app-id",
		"client_secret": "s3cret", "scope": "https://outlook.office365.com/.default"} {
		if form.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, form.Get(k), want)
		}
	}
	if src.Grant() != GrantClientSecret {
		t.Errorf("grant %q", src.Grant())
	}
}

func TestMicrosoftCertificateAssertion(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	certPEM, keyPEM, key, cert := selfSigned(t)
	// The token server checks aud against its own URL: name it as the
	// token URL (a test override), as Entra's own URL is checked above.
	o.AddKeyClient("app-id", &key.PublicKey, "support@contoso.com")
	src, err := New(Config{Provider: Microsoft, Tenant: "contoso", ClientID: "app-id", TokenURL: o.TokenURL,
		CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	form := o.Requests()[0]
	if form.Get("client_secret") != "" || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("form %v", form)
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var header map[string]string
	_ = json.Unmarshal(raw, &header)
	sum := sha1.Sum(cert.Raw) //nolint:gosec
	if header["x5t"] != base64.RawURLEncoding.EncodeToString(sum[:]) || header["alg"] != "RS256" {
		t.Errorf("header %v", header)
	}
	if got := src.CredentialExpiry(); !got.Equal(cert.NotAfter) {
		t.Errorf("credential expiry %v, want the certificate's NotAfter %v", got, cert.NotAfter)
	}
	// A key of another certificate is refused before any request.
	_, otherKey, _, _ := selfSigned(t)
	if _, err := New(Config{Provider: Microsoft, Tenant: "contoso", ClientID: "app-id", CertificatePEM: certPEM, PrivateKeyPEM: otherKey}); err == nil {
		t.Error("a key that is not the certificate's was accepted")
	}
}

func TestGoogleServiceAccountPreset(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	_, keyPEM, key, _ := selfSigned(t)
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "client_email": "deskd@proj.iam.gserviceaccount.com",
		"private_key": string(keyPEM), "private_key_id": "k1", "token_uri": GoogleTokenURL,
	})
	o.AddKeyClient("deskd@proj.iam.gserviceaccount.com", &key.PublicKey, "")
	// The assertion's aud is the token URL; the server checks it against
	// its own, so the test names that as the override and checks the
	// preset's URL separately below.
	src, err := New(Config{Provider: Google, ServiceAccountJSON: sa, Subject: "support@example.com",
		TokenURL: o.TokenURL, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if user, _, _ := o.Check(tok); user != "support@example.com" {
		t.Errorf("token for %q, want the subject", user)
	}
	form := o.Requests()[0]
	if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Errorf("grant_type %q", form.Get("grant_type"))
	}
	parts := strings.Split(form.Get("assertion"), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	if claims["scope"] != "https://mail.google.com/" || claims["sub"] != "support@example.com" {
		t.Errorf("claims %v", claims)
	}
	p, _ := presetFor(Config{Provider: Google, ServiceAccountJSON: sa})
	if p.tokenURL != "https://oauth2.googleapis.com/token" || strings.Join(p.scopes, " ") != "https://mail.google.com/" {
		t.Errorf("google preset %+v", p)
	}
}

func TestRefreshTokenPresetAndRotation(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	o.AddClient("app-id", "", "person@contoso.com")
	o.AddRefreshToken("app-id", "rt-1")
	dir := t.TempDir()
	file := filepath.Join(dir, "refresh")
	src, err := New(Config{Provider: Microsoft, Tenant: "common", ClientID: "app-id", RefreshToken: "rt-1",
		RefreshTokenFile: file, HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	form := o.Requests()[0]
	// A refresh keeps the scopes of the grant "deskd oauth login" got.
	if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt-1" || form.Get("client_id") != "app-id" {
		t.Errorf("form %v", form)
	}
	if rt.seen[0] != "https://login.microsoftonline.com/common/oauth2/v2.0/token" {
		t.Errorf("url %q", rt.seen[0])
	}
	if p, _ := presetFor(Config{Provider: Microsoft, Tenant: "common", RefreshToken: "x"}); strings.Join(p.scopes, " ") != "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access" || p.deviceURL != "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode" {
		t.Errorf("delegated preset %+v", p)
	}
	// The server did not rotate: nothing is written.
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refresh token file written without a rotation: %v", err)
	}
}

func TestRenewsAtEightyPercent(t *testing.T) {
	o, rt := startServer(t, 100*time.Second)
	o.AddClient("app-id", "s", "m@x")
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	src, _ := New(Config{Provider: Generic, TokenURL: o.TokenURL, ClientID: "app-id", ClientSecret: "s",
		HTTPClient: &http.Client{Transport: rt}, Now: clock})
	ctx := context.Background()
	first, _, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	advance(79 * time.Second)
	if tok, _, _ := src.Token(ctx); tok != first || o.Issued() != 1 {
		t.Fatalf("renewed before 80%% of the lifetime (issued %d)", o.Issued())
	}
	advance(2 * time.Second)
	second, _, _ := src.Token(ctx)
	if second == first || o.Issued() != 2 {
		t.Fatalf("not renewed after 80%% of the lifetime (issued %d)", o.Issued())
	}
	src.Invalidate(first) // not the cached one: nothing happens
	if tok, _, _ := src.Token(ctx); tok != second {
		t.Error("invalidating an old token dropped the cached one")
	}
	src.Invalidate(second)
	if tok, _, _ := src.Token(ctx); tok == second || o.Issued() != 3 {
		t.Error("an invalidated token was handed out again")
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	o.AddClient("app-id", "s", "m@x")
	var seen []error
	src, _ := New(Config{Provider: Microsoft, Tenant: "t", ClientID: "app-id", ClientSecret: "s", HTTPClient: &http.Client{Transport: rt}})
	src.Observe(func(err error) { seen = append(seen, err) })
	o.RevokeSecret("app-id", "AADSTS7000222")
	_, _, err := src.Token(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Code != "AADSTS7000222" {
		t.Fatalf("err %v", err)
	}
	want := "AADSTS7000222: the client secret has expired: create a new one in Entra ID > App registrations > Certificates & secrets"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("text %q, want it to start %q", err, want)
	}
	if strings.Contains(err.Error(), "\"s\"") || src.Err() == nil || len(seen) != 1 || seen[0] == nil {
		t.Errorf("Err %v, observed %v", src.Err(), seen)
	}
	o.SetSecret("app-id", "s")
	if _, _, err := src.Token(context.Background()); err != nil || src.Err() != nil || seen[1] != nil {
		t.Errorf("after a good secret: %v, %v", err, src.Err())
	}

	for _, c := range []struct {
		provider string
		fail     peers.OAuthFailure
		code     string
		fix      string
	}{
		{Google, peers.OAuthFailure{Status: 401, Code: "unauthorized_client", Description: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}, "unauthorized_client", "Domain-wide delegation"},
		{Microsoft, peers.OAuthFailure{Status: 400, Code: "invalid_grant", Description: "AADSTS65001: The user or administrator has not consented to use the application."}, "AADSTS65001", "grant admin consent"},
		{Google, peers.OAuthFailure{Status: 400, Code: "invalid_grant", Description: "Token has been expired or revoked."}, "invalid_grant", "deskd oauth login"},
		{Microsoft, peers.OAuthFailure{Status: 400, Code: "invalid_request", Description: "AADSTS9999999: Something new."}, "AADSTS9999999", "login.microsoftonline.com/error?code=9999999"},
	} {
		o.Fail(&c.fail)
		src.Invalidate("") // nothing cached matches; force a fetch below
		s2, _ := New(Config{Provider: c.provider, Tenant: "t", TokenURL: o.TokenURL, ClientID: "app-id", ClientSecret: "s", HTTPClient: &http.Client{Transport: rt}})
		_, _, err := s2.Token(context.Background())
		if !errors.As(err, &e) || e.Code != c.code || !strings.Contains(err.Error(), c.fix) {
			t.Errorf("%s %s: %v", c.provider, c.fail.Description, err)
		}
	}
	o.Fail(nil)

	// Nobody listening: "unreachable", temporary.
	s3, _ := New(Config{Provider: Generic, TokenURL: "http://127.0.0.1:1/token", ClientID: "a", ClientSecret: "s"})
	_, _, err = s3.Token(context.Background())
	if !errors.As(err, &e) || e.Code != "unreachable" || !e.Temporary() {
		t.Errorf("unreachable: %v", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Provider: Microsoft, ClientID: "a", ClientSecret: "s"},           // no tenant
		{Provider: Generic, ClientID: "a", ClientSecret: "s"},             // no token URL
		{Provider: "yahoo", ClientID: "a", ClientSecret: "s"},             // unknown
		{Provider: Google, ClientID: "a"},                                 // no credential
		{Provider: Google, ServiceAccountJSON: []byte("{"), Subject: "x"}, // bad JSON
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestWriteSecretFileMode(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rt")
	if err := WriteSecretFile(file, "abc"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(file)
	if string(b) != "abc\n" {
		t.Errorf("content %q", b)
	}
}

func TestLoginDeviceFlowThenRefresh(t *testing.T) {
	o, rt := startServer(t, time.Hour)
	o.AddClient("app-id", "", "person@contoso.com")
	var shown string
	refresh, err := Login(context.Background(), Config{Provider: Microsoft, Tenant: "organizations", ClientID: "app-id",
		DeviceAuthURL: o.DeviceAuthURL, TokenURL: o.TokenURL, HTTPClient: &http.Client{Transport: rt}},
		func(uri, code string) { shown = uri + " " + code })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(shown, "/device DESKD-1234") {
		t.Errorf("prompt %q", shown)
	}
	dev := o.Requests()[0]
	if dev.Get("scope") != "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access" {
		t.Errorf("device request %v", dev)
	}
	src, err := New(Config{Provider: Microsoft, Tenant: "organizations", ClientID: "app-id", TokenURL: o.TokenURL, RefreshToken: refresh})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := src.Token(context.Background())
	if user, _, _ := o.Check(tok); err != nil || user != "person@contoso.com" {
		t.Errorf("token from the refresh token: %v, %q", err, user)
	}
}
