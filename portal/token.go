package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// A case link ("follow your case") is a capability: whoever holds it may
// see one case as one address, without signing in. It carries no number
// anyone could guess or edit: the payload (version, case id, issue time,
// 8 random bytes, address) is signed with a key derived from the store's
// HMAC key, and any change to it fails the check. It is revoked per case
// and address (store.RevokeCaseLinks): links issued before the revocation
// stop working. The issue time is second-granular so that a revocation
// and a link issued in the same second are ordered conservatively.
//
//	token = base64url(payload) "." base64url(HMAC-SHA256(k, payload)[:16])
//	payload = 0x01, uint64 case id, int64 unix seconds, 8 random bytes, address

const (
	linkVersion   = 1
	linkFixed     = 1 + 8 + 8 + 8
	linkMACLen    = 16
	maxAddressLen = 254 // RFC 5321 §4.5.3.1.3 path limit, less the brackets
)

// Strict: a token has one spelling (no slack in the last character's
// unused bits), so an edited token never decodes to the same bytes.
var b64 = base64.RawURLEncoding.Strict()

// CaseLink is a verified case link.
type CaseLink struct {
	CaseID uint64
	Email  string
	Issued time.Time
}

// keys are the portal's keys, each derived from the store's HMAC key with
// its own label, so that a token of one kind can never pass as another.
type keys struct {
	link, csrf, reply []byte
}

func deriveKeys(master []byte) keys {
	d := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("deskd portal " + label))
		return m.Sum(nil)
	}
	return keys{link: d("case link v1"), csrf: d("csrf v1"), reply: d("reply message-id v1")}
}

func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// signLink makes the case link token of caseID for email, issued at.
func (k keys) signLink(caseID uint64, email string, issued time.Time) string {
	p := make([]byte, linkFixed, linkFixed+len(email))
	p[0] = linkVersion
	binary.BigEndian.PutUint64(p[1:], caseID)
	binary.BigEndian.PutUint64(p[9:], uint64(issued.Unix()))
	rand.Read(p[17:25])
	p = append(p, strings.ToLower(email)...)
	return b64.EncodeToString(p) + "." + b64.EncodeToString(mac(k.link, p)[:linkMACLen])
}

var errBadToken = errors.New("bad token")

// parseLink checks a case link token's signature and returns what it
// grants. Every malformed or tampered token gives errBadToken and nothing
// else, so a caller cannot tell why.
func (k keys) parseLink(tok string) (CaseLink, error) {
	if len(tok) > 2*(linkFixed+maxAddressLen+linkMACLen) {
		return CaseLink{}, errBadToken
	}
	ps, ms, ok := strings.Cut(tok, ".")
	if !ok {
		return CaseLink{}, errBadToken
	}
	p, err1 := b64.DecodeString(ps)
	m, err2 := b64.DecodeString(ms)
	if err1 != nil || err2 != nil || len(m) != linkMACLen || len(p) <= linkFixed || len(p) > linkFixed+maxAddressLen {
		return CaseLink{}, errBadToken
	}
	if !hmac.Equal(m, mac(k.link, p)[:linkMACLen]) || p[0] != linkVersion {
		return CaseLink{}, errBadToken
	}
	l := CaseLink{
		CaseID: binary.BigEndian.Uint64(p[1:]),
		Issued: time.Unix(int64(binary.BigEndian.Uint64(p[9:])), 0),
		Email:  string(p[linkFixed:]),
	}
	if l.CaseID == 0 || !strings.Contains(l.Email, "@") {
		return CaseLink{}, errBadToken
	}
	return l, nil
}

// csrfToken is the form token bound to a browser: to its session token
// when signed in, else to its visitor cookie.
func (k keys) csrfToken(binding string) string {
	return b64.EncodeToString(mac(k.csrf, []byte(binding))[:16])
}

func (k keys) checkCSRF(binding, tok string) bool {
	if binding == "" || tok == "" {
		return false
	}
	return hmac.Equal([]byte(tok), []byte(k.csrfToken(binding)))
}

// randomToken is 32 random bytes, base64url: sessions and sign-in links.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return b64.EncodeToString(b)
}

// validRandomToken reports whether s has the shape randomToken gives, so
// that junk never reaches the store.
func validRandomToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := b64.DecodeString(s)
	return err == nil
}
