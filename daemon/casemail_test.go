package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/sla"
)

// Golden tests of the mails the staff-by-mail feature sends (casemail.go):
// renderMail's bytes, headers and body, against
// testdata/casemail/<name>.golden. After an intended change, rewrite them
// with
//
//	go test ./daemon/ -run CaseMail -update
//
// and read the diff.

var updateCaseMailGolden = flag.Bool("update", false, "rewrite the golden files under testdata/casemail")

var (
	caseMailNow = time.Date(2026, 3, 9, 10, 15, 0, 0, time.FixedZone("CET", 3600))
	caseMailKey = []byte("casemail golden test key")

	cmAnna    = cases.Address{Name: "Anna Jansen", Email: "anna@jansen.test"}
	cmPiet    = cases.Address{Name: "Piet Pieters", Email: "piet@desk.test"}
	cmSupport = "support@desk.test"
)

// caseMailRuntime is the runtime a daemon builds (newRuntime), with a fixed
// HMAC key so that no store is needed.
func caseMailRuntime(t *testing.T) *runtime {
	t.Helper()
	opts := Options{
		Policy: cases.Policy{
			SupportAddress: cmSupport, TokenPrefix: "Case", ReopenWindow: 14 * 24 * time.Hour,
			StaffDomains: []string{"desk.test"}, StaffNotify: []string{"helpdesk@desk.test"}, StaffLanguage: "nl",
			DefaultCustomer: "unknown", DefaultPlan: "Basic", DefaultLanguage: "nl",
		},
		SupportName: "Desk Support",
		SLA:         sla.Default(),
		HMACKey:     caseMailKey,
		Log:         slog.New(slog.DiscardHandler),
	}
	rt, err := (&Daemon{}).newRuntime(opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// caseMailCase is case 7 as it stands when staff have set its priority.
func caseMailCase() *cases.Case {
	return &cases.Case{
		ID: 7, Subject: "Kassa start niet op", Status: cases.StatusOpen,
		Priority: cases.PriorityHigh, ProposedPriority: cases.PriorityUrgent, Kind: cases.KindIncident,
		Customer: "Bakkerij Jansen", Plan: "Premium", Language: "nl", Requester: cmAnna,
		Parties: []string{cmAnna.Email},
		Thread:  []string{"kassa-1@jansen.test", "ack-7@desk.test"},
	}
}

// pngBytes is a small binary attachment: every byte value, so a transfer
// encoding that is not 8-bit clean shows.
func pngBytes() []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for i := range 256 {
		b = append(b, byte(i))
	}
	return b
}

type caseMailCaseT struct {
	name string
	c    func() *cases.Case
	m    *cases.OutMail
}

func caseMailCases() []caseMailCaseT {
	logText := []byte("10:02 kassa: update 4.2 geïnstalleerd\n10:03 kassa: herstart\n")
	return []caseMailCaseT{
		{
			// A staff reply with two files, relayed to the requester.
			name: "relay_attachment",
			c:    caseMailCase,
			m: &cases.OutMail{
				Kind: cases.MailRelay, To: []cases.Address{cmAnna},
				Subject:   "Re: [Case #7] Kassa start niet op",
				InReplyTo: "ack-7@desk.test", References: []string{"kassa-1@jansen.test", "ack-7@desk.test"},
				Language: "nl", Staff: cmPiet,
				Text: "Dag Anna,\n\nIn de bijlage het logboek en een schermafdruk; de update is teruggezet.\n\n-- \nPiet",
				Attachments: []cases.Attachment{
					{Filename: "kassa-log.txt", ContentType: "text/plain; charset=utf-8", Size: len(logText), Data: logText},
					{Filename: "schermafdruk.png", ContentType: "image/png", Size: len(pngBytes()), Data: pngBytes()},
				},
				AttachmentsOf: "mid:staff-2@desk.test",
			},
		},
		{
			// A relay to the requester and the other parties in Cc, from
			// a staff member whose name needs an encoded-word.
			name: "relay_to_cc",
			c: func() *cases.Case {
				c := caseMailCase()
				c.Parties = append(c.Parties, "kees@jansen.test", "marie@jansen.test")
				return c
			},
			m: &cases.OutMail{
				Kind: cases.MailRelay, To: []cases.Address{cmAnna},
				Cc:        []cases.Address{{Email: "kees@jansen.test"}, {Name: "Marie Jansen", Email: "marie@jansen.test"}},
				Subject:   "Re: [Case #7] Kassa start niet op",
				InReplyTo: "kassa-2@jansen.test", References: []string{"kassa-1@jansen.test", "ack-7@desk.test", "kassa-2@jansen.test"},
				Language: "nl", Staff: cases.Address{Name: "Zoë de Wit", Email: "zoe@desk.test"},
				Text: "Beste allen,\n\nDe monteur komt morgen om 9:00 uur.\n\nGroet,\nZoë",
			},
		},
		{
			// [opgelost] with a last word: one mail, the closing template
			// carrying the staff member's text, from them via the desk.
			name: "closing_text",
			c: func() *cases.Case {
				c := caseMailCase()
				c.Status = cases.StatusClosed
				return c
			},
			m: &cases.OutMail{
				Kind: cases.MailClosing, To: []cases.Address{cmAnna},
				Subject:   "Re: [Case #7] Kassa start niet op",
				InReplyTo: "relay-7@desk.test", References: []string{"kassa-1@jansen.test", "ack-7@desk.test", "relay-7@desk.test"},
				Language: "nl", Staff: cmPiet,
				Text: "De kassa draait weer na de herstart.\n\n-- \nPiet",
			},
		},
		{
			// [opgelost] alone: the templated closing mail, automatic.
			name: "closing_notext",
			c: func() *cases.Case {
				c := caseMailCase()
				c.Status = cases.StatusClosed
				return c
			},
			m: &cases.OutMail{
				Kind: cases.MailClosing, To: []cases.Address{cmAnna},
				Subject:   "Re: [Case #7] Kassa start niet op",
				InReplyTo: "ack-7@desk.test", References: []string{"kassa-1@jansen.test", "ack-7@desk.test"},
				Language: "nl", Staff: cmPiet, Automatic: "auto-generated",
			},
		},
		{
			// staff.notify hears of a new case; the customer's file is
			// listed, not attached.
			name: "notify",
			c: func() *cases.Case {
				c := caseMailCase()
				c.Priority, c.Kind, c.Thread = "", "", []string{"kassa-1@jansen.test"}
				return c
			},
			m: &cases.OutMail{
				Kind: cases.MailNotify, To: []cases.Address{{Email: "helpdesk@desk.test"}},
				InReplyTo: "kassa-1@jansen.test", References: []string{"kassa-1@jansen.test"},
				Language: "nl", From: cmAnna,
				Text:        "Goedemorgen,\n\nDe kassa start niet meer op sinds de update van gisteren.\n\nAnna",
				Attachments: []cases.Attachment{{Filename: "foto.jpg", ContentType: "image/jpeg", Size: 123456}},
				Event:       "new", Automatic: "auto-generated",
			},
		},
		{
			// The staff member hears what their keywords changed.
			name: "confirm",
			c:    caseMailCase,
			m: &cases.OutMail{
				Kind: cases.MailConfirm, To: []cases.Address{cmPiet},
				InReplyTo: "staff-2@desk.test", References: []string{"kassa-1@jansen.test", "ack-7@desk.test", "staff-2@desk.test"},
				Language: "nl", Staff: cmPiet, Automatic: "auto-replied",
				Changes: []string{"priority: not set → high"},
			},
		},
	}
}

// normaliseCaseMail replaces the only part of a rendered mail that is not
// fixed by its inputs, the random part of the Message-ID (and the MIME
// boundaries derived from it), and shows CRLF as LF.
func normaliseCaseMail(t *testing.T, r *renderedMail, caseID uint64) []byte {
	t.Helper()
	if n, ok := mail.VerifyMessageID(caseMailKey, r.messageID); !ok || n != caseID {
		t.Errorf("Message-ID %q: verifies as case %d (%v), want case %d", r.messageID, n, ok, caseID)
	}
	sum := sha256.Sum256([]byte(r.messageID))
	s := string(r.raw)
	s = strings.ReplaceAll(s, hex.EncodeToString(sum[:12]), "BOUNDARYHASH")
	s = strings.ReplaceAll(s, r.messageID, "MESSAGE-ID")
	return []byte(strings.ReplaceAll(s, "\r\n", "\n"))
}

func TestCaseMailGolden(t *testing.T) {
	rt := caseMailRuntime(t)
	for _, tc := range caseMailCases() {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c()
			r, err := renderMail(rt, c, tc.m, caseMailNow)
			if err != nil {
				t.Fatalf("renderMail: %v", err)
			}
			got := normaliseCaseMail(t, r, c.ID)
			// Deterministic apart from the Message-ID: a second
			// rendering normalises to the same bytes.
			r2, err := renderMail(rt, tc.c(), tc.m, caseMailNow)
			if err != nil {
				t.Fatal(err)
			}
			if r2.messageID == r.messageID {
				t.Errorf("two renderings share Message-ID %s", r.messageID)
			}
			if again := normaliseCaseMail(t, r2, c.ID); !bytes.Equal(got, again) {
				t.Errorf("rendering is not deterministic:\n%s\n--- second ---\n%s", got, again)
			}
			// The whole message must survive deskd's own parser, and
			// every mail about a case is answered to the desk.
			in, err := mail.Parse(r.raw, caseMailNow, mail.ParseOptions{})
			if err != nil {
				t.Fatalf("rendered mail does not parse: %v", err)
			}
			if len(in.ReplyTo) != 1 || in.ReplyTo[0].Email != cmSupport {
				t.Errorf("Reply-To %+v, want %s", in.ReplyTo, cmSupport)
			}
			if in.MessageID != r.messageID {
				t.Errorf("parsed Message-ID %q, rendered %q", in.MessageID, r.messageID)
			}

			path := filepath.Join("testdata", "casemail", tc.name+".golden")
			if *updateCaseMailGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered mail (run with -update after checking):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first lines where want and got part.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + wl + "\n  got  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// A relayed staff reply carries its files: each attachment comes back out
// of deskd's own parser with its name, type and bytes, the staff member's
// words are the body, and the customer answers the desk.
func TestCaseMailRelayAttachmentRoundTrip(t *testing.T) {
	rt := caseMailRuntime(t)
	tc := caseMailCases()[0]
	r, err := renderMail(rt, tc.c(), tc.m, caseMailNow)
	if err != nil {
		t.Fatal(err)
	}
	in, err := mail.Parse(r.raw, caseMailNow, mail.ParseOptions{})
	if err != nil {
		t.Fatalf("relay does not parse: %v", err)
	}
	if len(in.Attachments) != len(tc.m.Attachments) {
		t.Fatalf("parsed %d attachments, want %d: %+v", len(in.Attachments), len(tc.m.Attachments), in.Attachments)
	}
	for i, want := range tc.m.Attachments {
		got := in.Attachments[i]
		if got.Filename != want.Filename {
			t.Errorf("attachment %d: filename %q, want %q", i, got.Filename, want.Filename)
		}
		gt, _, err1 := mime.ParseMediaType(got.ContentType)
		wt, _, err2 := mime.ParseMediaType(want.ContentType)
		if err1 != nil || err2 != nil || gt != wt {
			t.Errorf("attachment %d: type %q, want %q", i, got.ContentType, want.ContentType)
		}
		if !bytes.Equal(got.Data, want.Data) || got.Size != len(want.Data) {
			t.Errorf("attachment %d (%s): %d bytes came back, want the %d sent", i, want.Filename, len(got.Data), len(want.Data))
		}
	}
	if !strings.Contains(in.Text, "de update is teruggezet.") || !strings.Contains(in.Text, "-- \nPiet") {
		t.Errorf("relay body %q", in.Text)
	}
	if len(in.ReplyTo) != 1 || in.ReplyTo[0].Email != cmSupport {
		t.Errorf("Reply-To %+v, want %s", in.ReplyTo, cmSupport)
	}
	if in.From.Email != cmSupport || in.From.Name != "Piet Pieters via Desk Support" {
		t.Errorf("From %+v", in.From)
	}
	if in.Auto.IsAuto() {
		t.Errorf("a relay carries a person's words, yet reads as automatic: %v", in.Auto.Reasons)
	}
}

// Headers that tell the two kinds of mail apart: the relay and the closing
// mail with a staff member's words are a person's (no Auto-Submitted,
// "<name> via <desk>"), the others automatic (RFC 3834 §5) and from the
// desk itself; a relay goes to To and Cc exactly as asked.
func TestCaseMailHeaders(t *testing.T) {
	rt := caseMailRuntime(t)
	want := map[string]struct{ auto, fromName string }{
		"relay_attachment": {"", "Piet Pieters via Desk Support"},
		"relay_to_cc":      {"", "Zoë de Wit via Desk Support"},
		"closing_text":     {"", "Piet Pieters via Desk Support"},
		"closing_notext":   {"auto-generated", "Desk Support"},
		"notify":           {"auto-generated", "Desk Support"},
		"confirm":          {"auto-replied", "Desk Support"},
	}
	for _, tc := range caseMailCases() {
		r, err := renderMail(rt, tc.c(), tc.m, caseMailNow)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h := header(t, r.raw)
		w := want[tc.name]
		if got := h.Get("Auto-Submitted"); got != w.auto {
			t.Errorf("%s: Auto-Submitted %q, want %q", tc.name, got, w.auto)
		}
		from, err := h.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Address != cmSupport || from[0].Name != w.fromName {
			t.Errorf("%s: From %v (%v), want %q <%s>", tc.name, from, err, w.fromName, cmSupport)
		}
		if got := h.Get("In-Reply-To"); got != "<"+tc.m.InReplyTo+">" {
			t.Errorf("%s: In-Reply-To %q, want <%s>", tc.name, got, tc.m.InReplyTo)
		}
		if got := h.Get(mail.LoopHeader); got == "" {
			t.Errorf("%s: no %s header", tc.name, mail.LoopHeader)
		}
		if tc.name == "relay_to_cc" {
			to, _ := h.AddressList("To")
			cc, _ := h.AddressList("Cc")
			if len(to) != 1 || to[0].Address != cmAnna.Email || len(cc) != 2 || cc[0].Address != "kees@jansen.test" || cc[1].Address != "marie@jansen.test" || cc[1].Name != "Marie Jansen" {
				t.Errorf("relay_to_cc: To %v Cc %v", to, cc)
			}
		}
		if s, _ := h.Subject(); !strings.Contains(s, "[Case #7]") || !strings.Contains(s, "Kassa start niet op") {
			t.Errorf("%s: subject %q", tc.name, s)
		}
	}
}

// One address on the customer's side that the composer cannot write (an
// internationalised address, RFC 6532, in the customer's Cc) must not
// swallow a staff member's answer: the requester still gets the relay.
// Today the whole relay fails to compose, is logged, and is dropped; the
// staff member is not told and the case records a response (R9) that
// never went out.
func TestCaseMailRelayDespiteUnaddressableParty(t *testing.T) {
	h := newHarness(t, nil)
	h.deliver(question("eai-1@jansen.example", "Anna <anna@jansen.example>", "Kassa kapot",
		"Cc: =?utf-8?q?J=C3=B6rg?= <jörg@müller.example>\n"))
	if rep := h.waitReports(1)[0]; rep.Decision != string(cases.OutcomeNewCase) || rep.Ack == "" {
		t.Fatalf("customer mail decided as %+v", rep)
	}
	h.deliver("From: Jan <jan@example.test>\nTo: " + support + "\nSubject: RE: [Case #1] Kassa kapot\n" +
		"Message-ID: <eai-2@example.test>\nIn-Reply-To: <eai-1@jansen.example>\nReferences: <eai-1@jansen.example>\n" +
		"Date: Mon, 2 Nov 2026 10:05:00 +0100\nContent-Type: text/plain; charset=utf-8\n\nWe komen vandaag nog langs.\n\n-- \nJan\n")
	rep := h.waitReports(2)[1]
	if rep.Role != cases.RoleStaff || rep.CaseID != 1 {
		t.Fatalf("staff reply decided as %+v", rep)
	}
	relayed := false
	for _, m := range rep.Mails {
		relayed = relayed || strings.HasPrefix(m, string(cases.MailRelay)+" ")
	}
	if !relayed {
		t.Fatalf("the staff reply was not relayed to the requester (mails %v): a Cc address the composer cannot write dropped the whole relay", rep.Mails)
	}
	// The ack, the relay and the error reply to Jan: the outbox's
	// workers send them in any order.
	for _, m := range h.waitMails(3) {
		for _, to := range m.To {
			if to == "anna@jansen.example" && strings.Contains(string(m.Data), "We komen vandaag nog langs.") {
				return
			}
		}
	}
	t.Error("no relay reached anna@jansen.example")
}

// A closing mail that carries the staff member's words must keep the
// closing notice (the case is closed; reply within the window to reopen
// it, R11c) above any signature delimiter. A "-- " line starts the
// signature (RFC 3676 §4.3): mail clients dim what follows it and drop it
// when quoting, so a notice below the staff member's signature is lost.
func TestCaseMailClosingNoticeAboveSignature(t *testing.T) {
	rt := caseMailRuntime(t)
	for _, tc := range caseMailCases() {
		if tc.name != "closing_text" {
			continue
		}
		r, err := renderMail(rt, tc.c(), tc.m, caseMailNow)
		if err != nil {
			t.Fatal(err)
		}
		in, err := mail.Parse(r.raw, caseMailNow, mail.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(in.Text, "De kassa draait weer na de herstart.") {
			t.Fatalf("closing mail lacks the staff text:\n%s", in.Text)
		}
		_, sig, found := strings.Cut(in.Text, "\n-- \n")
		if found && (strings.Contains(sig, "gesloten") || strings.Contains(sig, "Beantwoord dan deze e-mail")) {
			t.Errorf("the closing notice sits below the signature delimiter of the staff member's text, where clients hide it:\n%s", in.Text)
		}
	}
}

// With the customer portal on, every mail to the customer carries its
// "follow your case" link for that recipient (the closing mail, a relay,
// and the acknowledgement and priority mail in their templates), and no
// mail to staff does. Goldens follow_<name>.
func TestCaseMailFollowLink(t *testing.T) {
	rt := caseMailRuntime(t)
	rt.follow = func(id uint64, email string) string {
		return fmt.Sprintf("https://portal.desk.test/c/LINK-%d-%s", id, email)
	}
	for _, tc := range caseMailCases() {
		t.Run(tc.name, func(t *testing.T) {
			r, err := renderMail(rt, tc.c(), tc.m, caseMailNow)
			if err != nil {
				t.Fatal(err)
			}
			in, err := mail.Parse(r.raw, caseMailNow, mail.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := portalMailKinds[tc.m.Kind]
			link := "https://portal.desk.test/c/LINK-7-" + tc.m.To[0].Email
			if got := strings.Contains(in.Text, link); got != want {
				t.Fatalf("%s: link %s in the text: %v, want %v\n%s", tc.m.Kind, link, got, want, in.Text)
			}
			if !want {
				return
			}
			got := normaliseCaseMail(t, r, 7)
			path := filepath.Join("testdata", "casemail", "follow_"+tc.name+".golden")
			if *updateCaseMailGolden {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantB, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, wantB) {
				t.Errorf("%s differs (run with -update after checking):\n%s", path, lineDiff(string(wantB), string(got)))
			}
		})
	}
}
