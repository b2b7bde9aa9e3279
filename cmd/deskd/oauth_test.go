package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"deskd/internal/peers"
)

const oauthBox = "support@x.example"

// oauthPeers starts a token server and IMAP and SMTP peers that take only
// its tokens, and returns a configuration for them; extra is the oauth2
// section's credential lines.
func oauthPeers(t *testing.T) (*peers.OAuth, func(credential string) string) {
	t.Helper()
	o, err := peers.StartOAuth(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	im, err := peers.StartIMAP(oauthBox, "unused")
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
	dir := t.TempDir()
	write := func(credential string) string {
		path := filepath.Join(dir, "deskd.yaml")
		cfg := fmt.Sprintf(`imap:
  host: 127.0.0.1
  port: %d
  tls: none
  auth: xoauth2
  username: %s
smtp:
  host: 127.0.0.1
  port: %d
  tls: none
  auth: oauthbearer
  username: %s
support:
  address: %s
oauth2:
  provider: microsoft
  tenant: contoso.onmicrosoft.com
  client_id: deskd-app
  token_url: %s
  device_auth_url: %s
%s`, im.Port(), oauthBox, sm.Port(), oauthBox, oauthBox, o.TokenURL, o.DeviceAuthURL, credential)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return o, write
}

func TestOAuthTestCommand(t *testing.T) {
	o, write := oauthPeers(t)
	o.AddClient("deskd-app", "s3cret", oauthBox)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	path := write("  client_secret_file: " + secret + "\n  credential_expires: 2099-01-31\n")

	out, errOut, code := runCLI(t, "oauth", "test", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ok    token: client_credentials from microsoft", "the credential expires 2099-01-31",
		"ok    imap: signed in to 127.0.0.1:", "(XOAUTH2), INBOX holds 0 message(s)", "ok    smtp: signed in", "(OAUTHBEARER); nothing sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Error("the secret was printed")
	}

	o.RevokeSecret("deskd-app", "AADSTS7000222")
	out, _, code = runCLI(t, "oauth", "test", "--config", path)
	if code == 0 || !strings.Contains(out, "FAIL  token: AADSTS7000222: the client secret has expired: create a new one in Entra ID > App registrations > Certificates & secrets") {
		t.Errorf("revoked secret: exit %d\n%s", code, out)
	}

	// The token is good but not for this mailbox: the server refuses it,
	// and the fix names the mailbox side.
	o.SetSecret("deskd-app", "s3cret")
	o.AddClient("deskd-app", "s3cret", "someone-else@x.example")
	out, _, code = runCLI(t, "oauth", "test", "--config", path)
	if code == 0 || !strings.Contains(out, "FAIL  imap:") || !strings.Contains(out, "fix: Exchange refused the token: check that the app's service principal exists (New-ServicePrincipal) and has FullAccess on the mailbox (Add-MailboxPermission)") {
		t.Errorf("wrong mailbox: exit %d\n%s", code, out)
	}
}

func TestOAuthLoginWritesRefreshToken(t *testing.T) {
	o, write := oauthPeers(t)
	o.AddClient("deskd-app", "", oauthBox)
	rtFile := filepath.Join(t.TempDir(), "refresh-token")
	path := write("  refresh_token_file: " + rtFile + "\n")

	out, errOut, code := runCLI(t, "oauth", "login", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "enter the code DESKD-1234") || !strings.Contains(out, "mode 0600") {
		t.Errorf("output:\n%s", out)
	}
	st, err := os.Stat(rtFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("refresh token file: %v %v", st, err)
	}
	b, _ := os.ReadFile(rtFile)
	if strings.Contains(out, strings.TrimSpace(string(b))) {
		t.Error("the refresh token was printed")
	}
	// The daemon's configuration now works with it.
	out, errOut, code = runCLI(t, "oauth", "test", "--config", path)
	if code != 0 || !strings.Contains(out, "ok    token: refresh_token") {
		t.Errorf("oauth test after login: exit %d\n%s%s", code, out, errOut)
	}
}
