package oauth

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
)

// Error is a token failure an operator can act on: the provider's code,
// what it means and what to do. Its text is the one log line, the
// /healthz reason and what "deskd oauth test" prints.
type Error struct {
	// Code is the provider's most specific code: AADSTS7000222 for
	// Microsoft, else the OAuth error ("invalid_grant"), or "unreachable"
	// when the token endpoint did not answer.
	Code string
	// What is the meaning in a few words, Fix what to do.
	What, Fix string
	Err       error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.What
	if e.Fix != "" {
		s += ": " + e.Fix
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary is true when retrying later may succeed on its own (the
// endpoint was unreachable or answered 5xx); a bad credential is not.
func (e *Error) Temporary() bool {
	return e.Code == "unreachable" || e.Code == "server_error" || e.Code == "temporarily_unavailable"
}

type known struct{ what, fix string }

// aadsts are the Entra ID errors an app-only or delegated mail client
// meets; the texts follow Microsoft's error reference.
var aadsts = map[string]known{
	"AADSTS7000222": {"the client secret has expired", "create a new one in Entra ID > App registrations > Certificates & secrets, put it in oauth2.client_secret_file and reload deskd (SIGHUP)"},
	"AADSTS7000215": {"the client secret is wrong", "copy the secret's Value (not its Secret ID) from Entra ID > App registrations > Certificates & secrets into oauth2.client_secret_file and reload deskd (SIGHUP)"},
	"AADSTS700027":  {"the client assertion was refused: the certificate is not registered for this app, or has expired", "upload the certificate (.cer) in Entra ID > App registrations > Certificates & secrets > Certificates, or renew it"},
	"AADSTS700016":  {"no application with this client_id in the tenant", "check oauth2.client_id (the Application (client) ID) and oauth2.tenant (the Directory (tenant) ID)"},
	"AADSTS90002":   {"the tenant does not exist", "check oauth2.tenant: the Directory (tenant) ID or the tenant's onmicrosoft.com name"},
	"AADSTS65001":   {"consent was not granted or was revoked", "in Entra ID > App registrations > API permissions, grant admin consent for IMAP.AccessAsApp and SMTP.SendAsApp (Office 365 Exchange Online)"},
	"AADSTS70011":   {"the scope is invalid", "leave oauth2.scopes empty for Microsoft (deskd asks for https://outlook.office365.com/.default)"},
	"AADSTS50173":   {"the refresh token was revoked (the user's password changed or sessions were revoked)", "run deskd oauth login again"},
	"AADSTS700082":  {"the refresh token expired after 90 days without use", "run deskd oauth login again"},
	"AADSTS50076":   {"multi-factor authentication is required", "run deskd oauth login again and complete the sign-in"},
	"AADSTS7000112": {"the application is disabled", "enable it in Entra ID > Enterprise applications > Properties"},
	"AADSTS53003":   {"a conditional access policy blocked the sign-in", "exclude the app or the service principal from the policy in Entra ID > Conditional Access"},
}

var aadstsRE = regexp.MustCompile(`AADSTS\d+`)

// Classify turns a token endpoint failure into an *Error with the fix the
// provider's code calls for. An *Error passes through.
func Classify(provider string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &ne) || errors.As(err, &oe) {
			return &Error{Code: "unreachable", What: "the token endpoint did not answer", Fix: "check the network path and proxy to the provider (" + err.Error() + ")", Err: err}
		}
		return &Error{Code: "token_error", What: err.Error(), Err: err}
	}
	desc := re.ErrorDescription
	if code := aadstsRE.FindString(desc); code != "" {
		if k, ok := aadsts[code]; ok {
			return &Error{Code: code, What: k.what, Fix: k.fix, Err: err}
		}
		return &Error{Code: code, What: firstLine(desc), Fix: "look the code up in Microsoft's Entra ID error reference (https://login.microsoftonline.com/error?code=" + strings.TrimPrefix(code, "AADSTS") + ")", Err: err}
	}
	code := re.ErrorCode
	if code == "" {
		code = fmt.Sprintf("http_%d", re.Response.StatusCode)
	}
	low := strings.ToLower(desc)
	switch {
	case code == "unauthorized_client" && provider == Google:
		return &Error{Code: code, What: "the service account may not act for this mailbox", Fix: "in the Google Admin console > Security > API controls > Domain-wide delegation, add the service account's client ID with the scope https://mail.google.com/, and check oauth2.subject", Err: err}
	case code == "invalid_grant" && strings.Contains(low, "jwt"):
		return &Error{Code: code, What: "the service account key was refused (" + firstLine(desc) + ")", Fix: "create a new key for the service account in Google Cloud > IAM > Service accounts > Keys and put it in oauth2.service_account_file; check the server's clock", Err: err}
	case code == "invalid_grant" && (strings.Contains(low, "expired") || strings.Contains(low, "revoked")):
		return &Error{Code: code, What: "the refresh token has expired or was revoked", Fix: "run deskd oauth login again", Err: err}
	case code == "invalid_grant" && provider == Google:
		return &Error{Code: code, What: firstLine(desc), Fix: "check oauth2.subject (the mailbox) and the service account's domain-wide delegation", Err: err}
	case code == "invalid_client":
		return &Error{Code: code, What: "the client credentials were refused", Fix: "check oauth2.client_id and the client secret (or certificate) at the provider", Err: err}
	case code == "invalid_scope":
		return &Error{Code: code, What: "the scope was refused", Fix: "check oauth2.scopes", Err: err}
	case re.Response != nil && re.Response.StatusCode >= 500:
		return &Error{Code: "server_error", What: "the token endpoint failed (" + firstLine(desc) + ")", Fix: "deskd retries; check the provider's status page if it lasts", Err: err}
	}
	what := firstLine(desc)
	if what == "" {
		what = "the token endpoint refused the request"
	}
	return &Error{Code: code, What: what, Err: err}
}

// SignInFix says what to check when the mail server refuses a token the
// provider issued: the token is fine, the mailbox side is not.
func SignInFix(provider string) string {
	switch provider {
	case Microsoft:
		return "Exchange refused the token: check that the app's service principal exists (New-ServicePrincipal) and has FullAccess on the mailbox (Add-MailboxPermission), that imap.username is the mailbox's address, and that IMAP and SMTP AUTH are enabled for it"
	case Google:
		return "Google refused the token: check that oauth2.subject and imap.username are the mailbox's address, that IMAP is on for the user, and the domain-wide delegation's scope https://mail.google.com/"
	}
	return "the server refused the token: check that the token's subject may use this mailbox and the server's token validation"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "\r"))
}
