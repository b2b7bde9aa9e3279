package mail

import (
	"bufio"
	"bytes"
	"deskd/cases"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

func FuzzParse(f *testing.F) {
	// fuzzSeeds are small messages that reach the parser's branches: charsets,
	// encodings, multiparts (good and broken), reports, HTML, odd headers.
	fuzzSeeds := []string{
		"From: a@b.nl\r\nSubject: hi\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n",
		"From: =?iso-8859-1?Q?Jos=E9?= <j@x>\nSubject: =?utf-8?Q?Hi=0D=0ABcc:_evil@x?=\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n=80 caf=E9=\n",
		"From: a@b\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html\n\n<p>html<br><a href=\"https://x\">x</a></p>\n--b--\n",
		"From: a@b\nContent-Type: multipart/mixed; boundary=\"o\"\n\n--o\nContent-Type: application/pdf; name*=iso-8859-1''caf%E9.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--o\nContent-Type: message/rfc822\n\nFrom: c@d\nSubject: inner\n\ninner text\n--o",
		"Return-Path: <>\nFrom: MAILER-DAEMON@x\nSubject: Undelivered Mail Returned to Sender\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\n\n--r\n\ntext\n--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\nAction: failed\nStatus: 5.1.1\n--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <orig@x>\n--r--\n",
		"From someone Mon Jan 1 00:00:00 2024\n   \nX Bad: v\n cont\njunk\nFrom: a@b\nSubject: s\nno blank line\n",
		"Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: x@y\n\ndigest\n--d--\n",
		"Content-Type: text/html; charset=x-unknown\n\n<html><meta charset=koi8-r><body>\xc1\xc2</body></html>",
		"Subject: \xe9\xe0\r\nFrom: \"broken <a@b\r\nReferences: <a@b> junk, c@d <e@f\r\n\r\n",
		"From: a@b\rSubject: cr only\r\rbody\r",
		"Content-Type: multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64\n\n--b\nContent-Transfer-Encoding: base64\n\n!!!not base64===\n--b\nContent-Type: text/plain; format=flowed; charset=\"utf-8\"\n\n\x00\x01\x7f\n",
		"",
		"\r\n\r\n",
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := Parse(raw, testRecv(), ParseOptions{MaxBytes: 1 << 20})
		if in == nil {
			t.Fatal("nil Inbound")
		}
		if err != nil {
			pe, ok := err.(*ParseError)
			if !ok || pe.Reason == "" {
				t.Fatalf("error is not a *ParseError with a reason: %#v", err)
			}
		}
		if in.DedupeKey == "" {
			t.Fatal("empty DedupeKey")
		}
		if !utf8.ValidString(in.Subject) || strings.ContainsAny(in.Subject, "\r\n") {
			t.Fatalf("bad subject %q", in.Subject)
		}
		checkInvariants(t, "fuzz", in, raw, testRecv())
		// Parsing must not depend on anything but the bytes.
		in2, _ := Parse(bytes.Clone(raw), testRecv(), ParseOptions{MaxBytes: 1 << 20})
		if in2.DedupeKey != in.DedupeKey || in2.Subject != in.Subject || in2.Text != in.Text {
			t.Fatal("Parse is not deterministic")
		}
	})
}

func FuzzParseMessageIDList(f *testing.F) {
	for _, s := range []string{
		"<a@x> <b@x>", "<a@x>,<b@x>", "a@x b@x", "<a@x", "(c) <a@x> \"q\" <b@x>", "<1234   @   local(blah)  .machine .example>",
		"<a@x <b@x>", "<<>>", "((((", "\"", "<\xff@x>", "", "<a,00000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := ParseMessageIDList(s)
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || seen[id] {
				t.Fatalf("empty or duplicate id in %q", ids)
			}
			seen[id] = true
			if !utf8.ValidString(id) || strings.ContainsAny(id, "<> \t\r\n") || len(id) > maxMsgIDLen {
				t.Fatalf("bad id %q", id)
			}
			// A normalised id is a fixed point.
			if n := NormalizeMessageID(id); n != id {
				t.Fatalf("NormalizeMessageID(%q) = %q", id, n)
			}
			if n := NormalizeMessageID("<" + id + ">"); n != id {
				t.Fatalf("NormalizeMessageID(<%q>) = %q", id, n)
			}
		}
		if n := NormalizeMessageID(s); n != "" && (!utf8.ValidString(n) || strings.ContainsAny(n, "<> \t\r\n")) {
			t.Fatalf("bad normalised id %q", n)
		}
	})
}

func FuzzDetectAuto(f *testing.F) {
	for _, s := range []string{
		"Auto-Submitted: auto-replied\r\n\r\n",
		"From: MAILER-DAEMON <>\r\nSubject: Returned mail: x\r\n\r\n",
		"Precedence: bulk\r\nList-Id: <x>\r\n\r\n",
		"Return-Path: <>\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\n",
		"From: =?x?Q?=FF?= <no-reply@x>\r\nSubject: =?utf-8?B?QXV0b21hdGljIHJlcGx5Og==?= x\r\n\r\n",
		"X-Failed-Recipients: a@b, c@d\r\n\r\n",
	} {
		f.Add(s)
	}
	detect := func(s string) (textproto.Header, cases.AutoSignals, bool) {
		h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			return h, cases.AutoSignals{}, false
		}
		return h, DetectAuto(gomail.Header{Header: message.Header{Header: h}}), true
	}
	withHeader := func(h textproto.Header, k, v string) cases.AutoSignals {
		h = h.Copy()
		h.Set(k, v)
		return DetectAuto(gomail.Header{Header: message.Header{Header: h}})
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, a, ok := detect(s)
		if !ok {
			return
		}
		if a.Bounce && !a.IsAuto() {
			t.Fatalf("bounce without a reason: %+v", a)
		}
		seen := map[string]bool{}
		for _, r := range a.Reasons {
			if seen[r] {
				t.Fatalf("reason %q twice: %v", r, a.Reasons)
			}
			seen[r] = true
		}
		for _, r := range append(append([]string{}, a.Reasons...), a.BouncedRecipients...) {
			if r == "" || !utf8.ValidString(r) || strings.ContainsAny(r, "\r\n") {
				t.Fatalf("bad reason or recipient %q", r)
			}
		}
		// RFC 3834 §5: Auto-Submitted: auto-replied makes any mail a
		// machine's, whatever else its header says.
		if b := withHeader(h, "Auto-Submitted", "auto-replied"); !b.IsAuto() || !slices.Contains(b.Reasons, "auto-submitted=auto-replied") {
			t.Fatalf("with Auto-Submitted: auto-replied: %+v", b)
		}
		// A list header (RFC 2919) only adds: every signal of the mail
		// stays, and a bounce stays a bounce.
		if !h.Has("List-Id") {
			b := withHeader(h, "List-Id", "<support.example.test>")
			for _, r := range a.Reasons {
				if !slices.Contains(b.Reasons, r) {
					t.Fatalf("adding List-Id lost %q: %v -> %v", r, a.Reasons, b.Reasons)
				}
			}
			if !slices.Contains(b.Reasons, "list-id") || (a.Bounce && !b.Bounce) {
				t.Fatalf("adding List-Id: %+v -> %+v", a, b)
			}
		}
		// Where Parse reads the header as a header (no parse error: a
		// broken one is read its own, recovering way), it sees at least
		// what DetectAuto sees; it adds the body's signals.
		// A bare CR is a line end to Parse (old Mac mail, normalizeEOL) and
		// part of the value to textproto, so the two read different
		// headers there ("Auto-Submitted:\r0").
		if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\r") {
			return
		}
		in, perr := Parse([]byte(s), time.Unix(0, 0), ParseOptions{})
		if perr != nil {
			return
		}
		for _, r := range a.Reasons {
			if !slices.Contains(in.Auto.Reasons, r) {
				t.Fatalf("DetectAuto found %q, Parse did not: %v vs %v", r, a.Reasons, in.Auto.Reasons)
			}
		}
	})
}
