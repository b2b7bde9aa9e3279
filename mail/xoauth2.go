package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// Authentication mechanisms of IMAPConfig.Auth and SMTPConfig.Auth besides
// the password ones.
const (
	// AuthXOAUTH2 is the mechanism Microsoft 365 and Google Workspace
	// document for IMAP and SMTP with an OAuth 2.0 access token.
	AuthXOAUTH2 = "xoauth2"
	// AuthOAuthBearer is RFC 7628's standard mechanism for the same.
	AuthOAuthBearer = "oauthbearer"
)

// TokenSource gives the current OAuth 2.0 access token. One source serves
// the IMAP and the SMTP side, so both renew together; Invalidate drops a
// token a server refused, so the next Token fetches a fresh one.
type TokenSource interface {
	// Token returns an access token and the time it expires.
	Token(ctx context.Context) (token string, expiry time.Time, err error)
	Invalidate(token string)
}

// IsOAuth is true for the mechanisms that sign in with a token.
func IsOAuth(auth string) bool { return auth == AuthXOAUTH2 || auth == AuthOAuthBearer }

// SignInError is a server refusing the token deskd signed in with (IMAP NO
// [AUTHENTICATIONFAILED], SMTP 535): the token endpoint was happy, the
// mailbox side is not (a missing mailbox permission, a revoked token).
type SignInError struct {
	Mech string
	Err  error
}

func (e *SignInError) Error() string { return e.Mech + " sign-in refused: " + e.Err.Error() }
func (e *SignInError) Unwrap() error { return e.Err }

// oauthClient fetches a token from tokens and returns the SASL client of
// mech for user with it, and the token (to invalidate it if refused).
func oauthClient(ctx context.Context, tokens TokenSource, mech, user, host string, port int) (sasl.Client, string, time.Time, error) {
	if tokens == nil {
		return nil, "", time.Time{}, fmt.Errorf("%s: no token source configured", mech)
	}
	tok, exp, err := tokens.Token(ctx)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("get token: %w", err)
	}
	if mech == AuthXOAUTH2 {
		return NewXOAUTH2Client(user, tok), tok, exp, nil
	}
	return &oauthBearerClient{Client: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user, Token: tok, Host: host, Port: port,
	})}, tok, exp, nil
}

// oauthBearerClient answers the server's error challenge with the dummy
// response RFC 7628 §3.2.3 asks for (go-sasl's client stops instead, which
// leaves the AUTHENTICATE command waiting); the JSON is kept for the error.
type oauthBearerClient struct {
	sasl.Client
	failed error
}

func (c *oauthBearerClient) Next(challenge []byte) ([]byte, error) {
	if c.failed != nil {
		return nil, c.failed
	}
	_, err := c.Client.Next(challenge)
	if err == nil {
		err = errors.New("OAUTHBEARER: unexpected challenge")
	}
	c.failed = err
	return []byte{0x01}, nil
}

// XOAUTH2 is the SASL mechanism name.
const XOAUTH2 = "XOAUTH2"

// XOAUTH2Error is the JSON a server sends as its challenge when it refuses
// a token (Google: {"status":"401","schemes":"Bearer","scope":"..."}).
type XOAUTH2Error struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
	// Raw is the challenge as received, for servers that send other JSON.
	Raw string `json:"-"`
}

func (e *XOAUTH2Error) Error() string {
	if e.Status == "" {
		return "XOAUTH2 refused: " + e.Raw
	}
	return fmt.Sprintf("XOAUTH2 refused (status %s)", e.Status)
}

type xoauth2Client struct {
	user, token string
	failed      *XOAUTH2Error
}

// NewXOAUTH2Client returns a SASL client for XOAUTH2 as Google and
// Microsoft document it: the initial response is
// "user=" user ^A "auth=Bearer " token ^A ^A (the base64 encoding is the
// protocol's, done by the IMAP and SMTP clients).
func NewXOAUTH2Client(user, token string) sasl.Client {
	return &xoauth2Client{user: user, token: token}
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	if strings.ContainsAny(c.user, "\x01") || strings.ContainsAny(c.token, "\x01") {
		return "", nil, errors.New("xoauth2: user or token contains ^A")
	}
	return XOAUTH2, []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's error challenge. Google's protocol: the client
// sends an empty response, and the server then ends the exchange with a
// failure; the JSON is kept for the error the caller sees.
func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if c.failed != nil {
		return nil, c.failed
	}
	e := &XOAUTH2Error{Raw: string(challenge)}
	_ = json.Unmarshal(challenge, e)
	c.failed = e
	return []byte{}, nil
}
