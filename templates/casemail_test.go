package templates

import (
	"io/fs"
	"strings"
	"testing"
	"time"
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
		{"nl", "solved_wish", []string{"klantportaal", "opgelost", "Alleen support sluit"}},
		{"en", "new", []string{"New case from Jan Jansen <jan@voorbeeld.nl>."}},
		{"en", "reply", []string{"New reply from Jan Jansen"}},
		{"en", "reopened", []string{"closed case", "reopened"}},
		{"en", "linked", []string{"continuing closed case #7"}},
		{"en", "on_behalf", []string{"on behalf of the customer", "R6"}},
		{"en", "solved_wish", []string{"customer portal", "problem is solved", "Only staff close"}},
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

// TestUnauthorisedDigest: a digest of several R1 notices lists every case
// and writer in text and HTML, with a subject of its own; a digest of one
// notice reads like the single notice (TestUnauthorised).
func TestUnauthorisedDigest(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct{ lang, subject, intro string }{
		{"nl", "Berichten van niet-vaste contactpersonen (2 cases)", "Sinds ons vorige bericht"},
		{"en", "Messages from people who are not named contacts (2 cases)", "Since our last message"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := caseData(tc.lang)
			d.Notices = []NoticeLine{
				{CaseID: 12, Token: "[Case #12]", Subject: "printer", From: "Jan (jan@voorbeeld.nl)", CustomerName: "Voorbeeld B.V."},
				{CaseID: 14, Token: "[Case #14]", Subject: "<vpn>", From: "Kees (kees@voorbeeld.nl)", CustomerName: "Voorbeeld B.V."},
			}
			subject, text, html := renderCase(t, s, "unauthorised", tc.lang, d)
			if subject != tc.subject {
				t.Errorf("subject %q, want %q", subject, tc.subject)
			}
			wantIn(t, "text", text, tc.intro, "[Case #12] printer", "jan@voorbeeld.nl", "[Case #14] <vpn>", "kees@voorbeeld.nl")
			wantIn(t, "html", html, tc.intro, "[Case #14]", "&lt;vpn&gt;", "kees@voorbeeld.nl")
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

// slaMails are the SLA engine's mails (CaseData with its SLA fields).
var slaMails = []string{"sla_warning", "sla_breach", "priority_set"}

// slaData is a realistic case at a target, filled the way the daemon
// fills it: deadlines by FormatWhen in Europe/Amsterdam, durations by
// FormatWorking. breach says whether it is past the target (Over set) or
// at WarnShare of it (Over "").
func slaData(t *testing.T, lang, target string, breach bool) CaseData {
	t.Helper()
	ams := amsterdam(t)
	d := caseData(lang)
	d.Priority = "high"
	d.Target = target
	d.WarnShare = 75
	var limit time.Duration
	var due time.Time
	switch target {
	case "first_response":
		limit, due = 4*time.Hour, utc("2026-11-30T11:00:00Z")
	case "resolution":
		limit, due = 9*time.Hour, utc("2026-10-26T10:00:00Z") // the day after DST ends
	case "resolution_tier2":
		limit, due = 18*time.Hour, utc("2026-10-27T10:00:00Z")
	case "answer", "answer_tier2":
		d.Kind = "vraag"
		limit, due = 27*time.Hour, utc("2026-12-03T15:30:00Z")
	}
	d.TargetLimit = FormatWorking(limit, lang)
	d.Due = FormatWhen(due, ams, lang)
	if breach {
		over := 90 * time.Minute
		d.Elapsed = FormatWorking(limit+over, lang)
		d.Over = FormatWorking(over, lang)
	} else {
		d.Elapsed = FormatWorking(limit*3/4, lang)
	}
	return d
}

func prioritySetData(t *testing.T, lang string) CaseData {
	t.Helper()
	d := caseData(lang)
	d.Priority = PriorityName("high", lang)
	d.ProposedPriority = ""
	d.ResolutionTarget = FormatWorking(9*time.Hour, lang)
	d.ResolutionDue = FormatWhen(utc("2026-12-01T11:00:00Z"), amsterdam(t), lang)
	return d
}

var slaTargets = []string{"first_response", "resolution", "resolution_tier2", "answer", "answer_tier2"}

// TestSLAStaffMails renders the warning and the breach for every target in
// both languages and checks the facts staff act on.
func TestSLAStaffMails(t *testing.T) {
	s := mustLoad(t, "")
	// What the subject and text say of each target.
	type words struct{ warnSubj, breachSubj, text, rule string }
	targets := map[string]map[string]words{
		"nl": {
			"first_response":   {"SLA-waarschuwing: eerste reactie uiterlijk ", "SLA overschreden: reactietijd", "Norm:        eerste reactie (R9)", "R9"},
			"resolution":       {"SLA-waarschuwing: oplossing (90%-norm) uiterlijk ", "SLA overschreden: oplostijd (90%-norm)", "Norm:        oplossing, 90%-norm (R7)", "R7"},
			"resolution_tier2": {"SLA-waarschuwing: oplossing (99,9%-norm) uiterlijk ", "SLA overschreden: oplostijd (99,9%-norm)", "Norm:        oplossing, 99,9%-norm (R7)", "R7"},
			"answer":           {"SLA-waarschuwing: antwoord op vraag (90%-norm) uiterlijk ", "SLA overschreden: antwoordtijd vraag (90%-norm)", "Norm:        inhoudelijk antwoord op vraag, 90%-norm (R10)", "R10"},
			"answer_tier2":     {"SLA-waarschuwing: antwoord op vraag (100%-norm) uiterlijk ", "SLA overschreden: antwoordtijd vraag (100%-norm)", "Norm:        inhoudelijk antwoord op vraag, 100%-norm (R10)", "R10"},
		},
		"en": {
			"first_response":   {"SLA warning: first response due ", "SLA breached: first response time", "Target:     first response (R9)", "R9"},
			"resolution":       {"SLA warning: resolution (90% target) due ", "SLA breached: resolution time (90% target)", "Target:     resolution, 90% target (R7)", "R7"},
			"resolution_tier2": {"SLA warning: resolution (99.9% target) due ", "SLA breached: resolution time (99.9% target)", "Target:     resolution, 99.9% target (R7)", "R7"},
			"answer":           {"SLA warning: answer to question (90% target) due ", "SLA breached: answer time for question (90% target)", "Target:     substantive answer to question, 90% target (R10)", "R10"},
			"answer_tier2":     {"SLA warning: answer to question (100% target) due ", "SLA breached: answer time for question (100% target)", "Target:     substantive answer to question, 100% target (R10)", "R10"},
		},
	}
	labels := map[string]struct{ over, share, notSet, proposed string }{
		"nl": {"Te laat:     ", "75% van de termijn is verstreken.", "niet ingesteld (Medium geldt, R7)", "niet ingesteld (klant stelt urgent voor)"},
		"en": {"Overdue by: ", "75% of the time allowed has passed.", "not set (Medium applies, R7)", "not set (customer proposes urgent)"},
	}
	for _, lang := range []string{"nl", "en"} {
		for _, target := range slaTargets {
			w, l := targets[lang][target], labels[lang]
			t.Run(lang+"/sla_warning/"+target, func(t *testing.T) {
				d := slaData(t, lang, target, false)
				subj, text, html := renderCase(t, s, "sla_warning", lang, d)
				if want := d.Token + " " + w.warnSubj + d.Due; subj != want {
					t.Errorf("subject = %q, want %q", subj, want)
				}
				if html != "" {
					t.Error("a staff mail has an html part")
				}
				wantIn(t, "text", text, d.Token, d.Subject, w.text, w.rule, l.share, d.TargetLimit, d.Due, d.Elapsed,
					"Voorbeeld B.V.", "Premium", "high (", "urgent", d.Kind, "Els de Vries <els@voorbeeld.nl>", "[note]")
				wantNotIn(t, "text", text, l.over, "<no value>")
			})
			t.Run(lang+"/sla_breach/"+target, func(t *testing.T) {
				d := slaData(t, lang, target, true)
				subj, text, html := renderCase(t, s, "sla_breach", lang, d)
				if want := d.Token + " " + w.breachSubj; subj != want {
					t.Errorf("subject = %q, want %q", subj, want)
				}
				if html != "" {
					t.Error("a staff mail has an html part")
				}
				wantIn(t, "text", text, d.Token, d.Subject, w.text, w.rule, d.TargetLimit, d.Due, d.Elapsed,
					l.over+d.Over, "Voorbeeld B.V.", "Premium", "high (", d.Kind, "[note]")
				wantNotIn(t, "text", text, "<no value>")
			})
		}
		t.Run(lang+"/priority fallbacks", func(t *testing.T) {
			d := slaData(t, lang, "resolution", true)
			d.Priority = ""
			for _, name := range []string{"sla_warning", "sla_breach"} {
				_, text, _ := renderCase(t, s, name, lang, d)
				wantIn(t, name, text, labels[lang].proposed)
			}
			d.ProposedPriority = ""
			for _, name := range []string{"sla_warning", "sla_breach"} {
				_, text, _ := renderCase(t, s, name, lang, d)
				wantIn(t, name, text, labels[lang].notSet)
			}
		})
	}
}

// TestSLABreachTiers checks that each breach says which tier it is, and
// that the second tier says it is the second (R7's 99.9%).
func TestSLABreachTiers(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang, target string
		want, bad    []string
	}{
		{"nl", "resolution", []string{"eerste norm", "tweede norm (99,9%) loopt nog", "[pending]", "R11c"}, []string{"ruimste"}},
		{"nl", "resolution_tier2", []string{"tweede norm (99,9%)", "ruimste oplostijd", "R12", "R13", "[pending]"}, []string{"loopt nog"}},
		{"nl", "first_response", []string{"ontvangstbevestiging telt niet (R9)"}, []string{"norm (", "[pending]"}},
		{"nl", "answer", []string{"eerste norm voor vragen", "tweede norm (100%) loopt nog"}, []string{"[pending]"}},
		{"nl", "answer_tier2", []string{"tweede norm voor vragen (100%)", "R12"}, []string{"loopt nog"}},
		{"en", "resolution", []string{"first tier", "second tier (99.9%) is still running", "[pending]", "R11c"}, []string{"longest"}},
		{"en", "resolution_tier2", []string{"second tier (99.9%)", "longest resolution time", "R12", "R13", "[pending]"}, []string{"still running"}},
		{"en", "first_response", []string{"acknowledgement does not count (R9)"}, []string{"tier", "[pending]"}},
		{"en", "answer", []string{"first tier for questions", "second tier (100%) is still running"}, []string{"[pending]"}},
		{"en", "answer_tier2", []string{"second tier for questions (100%)", "R12"}, []string{"still running"}},
	} {
		t.Run(tc.lang+"/"+tc.target, func(t *testing.T) {
			_, text, _ := renderCase(t, s, "sla_breach", tc.lang, slaData(t, tc.lang, tc.target, true))
			text = strings.Join(strings.Fields(text), " ") // the text wraps lines
			wantIn(t, "text", text, tc.want...)
			wantNotIn(t, "text", text, tc.bad...)
		})
	}
}

// TestSLAMailsBare renders the SLA mails with almost nothing known: they
// must still read, with the token first in the subject.
func TestSLAMailsBare(t *testing.T) {
	s := mustLoad(t, "")
	for _, lang := range []string{"nl", "en"} {
		for _, name := range slaMails {
			d := CaseData{CaseID: 3, Token: "[Case #3]", Status: "open", SupportName: "Servicedesk"}
			subj, text, html := renderCase(t, s, name, lang, d)
			where := lang + "/" + name
			if !strings.HasPrefix(subj, "[Case #3]") {
				t.Errorf("%s: subject %q does not start with the token", where, subj)
			}
			for part, got := range map[string]string{"subject": subj, "text": text, "html": html} {
				wantNotIn(t, where+" "+part, got, "<no value>", "  .", " ,", "()", "uiterlijk .", " due .")
			}
			if !strings.Contains(text, "[Case #3]") {
				t.Errorf("%s: text lacks the token:\n%s", where, text)
			}
		}
	}
}

func TestPrioritySet(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang, greeting, set, aim, reply, auto, proposed, dueSaid string
	}{
		{"nl", "Beste Els de Vries,", "prioriteit vastgesteld op:", "Wij streven ernaar uw case binnen 1 werkdag op te lossen",
			"Beantwoord dan deze e-mail", "automatisch verzonden bericht", "U had zelf de prioriteit Urgent voorgesteld", ", dat is uiterlijk"},
		{"en", "Dear Els de Vries,", "priority to:", "We aim to resolve your case within 1 working day",
			"please reply to this e-mail", "automatically generated message", "You had proposed the priority Urgent", ", that is by"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := prioritySetData(t, tc.lang)
			subj, text, html := renderCase(t, s, "priority_set", tc.lang, d)
			if want := "[Case #12] Printer doet het niet"; subj != want {
				t.Errorf("subject = %q, want %q", subj, want)
			}
			if html == "" {
				t.Fatal("no html part")
			}
			// The text wraps lines; compare it with single spaces.
			flat := strings.Join(strings.Fields(text), " ")
			wantIn(t, "text", flat, tc.greeting, tc.set+" "+d.Priority+".", tc.aim, tc.dueSaid+" "+d.ResolutionDue, tc.reply, "[Case #12]", "Printer doet het niet",
				"08:00", "17:00", "Servicedesk Voorbeeld", tc.auto)
			wantIn(t, "html", html, tc.greeting, tc.set, "<strong>"+d.Priority+"</strong>", d.ResolutionTarget, d.ResolutionDue, tc.reply, "[Case #12]", "08:00", "Servicedesk Voorbeeld", tc.auto)
			wantNotIn(t, "text", text, tc.proposed, "<no value>")
			if !strings.HasPrefix(text, tc.greeting) {
				t.Errorf("text does not start with the greeting:\n%s", text)
			}

			// The customer proposed another priority: say so.
			d.ProposedPriority = PriorityName("urgent", tc.lang)
			_, text, html = renderCase(t, s, "priority_set", tc.lang, d)
			wantIn(t, "text", strings.Join(strings.Fields(text), " "), tc.proposed)
			wantIn(t, "html", html, tc.proposed)

			// No resolution target (a change, R14): no promise.
			d.ResolutionTarget, d.ResolutionDue = "", ""
			_, text, html = renderCase(t, s, "priority_set", tc.lang, d)
			for what, got := range map[string]string{"text": text, "html": html} {
				wantNotIn(t, what, strings.Join(strings.Fields(got), " "), tc.aim[:10], "1 werkdag", "1 working day", "<no value>")
				wantIn(t, what, strings.Join(strings.Fields(got), " "), tc.set, tc.reply)
			}

			// A target without a known deadline: the target alone.
			d.ResolutionTarget = FormatWorking(4*time.Hour, tc.lang)
			_, text, _ = renderCase(t, s, "priority_set", tc.lang, d)
			flat = strings.Join(strings.Fields(text), " ")
			wantIn(t, "text", flat, d.ResolutionTarget)
			wantNotIn(t, "text", flat, tc.dueSaid)
		})
	}
}

func TestPrioritySetHTMLEscapes(t *testing.T) {
	s := mustLoad(t, "")
	for _, lang := range []string{"nl", "en"} {
		d := prioritySetData(t, lang)
		d.Subject = `<script>alert("x")</script>`
		d.ContactName = `<img src=x onerror=alert(1)>`
		subj, text, html := renderCase(t, s, "priority_set", lang, d)
		if want := d.Token + " " + d.Subject; subj != want {
			t.Errorf("%s: subject = %q, want literal %q", lang, subj, want)
		}
		wantIn(t, lang+" text", text, d.Subject, d.ContactName)
		wantNotIn(t, lang+" html", html, "<script>", "<img")
		wantIn(t, lang+" html", html, "&lt;script&gt;")
	}
}

// TestSLAMailTextWidth keeps the fixed wording of the SLA mails' text
// parts within 72 columns, like TestCaseMailTextWidth.
func TestSLAMailTextWidth(t *testing.T) {
	for _, lang := range []string{"nl", "en"} {
		for _, name := range slaMails {
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
