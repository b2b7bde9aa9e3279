package oauth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// assertion signs the JWT client assertions of Entra certificate
// credentials (RFC 7523 §2.2; Microsoft identity platform "certificate
// credentials"): RS256, the certificate's thumbprints in x5t and x5t#S256,
// aud the token endpoint, iss and sub the client ID.
type assertion struct {
	clientID, audience string
	key                *rsa.PrivateKey
	x5t, x5tS256       string
	notAfter           time.Time
}

// AssertionLifetime is how long one client assertion is valid.
const AssertionLifetime = 10 * time.Minute

func newAssertion(clientID, audience string, certPEM, keyPEM []byte) (*assertion, error) {
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("private key file: the key does not belong to the certificate")
	}
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // a thumbprint, not a signature
	s256 := sha256.Sum256(cert.Raw)
	return &assertion{
		clientID: clientID, audience: audience, key: key, notAfter: cert.NotAfter,
		x5t:     base64.RawURLEncoding.EncodeToString(s1[:]),
		x5tS256: base64.RawURLEncoding.EncodeToString(s256[:]),
	}, nil
}

func parseRSAKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("private key file: no PEM PRIVATE KEY block")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("private key file: %w", err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("private key file: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("private key file: Entra certificate credentials need an RSA key")
			}
			return rk, nil
		}
	}
}

func (a *assertion) sign(now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": a.x5t, "x5t#S256": a.x5tS256})
	claims, _ := json.Marshal(map[string]any{
		"aud": a.audience, "iss": a.clientID, "sub": a.clientID,
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(AssertionLifetime).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
