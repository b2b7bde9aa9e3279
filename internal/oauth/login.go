package oauth

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// Login runs the device authorization grant (RFC 8628) that "deskd oauth
// login" offers for delegated access: prompt shows the person the address
// to open, on any machine with a browser, and the code to type there;
// Login then polls until they have signed in and consented, and returns
// the refresh token. Microsoft's delegated preset asks for IMAP, SMTP and
// offline_access (for the refresh token).
func Login(ctx context.Context, cfg Config, prompt func(verificationURI, userCode string)) (string, error) {
	// The preset is that of delegated access, whatever else is set.
	cfg.CertificatePEM, cfg.ServiceAccountJSON = nil, nil
	if cfg.RefreshToken == "" {
		cfg.RefreshToken = "pending" // picks the delegated scopes
	}
	p, err := presetFor(cfg)
	if err != nil {
		return "", err
	}
	if p.deviceURL == "" {
		return "", errors.New("no device authorization endpoint: set oauth2.device_auth_url")
	}
	if cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, cfg.HTTPClient)
	}
	oc := &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: p.scopes,
		Endpoint: oauth2.Endpoint{TokenURL: p.tokenURL, DeviceAuthURL: p.deviceURL, AuthStyle: oauth2.AuthStyleInParams}}
	da, err := oc.DeviceAuth(ctx)
	if err != nil {
		return "", Classify(cfg.Provider, err)
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	prompt(uri, da.UserCode)
	tok, err := oc.DeviceAccessToken(ctx, da)
	if err != nil {
		return "", Classify(cfg.Provider, err)
	}
	if tok.RefreshToken == "" {
		return "", fmt.Errorf("the provider issued no refresh token: add the scope %q (Microsoft) or use an OAuth client that may go offline", MicrosoftOfflineAccess)
	}
	return tok.RefreshToken, nil
}
