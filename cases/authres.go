package cases

// Staff mail steers cases (keywords, relays to customers), so a forged
// From: of a staff address must not be enough. deskd does no DKIM or SPF
// checks of its own: it reads the verdict the receiving mail server wrote
// into the Authentication-Results header (RFC 8601) and trusts only the
// header that server added.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-msgauth/authres"
)

// StaffAuthenticated says whether the topmost Authentication-Results header (RFC 8601 §5: the one
// the receiving server added; a sender can write any header further down) comes from the trusted
// authserv-id and shows DKIM, SPF or DMARC pass for fromDomain. why explains a false answer (for the
// "suspicious" log line) or names what passed.
//
// results are the raw header values, topmost first (as Inbound.AuthResults);
// only results[0] is read. This is sound only when the receiving server always
// adds its own header (and, as RFC 8601 §5 asks, removes or renames any that
// arrive carrying its authserv-id): otherwise a sender's forged header would
// be topmost. Where several filters each add a header (policyd-spf, OpenDKIM,
// OpenDMARC), only the last one added counts.
//
// A pass counts when its domain is aligned with fromDomain: equal, or
// fromDomain is a subdomain of it (relaxed alignment, RFC 7489 §3.1). The
// passing domain must contain a dot, so a pass for a bare suffix such as
// "nl" never aligns. DKIM uses header.d (header.i's domain when there is no
// header.d), SPF smtp.mailfrom (smtp.helo alone is not enough: it says
// nothing about the From domain), DMARC header.from.
//
// An empty trustedAuthservID gives false, "no trusted authserv-id
// configured": the caller decides whether to check at all. A header without
// an authserv-id (Microsoft 365 writes "spf=pass ...; dkim=..." with none)
// cannot be attributed to the trusted server and gives false.
func StaffAuthenticated(results []string, trustedAuthservID, fromDomain string) (ok bool, why string) {
	trusted := strings.TrimSpace(trustedAuthservID)
	if trusted == "" {
		return false, "no trusted authserv-id configured"
	}
	from := authDomain(fromDomain)
	if from == "" {
		return false, "no From domain to authenticate"
	}
	if len(results) == 0 {
		return false, "no Authentication-Results header"
	}
	v, err := authUncomment(results[0])
	if err != nil {
		return false, "topmost Authentication-Results unparsable: " + err.Error()
	}
	head, _, _ := strings.Cut(v, ";")
	if head = strings.TrimSpace(head); head == "" || strings.Contains(head, "=") {
		return false, "topmost Authentication-Results has no authserv-id"
	}
	id, res, err := authres.Parse(v)
	if err != nil {
		return false, "topmost Authentication-Results unparsable: " + err.Error()
	}
	if lowerASCII(id) != lowerASCII(trusted) {
		return false, fmt.Sprintf("topmost Authentication-Results is from %s, not the trusted %s", authQuote(id), authQuote(trusted))
	}

	// Check every method; a pass anywhere wins, else the reasons of all
	// the relevant results tell the log reader what was seen.
	var seen []string
	for _, r := range res {
		var method string
		var value authres.ResultValue
		var domain, param string
		switch r := r.(type) {
		case *authres.DMARCResult:
			method, value, param, domain = "dmarc", r.Value, "header.from", authDomain(r.From)
		case *authres.DKIMResult:
			method, value, param, domain = "dkim", r.Value, "header.d", authDomain(r.Domain)
			if domain == "" {
				param, domain = "header.i", authDomain(r.Identifier)
			}
		case *authres.SPFResult:
			method, value, param, domain = "spf", r.Value, "smtp.mailfrom", authDomain(r.From)
			if domain == "" && r.Helo != "" && value == authres.ResultPass {
				seen = append(seen, "spf=pass for smtp.helo only")
				continue
			}
		default:
			continue
		}
		desc := method + "=" + authQuote(string(value))
		if domain != "" {
			desc += " " + param + "=" + authQuote(domain)
		}
		if value == authres.ResultPass && authAligned(domain, from) {
			return true, desc
		}
		switch {
		case value == authres.ResultPass && domain == "":
			desc += " without " + param
		case value == authres.ResultPass:
			desc += " (not aligned with " + authQuote(from) + ")"
		}
		seen = append(seen, desc)
	}
	if len(seen) == 0 {
		return false, "topmost Authentication-Results has no dkim, spf or dmarc result"
	}
	return false, "no aligned pass: " + strings.Join(seen, ", ")
}

// authAligned reports relaxed alignment (RFC 7489 §3.1) of a passing domain
// with the From domain, refusing a bare public suffix ("com", "nl").
func authAligned(passed, from string) bool {
	if !strings.Contains(passed, ".") {
		return false
	}
	return from == passed || strings.HasSuffix(from, "."+passed)
}

// authDomain returns the lower-cased domain of an address or a domain
// ("a@Example.NL", "@example.nl", "<a@example.nl>", "example.nl."), or "".
func authDomain(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "<>")
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if strings.HasPrefix(s, ".") {
		return ""
	}
	return s
}

// authQuote makes a header-derived value safe for a log line: a plain
// token (a domain, a result) as it is, anything else quoted and capped, as
// a sender may have written it.
func authQuote(s string) string {
	const max = 100
	plain := s != "" && len(s) <= max
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_", c) >= 0
	}
	if plain {
		return s
	}
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// authUncomment prepares a header value for authres.Parse, whose split on ';'
// and on white space knows neither comments nor quoted strings (RFC 8601
// §2.2 allows both). OpenDKIM writes "dkim=pass (2048-bit key; unprotected)"
// and a quoted local part may hold anything, so: unfold the lines, drop
// comments (nested, with quoted-pairs), and replace each quoted string by its
// content with white space, ';' and control characters turned into '_' so it
// stays one token. An unterminated comment or quoted string is an error:
// deskd does not guess what the server meant.
func authUncomment(v string) (string, error) {
	var b strings.Builder
	b.Grow(len(v))
	depth := 0
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			switch {
			case c == '\\' && i+1 < len(v):
				i++
				b.WriteByte(authTokenByte(v[i]))
			case c == '"':
				quoted = false
			default:
				b.WriteByte(authTokenByte(c))
			}
		case depth > 0:
			switch c {
			case '\\':
				i++ // quoted-pair: skip the escaped byte
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				b.WriteByte(' ')
			}
		case c == '(':
			depth = 1
		case c == '"':
			quoted = true
		case c == '\r' || c == '\n':
			b.WriteByte(' ') // unfold (RFC 5322 §2.2.3)
		default:
			b.WriteByte(c)
		}
	}
	switch {
	case depth > 0:
		return "", errors.New("unterminated comment")
	case quoted:
		return "", errors.New("unterminated quoted string")
	}
	return b.String(), nil
}

// authTokenByte keeps a quoted-string byte inside one authres token.
func authTokenByte(c byte) byte {
	if c <= ' ' || c == ';' || c == 0x7f {
		return '_'
	}
	return c
}
