package templates

import (
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"
)

// caseMails are the mails that take CaseData; htmlMails those of them that
// go to customers and so have an HTML part.
var (
	caseMails  = []string{"notify", "second_line", "confirm", "error", "closing", "unauthorised"}
	htmlMails  = map[string]bool{"closing": true, "unauthorised": true}
	staffMails = map[string]bool{"notify": true, "second_line": true, "confirm": true, "error": true}
)

func caseData(lang string) CaseData {
	d := CaseData{
		CaseID: 12, Token: "[Case #12]", Subject: "Printer doet het niet",
		CustomerName: "Voorbeeld B.V.", Plan: "Premium", ProposedPriority: "urgent",
		Kind: "incident", Status: "open", Requester: "Els de Vries <els@voorbeeld.nl>",
		ContactName: "Els de Vries", From: "Jan Jansen <jan@voorbeeld.nl>", Event: "new",
		Text:        "De printer op de tweede verdieping geeft foutcode E42.",
		Attachments: []string{"foto.jpg (image/jpeg, 120 KB)", "log.txt (text/plain, 2 KB)"},
		Changes:     []string{"priority: high", "status: pending"},
		StaffName:   "Piet Bakker", ReopenWindow: "14 dagen", SupportName: "Servicedesk Voorbeeld",
	}
	if lang == "en" {
		d.ReopenWindow = "14 days"
	}
	return d
}

func renderCase(t *testing.T, s *Set, name, lang string, d CaseData) (subj, text, html string) {
	t.Helper()
	subj, text, html, err := s.Render(name, lang, d)
	if err != nil {
		t.Fatalf("%s/%s: %v", lang, name, err)
	}
	return subj, text, html
}

func wantIn(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func wantNotIn(t *testing.T, what, got string, bads ...string) {
	t.Helper()
	for _, b := range bads {
		if strings.Contains(got, b) {
			t.Errorf("%s has %q:\n%s", what, b, got)
		}
	}
}

// TestCaseMailsRenderEverywhere renders every case mail in both languages
// with several variants and checks what holds for all of them.
func TestCaseMailsRenderEverywhere(t *testing.T) {
	s := mustLoad(t, "")
	variants := map[string]func(*CaseData){
		"plain":        func(*CaseData) {},
		"unauthorised": func(d *CaseData) { d.Unauthorised = true },
		"suspicious":   func(d *CaseData) { d.Suspicious = "DMARC fail" },
		"empty text":   func(d *CaseData) { d.Text = "" },
		"problems":     func(d *CaseData) { d.Problems = []string{"two priorities: [hoog] [laag]"} },
		"bare": func(d *CaseData) {
			*d = CaseData{CaseID: 3, Token: "[Case #3]", Status: "open", SupportName: "Servicedesk"}
		},
	}
	for _, lang := range []string{"nl", "en"} {
		for _, name := range caseMails {
			for vname, mod := range variants {
				d := caseData(lang)
				mod(&d)
				subj, text, html := renderCase(t, s, name, lang, d)
				where := lang + "/" + name + " (" + vname + ")"
				if !strings.HasPrefix(subj, d.Token) {
					t.Errorf("%s: subject %q does not start with the token", where, subj)
				}
				if want := strings.TrimSpace(d.Token + " " + d.Subject); subj != want {
					t.Errorf("%s: subject = %q, want %q", where, subj, want)
				}
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s: empty text", where)
				}
				if htmlMails[name] != (html != "") {
					t.Errorf("%s: html part present = %v, want %v", where, html != "", htmlMails[name])
				}
				for part, got := range map[string]string{"subject": subj, "text": text, "html": html} {
					if strings.Contains(got, "<no value>") {
						t.Errorf("%s: %s renders <no value>:\n%s", where, part, got)
					}
				}
				if !strings.Contains(text, d.Token) {
					t.Errorf("%s: text does not mention the token:\n%s", where, text)
				}
			}
		}
	}
}

func TestNotifyEvents(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang, event string
		want        []string
	}{
		{"nl", "new", []string{"Nieuwe case van Jan Jansen <jan@voorbeeld.nl>."}},
		{"nl", "reply", []string{"Nieuwe reactie van Jan Jansen"}},
		{"nl", "reopened", []string{"gesloten case", "heropend"}},
		{"nl", "linked", []string{"vervolg op gesloten case #7"}},
		{"nl", "on_behalf", []string{"namens de klant", "R6"}},
		{"en", "new", []string{"New case from Jan Jansen <jan@voorbeeld.nl>."}},
		{"en", "reply", []string{"New reply from Jan Jansen"}},
		{"en", "reopened", []string{"closed case", "reopened"}},
		{"en", "linked", []string{"continuing closed case #7"}},
		{"en", "on_behalf", []string{"on behalf of the customer", "R6"}},
	} {
		t.Run(tc.lang+"/"+tc.event, func(t *testing.T) {
			d := caseData(tc.lang)
			d.Event = tc.event
			if tc.event == "linked" {
				d.LinkedTo = 7
			}
			_, text, _ := renderCase(t, s, "notify", tc.lang, d)
			wantIn(t, "text", text, tc.want...)
			first, _, _ := strings.Cut(text, "\n")
			if !strings.Contains(first, "Jan Jansen") {
				t.Errorf("first line does not say who: %q", first)
			}
		})
	}
}

func TestStaffMailFacts(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang                                    string
		proposed, notSet, warnR1, warnSus, told string
		keywords                                []string
	}{
		{"nl", "niet ingesteld (klant stelt urgent voor)", "niet ingesteld (Medium geldt, R7)",
			"(R1)", "vertrouw de afzender", "ingelicht",
			[]string{"Beantwoord deze mail", "geciteerde geschiedenis", "[urgent] [hoog] [medium] [laag]", "[pending]", "[opgelost]", "[open]", "[incident] [vraag] [change]", "[note]"}},
		{"en", "not set (customer proposes urgent)", "not set (Medium applies, R7)",
			"(R1)", "do not trust", "named contacts were told",
			[]string{"Reply to this mail", "quoted history", "[urgent] [hoog] [medium] [laag]", "[pending]", "[opgelost]", "[open]", "[incident] [vraag] [change]", "[note]"}},
	} {
		for _, name := range []string{"notify", "second_line"} {
			t.Run(tc.lang+"/"+name, func(t *testing.T) {
				d := caseData(tc.lang)
				_, text, _ := renderCase(t, s, name, tc.lang, d)
				wantIn(t, "text", text, tc.proposed, "Voorbeeld B.V.", "Premium", "incident", "open",
					"Els de Vries <els@voorbeeld.nl>", d.Text, "foto.jpg (image/jpeg, 120 KB)", "log.txt (text/plain, 2 KB)")
				wantIn(t, "text", text, tc.keywords...)
				if name == "notify" {
					wantIn(t, "text", text, "[bug]")
				} else {
					wantIn(t, "text", text, "Piet Bakker", "R5")
				}
				wantNotIn(t, "text", text, tc.warnR1, tc.warnSus, tc.told, "DMARC")

				// The customer's text sits between two separator lines.
				lines := strings.Split(text, "\n")
				found := false
				for i, l := range lines {
					if l == d.Text {
						found = true
						if i == 0 || i == len(lines)-1 || !strings.HasPrefix(lines[i-1], "-----") || !strings.HasPrefix(lines[i+1], "-----") {
							t.Errorf("text is not between separators:\n%s", text)
						}
					}
				}
				if !found {
					t.Errorf("text is not on a line of its own:\n%s", text)
				}

				d.Unauthorised, d.Suspicious = true, "DMARC fail"
				_, text, _ = renderCase(t, s, name, tc.lang, d)
				wantIn(t, "text", text, tc.warnR1, tc.warnSus, "DMARC fail", tc.told)

				d.ProposedPriority = ""
				_, text, _ = renderCase(t, s, name, tc.lang, d)
				wantIn(t, "text", text, tc.notSet)

				d.Priority, d.ProposedPriority, d.Attachments = "high", "urgent", nil
				_, text, _ = renderCase(t, s, name, tc.lang, d)
				wantIn(t, "text", text, "high (")
				wantNotIn(t, "text", text, tc.notSet, tc.proposed, "foto.jpg")
			})
		}
	}
}

func TestConfirmAndError(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang, notApplied, fix string
	}{
		{"nl", "Niet toegepast:", "één waarde per soort trefwoord"},
		{"en", "Not applied:", "one value per kind of keyword"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := caseData(tc.lang)
			_, text, _ := renderCase(t, s, "confirm", tc.lang, d)
			wantIn(t, "confirm", text, "Piet Bakker", "  - priority: high", "  - status: pending", "[Case #12]")
			wantNotIn(t, "confirm", text, tc.notApplied)

			d.Problems = []string{"two priorities: [hoog] [laag]"}
			_, text, _ = renderCase(t, s, "confirm", tc.lang, d)
			wantIn(t, "confirm", text, tc.notApplied, "  - two priorities: [hoog] [laag]")

			d.Changes = nil
			_, text, _ = renderCase(t, s, "error", tc.lang, d)
			wantIn(t, "error", text, "Piet Bakker", "  - two priorities: [hoog] [laag]", tc.fix, "[Case #12]", "[note]")

			// No case found: the token is empty and the mail still reads.
			d.Token, d.Subject = "", "printer"
			subj, text, _ := renderCase(t, s, "error", tc.lang, d)
			if subj != "printer" {
				t.Errorf("error subject without a token = %q", subj)
			}
			wantNotIn(t, "error", text, "()", " ( ")
		})
	}
}

func TestClosing(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang, greeting, closed, auto string
	}{
		{"nl", "Beste Els de Vries,", "gesloten", "automatisch verzonden"},
		{"en", "Dear Els de Vries,", "closed", "automatically generated"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := caseData(tc.lang)
			d.Text = "Beste Els,\n\nDe toner is vervangen; de printer werkt weer.\n\nGroet, Piet"
			_, text, html := renderCase(t, s, "closing", tc.lang, d)
			if !strings.HasPrefix(text, d.Text) {
				t.Errorf("text does not start with the staff member's message:\n%s", text)
			}
			after := strings.TrimPrefix(text, d.Text)
			wantIn(t, "text", after, tc.closed, "[Case #12]", "Printer doet het niet", d.ReopenWindow, "Servicedesk Voorbeeld")
			wantNotIn(t, "text", text, tc.greeting, tc.auto)
			wantIn(t, "html", html, "De toner is vervangen", tc.closed, d.ReopenWindow, "Servicedesk Voorbeeld")
			wantNotIn(t, "html", html, tc.greeting)

			d.Text = ""
			_, text, html = renderCase(t, s, "closing", tc.lang, d)
			if !strings.HasPrefix(text, tc.greeting) {
				t.Errorf("text does not start with the greeting:\n%s", text)
			}
			for what, got := range map[string]string{"text": text, "html": html} {
				wantIn(t, what, got, tc.greeting, tc.closed, "[Case #12]", d.ReopenWindow, "Servicedesk Voorbeeld", tc.auto)
			}
		})
	}
}

func TestUnauthorised(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"nl", []string{"Beste Els de Vries,", "functioneel beheerder", "Voorbeeld B.V.", "in behandeling", "vaste contactpersoon", "12"}},
		{"en", []string{"Dear Els de Vries,", "functional administrator", "Voorbeeld B.V.", "handling it", "named contact", "12"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := caseData(tc.lang)
			d.From = "Jan Jansen (jan@voorbeeld.nl)" // no angle brackets: same in html
			_, text, html := renderCase(t, s, "unauthorised", tc.lang, d)
			for what, got := range map[string]string{"text": text, "html": html} {
				wantIn(t, what, got, tc.want...)
				wantIn(t, what, got, d.From, d.Token, d.Subject, d.SupportName)
			}
		})
	}
}

func TestCaseMailHTMLEscapes(t *testing.T) {
	s := mustLoad(t, "")
	for _, lang := range []string{"nl", "en"} {
		for name := range htmlMails {
			for _, withText := range []bool{false, true} {
				d := caseData(lang)
				d.Subject = `<script>alert("x")</script>`
				d.ContactName = `<img src=x onerror=alert(1)>`
				d.From = `Mallory <script>@evil.example`
				d.Text = ""
				if withText {
					d.Text = "<b>bold</b> & more"
				}
				subj, text, html := renderCase(t, s, name, lang, d)
				if want := d.Token + " " + d.Subject; subj != want {
					t.Errorf("%s/%s: subject = %q, want literal %q", lang, name, subj, want)
				}
				if !strings.Contains(text, d.Subject) {
					t.Errorf("%s/%s: text does not carry the subject literally:\n%s", lang, name, text)
				}
				wantNotIn(t, lang+"/"+name+" html", html, "<script>", "<img", "<b>bold")
				wantIn(t, lang+"/"+name+" html", html, "&lt;script&gt;")
			}
		}
	}
}

// TestCaseMailTextWidth keeps the fixed wording of the text parts within 72
// columns; lines with actions ({{...}}) depend on the data and are skipped.
func TestCaseMailTextWidth(t *testing.T) {
	for _, lang := range []string{"nl", "en"} {
		for _, name := range caseMails {
			p := "default/" + lang + "/" + name + ".txt.tmpl"
			src, err := fs.ReadFile(defaultFS, p)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range strings.Split(string(src), "\n") {
				if !strings.Contains(l, "{{") && utf8.RuneCountInString(l) > 72 {
					t.Errorf("%s:%d is %d columns wide: %q", p, i+1, utf8.RuneCountInString(l), l)
				}
			}
		}
	}
}
