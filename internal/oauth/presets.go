package oauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Microsoft's and Google's endpoints and scopes. App-only access to
// Exchange Online asks for the resource's ".default" scope, which carries
// the application permissions granted with admin consent
// (IMAP.AccessAsApp, SMTP.SendAsApp); delegated access names the
// protocols' own scopes, and offline_access for a refresh token.
const (
	MicrosoftAppScope      = "https://outlook.office365.com/.default"
	MicrosoftIMAPScope     = "https://outlook.office.com/IMAP.AccessAsUser.All"
	MicrosoftSMTPScope     = "https://outlook.office.com/SMTP.Send"
	MicrosoftOfflineAccess = "offline_access"
	GoogleMailScope        = "https://mail.google.com/"
	GoogleTokenURL         = "https://oauth2.googleapis.com/token"
	GoogleDeviceAuthURL    = "https://oauth2.googleapis.com/device/code"
)

// MicrosoftTokenURL is the v2.0 token endpoint of tenant.
func MicrosoftTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// MicrosoftDeviceAuthURL is the v2.0 device authorization endpoint of tenant.
func MicrosoftDeviceAuthURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/devicecode"
}

type preset struct {
	tokenURL, deviceURL string
	scopes              []string
}

// presetFor fills the provider's endpoints and scopes, with cfg's
// overrides winning.
func presetFor(cfg Config) (preset, error) {
	var p preset
	switch cfg.Provider {
	case Microsoft:
		if cfg.Tenant == "" {
			return p, errors.New("microsoft: tenant is required (the directory ID or contoso.onmicrosoft.com)")
		}
		p.tokenURL = MicrosoftTokenURL(cfg.Tenant)
		p.deviceURL = MicrosoftDeviceAuthURL(cfg.Tenant)
		if cfg.RefreshToken != "" || cfg.ServiceAccountJSON == nil && cfg.ClientSecret == "" && cfg.CertificatePEM == nil {
			p.scopes = []string{MicrosoftIMAPScope, MicrosoftSMTPScope, MicrosoftOfflineAccess}
		} else {
			p.scopes = []string{MicrosoftAppScope}
		}
	case Google:
		p.tokenURL, p.deviceURL = GoogleTokenURL, GoogleDeviceAuthURL
		p.scopes = []string{GoogleMailScope}
	case Generic:
		if cfg.TokenURL == "" {
			return p, errors.New("generic: token_url is required")
		}
	default:
		return p, fmt.Errorf("unknown provider %q (microsoft, google or generic)", cfg.Provider)
	}
	if cfg.TokenURL != "" {
		p.tokenURL = cfg.TokenURL
	}
	if cfg.DeviceAuthURL != "" {
		p.deviceURL = cfg.DeviceAuthURL
	} else if cfg.TokenURL != "" && cfg.Provider == Generic {
		p.deviceURL = strings.TrimSuffix(cfg.TokenURL, "/token") + "/devicecode"
	}
	if len(cfg.Scopes) > 0 {
		p.scopes = cfg.Scopes
	}
	return p, nil
}
