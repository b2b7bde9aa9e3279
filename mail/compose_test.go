package mail

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"deskd/cases"
)

// The -update flag rewrites the golden files. The parser's tests in this
// package may want a flag of the same name: registering it only when nobody
// did (package variables initialise before init functions) keeps the two
// from panicking with "flag redefined".
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/golden")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if updateGolden() {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

var testDate = time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

func ackOutgoing() *Outgoing {
	return &Outgoing{
		From:                 cases.Address{Name: "Servicedesk Voorbeeld", Email: "support@desk.example.com"},
		To:                   []cases.Address{{Name: "Chloë van Eé", Email: "chloe@klant.example.nl"}},
		Cc:                   []cases.Address{{Email: "beheer@klant.example.nl"}},
		ReplyTo:              []cases.Address{{Name: "Servicedesk Voorbeeld", Email: "support@desk.example.com"}},
		Subject:              "[Case #12] Printer kapot: factuur € 120 ëxtra",
		MessageID:            "deskd.12.0123456789ab.0123456789abcdef@desk.example.com",
		InReplyTo:            "<CAF=abc123@mail.klant.example.nl>",
		References:           []string{"<root@klant.example.nl>"},
		Date:                 testDate,
		Text:                 "Beste Chloë,\n\nWij hebben uw bericht ontvangen. Het bedrag van € 120 is genoteerd; één moment geduld.\n\nMet vriendelijke groet,\nServicedesk\n",
		HTML:                 "<p>Beste Chloë,</p>\n<p>Wij hebben uw bericht ontvangen. Het bedrag van &euro; 120 is genoteerd; één moment geduld.</p>\n",
		AutoSubmitted:        "auto-replied",
		SuppressAutoResponse: true,
		LoopToken:            "12.0123456789ab",
	}
}

func TestComposeGolden(t *testing.T) {
	plain := ackOutgoing()
	plain.HTML = ""
	plain.Cc, plain.ReplyTo, plain.InReplyTo, plain.References = nil, nil, "", nil
	plain.AutoSubmitted, plain.SuppressAutoResponse, plain.LoopToken = "", false, ""
	plain.Subject = "Re: [Case #12] printer"
	plain.Text = "Short ASCII reply.\nSecond line.\n"
	plain.Extra = map[string]string{"X-Priority-Hint": "normal", "Organization": "Voorbeeld B.V."}

	for _, tc := range []struct {
		name string
		o    *Outgoing
	}{
		{"ack_nl_alternative.eml", ackOutgoing()},
		{"reply_plain.eml", plain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := Compose(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, raw)
			again, _ := Compose(tc.o)
			if !bytes.Equal(raw, again) {
				t.Error("Compose is not deterministic")
			}
			for i, line := range strings.SplitAfter(string(raw), "\r\n") {
				if len(line) > 78 {
					t.Errorf("line %d is %d bytes long: %q", i+1, len(line), line)
				}
				if strings.Contains(strings.TrimSuffix(line, "\r\n"), "\n") {
					t.Errorf("line %d has a bare LF", i+1)
				}
				for _, c := range []byte(line) {
					if c >= 0x80 {
						t.Fatalf("line %d is not 7-bit: %q", i+1, line)
					}
				}
			}
		})
	}
}

// parsed is what a reader sees in a composed mail.
type parsed struct {
	keys    []string // header field names in order
	h       gomail.Header
	text    string
	html    string
	subject string
}

func parseBack(t *testing.T, raw []byte) parsed {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message cannot read the output: %v\n%s", err, raw)
	}
	var p parsed
	p.h = gomail.Header{Header: e.Header}
	for f := e.Header.Fields(); f.Next(); {
		p.keys = append(p.keys, f.Key())
	}
	if p.subject, err = p.h.Subject(); err != nil {
		t.Fatal(err)
	}
	body := func(e *message.Entity) string {
		b, err := io.ReadAll(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			typ, _, _ := part.Header.ContentType()
			switch typ {
			case "text/plain":
				p.text = body(part)
			case "text/html":
				p.html = body(part)
			default:
				t.Errorf("unexpected part %s", typ)
			}
		}
	} else {
		p.text = body(e)
	}
	return p
}

func TestComposeRoundTrip(t *testing.T) {
	o := ackOutgoing()
	raw, err := Compose(o)
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, raw)
	wantKeys := []string{"Date", "From", "To", "Cc", "Reply-To", "Subject", "Message-Id", "In-Reply-To", "References", "Auto-Submitted", "X-Auto-Response-Suppress", "X-Deskd-Loop", "Mime-Version", "Content-Type"}
	if !slices.Equal(p.keys, wantKeys) {
		t.Errorf("header fields\n got %v\nwant %v", p.keys, wantKeys)
	}
	if p.subject != o.Subject {
		t.Errorf("subject = %q, want %q", p.subject, o.Subject)
	}
	to, err := p.h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Chloë van Eé" || to[0].Address != "chloe@klant.example.nl" {
		t.Errorf("To = %v, %v", to, err)
	}
	wantText := strings.ReplaceAll(o.Text, "\n", "\r\n")
	if p.text != wantText {
		t.Errorf("text = %q, want %q", p.text, wantText)
	}
	if p.html != strings.ReplaceAll(o.HTML, "\n", "\r\n") {
		t.Errorf("html = %q", p.html)
	}
	if id, _ := p.h.MessageID(); id != o.MessageID {
		t.Errorf("Message-ID = %q", id)
	}
	if irt, _ := p.h.MsgIDList("In-Reply-To"); !slices.Equal(irt, []string{"CAF=abc123@mail.klant.example.nl"}) {
		t.Errorf("In-Reply-To = %v", irt)
	}
	// RFC 5322 §3.6.4: the parent goes last in References.
	if refs, _ := p.h.MsgIDList("References"); !slices.Equal(refs, []string{"root@klant.example.nl", "CAF=abc123@mail.klant.example.nl"}) {
		t.Errorf("References = %v", refs)
	}
	if v := p.h.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", v)
	}
	if v := p.h.Get("X-Auto-Response-Suppress"); v != "All" {
		t.Errorf("X-Auto-Response-Suppress = %q", v)
	}
	if v := p.h.Get(LoopHeader); v != o.LoopToken {
		t.Errorf("%s = %q", LoopHeader, v)
	}
	if d, _ := p.h.Date(); !d.Equal(o.Date) {
		t.Errorf("Date = %v", d)
	}
}

func TestComposeHeaderInjection(t *testing.T) {
	for _, tc := range []struct {
		name, subject, wantSubject string
	}{
		{"crlf", "Help\r\nBcc: evil@x.example", "Help Bcc: evil@x.example"},
		{"lf only", "Help\nBcc: evil@x.example\n\nbody", "Help Bcc: evil@x.example body"},
		{"literal encoded-word", "=?utf-8?q?a=0D=0ABcc:_x@y?=", "= ?utf-8?q?a=0D=0ABcc:_x@y?="},
		{"encoded-word with non-ascii", "é =?utf-8?q?a=0D=0ABcc:_x@y?=", "é = ?utf-8?q?a=0D=0ABcc:_x@y?="},
		{"nul and unicode line separator", "a\x00b\u2028Bcc: x@y", "a b Bcc: x@y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &Outgoing{
				From:      cases.Address{Name: "Desk\r\nBcc: from@x.example", Email: "support@desk.example.com"},
				To:        []cases.Address{{Name: tc.subject, Email: "klant@example.nl"}},
				Subject:   tc.subject,
				MessageID: "id@desk.example.com",
				Date:      testDate,
				Text:      "x",
				LoopToken: tc.subject,
			}
			raw, err := Compose(o)
			if err != nil {
				t.Fatal(err)
			}
			p := parseBack(t, raw)
			want := []string{"Date", "From", "To", "Subject", "Message-Id", "X-Deskd-Loop", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"}
			if !slices.Equal(p.keys, want) {
				t.Fatalf("header fields\n got %v\nwant %v\n%s", p.keys, want, raw)
			}
			if p.subject != tc.wantSubject {
				t.Errorf("subject decodes to %q, want %q", p.subject, tc.wantSubject)
			}
			if strings.ContainsAny(p.subject, "\r\n") {
				t.Errorf("decoded subject has a line break: %q", p.subject)
			}
			to, err := p.h.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != "klant@example.nl" || to[0].Name != tc.wantSubject {
				t.Errorf("To = %v, %v", to, err)
			}
			from, err := p.h.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != "Desk Bcc: from@x.example" {
				t.Errorf("From = %v, %v", from, err)
			}
		})
	}
}

func TestComposeRejects(t *testing.T) {
	base := func() *Outgoing {
		return &Outgoing{
			From: cases.Address{Email: "support@desk.example.com"}, To: []cases.Address{{Email: "a@example.nl"}},
			Subject: "s", MessageID: "id@desk.example.com", Date: testDate, Text: "x",
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Outgoing)
	}{
		{"no date", func(o *Outgoing) { o.Date = time.Time{} }},
		{"no message-id", func(o *Outgoing) { o.MessageID = "" }},
		{"message-id with space", func(o *Outgoing) { o.MessageID = "a b@x" }},
		{"message-id crlf", func(o *Outgoing) { o.MessageID = "a@x>\r\nBcc: <y@z" }},
		{"no recipients", func(o *Outgoing) { o.To = nil }},
		{"address adds recipient", func(o *Outgoing) { o.To[0].Email = "evil@y.example>, <a@x.example" }},
		{"address crlf", func(o *Outgoing) { o.To[0].Email = "a@x.example\r\nBcc: b@y.example" }},
		{"address without at", func(o *Outgoing) { o.To[0].Email = "nobody" }},
		{"bad from", func(o *Outgoing) { o.From.Email = "" }},
		{"extra overrides bcc", func(o *Outgoing) { o.Extra = map[string]string{"bcc": "x@y.example"} }},
		{"extra overrides subject", func(o *Outgoing) { o.Extra = map[string]string{"SUBJECT": "x"} }},
		{"extra bad name", func(o *Outgoing) { o.Extra = map[string]string{"X-A: b\r\nBcc": "x"} }},
		{"bad auto-submitted", func(o *Outgoing) { o.AutoSubmitted = "auto-replied\r\nBcc: x@y" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(o)
			if raw, err := Compose(o); err == nil {
				t.Errorf("Compose succeeded:\n%s", raw)
			}
		})
	}
}

func TestComposeExtraSanitised(t *testing.T) {
	o := &Outgoing{
		From: cases.Address{Email: "support@desk.example.com"}, To: []cases.Address{{Email: "a@example.nl"}},
		MessageID: "id@desk.example.com", Date: testDate, Text: "x",
		Extra: map[string]string{"X-Note": "a\r\nBcc: x@y.example"},
	}
	raw, err := Compose(o)
	if err != nil {
		t.Fatal(err)
	}
	p := parseBack(t, raw)
	if p.h.Has("Bcc") || p.h.Get("X-Note") != "a Bcc: x@y.example" {
		t.Errorf("extra header not sanitised:\n%s", raw)
	}
}

func TestReferencesTrimmed(t *testing.T) {
	var refs []string
	for i := range 30 {
		refs = append(refs, fmt.Sprintf("<m%d@x.example>", i))
	}
	refs = append(refs, "not an id", "<m3@x.example>", "<a b@x>")
	got := referenceList(refs, "<parent@x.example>")
	if len(got) != maxReferences {
		t.Fatalf("len = %d, want %d: %v", len(got), maxReferences, got)
	}
	if got[0] != "m0@x.example" || got[len(got)-1] != "parent@x.example" || got[len(got)-2] != "m29@x.example" {
		t.Errorf("want root first and the newest last: %v", got)
	}
	// Parent already present moves to the end, without duplicates.
	got = referenceList([]string{"a@x", "p@x", "b@x"}, "p@x")
	if !slices.Equal(got, []string{"a@x", "b@x", "p@x"}) {
		t.Errorf("got %v", got)
	}
}

func TestSanitizeHeaderText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  plain  text ", "plain text"},
		{"a\r\nb", "a b"},
		{"a\tb\vc\fd", "a b c d"},
		{"tab\x00nul\x1bescape\x7fdel\u0085nel", "tab nul escape del nel"},
		{"line\u2028para\u2029end", "line para end"},
		{"bidi \u202egnp.exe", "bidi gnp.exe"},
		{"=?utf-8?b?QmNjOiB4?=", "= ?utf-8?b?QmNjOiB4?="},
		{"=?=?", "= ?= ?"},
		{"invalid \xff utf8", "invalid \uFFFD utf8"},
		{"Dutch: één, ëxtra, € 5", "Dutch: één, ëxtra, € 5"},
		{"emoji 👩\u200d💻 stays", "emoji 👩\u200d💻 stays"},
		{"", ""},
	} {
		if got := SanitizeHeaderText(tc.in); got != tc.want {
			t.Errorf("SanitizeHeaderText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSanitizeHeaderText(f *testing.F) {
	for _, s := range []string{"a\r\nBcc: x", "=?utf-8?q?a=0D=0A?=", "é€", "\x00\x7f\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeHeaderText(s)
		if strings.ContainsAny(got, "\r\n\x00") || strings.Contains(got, "=?") {
			t.Fatalf("SanitizeHeaderText(%q) = %q", s, got)
		}
		if SanitizeHeaderText(got) != got {
			t.Fatalf("not idempotent on %q", s)
		}
		// Whatever the text, a composed mail has exactly the intended fields.
		raw, err := Compose(&Outgoing{
			From: cases.Address{Name: s, Email: "a@b.example"}, To: []cases.Address{{Email: "c@d.example"}},
			Subject: s, MessageID: "id@x.example", Date: testDate, Text: s,
		})
		if err != nil {
			t.Fatal(err)
		}
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if n := e.Header.Len(); n != 8 {
			t.Fatalf("%d header fields for %q:\n%s", n, s, raw)
		}
		h := gomail.Header{Header: e.Header}
		if subj, _ := h.Subject(); subj != got {
			t.Fatalf("subject %q decodes to %q, want %q", s, subj, got)
		}
	})
}

func TestComposeLongSubjectFolds(t *testing.T) {
	subject := strings.Repeat("Één storing in de printer met € kosten én een ëxtra lange omschrijving ", 4)
	o := &Outgoing{
		From: cases.Address{Email: "support@desk.example.com"}, To: []cases.Address{{Email: "a@example.nl"}},
		Subject: subject, MessageID: "id@desk.example.com", Date: testDate, Text: "x",
		LoopToken: strings.Repeat("ë", 60),
	}
	raw, err := Compose(o)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if len(line) > 76 {
			t.Errorf("header line of %d characters (RFC 2047 §2 allows 76): %q", len(line), line)
		}
	}
	p := parseBack(t, raw)
	if want := SanitizeHeaderText(subject); p.subject != want {
		t.Errorf("subject = %q, want %q", p.subject, want)
	}
	if v, _ := p.h.Text(LoopHeader); v != o.LoopToken {
		t.Errorf("loop token = %q", v)
	}
}
