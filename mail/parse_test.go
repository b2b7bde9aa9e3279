package mail

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"deskd/cases"
)

// testRecv() is the INTERNALDATE the tests hand to Parse.
func testRecv() time.Time { return time.Date(2025, 3, 3, 8, 30, 0, 0, time.UTC) }

func mustParse(t *testing.T, raw []byte) *cases.Inbound {
	t.Helper()
	in, err := Parse(raw, testRecv(), ParseOptions{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkInvariants(t, t.Name(), in, raw, testRecv())
	return in
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crlf turns a readable test message into wire format (RFC 5322 §2.1).
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimLeft(s, "\n"), "\n", "\r\n"))
}

func TestParseCharsets(t *testing.T) {
	tests := []struct {
		file        string
		fromName    string
		fromEmail   string
		subject     string
		textHas     []string
		wantProblem bool
	}{
		{
			file:      "dutch-latin1.eml",
			fromName:  "José de Brüijn",
			fromEmail: "jose.debruijn@example.nl", // lower-cased
			subject:   "Storing in het systeem – geïnteresseerd",
			textHas:   []string{"één keer gecrasht", "financiële", "geïnteresseerd", "\nJosé"},
		},
		{
			file:      "dutch-cp1252.eml",
			fromName:  "Anne Müller",
			fromEmail: "anne@klant.example",
			subject:   "Factuur € 125 “dubbel”",
			textHas:   []string{"van € 125 staat “dubbel” in het overzicht – graag"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := mustParse(t, readTestdata(t, tt.file))
			if in.From.Name != tt.fromName || in.From.Email != tt.fromEmail {
				t.Errorf("From = %+v, want %q <%s>", in.From, tt.fromName, tt.fromEmail)
			}
			if in.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", in.Subject, tt.subject)
			}
			for _, s := range tt.textHas {
				if !strings.Contains(in.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, in.Text)
				}
			}
			if strings.Contains(in.Text, "\r") {
				t.Error("Text has CR")
			}
			if len(in.Problems) > 0 {
				t.Errorf("Problems = %q", in.Problems)
			}
			if in.Auto.IsAuto() {
				t.Errorf("person's mail classified as machine: %v", in.Auto.Reasons)
			}
		})
	}
}

func TestParseUndeclaredAndUnknownCharset(t *testing.T) {
	tests := []struct {
		name, raw, text, problem string
	}{
		{
			name: "8-bit without charset is read as windows-1252",
			raw:  "From: a@b.nl\nSubject: x\n\nPrijs: \x80 10, caf\xe9\n",
			text: "Prijs: € 10, café", problem: "read as windows-1252",
		},
		{
			name: "unknown charset still becomes text",
			raw:  "From: a@b.nl\nSubject: x\nContent-Type: text/plain; charset=x-made-up\n\nHallo d\xe9r\n",
			text: "Hallo dér", problem: `unknown charset "x-made-up"`,
		},
		{
			name: "utf-8 mislabelled as us-ascii is kept",
			raw:  "From: a@b.nl\nSubject: x\nContent-Type: text/plain; charset=us-ascii\n\nGroe\xc3\x9fe\n",
			text: "Groeße",
		},
		{
			name: "raw 8-bit subject in the body's charset",
			raw:  "From: a@b.nl\nSubject: Caf\xe9 \xe0 la gare\nContent-Type: text/plain; charset=iso-8859-1\n\nx\n",
			text: "x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustParse(t, []byte(tt.raw))
			if strings.TrimSpace(in.Text) != tt.text {
				t.Errorf("Text = %q, want %q", in.Text, tt.text)
			}
			if tt.problem != "" && !strings.Contains(strings.Join(in.Problems, "|"), tt.problem) {
				t.Errorf("Problems = %q, want one with %q", in.Problems, tt.problem)
			}
			if strings.HasPrefix(tt.name, "raw 8-bit") && in.Subject != "Café à la gare" {
				t.Errorf("Subject = %q", in.Subject)
			}
		})
	}
}

func TestParseSubjectInjection(t *testing.T) {
	tests := []struct{ raw, want string }{
		// RFC 2047 lets an encoded-word carry any octet; a decoded CR LF must
		// not survive into a subject deskd later writes into a reply header.
		{"Subject: =?utf-8?Q?Hi=0D=0ABcc:_evil@x?=\n", "Hi Bcc: evil@x"},
		{"Subject: =?utf-8?B?SGkNCkJjYzogZXZpbEB4?=\n", "Hi Bcc: evil@x"},
		{"Subject: a\x00b\x1bc \u2028 d\n", "a b c d"},
		{"Subject:   Re:\n  folded\n\tsubject  \n", "Re: folded subject"},
		{"Subject: =?unknown-cs?Q?caf=E9?= ok\n", "café ok"},
		{"Subject: =?utf-8?Q?broken\n", "=?utf-8?Q?broken"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in := mustParse(t, []byte("From: a@b.nl\n"+tt.raw+"\nbody\n"))
			if in.Subject != tt.want {
				t.Errorf("Subject = %q, want %q", in.Subject, tt.want)
			}
		})
	}
}

func TestParseHTMLOnly(t *testing.T) {
	in := mustParse(t, readTestdata(t, "html-only.eml"))
	want := "Hallo helpdesk,\n\nDe portal <https://portal.example/x> is traag.\n\n- stap een\n- stap twee\n\nGroet\u00a0Piet & co"
	if in.Text != want {
		t.Errorf("Text =\n%q\nwant\n%q", in.Text, want)
	}
	for _, bad := range []string{"ignored", "color:red", "alert"} {
		if strings.Contains(in.Text, bad) {
			t.Errorf("Text contains %q", bad)
		}
	}
}

func TestParseAttachments(t *testing.T) {
	in := mustParse(t, readTestdata(t, "attachments.eml"))
	if in.Text != "Zie bijlage." {
		t.Errorf("Text = %q, want the plain alternative", in.Text)
	}
	want := []cases.Attachment{
		{Filename: "offerte €.pdf", ContentType: "application/pdf", Size: 19},
		{Filename: "café.txt", ContentType: "text/plain", Size: 4},
		{Filename: "passwd.png", ContentType: "image/png", Size: 8},
	}
	if len(in.Attachments) != len(want) {
		t.Fatalf("Attachments = %+v, want %+v", in.Attachments, want)
	}
	for i := range want {
		got := in.Attachments[i]
		if len(got.Data) != got.Size {
			t.Errorf("Attachments[%d]: %d bytes of data for size %d", i, len(got.Data), got.Size)
		}
		got.Data = nil
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("Attachments[%d] = %+v, want %+v", i, got, want[i])
		}
	}
}

func TestParseMissingMessageID(t *testing.T) {
	raw := crlf(`
From: a@b.nl
Subject: no id

hello
`)
	in1 := mustParse(t, raw)
	in2 := mustParse(t, bytes.Clone(raw))
	if in1.MessageID != "" {
		t.Errorf("MessageID = %q", in1.MessageID)
	}
	if !strings.HasPrefix(in1.DedupeKey, "sha256:") || len(in1.DedupeKey) != len("sha256:")+64 {
		t.Errorf("DedupeKey = %q", in1.DedupeKey)
	}
	if in1.DedupeKey != in2.DedupeKey {
		t.Errorf("DedupeKey not stable: %q vs %q", in1.DedupeKey, in2.DedupeKey)
	}
	if in1.DedupeKey != DedupeKey("", raw) {
		t.Errorf("DedupeKey differs from DedupeKey(\"\", raw)")
	}
	in3 := mustParse(t, append(bytes.Clone(raw), '!'))
	if in3.DedupeKey == in1.DedupeKey {
		t.Error("different bytes, same key")
	}
}

func TestParseBrokenBoundary(t *testing.T) {
	in := mustParse(t, readTestdata(t, "broken-boundary.eml"))
	if !strings.Contains(in.Text, "Deze tekst moet toch gelezen worden.") {
		t.Errorf("Text = %q", in.Text)
	}
	if len(in.Problems) == 0 {
		t.Error("no problem recorded for the broken multipart")
	}
	if in.From.Email != "jan@example.nl" || in.Subject != "Kapotte MIME" {
		t.Errorf("header lost: %+v %q", in.From, in.Subject)
	}
}

func TestParseMissingCloseBoundary(t *testing.T) {
	in := mustParse(t, crlf(`
From: a@b.nl
Subject: x
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

first
--b
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
`))
	if strings.TrimSpace(in.Text) != "first" {
		t.Errorf("Text = %q", in.Text)
	}
	if len(in.Attachments) != 1 || in.Attachments[0].Size != 3 {
		t.Errorf("Attachments = %+v", in.Attachments)
	}
	if !strings.Contains(strings.Join(in.Problems, "|"), "missing closing boundary") {
		t.Errorf("Problems = %q", in.Problems)
	}
}

func TestParseTooLarge(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: Big Sender <big@example.nl>\r\nSubject: huge\r\nMessage-ID: <big-1@example.nl>\r\n")
	b.WriteString("Content-Type: text/plain\r\nAuto-Submitted: auto-generated\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < 30<<20 {
		b.WriteString(line)
	}
	raw := b.Bytes()
	in, err := Parse(raw, testRecv(), ParseOptions{MaxBytes: 25 << 20})
	var pe *ParseError
	if !errors.As(err, &pe) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want *ParseError wrapping ErrTooLarge", err)
	}
	want := fmt.Sprintf("too large: %d bytes (max_message_bytes %d)", len(raw), 25<<20)
	if pe.Reason != want || !strings.Contains(strings.Join(in.Problems, "|"), want) {
		t.Errorf("Reason %q, Problems %q, want %q", pe.Reason, in.Problems, want)
	}
	if in.Text != "" || in.Size != len(raw) || len(in.Raw) != len(raw) {
		t.Errorf("Text %d bytes, Size %d, Raw %d", len(in.Text), in.Size, len(in.Raw))
	}
	if in.MessageID != "big-1@example.nl" || in.DedupeKey != "mid:big-1@example.nl" || in.From.Email != "big@example.nl" || in.Subject != "huge" {
		t.Errorf("header not parsed: %q %q %+v %q", in.MessageID, in.DedupeKey, in.From, in.Subject)
	}
	if !in.Auto.IsAuto() {
		t.Error("header signals not detected on a too-large mail")
	}
	// The default limit (0) is 25 MiB as well.
	if _, err := Parse(raw, testRecv(), ParseOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("default limit: err = %v", err)
	}
	// Only the header, as the IMAP source fetches a message over the
	// limit (TooLarge said so): the same check and the same reason, by
	// the real size.
	head := raw[:bytes.Index(raw, []byte("\r\n\r\n"))+4]
	in, err = Parse(head, testRecv(), ParseOptions{MaxBytes: 25 << 20, Size: int64(len(raw))})
	if !errors.As(err, &pe) || pe.Reason != want || in.Size != len(raw) || in.From.Email != "big@example.nl" {
		t.Errorf("header only: err %v, Size %d, From %+v; want %q", err, in.Size, in.From, want)
	}
	if err := TooLarge(int64(len(raw)), 25<<20); !errors.As(err, &pe) || pe.Reason != want {
		t.Errorf("TooLarge = %v", err)
	}
	if err := TooLarge(25<<20, 0); err != nil {
		t.Errorf("TooLarge at the default limit = %v, want nil", err)
	}
}

func TestParseHeaders(t *testing.T) {
	in := mustParse(t, crlf(`
Return-Path: <Bounce+X@Example.NL>
Authentication-Results: mx.deskd.example; spf=pass smtp.mailfrom=example.nl
Authentication-Results: relay.example; dkim=pass
X-Deskd-Loop: case-42
From: "Doe, John" <John.Doe@Example.NL>
Sender: Secretary <sec@example.nl>
Reply-To: replies@example.nl, "B" <b@example.nl>
To: support@deskd.example, undisclosed-recipients:;
Cc: =?utf-8?B?w4lsaXNl?= <elise@example.nl>
Date: Mon, 3 Mar 2025 09:15:00 +0100 (CET)
Message-ID:  <ABC.123@Example.NL> (comment)
In-Reply-To: <deskd.1.a.b@deskd.example> (John's message)
References: <r1@x> junk <r2@x>,<r1@x>
 <r3@x>
Subject: Hello

body
`))
	if in.ReturnPath != "bounce+x@example.nl" || !in.HasReturnPath {
		t.Errorf("ReturnPath = %q %v", in.ReturnPath, in.HasReturnPath)
	}
	if len(in.AuthResults) != 2 || !strings.HasPrefix(in.AuthResults[0], "mx.deskd.example") {
		t.Errorf("AuthResults = %q (topmost first)", in.AuthResults)
	}
	if in.LoopHeader != "case-42" {
		t.Errorf("LoopHeader = %q", in.LoopHeader)
	}
	if in.From != (cases.Address{Name: "Doe, John", Email: "john.doe@example.nl"}) {
		t.Errorf("From = %+v", in.From)
	}
	if in.Sender == nil || in.Sender.Email != "sec@example.nl" {
		t.Errorf("Sender = %+v", in.Sender)
	}
	if len(in.ReplyTo) != 2 || in.ReplyTo[1].Name != "B" {
		t.Errorf("ReplyTo = %+v", in.ReplyTo)
	}
	if len(in.To) != 1 || in.To[0].Email != "support@deskd.example" {
		t.Errorf("To = %+v", in.To)
	}
	if len(in.Cc) != 1 || in.Cc[0].Name != "Élise" {
		t.Errorf("Cc = %+v", in.Cc)
	}
	if want := time.Date(2025, 3, 3, 8, 15, 0, 0, time.UTC); !in.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", in.Date, want)
	}
	if !in.ReceivedAt.Equal(testRecv()) {
		t.Errorf("ReceivedAt = %v", in.ReceivedAt)
	}
	if in.MessageID != "ABC.123@Example.NL" || in.DedupeKey != "mid:ABC.123@Example.NL" {
		t.Errorf("MessageID = %q, DedupeKey = %q", in.MessageID, in.DedupeKey)
	}
	if fmt.Sprint(in.InReplyTo) != "[deskd.1.a.b@deskd.example]" {
		t.Errorf("InReplyTo = %q", in.InReplyTo)
	}
	if fmt.Sprint(in.References) != "[r1@x r2@x r3@x]" {
		t.Errorf("References = %q", in.References)
	}
	if in.Auto.IsAuto() {
		t.Errorf("Auto = %v", in.Auto.Reasons)
	}
}

func TestParseLenientAddresses(t *testing.T) {
	tests := []struct {
		from string
		want cases.Address
	}{
		{"John Doe <JOHN@EXAMPLE.NL>", cases.Address{Name: "John Doe", Email: "john@example.nl"}},
		{"john@example.nl", cases.Address{Email: "john@example.nl"}},
		// Unquoted special characters in the display name: strict parsers fail.
		{"Doe, John [Sales] <john@example.nl>", cases.Address{Name: "Doe, John [Sales]", Email: "john@example.nl"}},
		// An address in the display name is decoration; the mailbox is in <>.
		{"purchasing@vendor.example <do-not-reply@bulk.example>", cases.Address{Name: "purchasing@vendor.example", Email: "do-not-reply@bulk.example"}},
		{"=?x-unknown?Q?J=F6rg?= <jorg@example.de>", cases.Address{Name: "Jörg", Email: "jorg@example.de"}},
		{"Jan <jan@example.nl", cases.Address{Name: "Jan", Email: "jan@example.nl"}},
		{"MAILER-DAEMON <>", cases.Address{Name: "MAILER-DAEMON"}},
		{"=?utf-8?Q?=C3=89lise?= <Elise@Example.NL>", cases.Address{Name: "Élise", Email: "elise@example.nl"}},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			in := mustParse(t, []byte("From: "+tt.from+"\nSubject: x\n\nbody\n"))
			if in.From != tt.want {
				t.Errorf("From = %+v, want %+v", in.From, tt.want)
			}
		})
	}
}

func TestParseMalformedHeaders(t *testing.T) {
	tests := []struct {
		name, raw, subject, text string
		wantErr                  bool
	}{
		{"mbox From_ line", "From someone@x Mon Jan  1 00:00:00 2024\nFrom: a@b.nl\nSubject: s\n\nbody\n", "s", "body", false},
		{"leading blank line of spaces", "    \nFrom: a@b.nl\nSubject: s\n\nbody\n", "s", "body", false},
		{"BOM", "\xef\xbb\xbfFrom: a@b.nl\nSubject: s\n\nbody\n", "s", "body", false},
		{"field name with a space", "From: a@b.nl\nX Bad Name: v\n  cont\nSubject: s\n\nbody\n", "s", "body", false},
		{"junk line between fields", "From: a@b.nl\njunk without colon\nSubject: s\n\nbody\n", "s", "body", false},
		{"no blank line before body", "From: a@b.nl\nSubject: s\nThis is the body.\n", "s", "This is the body.", false},
		{"bare CR line ends", "From: a@b.nl\rSubject: s\r\rbody\rline 2\r", "s", "body\nline 2", false},
		{"obsolete space before colon", "From : a@b.nl\nSubject  :  s\n\nbody\n", "s", "body", false},
		{"no header at all", "just some text\nwithout header\n", "", "just some text\nwithout header", true},
		{"empty first line", "\nbody only\n", "", "body only", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			in, err := Parse(raw, testRecv(), ParseOptions{})
			checkInvariants(t, tt.name, in, raw, testRecv())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if in.Subject != tt.subject || strings.TrimSpace(in.Text) != tt.text {
				t.Errorf("Subject %q Text %q, want %q %q", in.Subject, in.Text, tt.subject, tt.text)
			}
			if !tt.wantErr && in.From.Email != "a@b.nl" {
				t.Errorf("From = %+v", in.From)
			}
		})
	}
}

func TestParseEmptyAndGarbage(t *testing.T) {
	for _, raw := range [][]byte{nil, {}, []byte("\r\n"), []byte("\x00\x01\x02"), []byte(":"), []byte("--\n--")} {
		in, err := Parse(raw, testRecv(), ParseOptions{})
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Reason == "" {
			t.Errorf("%q: err = %v, want *ParseError", raw, err)
		}
		checkInvariants(t, fmt.Sprintf("%q", raw), in, raw, testRecv())
	}
}

func TestParseForwardedAsAttachment(t *testing.T) {
	in := mustParse(t, crlf(`
From: a@b.nl
Subject: Fwd: storing
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: message/rfc822

From: Klant <klant@x.nl>
Subject: storing
Content-Type: text/plain; charset=utf-8

Het werkt niet.
--b--
`))
	if !strings.Contains(in.Text, "Het werkt niet.") || !strings.Contains(in.Text, "Subject: storing") {
		t.Errorf("Text = %q", in.Text)
	}
	if len(in.Attachments) != 1 || in.Attachments[0].ContentType != "message/rfc822" {
		t.Errorf("Attachments = %+v", in.Attachments)
	}
	if in.Auto.IsAuto() {
		t.Errorf("Auto = %v", in.Auto.Reasons)
	}
}

func TestParseTextCap(t *testing.T) {
	body := strings.Repeat("é", maxTextBytes) // 2 MiB of two-byte runes
	in := mustParse(t, []byte("From: a@b.nl\nContent-Type: text/plain; charset=utf-8\n\n"+body))
	if len(in.Text) > maxTextBytes || len(in.Text) < maxTextBytes-4 {
		t.Errorf("len(Text) = %d", len(in.Text))
	}
	if !strings.Contains(strings.Join(in.Problems, "|"), "truncated") {
		t.Errorf("Problems = %q", in.Problems)
	}
}

func TestParseDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@b.nl\nContent-Type: multipart/mixed; boundary=b0\n\n")
	const n = 200
	for i := range n {
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i, i+1)
	}
	b.WriteString("--b200\nContent-Type: text/plain\n\ndeep\n")
	in, err := Parse([]byte(b.String()), testRecv(), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(in.Problems, "|"), "nesting") {
		t.Errorf("Problems = %q", in.Problems)
	}
}

// BenchmarkParse measures a typical 5 KB mail: multipart/alternative with
// quoted-printable text and HTML and a small attachment.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("Return-Path: <jan@klant.example>\r\nReceived: from mx.klant.example by mx.deskd.example; Mon, 3 Mar 2025 09:15:00 +0100\r\n")
	sb.WriteString("From: Jan de Vries <jan@klant.example>\r\nTo: support@deskd.example\r\nSubject: =?utf-8?Q?Storing_financi=C3=ABle_module?=\r\n")
	sb.WriteString("Date: Mon, 3 Mar 2025 09:15:00 +0100\r\nMessage-ID: <bench-1@klant.example>\r\nMIME-Version: 1.0\r\n")
	sb.WriteString("Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\n")
	sb.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for range 20 {
		sb.WriteString("De financi=C3=ABle module geeft sinds vanochtend een foutmelding bij het =\r\nopenen.\r\n")
	}
	sb.WriteString("--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>")
	for range 20 {
		sb.WriteString("<p>De financiële module geeft sinds vanochtend een <b>foutmelding</b>.</p>\r\n")
	}
	sb.WriteString("</body></html>\r\n--alt--\r\n--outer\r\nContent-Type: image/png; name=shot.png\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for range 12 {
		sb.WriteString(strings.Repeat("iVBORw0KGgo", 6) + "AAAAAAAAAA\r\n")
	}
	sb.WriteString("--outer--\r\n")
	raw := []byte(sb.String())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw, testRecv(), ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>a</p><p>b</p>", "a\n\nb"},
		{"a<br>b", "a\nb"},
		{"<b>bold</b>  and\n\n <i>it</i>", "bold and it"},
		{`<a href="https://x.example/p">https://x.example/p</a>`, "https://x.example/p"},
		{`<a href="https://x.example/p">here</a>`, "here <https://x.example/p>"},
		{"<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"<pre>  keep\n    this</pre>", "keep\n    this"},
		{"<style>x{}</style><script>y()</script>text", "text"},
		{"&lt;tag&gt; &amp; &euro;", "<tag> & €"},
		// Deeper than x/net/html accepts: falls back to the tokenizer.
		{strings.Repeat("<div><b>", 5000) + "deep<script>no</script> end", "deep end"},
	}
	for _, tt := range tests {
		if got := htmlToText(tt.in); got != tt.want {
			t.Errorf("htmlToText(%.40q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeUTF7(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hi Mom -+Jjo--!", "Hi Mom -☺-!"}, // RFC 2152 examples
		{"+ZeVnLIqe-", "日本語"},
		{"A+ImIDkQ.", "A≢Α."},
		{"1 +- 1", "1 + 1"},
		{"plain", "plain"},
		{"+", "+"},
		{"+Z", ""},
	}
	for _, tt := range tests {
		if got := decodeUTF7([]byte(tt.in)); got != tt.want {
			t.Errorf("decodeUTF7(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	in := mustParse(t, []byte("From: a@b\nSubject: =?utf-7?Q?+AOk-t+AOk-?=\nContent-Type: text/plain; charset=UNICODE-1-1-UTF-7\n\nCaf+AOk-\n"))
	if in.Subject != "été" || strings.TrimSpace(in.Text) != "Café" || len(in.Problems) != 0 {
		t.Errorf("Subject %q Text %q Problems %q", in.Subject, in.Text, in.Problems)
	}
}

func TestParseLenientMultipart(t *testing.T) {
	// A part header folded without white space ("boundary=" on its own
	// line) and a part whose header go-message cannot read: the text
	// after them must still be found.
	in := mustParse(t, crlf(`
From: a@b.nl
Subject: x
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative;
boundary="inner"

--inner
Content-Type: text/plain

inner text
--inner--
--outer
this part has no header
--outer
Content-Type: text/plain

last text
--outer--
`))
	for _, s := range []string{"inner text", "last text"} {
		if !strings.Contains(in.Text, s) {
			t.Errorf("Text lacks %q: %q (problems %q)", s, in.Text, in.Problems)
		}
	}
}

// TestParsePathological feeds inputs built to hit quadratic paths (a mail
// is parsed inside the ingest transaction). The work is bounded, not the
// time: the bytes allocated and the number of allocations, per input byte,
// stay within a constant, at two sizes, so a quadratic path fails the test
// on any machine however loaded. (The speed is BenchmarkParsePathological.)
func TestParsePathological(t *testing.T) {
	for _, n := range []int{1 << 18, 1 << 20} {
		for name, raw := range pathologicalInputs(n) {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				var in *cases.Inbound
				bytes, allocs := work(func() { in, _ = Parse([]byte(raw), testRecv(), ParseOptions{}) })
				// Measured: at most 59 bytes and 0.3 allocations per
				// input byte (names without addresses; deep html).
				if bytes > 100*uint64(len(raw)) || allocs > uint64(len(raw))/2 {
					t.Errorf("%d input bytes: %d bytes allocated in %d allocations, want at most 100 and 0.5 per input byte", len(raw), bytes, allocs)
				}
				checkInvariants(t, name, in, []byte(raw), testRecv())
			})
		}
	}
}

// work returns the bytes allocated and the allocations made by f. The test
// calling it must not be parallel: the counters are the process's.
func work(f func()) (bytes, allocs uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
}

func BenchmarkParsePathological(b *testing.B) {
	for name, raw := range pathologicalInputs(1 << 20) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for i := 0; i < b.N; i++ {
				Parse([]byte(raw), testRecv(), ParseOptions{})
			}
		})
	}
}

// pathologicalInputs are mails of about n bytes built to hit quadratic paths.
func pathologicalInputs(n int) map[string]string {
	dsn := "From: MAILER-DAEMON@x\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b\n" + strings.Repeat(" x\n", n/3) + "Action: failed\n--b--\n"
	return map[string]string{
		"open brackets in References": "From: a@b\nReferences: " + strings.Repeat("<", n) + "\n\nx",
		"open brackets in Message-ID": "From: a@b\nMessage-ID: " + strings.Repeat("<(", n/2) + "\n\nx",
		"names without addresses":     "From: a@b\nTo: " + strings.Repeat("a,", n/2) + "\n\nx",
		"unclosed quotes":             "From: " + strings.Repeat("\"<", n/2) + "\n\nx",
		"encoded words":               "From: a@b\nSubject: " + strings.Repeat("=?utf-8?Q?a?= ", n/14) + "\n\nx",
		"many parts":                  "From: a@b\nContent-Type: multipart/mixed; boundary=b\n\n" + strings.Repeat("--b\n\nx\n", n/8),
		"junk header lines":           "From: a@b\n" + strings.Repeat("junk\n", n/5) + "Subject: s\n\nx",
		"deep html":                   "From: a@b\nContent-Type: text/html\n\n" + strings.Repeat("<div><a href=x>", n/15),
		"folded dsn field":            dsn,
		"base64 garbage":              "From: a@b\nContent-Transfer-Encoding: base64\n\n" + strings.Repeat("=!", n/2),
	}
}

// An HTML-only reply (Gmail, Outlook on the web) quotes the thread in a
// <blockquote>: its lines come out as "> " lines, as a text client would
// write them, so the quoted history can be cut before a staff reply is
// relayed (cases.StripQuoted).
func TestParseHTMLBlockquoteBecomesQuoted(t *testing.T) {
	raw := crlf(`From: Jan <jan@desk.example>
To: support@desk.example
Subject: Re: [Case #1] printer
Message-ID: <html-quote@desk.example>
Content-Type: text/html; charset=utf-8

<div>Wij komen morgen langs.</div><div><br></div>
<div class="gmail_quote">On Mon, 9 Mar 2026 at 10:00, Ann &lt;ann@acme.example&gt; wrote:<br>
<blockquote class="gmail_quote"><div>De printer is kapot.</div>
<blockquote><p>Nog ouder bericht.</p></blockquote></blockquote></div>
`)
	in, err := Parse(raw, time.Now(), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Wij komen morgen langs.", "\n> De printer is kapot.", "\n> > Nog ouder bericht."} {
		if !strings.Contains(in.Text, want) {
			t.Errorf("text %q lacks %q", in.Text, want)
		}
	}
	if got := cases.StripQuoted(in.Text); got != "Wij komen morgen langs." {
		t.Errorf("StripQuoted = %q", got)
	}
}

// A quoted local part is a mailbox of its own (RFC 5322 §3.4.1): its
// quotes stay, so deskd never writes to the address it would become
// without its spaces.
func TestParseQuotedLocalPart(t *testing.T) {
	raw := crlf(`From: "Kees de Vries" <"kees de vries"@jansen.test>
To: support@desk.example
Cc: plain@jansen.test
Subject: hallo
Message-ID: <quoted-local@jansen.test>

tekst
`)
	in, err := Parse(raw, time.Now(), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.From.Email != `"kees de vries"@jansen.test` || in.From.Name != "Kees de Vries" {
		t.Errorf("from %+v", in.From)
	}
	if CanAddress(in.From.Email) {
		t.Error("deskd cannot write a quoted local part with spaces; CanAddress must say so")
	}
	if len(in.Cc) != 1 || in.Cc[0].Email != "plain@jansen.test" {
		t.Errorf("cc %+v", in.Cc)
	}
}
