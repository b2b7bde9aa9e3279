package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ackData(lang string) AckData {
	d := AckData{
		CaseID: 12, Token: "[Case #12]", Subject: "Printer doet het niet",
		CustomerName: "Voorbeeld B.V.", ContactName: "Els de Vries", Plan: "Premium",
		FirstResponse: "4 werkuren", SupportName: "Servicedesk Voorbeeld",
	}
	if lang == "en" {
		d.FirstResponse = "4 working hours"
	}
	return d
}

func mustLoad(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(%q): %v", dir, err)
	}
	return s
}

func TestRenderAck(t *testing.T) {
	s := mustLoad(t, "")
	for _, tc := range []struct {
		lang string
		want []string // in text and html
	}{
		{"nl", []string{"Beste Els de Vries,", "casenummer", "12", "[Case #12]", "binnen 4 werkuren", "maandag tot en met", "08:00 tot 17:00", "automatisch verzonden bericht", "Servicedesk Voorbeeld", "Premium", "Voorbeeld B.V."}},
		{"en", []string{"Dear Els de Vries,", "case number", "12", "[Case #12]", "within 4 working hours", "Monday", "08:00 to 17:00", "automatically generated message", "Servicedesk Voorbeeld", "Premium", "Voorbeeld B.V."}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			subj, text, html, err := s.Render("ack", tc.lang, ackData(tc.lang))
			if err != nil {
				t.Fatal(err)
			}
			if want := "[Case #12] Printer doet het niet"; subj != want {
				t.Errorf("subject = %q, want %q", subj, want)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
				if !strings.Contains(html, w) {
					t.Errorf("html lacks %q:\n%s", w, html)
				}
			}
			if strings.Contains(text, "<no value>") || strings.Contains(html, "<no value>") {
				t.Error("a field rendered as <no value>")
			}
		})
	}
}

func TestRenderAckWithoutOptionalFields(t *testing.T) {
	s := mustLoad(t, "")
	_, text, _, err := s.Render("ack", "nl", AckData{CaseID: 3, Token: "[Case #3]", SupportName: "Servicedesk"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Geachte heer/mevrouw,", "Onze werktijden"} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	for _, bad := range []string{"Onderwerp:", "Abonnement:", "binnen ."} {
		if strings.Contains(text, bad) {
			t.Errorf("text has %q though the field is empty:\n%s", bad, text)
		}
	}
}

func TestSubjectInjectionEscapedInHTMLOnly(t *testing.T) {
	s := mustLoad(t, "")
	d := ackData("nl")
	d.Subject = `<script>alert("x")</script> & <b>bold</b>`
	d.ContactName = `<img src=x onerror=alert(1)>`
	subj, text, html, err := s.Render("ack", "nl", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Case #12] " + d.Subject; subj != want {
		t.Errorf("subject = %q, want literal %q", subj, want)
	}
	if !strings.Contains(text, d.Subject) || !strings.Contains(text, d.ContactName) {
		t.Errorf("text does not carry the subject literally:\n%s", text)
	}
	for _, bad := range []string{"<script>", "<b>bold", "<img"} {
		if strings.Contains(html, bad) {
			t.Errorf("html contains unescaped %q:\n%s", bad, html)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("html lacks the escaped subject:\n%s", html)
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	s := mustLoad(t, "")
	d := ackData("nl")
	d.Subject = "a\r\nBcc: evil@example.com"
	subj, _, _, err := s.Render("ack", "nl", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subj, "\r\n") {
		t.Errorf("subject has a line break: %q", subj)
	}
}

func TestUnknownLangFallsBackToDutch(t *testing.T) {
	s := mustLoad(t, "")
	_, nl, _, _ := s.Render("ack", "nl", ackData("nl"))
	for _, lang := range []string{"de", "", "xx-YY"} {
		_, text, _, err := s.Render("ack", lang, ackData("nl"))
		if err != nil {
			t.Fatal(err)
		}
		if text != nl {
			t.Errorf("lang %q: not the Dutch text", lang)
		}
	}
	_, en, _, _ := s.Render("ack", "en", ackData("en"))
	_, enGB, _, _ := s.Render("ack", "en-GB", ackData("en"))
	if en != enGB {
		t.Error("en-GB did not use the English template")
	}
}

func TestUnknownTemplate(t *testing.T) {
	s := mustLoad(t, "")
	if _, _, _, err := s.Render("nope", "nl", nil); err == nil {
		t.Error("rendering an unknown template succeeded")
	}
}

func writeFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOverrideReplacesOneTemplate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nl/ack.txt.tmpl", "Eigen tekst voor case {{.CaseID}}.\n")
	s := mustLoad(t, dir)
	subj, text, html, err := s.Render("ack", "nl", ackData("nl"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "Eigen tekst voor case 12.\n" {
		t.Errorf("text = %q, want the override", text)
	}
	// The other parts and languages keep their defaults.
	if subj != "[Case #12] Printer doet het niet" || !strings.Contains(html, "Hartelijk dank") {
		t.Errorf("subject or html lost its default: %q / %q", subj, html)
	}
	if _, en, _, _ := s.Render("ack", "en", ackData("en")); !strings.Contains(en, "Thank you") {
		t.Error("English text lost its default")
	}
}

func TestOverrideErrorsNameTheFile(t *testing.T) {
	for _, tc := range []struct {
		name, rel, content string
	}{
		{"parse error", "nl/ack.html.tmpl", "<p>{{.CaseID</p>"},
		{"unknown field", "en/ack.txt.tmpl", "{{.NoSuchField}}"},
		{"bad file name", "nl/ack.body.tmpl", "x"},
		{"missing text part", "de/ack.subject.tmpl", "{{.Token}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tc.rel, tc.content)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			want := filepath.ToSlash(filepath.Join(dir, tc.rel))
			if tc.name == "missing text part" {
				want = "de/ack.txt.tmpl"
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		})
	}
}

func TestOverrideDirMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
}

func TestOverrideAddsLanguage(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "de/ack.subject.tmpl", "{{.Token}} {{.Subject}}")
	writeFile(t, dir, "de/ack.txt.tmpl", "Guten Tag, Fall {{.CaseID}}.")
	s := mustLoad(t, dir)
	_, text, html, err := s.Render("ack", "de", ackData("de"))
	if err != nil {
		t.Fatal(err)
	}
	if text != "Guten Tag, Fall 12." || html != "" {
		t.Errorf("got text %q html %q", text, html)
	}
}

// TestRenderAckFirstResponseDue: with the deadline known, the ack names
// it next to the plan's response time (R9); without, only the latter.
func TestRenderAckFirstResponseDue(t *testing.T) {
	s := mustLoad(t, "")
	ams := amsterdam(t)
	due := utc("2026-11-30T11:00:00Z")
	for _, tc := range []struct {
		lang, withDue, fallback string
	}{
		{"nl", "Wij reageren binnen 4 werkuren: u ontvangt uiterlijk maandag 30 november 2026 om 12:00 (CET) een eerste reactie van een medewerker.", "Wij reageren binnen 4 werkuren."},
		{"en", "We will respond within 4 working hours: you will receive a first response from a member of our staff by Monday 30 November 2026, 12:00 CET.", "We will respond within 4 working hours."},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			d := ackData(tc.lang)
			d.FirstResponseDue = FormatWhen(due, ams, tc.lang)
			_, text, html, err := s.Render("ack", tc.lang, d)
			if err != nil {
				t.Fatal(err)
			}
			flat := strings.Join(strings.Fields(text), " ")
			if !strings.Contains(flat, tc.withDue) {
				t.Errorf("text lacks %q:\n%s", tc.withDue, text)
			}
			if !strings.Contains(html, "<strong>"+d.FirstResponseDue+"</strong>") {
				t.Errorf("html lacks the deadline:\n%s", html)
			}
			for what, got := range map[string]string{"text": text, "html": html} {
				if strings.Contains(strings.Join(strings.Fields(got), " "), tc.fallback) {
					t.Errorf("%s has the bare sentence %q next to the deadline", what, tc.fallback)
				}
				if !strings.Contains(got, "08:00") || !strings.Contains(got, "17:00") {
					t.Errorf("%s lost the working hours", what)
				}
			}

			d.FirstResponseDue = ""
			_, text, html, err = s.Render("ack", tc.lang, d)
			if err != nil {
				t.Fatal(err)
			}
			for what, got := range map[string]string{"text": text, "html": html} {
				if !strings.Contains(got, tc.fallback) {
					t.Errorf("%s lacks the fallback %q:\n%s", what, tc.fallback, got)
				}
				if strings.Contains(got, "uiterlijk") || strings.Contains(got, "first response from") {
					t.Errorf("%s names a deadline that is not set:\n%s", what, got)
				}
			}
		})
	}
}

// TestLoadDryRunsEveryDefault: every default mail has sample data, so
// Load executes it (a mail without would only be parsed); the SLA mails
// exist in both languages, with html for the customer's.
func TestLoadDryRunsEveryDefault(t *testing.T) {
	s := mustLoad(t, "")
	for key, mt := range s.m {
		_, name, _ := strings.Cut(key, "/")
		if sampleData(name) == nil {
			t.Errorf("%s: no sample data; Load cannot dry-run it", key)
		}
		if mt.subject == nil || mt.text == nil {
			t.Errorf("%s: incomplete", key)
		}
	}
	for _, lang := range []string{"nl", "en"} {
		for _, name := range []string{"sla_warning", "sla_breach", "priority_set"} {
			mt := s.m[lang+"/"+name]
			if mt == nil {
				t.Errorf("%s/%s missing", lang, name)
				continue
			}
			if (mt.html != nil) != (name == "priority_set") {
				t.Errorf("%s/%s: html part present = %v", lang, name, mt.html != nil)
			}
		}
	}
}

// TestOverrideReplacesOneSLAFile: an operator's file for one part of one
// SLA mail replaces only that file.
func TestOverrideReplacesOneSLAFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "nl/sla_breach.txt.tmpl", "Te laat: {{.Token}}, {{.Over}} over {{.Due}}.\n")
	s := mustLoad(t, dir)
	def := mustLoad(t, "")
	d := slaData(t, "nl", "resolution", true)
	subj, text, _, err := s.Render("sla_breach", "nl", d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Te laat: [Case #12], 1 werkuur en 30 minuten over maandag 26 oktober 2026 om 11:00 (CET).\n"; text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if want := "[Case #12] SLA overschreden: oplostijd (90%-norm)"; subj != want {
		t.Errorf("subject = %q, want the default %q", subj, want)
	}
	// The English breach and the other SLA mails keep their defaults.
	for _, r := range []struct{ name, lang string }{{"sla_breach", "en"}, {"sla_warning", "nl"}, {"priority_set", "nl"}} {
		d := slaData(t, r.lang, "resolution", true)
		s1, t1, h1, err1 := s.Render(r.name, r.lang, d)
		s2, t2, h2, err2 := def.Render(r.name, r.lang, d)
		if err1 != nil || err2 != nil || s1 != s2 || t1 != t2 || h1 != h2 {
			t.Errorf("%s/%s changed with an override of nl/sla_breach.txt.tmpl", r.lang, r.name)
		}
	}
}

// TestOverrideErrorInSLABranch: a misspelt field in a branch only one
// target reaches still fails at Load, because Load dry-runs every target.
func TestOverrideErrorInSLABranch(t *testing.T) {
	for _, target := range []string{"first_response", "answer_tier2"} {
		t.Run(target, func(t *testing.T) {
			dir := t.TempDir()
			rel := "en/sla_warning.txt.tmpl"
			writeFile(t, dir, rel, `{{.Token}}{{if eq .Target "`+target+`"}} {{.Duee}}{{end}}`)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if want := filepath.ToSlash(filepath.Join(dir, rel)); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		})
	}
}
