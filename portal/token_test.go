package portal

import (
	"strings"
	"testing"
	"time"
)

func TestLinkRoundTrip(t *testing.T) {
	k := deriveKeys([]byte("0123456789abcdef0123456789abcdef"))
	at := time.Unix(1_780_000_000, 0)
	tok := k.signLink(42, "Bob@Acme.example", at)
	l, err := k.parseLink(tok)
	if err != nil || l.CaseID != 42 || l.Email != "bob@acme.example" || !l.Issued.Equal(at) {
		t.Fatalf("round trip: %+v %v", l, err)
	}
	if tok2 := k.signLink(42, "bob@acme.example", at); tok2 == tok {
		t.Errorf("two links of one case and address are equal: no random part")
	}
	other := deriveKeys([]byte("another key, another store......"))
	if _, err := other.parseLink(tok); err == nil {
		t.Errorf("a link of another store's key passed")
	}
	// A CSRF token is not a link, a link is not a CSRF token.
	if _, err := k.parseLink(k.csrfToken("x")); err == nil {
		t.Errorf("csrf token parsed as a link")
	}
	for _, bad := range []string{"", ".", "a.b", tok + "x", strings.Replace(tok, ".", "", 1), "." + tok} {
		if _, err := k.parseLink(bad); err == nil {
			t.Errorf("parseLink(%q) passed", bad)
		}
	}
}

// FuzzParseLink: the link and token parsers never panic, and nothing but
// a token signed with the key passes.
func FuzzParseLink(f *testing.F) {
	k := deriveKeys([]byte("0123456789abcdef0123456789abcdef"))
	f.Add(k.signLink(1, "a@b.example", time.Unix(0, 0)))
	f.Add("AQAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAGFAYi5leGFtcGxl.AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("..")
	f.Add(randomToken())
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := k.parseLink(s); err == nil {
			// Only a genuine token verifies; re-signing its payload must
			// give the same MAC.
			p, m, _ := strings.Cut(s, ".")
			raw, _ := b64.DecodeString(p)
			if got := b64.EncodeToString(mac(k.link, raw)[:linkMACLen]); got != m || l.CaseID == 0 {
				t.Fatalf("forged link passed: %q", s)
			}
		}
		validRandomToken(s)
		k.checkCSRF("binding", s)
		safeFilename(s)
		contentDisposition(s)
	})
}
