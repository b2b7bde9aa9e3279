package peers

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// OAuth is a small OAuth 2.0 authorization server on 127.0.0.1, standing
// in for Entra ID and Google's token endpoint in tests. It issues opaque
// short-lived access tokens for client credentials (a client secret, or a
// JWT client assertion signed with a registered key as Entra certificate
// credentials do: RFC 7523 §2.2), for service account JWTs (the JWT bearer
// grant, RFC 7523 §2.1, with the mailbox as sub) and for refresh tokens. It
// answers token introspection (RFC 7662) as Dovecot's oauth2 passdb asks
// for it, and a test can revoke a secret, expire every token, or make it
// fail with a given error.
type OAuth struct {
	// URL is the server's base ("http://127.0.0.1:port"); TokenURL and
	// IntrospectURL its two endpoints.
	URL, TokenURL, IntrospectURL, DeviceAuthURL string

	mu       sync.Mutex
	ttl      time.Duration
	clients  map[string]*oauthClient
	refresh  map[string]string // refresh token -> client ID
	devices  map[string]string // device code -> client ID, approved at once
	tokens   map[string]oauthToken
	fail     *OAuthFailure
	issued   int
	requests []url.Values
	server   *http.Server
	ln       net.Listener
}

type oauthClient struct {
	secret  string
	key     *rsa.PublicKey // certificate credentials or a service account
	mailbox string         // the mailbox its tokens are for ("" = the JWT's sub)
	revoked string         // the AADSTS code to answer instead of a token
}

type oauthToken struct {
	client, user string
	expiry       time.Time
}

// OAuthFailure is what every token request gets while Fail is set.
type OAuthFailure struct {
	Status      int    // HTTP status (400, 401)
	Code        string // "invalid_client"
	Description string // "AADSTS7000222: The provided client secret keys ... are expired."
}

// StartOAuth starts the server; tokens live ttl.
func StartOAuth(ttl time.Duration) (*OAuth, error) {
	o := &OAuth{ttl: ttl, clients: map[string]*oauthClient{}, refresh: map[string]string{}, devices: map[string]string{}, tokens: map[string]oauthToken{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", o.token)
	mux.HandleFunc("POST /devicecode", o.deviceCode)
	mux.HandleFunc("/introspect", o.introspect)
	o.ln = ln
	o.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	o.URL = "http://" + ln.Addr().String()
	o.TokenURL = o.URL + "/token"
	o.IntrospectURL = o.URL + "/introspect"
	o.DeviceAuthURL = o.URL + "/devicecode"
	go func() { _ = o.server.Serve(ln) }()
	return o, nil
}

// Close stops the server.
func (o *OAuth) Close() error { return o.server.Close() }

// SetTTL changes the lifetime of tokens issued from now on.
func (o *OAuth) SetTTL(d time.Duration) {
	o.mu.Lock()
	o.ttl = d
	o.mu.Unlock()
}

// AddClient registers a client with a secret whose tokens open mailbox.
func (o *OAuth) AddClient(id, secret, mailbox string) {
	o.mu.Lock()
	o.clients[id] = &oauthClient{secret: secret, mailbox: mailbox}
	o.mu.Unlock()
}

// AddKeyClient registers a client that proves itself with JWTs signed by
// key: an Entra app with a certificate credential (mailbox set), or a
// Google service account (id is its client_email, mailbox "": the JWT's
// sub names the mailbox).
func (o *OAuth) AddKeyClient(id string, key *rsa.PublicKey, mailbox string) {
	o.mu.Lock()
	o.clients[id] = &oauthClient{key: key, mailbox: mailbox}
	o.mu.Unlock()
}

// AddRefreshToken registers a delegated grant of client id.
func (o *OAuth) AddRefreshToken(id, refreshToken string) {
	o.mu.Lock()
	o.refresh[refreshToken] = id
	o.mu.Unlock()
}

// RevokeSecret makes the client's credential fail with code (Entra's
// AADSTS7000222 for an expired secret, say) and ends its tokens.
func (o *OAuth) RevokeSecret(id, code string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.clients[id]; c != nil {
		c.revoked = code
	}
	for t, tok := range o.tokens {
		if tok.client == id {
			delete(o.tokens, t)
		}
	}
}

// SetSecret gives the client a new secret and lifts a revocation.
func (o *OAuth) SetSecret(id, secret string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.clients[id]; c != nil {
		c.secret, c.revoked = secret, ""
	}
}

// ExpireAll ends every token issued so far.
func (o *OAuth) ExpireAll() {
	o.mu.Lock()
	o.tokens = map[string]oauthToken{}
	o.mu.Unlock()
}

// Fail makes every token request fail with f until Fail(nil).
func (o *OAuth) Fail(f *OAuthFailure) {
	o.mu.Lock()
	o.fail = f
	o.mu.Unlock()
}

// Issued counts the tokens issued.
func (o *OAuth) Issued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.issued
}

// Requests returns the form of every token request, in order (tests check
// what a provider preset sends).
func (o *OAuth) Requests() []url.Values {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]url.Values(nil), o.requests...)
}

// Check reports the mailbox token opens and when it expires; ok is false
// for an unknown, revoked or expired token.
func (o *OAuth) Check(token string) (user string, expiry time.Time, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, found := o.tokens[token]
	if !found || !time.Now().Before(t.expiry) {
		return "", time.Time{}, false
	}
	return t.user, t.expiry, true
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (o *OAuth) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, r.PostForm)
	if f := o.fail; f != nil {
		oauthError(w, f.Status, f.Code, f.Description)
		return
	}
	var clientID, user string
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
		id := r.PostForm.Get("client_id")
		c := o.clients[id]
		if c == nil {
			oauthError(w, 400, "unauthorized_client", "AADSTS700016: Application with identifier '"+id+"' was not found in the directory.")
			return
		}
		if c.revoked != "" {
			oauthError(w, 401, "invalid_client", c.revoked+": The provided client secret keys for app '"+id+"' are expired.")
			return
		}
		switch {
		case r.PostForm.Get("client_assertion") != "":
			if c.key == nil || r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
				oauthError(w, 401, "invalid_client", "AADSTS700027: Client assertion contains an invalid signature.")
				return
			}
			if _, err := o.verifyJWT(r.PostForm.Get("client_assertion"), c.key, id); err != nil {
				oauthError(w, 401, "invalid_client", "AADSTS700027: Client assertion failed signature validation: "+err.Error())
				return
			}
		case c.secret == "" || r.PostForm.Get("client_secret") != c.secret:
			oauthError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
		clientID, user = id, c.mailbox
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		assertion := r.PostForm.Get("assertion")
		claims, err := o.peekJWT(assertion)
		if err != nil {
			oauthError(w, 400, "invalid_grant", "Invalid JWT: "+err.Error())
			return
		}
		c := o.clients[claims.Iss]
		if c == nil || c.key == nil {
			oauthError(w, 401, "invalid_client", "The OAuth client was not found.")
			return
		}
		if c.revoked != "" {
			oauthError(w, 400, "invalid_grant", "Invalid JWT Signature.")
			return
		}
		if _, err := o.verifyJWT(assertion, c.key, ""); err != nil {
			oauthError(w, 400, "invalid_grant", "Invalid JWT Signature.")
			return
		}
		if claims.Sub == "" {
			oauthError(w, 400, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method.")
			return
		}
		clientID, user = claims.Iss, claims.Sub
	case "urn:ietf:params:oauth:grant-type:device_code":
		// The person signed in and consented at once: the grant gives
		// an access token and a refresh token for later.
		id, ok := o.devices[r.PostForm.Get("device_code")]
		if !ok {
			oauthError(w, 400, "expired_token", "AADSTS70019: Verification code expired.")
			return
		}
		delete(o.devices, r.PostForm.Get("device_code"))
		rt := "rt-" + randomHex()
		o.refresh[rt] = id
		o.issueLocked(w, id, o.clients[id].mailbox, rt)
		return
	case "refresh_token":
		id, ok := o.refresh[r.PostForm.Get("refresh_token")]
		c := o.clients[id]
		if !ok || c == nil {
			oauthError(w, 400, "invalid_grant", "AADSTS50173: The provided grant has expired due to it being revoked.")
			return
		}
		if c.secret != "" && r.PostForm.Get("client_secret") != c.secret {
			oauthError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
		clientID, user = id, c.mailbox
	default:
		oauthError(w, 400, "unsupported_grant_type", "grant_type "+grant+" is not supported")
		return
	}
	o.issueLocked(w, clientID, user, "")
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// issueLocked answers with a new access token (and refreshToken, if set).
func (o *OAuth) issueLocked(w http.ResponseWriter, clientID, user, refreshToken string) {
	tok := "tok-" + randomHex()
	o.tokens[tok] = oauthToken{client: clientID, user: user, expiry: time.Now().Add(o.ttl)}
	o.issued++
	resp := map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(o.ttl / time.Second)}
	if refreshToken != "" {
		resp["refresh_token"] = refreshToken
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// deviceCode starts a device authorization (RFC 8628 §3.1).
func (o *OAuth) deviceCode(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, r.PostForm)
	id := r.PostForm.Get("client_id")
	if o.clients[id] == nil {
		oauthError(w, 400, "unauthorized_client", "AADSTS700016: Application with identifier '"+id+"' was not found in the directory.")
		return
	}
	code := "dc-" + randomHex()
	o.devices[code] = id
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code": code, "user_code": "DESKD-1234", "verification_uri": o.URL + "/device",
		"expires_in": 900, "interval": 1,
	})
}

// introspect answers RFC 7662 introspection: POST with token=..., or a
// GET with the token in the Authorization header (Dovecot's "auth" mode)
// or appended to the URL ("get" mode).
func (o *OAuth) introspect(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	token := r.Form.Get("token")
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token == "" {
		token = strings.TrimPrefix(r.URL.Path, "/introspect/")
	}
	w.Header().Set("Content-Type", "application/json")
	user, exp, ok := o.Check(token)
	if !ok {
		_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"active": true, "email": user, "username": user, "sub": user,
		"exp": exp.Unix(), "token_type": "Bearer",
	})
}

type jwtClaims struct {
	Iss, Sub, Aud, Scope string
	Exp                  int64
}

func (o *OAuth) peekJWT(jwt string) (jwtClaims, error) {
	var c jwtClaims
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return c, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(raw, &c)
}

// verifyJWT checks an RS256 JWT's signature, its expiry, that aud is this
// server's token URL, and (when iss is set) its issuer.
func (o *OAuth) verifyJWT(jwt string, key *rsa.PublicKey, iss string) (jwtClaims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return jwtClaims{}, errors.New("not a JWT")
	}
	var header struct{ Alg string }
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil || header.Alg != "RS256" {
		return jwtClaims{}, errors.New("header is not RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return jwtClaims{}, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return jwtClaims{}, errors.New("bad signature")
	}
	c, err := o.peekJWT(jwt)
	if err != nil {
		return c, err
	}
	if c.Aud != o.TokenURL {
		return c, fmt.Errorf("aud %q is not %q", c.Aud, o.TokenURL)
	}
	if iss != "" && c.Iss != iss {
		return c, fmt.Errorf("iss %q is not %q", c.Iss, iss)
	}
	if time.Now().Unix() >= c.Exp {
		return c, errors.New("expired")
	}
	return c, nil
}
