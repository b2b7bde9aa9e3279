package mail

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// deskd's own Message-IDs carry the case they belong to, so a reply that
// quotes one in In-Reply-To/References (RFC 5322 §3.6.4) threads into its case
// even when the customer changed the subject. The id is signed: a stranger who
// writes "In-Reply-To: <deskd.12....>" must not be able to attach mail to case
// 12. The layout, without angle brackets, is
//
//	deskd.<case id>.<random: 12 hex>.<mac: 16 hex>@<domain>
//
// where mac is the first 8 bytes of HMAC-SHA256(key, "<case id>.<random>").
// The domain is not signed: it is where the id was minted, not what it means,
// and an operator may change it without orphaning existing threads.

const (
	msgIDPrefix   = "deskd."
	msgIDRandLen  = 6 // bytes, 12 hex digits: uniqueness comes from it and the case id
	msgIDMACLen   = 8 // bytes, 16 hex digits: 64 bits is plenty against online guessing
	invalidDomain = "invalid"
)

// NewMessageID returns a fresh Message-ID for a mail of case caseID, in
// normalised form (no angle brackets). key must not be empty: an id signed
// with an empty key is forgeable, so NewMessageID panics rather than hand one
// out (config validation rejects an empty key long before this). A domain that
// is not a plain dot-atom is replaced by "invalid" (RFC 2606) so the id always
// stays syntactically valid.
func NewMessageID(key []byte, caseID uint64, domain string) string {
	if len(key) == 0 {
		panic("mail: NewMessageID with an empty key")
	}
	var rnd [msgIDRandLen]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	id := strconv.FormatUint(caseID, 10)
	r := hex.EncodeToString(rnd[:])
	mac := msgIDMAC(key, id+"."+r)
	domain = strings.ToLower(strings.TrimSpace(domain))
	if !isHostDotAtom(domain) {
		domain = invalidDomain
	}
	return msgIDPrefix + id + "." + r + "." + hex.EncodeToString(mac) + "@" + domain
}

// VerifyMessageID reports the case id carried by id when id is one of
// deskd's own Message-IDs with a valid MAC under key, and 0, false otherwise.
// id may carry angle brackets and surrounding white space. Case id 0 is never
// valid (cases count from 1).
func VerifyMessageID(key []byte, id string) (uint64, bool) {
	if len(key) == 0 {
		return 0, false
	}
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	local, domain, ok := strings.Cut(id, "@")
	if !ok || domain == "" {
		return 0, false
	}
	rest, ok := strings.CutPrefix(local, msgIDPrefix)
	if !ok {
		return 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return 0, false
	}
	caseStr, rnd, macHex := parts[0], parts[1], parts[2]
	caseID, err := strconv.ParseUint(caseStr, 10, 64)
	// Only the canonical decimal form is ours: "012" or "+12" never came
	// from NewMessageID.
	if err != nil || caseID == 0 || strconv.FormatUint(caseID, 10) != caseStr {
		return 0, false
	}
	if len(rnd) != 2*msgIDRandLen || len(macHex) != 2*msgIDMACLen {
		return 0, false
	}
	if _, err := hex.DecodeString(rnd); err != nil {
		return 0, false
	}
	got, err := hex.DecodeString(macHex)
	if err != nil {
		return 0, false
	}
	// Message-IDs are compared case-sensitively (RFC 5322 §3.6.4), so the
	// MAC is checked over the text exactly as it came back.
	want := msgIDMAC(key, caseStr+"."+rnd)
	if !hmac.Equal(got, want) { // constant time
		return 0, false
	}
	return caseID, true
}

func msgIDMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)[:msgIDMACLen]
}

// isHostDotAtom reports whether s is a dot-atom (RFC 5322 §3.2.3) of letters,
// digits and hyphens, the shape of a host name.
func isHostDotAtom(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
