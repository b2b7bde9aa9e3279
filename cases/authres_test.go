package cases

import (
	"strings"
	"testing"
)

// Real-world Authentication-Results values (addresses and keys changed).
const (
	arGmail = `mx.google.com;
       dkim=pass header.i=@example.com header.s=20230601 header.b=AbCdEf12;
       spf=pass (google.com: domain of jan@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=jan@example.com;
       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com`
	arGmailSPFOnly = "mx.google.com;\r\n       spf=pass (google.com: domain of jan@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=jan@example.com"
	// Microsoft 365 writes no authserv-id at all.
	arM365 = `spf=pass (sender IP is 209.85.128.41)
 smtp.mailfrom=example.com; dkim=pass (signature was verified)
 header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass
 reason=100`
	// OpenDKIM puts a ';' inside its comment.
	arOpenDKIM   = `mail.deskd.test; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.a=rsa-sha256 header.s=mail header.b=Xyz12345; dkim-atps=neutral`
	arOpenDMARC  = `mail.deskd.test; dmarc=pass (p=reject dis=none) header.from=example.com`
	arPolicydSPF = `mail.deskd.test; spf=pass (sender SPF authorized) smtp.mailfrom=example.com (client-ip=192.0.2.1; helo=mail.example.com; envelope-from=jan@example.com; receiver=<UNKNOWN>)`
	arRspamd     = `mail.deskd.test;
	dkim=pass header.d=example.com header.s=dkim header.b=abcDEF;
	dmarc=pass (policy=reject) header.from=example.com;
	spf=pass (mail.deskd.test: domain of "jan@example.com" designates 192.0.2.1 as permitted sender) smtp.mailfrom=jan@example.com`
	arRspamdFail = `mail.deskd.test;
	dkim=fail ("headers rsa verify failed") header.d=example.com header.s=dkim header.b=abcDEF;
	dmarc=fail reason="SPF not aligned (relaxed), DKIM not aligned (relaxed)" header.from=example.com (policy=reject);
	spf=softfail (mail.deskd.test: domain of "x@evil.test" does not designate 198.51.100.7 as permitted sender) smtp.mailfrom=x@evil.test`
)

func TestStaffAuthenticated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results []string
		trusted string
		from    string
		ok      bool
		why     string // substring of why
	}{
		{"gmail", []string{arGmail}, "mx.google.com", "example.com", true, "dkim=pass header.i=example.com"},
		{"gmail authserv-id case", []string{arGmail}, "MX.Google.COM", "Example.COM", true, "pass"},
		{"gmail spf only", []string{arGmailSPFOnly}, "mx.google.com", "example.com", true, "spf=pass smtp.mailfrom=example.com"},
		{"gmail other trusted id", []string{arGmail}, "mail.deskd.test", "example.com", false, "from mx.google.com, not the trusted mail.deskd.test"},
		{"m365 has no authserv-id", []string{arM365}, "spf=pass", "example.com", false, "no authserv-id"},
		{"opendkim comment with ;", []string{arOpenDKIM}, "mail.deskd.test", "example.com", true, "dkim=pass header.d=example.com"},
		{"opendmarc", []string{arOpenDMARC, arOpenDKIM}, "mail.deskd.test", "example.com", true, "dmarc=pass"},
		{"policyd-spf", []string{arPolicydSPF}, "mail.deskd.test", "example.com", true, "spf=pass"},
		{"rspamd", []string{arRspamd}, "mail.deskd.test", "example.com", true, "pass"},
		{"rspamd fail", []string{arRspamdFail}, "mail.deskd.test", "example.com", false,
			"no aligned pass: dkim=fail header.d=example.com, dmarc=fail header.from=example.com, spf=softfail smtp.mailfrom=evil.test"},
		{"version 1", []string{"mail.deskd.test 1; dkim=pass header.d=example.com"}, "mail.deskd.test", "example.com", true, "dkim=pass"},
		{"comment after authserv-id", []string{"mail.deskd.test (Postfix); dkim=pass header.d=example.com"}, "mail.deskd.test", "example.com", true, "dkim=pass"},

		// Alignment (RFC 7489 §3.1, relaxed).
		{"subdomain of the passing domain", []string{"a.test; dkim=pass header.d=example.com"}, "a.test", "mail.example.com", true, "dkim=pass"},
		{"passing domain is a subdomain", []string{"a.test; dkim=pass header.d=mail.example.com"}, "a.test", "example.com", false, "not aligned"},
		{"look-alike suffix", []string{"a.test; dkim=pass header.d=ample.com"}, "a.test", "example.com", false, "not aligned"},
		{"public suffix", []string{"a.test; dkim=pass header.d=com"}, "a.test", "example.com", false, "not aligned"},
		{"pass for another domain", []string{"a.test; dkim=pass header.d=mailchimp.test; spf=pass smtp.mailfrom=bounce@mailchimp.test"}, "a.test", "example.com", false, "not aligned"},
		{"one of several dkim passes", []string{"a.test; dkim=pass header.d=mailchimp.test; dkim=pass header.d=example.com"}, "a.test", "example.com", true, "dkim=pass header.d=example.com"},
		{"header.i when no header.d", []string{"a.test; dkim=pass header.i=@Example.COM"}, "a.test", "example.com", true, "dkim=pass header.i=example.com"},
		{"header.d wins over header.i", []string{"a.test; dkim=pass header.d=evil.test header.i=@example.com"}, "a.test", "example.com", false, "not aligned"},
		{"trailing dot", []string{"a.test; dmarc=pass header.from=example.com."}, "a.test", "example.com", true, "dmarc=pass"},
		{"spf helo only", []string{"a.test; spf=pass smtp.helo=mail.example.com"}, "a.test", "example.com", false, "smtp.helo only"},
		{"spf mailfrom domain only", []string{"a.test; spf=pass smtp.mailfrom=example.com"}, "a.test", "example.com", true, "spf=pass"},
		{"dmarc without header.from", []string{"a.test; dmarc=pass"}, "a.test", "example.com", false, "dmarc=pass without header.from"},
		{"PASS upper case", []string{"a.test; DKIM=PASS header.d=example.com"}, "a.test", "example.com", true, "dkim=pass"},
		{"quoted mailfrom", []string{`a.test; spf=pass smtp.mailfrom="jan jansen"@example.com`}, "a.test", "example.com", true, "spf=pass"},
		{"from given as address", []string{"a.test; dkim=pass header.d=example.com"}, "a.test", "jan@example.com", true, "dkim=pass"},

		// Failures.
		{"dkim fail", []string{"a.test; dkim=fail header.d=example.com"}, "a.test", "example.com", false, "dkim=fail header.d=example.com"},
		{"spf softfail", []string{"a.test; spf=softfail smtp.mailfrom=example.com"}, "a.test", "example.com", false, "spf=softfail smtp.mailfrom=example.com"},
		{"none", []string{"a.test; none"}, "a.test", "example.com", false, "no dkim, spf or dmarc result"},
		{"only iprev", []string{"a.test; iprev=pass policy.iprev=192.0.2.1; auth=pass smtp.auth=jan"}, "a.test", "example.com", false, "no dkim, spf or dmarc result"},
		{"no header", nil, "a.test", "example.com", false, "no Authentication-Results header"},
		{"empty header", []string{""}, "a.test", "example.com", false, "no authserv-id"},
		{"no trusted id", []string{arGmail}, "", "example.com", false, "no trusted authserv-id configured"},
		{"blank trusted id", []string{arGmail}, "  ", "example.com", false, "no trusted authserv-id configured"},
		{"no from domain", []string{arGmail}, "mx.google.com", "", false, "no From domain"},
		{"unterminated comment", []string{"a.test; dkim=pass (oops header.d=example.com"}, "a.test", "example.com", false, "unparsable"},
		{"unterminated quote", []string{`a.test; dkim=pass header.d="example.com`}, "a.test", "example.com", false, "unparsable"},
		{"bad version", []string{"a.test 2; dkim=pass header.d=example.com"}, "a.test", "example.com", false, "unparsable"},
		{"malformed result", []string{"a.test; dkim"}, "a.test", "example.com", false, "unparsable"},

		// Forgeries: only the topmost header counts (RFC 8601 §5).
		{"forged lower pass", []string{"a.test; dkim=fail header.d=example.com", "a.test; dkim=pass header.d=example.com"}, "a.test", "example.com", false, "no aligned pass: dkim=fail header.d=example.com"},
		{"forged lower, topmost from elsewhere", []string{"relay.test; dkim=pass header.d=example.com", "a.test; dkim=pass header.d=example.com"}, "a.test", "example.com", false, "from relay.test"},
		{"pass hidden in a comment", []string{"a.test; dkim=fail (dkim=pass header.d=example.com) header.d=evil.test"}, "a.test", "example.com", false, "no aligned pass: dkim=fail header.d=evil.test"},
		{"pass hidden in a quoted local part", []string{`a.test; spf=pass smtp.mailfrom="x; dkim=pass header.d=example.com"@evil.test`}, "a.test", "example.com", false, "not aligned"},
		{"odd characters are quoted in why", []string{"a.test; dkim=fail header.d=ex\x1bample.com"}, "a.test", "example.com", false, `header.d="ex\x1bample.com"`},
		{"comment hides nothing", []string{`a.test; spf=pass smtp.mailfrom=x@evil.test (smtp.mailfrom=example.com)`}, "a.test", "example.com", false, "not aligned"},
		{"pass for the authserv-id's own domain", []string{"example.com; dkim=pass header.d=example.com"}, "a.test", "example.com", false, "not the trusted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := StaffAuthenticated(tc.results, tc.trusted, tc.from)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("StaffAuthenticated(%q, %q, %q) = %v, %q; want %v, ...%q...", tc.results, tc.trusted, tc.from, ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestAuthAligned(t *testing.T) {
	for _, tc := range []struct {
		passed, from string
		want         bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "a.b.example.com", true},
		{"example.com", "badexample.com", false},
		{"a.example.com", "example.com", false},
		{"com", "example.com", false},
		{"", "example.com", false},
		{".com", "example.com", false},
	} {
		if got := authAligned(tc.passed, tc.from); got != tc.want {
			t.Errorf("authAligned(%q, %q) = %v, want %v", tc.passed, tc.from, got, tc.want)
		}
	}
}

// FuzzStaffAuthenticated: never panics; a true answer needs a trusted,
// matching authserv-id and names a pass; a false one always says why;
// headers below the topmost one never change the answer.
func FuzzStaffAuthenticated(f *testing.F) {
	for _, v := range []string{arGmail, arGmailSPFOnly, arM365, arOpenDKIM, arOpenDMARC, arPolicydSPF, arRspamd, arRspamdFail,
		"a.test; none", "a.test; dkim=pass (x; y) header.d=\"ex\\\"ample.com\"", "(", "\"", ";;;", "a.test; arc=pass header.oldest-pass=0"} {
		f.Add(v, "a.test; dkim=pass header.d=example.com", "mail.deskd.test", "example.com")
	}
	f.Fuzz(func(t *testing.T, top, lower, trusted, from string) {
		ok, why := StaffAuthenticated([]string{top}, trusted, from)
		if why == "" {
			t.Fatalf("StaffAuthenticated(%q, %q, %q): empty why", top, trusted, from)
		}
		if ok {
			if strings.TrimSpace(trusted) == "" || !strings.Contains(why, "pass") {
				t.Fatalf("StaffAuthenticated(%q, %q, %q) = true, %q", top, trusted, from, why)
			}
			if !strings.Contains(lowerASCII(top), lowerASCII(strings.TrimSpace(trusted))) {
				t.Fatalf("StaffAuthenticated(%q, %q, %q) passed without the trusted id", top, trusted, from)
			}
		}
		ok2, why2 := StaffAuthenticated([]string{top, lower}, trusted, from)
		if ok2 != ok || why2 != why {
			t.Fatalf("a lower header changed the answer: %v %q -> %v %q", ok, why, ok2, why2)
		}
	})
}
