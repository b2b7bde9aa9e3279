// Package templates renders the mails deskd sends from embedded defaults (nl,
// en) that an operator can override from a directory.
//
// # Layout
//
// Every mail is three files per language, under default/<lang>/ in this
// package and under <override dir>/<lang>/ for an operator:
//
//	<name>.subject.tmpl  text/template, required; rendered to one line
//	<name>.txt.tmpl      text/template, required; the text/plain body
//	<name>.html.tmpl     html/template, optional; the text/html body
//
// Separate files rather than one file with sections: an operator overrides
// just the part they want (a file with the same path replaces the default,
// the others stay), and html/template's contextual escaping applies to the
// HTML part alone — a customer's subject such as "<script>" is escaped there
// and stays literal in the subject and text parts, which are not HTML.
//
// Load parses everything up front and executes each template with sample
// data (sampleData), so a typo in an override (a parse error or an unknown
// field) fails at load time with the file's name, not when the first mail
// goes out; a daemon reloading on SIGHUP keeps its old Set on error.
//
// # Templates
//
// "ack" acknowledges a new case; its data is AckData. Every other mail about
// a case takes CaseData: "notify" (staff: a new case or a customer's reply),
// "second_line" (staff.second_line: a case handed over, R5), "confirm" (the
// staff member whose keywords changed a case), "error" (the staff member
// whose keywords could not apply), "closing" (the customer: the case is
// closed) and "unauthorised" (a customer's named contacts: someone else of
// theirs wrote to the desk, R1).
//
// The SLA engine's mails take CaseData too, with its SLA fields (Target,
// TargetLimit, Due, Elapsed, Over, WarnShare, ResolutionTarget,
// ResolutionDue): "sla_warning" (staff.notify: a case has used WarnShare
// percent of a target), "sla_breach" (staff.escalation, or
// staff.escalation_tier2 for a second-tier target: a target was missed)
// and "priority_set" (the customer: staff set the case's priority, with
// its resolution target, R7, R4). The two staff mails' subjects say what
// happened after the token; "priority_set", like every customer mail, keeps
// the case's subject so that it threads with the conversation. FormatWhen,
// FormatWorking and PriorityName (format.go) make the words these fields
// carry.
//
// "oauth_expiry" (staff.escalation) is about no case: the OAuth 2.0
// credential deskd signs in to the mailbox with expires soon; Subject is
// the expiry date, Text what to do.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"

	"deskd/internal/i18n"
)

//go:embed default
var defaultFS embed.FS

// DefaultLang is the language used when a mail's language is unknown or has
// no template: the customer's contract is Dutch.
const DefaultLang = i18n.Default

// AckData is the data of the "ack" template, the acknowledgement of a new
// case.
type AckData struct {
	CaseID uint64
	// Token is the case marker for the subject, e.g. "[Case #12]".
	Token string
	// Subject is the customer's original subject, already sanitised.
	Subject string
	// CustomerName is the customer organisation; ContactName the person.
	CustomerName string
	ContactName  string
	Plan         string
	// FirstResponse is the plan's response time in words, e.g. "4 werkuren"
	// or "4 working hours" (R9).
	FirstResponse string
	// FirstResponseDue is the first-response deadline (R9, from the clock's
	// start, R8, R11b), formatted with FormatWhen in the customer's zone
	// and language; "" when unknown. When set the mail names the deadline,
	// else it falls back to FirstResponse.
	FirstResponseDue string
	// SupportName signs the mail, e.g. "Servicedesk Voorbeeld B.V.".
	SupportName string
	// FollowURL is the customer portal's "follow your case" link for the
	// recipient (a capability for this case and address); "" when the
	// portal is off.
	FollowURL string
}

// NoticeLine is one case of a digest of R1 notices.
type NoticeLine struct {
	CaseID       uint64
	Token        string
	Subject      string
	From         string // who wrote, "Name <address>"
	CustomerName string
}

// CaseData is the data of every mail about a case other than the
// acknowledgement. Each template uses the fields that concern it; the rest
// are zero.
type CaseData struct {
	CaseID uint64
	// Token is the case marker for the subject, e.g. "[Case #12]".
	Token string
	// Subject is the case's subject (its title), sanitised.
	Subject      string
	CustomerName string
	Plan         string
	// Priority is the one staff set ("" = not yet); ProposedPriority the
	// customer's proposal (R7); Kind and Status as in the case.
	Priority         string
	ProposedPriority string
	Kind             string
	Status           string
	// Requester is who opened the case, "Name <address>".
	Requester string
	// ContactName is the recipient's name, for customer mails.
	ContactName string
	// From is who wrote the mail this one is about, "Name <address>".
	From string
	// Event says what happened, for "notify": "new", "reply", "reopened",
	// "linked" (a new case continuing closed case LinkedTo) or
	// "on_behalf" (staff opened it for the customer, R6).
	Event    string
	LinkedTo uint64
	// Text is the new text of the mail this one is about, quoted history
	// removed ("notify", "second_line"), or the staff member's last words
	// ("closing").
	Text string
	// Attachments lists the attachments of that mail, "name (type, size)".
	Attachments []string
	// Unauthorised marks a case opened or joined by someone who is not a
	// named contact of the customer (R1).
	Unauthorised bool
	// Notices are the lines of a digest of R1 notices ("unauthorised"):
	// one per case opened or joined by someone who is not a named
	// contact. A digest of one notice also has CaseID, Token, Subject,
	// From and CustomerName set from it, and reads like a single notice.
	Notices []NoticeLine
	// Suspicious says why a mail that claimed a staff address was treated
	// as a customer's ("" = nothing suspicious).
	Suspicious string
	// Changes lists what a staff member's keywords changed ("confirm");
	// Problems what could not apply ("error", and "confirm" when only part
	// applied).
	Changes  []string
	Problems []string
	// Signature is the staff member's signature, cut from Text ("closing"
	// puts its notice above it; "" = none).
	Signature string
	// StaffName is the staff member who acted.
	StaffName string
	// ReopenWindow is how long a reply reopens a closed case, in words
	// ("14 dagen", "14 days").
	ReopenWindow string
	SupportName  string

	// The SLA fields below fill "sla_warning", "sla_breach" and
	// "priority_set"; durations are in words (FormatWorking), instants
	// formatted (FormatWhen), both in the recipient's language.

	// Target says which target a warning or breach is about:
	// "first_response" (the plan's first response, R9), "resolution" (the
	// priority's 90% resolution time, R7), "resolution_tier2" (its 99.9%
	// time, R7), "answer" (a question's first substantive answer, 90%
	// within 3 working days, R10) or "answer_tier2" (R10's 100% within 5).
	Target string
	// TargetLimit is the target in words, e.g. "4 werkuren" (R9, R11a).
	TargetLimit string
	// Due is the target's deadline, e.g. "maandag 30 november 2026 om
	// 12:00 (CET)".
	Due string
	// Elapsed is the working time the target's clock has used so far
	// (paused time excluded, R11c), in words.
	Elapsed string
	// Over is how far the clock is past Due, in working time and words;
	// "" for a warning.
	Over string
	// WarnShare is the share of the target, in percent, at which staff are
	// warned (e.g. 75).
	WarnShare int
	// ResolutionTarget and ResolutionDue are the 90% resolution target of
	// the priority staff set, in words, and its deadline from the case's
	// start (R7), for "priority_set". There Priority and ProposedPriority
	// hold names in the customer's language (PriorityName), so that the
	// mail can tell the customer their proposal was not followed.
	ResolutionTarget string
	ResolutionDue    string

	// FollowURL is the customer portal's "follow your case" link for the
	// recipient, in every mail to the customer ("ack", "priority_set",
	// "closing"; relays get it as a last line); "" when the portal is off.
	FollowURL string
	// SignInURL and SignInExpires fill "signin": the portal's single-use
	// sign-in link and until when it works (FormatWhen).
	SignInURL     string
	SignInExpires string
}

// sampleData returns the data to dry-run template name with at Load, one
// value per branch worth reaching, or nil for a name Load does not know
// (then only parsing is checked). Every field is set in the first value, so
// a misspelt field fails wherever it is used; the variants reach the
// branches that only some values take (a field used only there fails too).
func sampleData(name string) []any {
	switch name {
	case "ack":
		d := AckData{
			CaseID: 1, Token: "[Case #1]", Subject: "sample", CustomerName: "Customer",
			ContactName: "Contact", Plan: "Premium", FirstResponse: "4 working hours",
			FirstResponseDue: "Monday 30 November 2026, 12:00 CET", SupportName: "Support",
			FollowURL: "https://support.example/c/token",
		}
		fallback := d
		fallback.FirstResponseDue = ""
		fallback.FollowURL = ""
		return []any{d, fallback}
	case "signin":
		return []any{sampleCase()}
	case "notify", "second_line", "confirm", "error", "oauth_expiry":
		return []any{sampleCase()}
	case "closing":
		bare := sampleCase()
		bare.FollowURL, bare.Text, bare.Signature = "", "", ""
		return []any{sampleCase(), bare}
	case "unauthorised":
		digest := sampleCase()
		digest.Notices = []NoticeLine{
			{CaseID: 1, Token: "[Case #1]", Subject: "sample", From: "Contact <contact@example.com>", CustomerName: "Customer"},
			{CaseID: 2, Token: "[Case #2]", Subject: "other", From: "Other <other@example.com>", CustomerName: "Customer"},
		}
		return []any{sampleCase(), digest}
	case "sla_warning", "sla_breach", "priority_set":
		out := []any{sampleCase()}
		for _, target := range []string{"first_response", "resolution", "answer", "answer_tier2"} {
			d := sampleCase()
			d.Target = target
			out = append(out, d)
		}
		bare := CaseData{CaseID: 1, Token: "[Case #1]", Status: "open", SupportName: "Support"}
		return append(out, bare)
	}
	return nil
}

// sampleCase is CaseData with every field set.
func sampleCase() CaseData {
	return CaseData{
		CaseID: 1, Token: "[Case #1]", Subject: "sample", CustomerName: "Customer",
		Plan: "Premium", Priority: "high", ProposedPriority: "urgent", Kind: "incident",
		Status: "open", Requester: "Contact <contact@example.com>", ContactName: "Contact",
		From: "Contact <contact@example.com>", Event: "new", LinkedTo: 0, Text: "text",
		Attachments: []string{"log.txt (text/plain, 1 KB)"}, Unauthorised: true,
		Suspicious: "no pass", Changes: []string{"priority: high"}, Problems: []string{"problem"},
		StaffName: "Staff", ReopenWindow: "14 days", SupportName: "Support", Signature: "Staff",
		Target: "resolution_tier2", TargetLimit: "2 working days", Due: "Monday 30 November 2026, 12:00 CET",
		Elapsed: "2 working days and 3 hours", Over: "3 hours", WarnShare: 75,
		ResolutionTarget: "1 working day", ResolutionDue: "Tuesday 1 December 2026, 12:00 CET",
		FollowURL: "https://support.example/c/token", SignInURL: "https://support.example/signin/token",
		SignInExpires: "Monday 30 November 2026, 12:15 CET",
	}
}

// part is one of the three files of a mail.
type part string

const (
	partSubject part = "subject"
	partText    part = "txt"
	partHTML    part = "html"
)

// mailTemplates is one mail in one language.
type mailTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template // nil: text only
	// files name where each part came from, for error messages.
	files map[part]string
}

// Set is a loaded, validated collection of templates. It is read-only after
// Load and safe for concurrent use.
type Set struct {
	m map[string]*mailTemplates // key: lang + "/" + name
}

// Load parses the embedded defaults and, when overrideDir is not "", the
// operator's files in overrideDir/<lang>/<name>.<part>.tmpl, which replace
// the default of the same path. Errors name the file.
func Load(overrideDir string) (*Set, error) {
	s := &Set{m: map[string]*mailTemplates{}}
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		return nil, err
	}
	if err := s.addFS(sub, "default"); err != nil {
		return nil, err
	}
	if overrideDir != "" {
		st, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("templates: %s is not a directory", overrideDir)
		}
		if err := s.addFS(os.DirFS(overrideDir), overrideDir); err != nil {
			return nil, err
		}
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// addFS parses every <lang>/<name>.<part>.tmpl of fsys; label is how file
// names are shown in errors.
func (s *Set) addFS(fsys fs.FS, label string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		if d.IsDir() || !strings.HasSuffix(p, ".tmpl") {
			return nil
		}
		shown := path.Join(label, p)
		lang, file, ok := strings.Cut(p, "/")
		if !ok || strings.Contains(file, "/") {
			return fmt.Errorf("templates: %s: expected <lang>/<name>.<subject|txt|html>.tmpl", shown)
		}
		name, pt, ok := splitFile(file)
		if !ok {
			return fmt.Errorf("templates: %s: expected <name>.subject.tmpl, <name>.txt.tmpl or <name>.html.tmpl", shown)
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		key := strings.ToLower(lang) + "/" + name
		mt := s.m[key]
		if mt == nil {
			mt = &mailTemplates{files: map[part]string{}}
			s.m[key] = mt
		}
		switch pt {
		case partSubject, partText:
			t, err := texttemplate.New(shown).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("templates: %s: %w", shown, err)
			}
			if pt == partSubject {
				mt.subject = t
			} else {
				mt.text = t
			}
		case partHTML:
			t, err := htmltemplate.New(shown).Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("templates: %s: %w", shown, err)
			}
			mt.html = t
		}
		mt.files[pt] = shown
		return nil
	})
}

func splitFile(file string) (name string, p part, ok bool) {
	base := strings.TrimSuffix(file, ".tmpl")
	i := strings.LastIndexByte(base, '.')
	if i <= 0 {
		return "", "", false
	}
	name, p = base[:i], part(base[i+1:])
	switch p {
	case partSubject, partText, partHTML:
		return name, p, true
	}
	return "", "", false
}

// check makes sure every mail has its required parts and that every known
// template runs with sample data, so mistakes surface at Load.
func (s *Set) check() error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		mt := s.m[k]
		if mt.subject == nil {
			errs = append(errs, fmt.Errorf("templates: %s: %s.subject.tmpl is missing", k, k))
		}
		if mt.text == nil {
			errs = append(errs, fmt.Errorf("templates: %s: %s.txt.tmpl is missing", k, k))
		}
		if mt.subject == nil || mt.text == nil {
			continue
		}
		_, name, _ := strings.Cut(k, "/")
		for _, data := range sampleData(name) {
			if _, _, _, err := mt.render(data); err != nil {
				errs = append(errs, err)
				break // one error per mail is enough to find the file
			}
		}
	}
	return errors.Join(errs...)
}

// Render renders mail name in language lang ("nl", "en", "en-GB"; only the
// primary subtag counts) with data. An unknown language, or one without this
// mail, falls back to Dutch. The subject is one line: line breaks and runs of
// white space in it collapse to one space. html is "" when the mail has no
// HTML part.
func (s *Set) Render(name, lang string, data any) (subject, text, html string, err error) {
	mt := s.lookup(name, lang)
	if mt == nil {
		return "", "", "", fmt.Errorf("templates: no template %q", name)
	}
	return mt.render(data)
}

func (s *Set) lookup(name, lang string) *mailTemplates {
	lang = i18n.Primary(lang)
	if mt := s.m[lang+"/"+name]; mt != nil {
		return mt
	}
	return s.m[DefaultLang+"/"+name]
}

func (mt *mailTemplates) render(data any) (subject, text, html string, err error) {
	var b bytes.Buffer
	if err := mt.subject.Execute(&b, data); err != nil {
		return "", "", "", fmt.Errorf("templates: %s: %w", mt.files[partSubject], err)
	}
	subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := mt.text.Execute(&b, data); err != nil {
		return "", "", "", fmt.Errorf("templates: %s: %w", mt.files[partText], err)
	}
	text = b.String()
	if mt.html != nil {
		b.Reset()
		if err := mt.html.Execute(&b, data); err != nil {
			return "", "", "", fmt.Errorf("templates: %s: %w", mt.files[partHTML], err)
		}
		html = b.String()
	}
	return subject, text, html, nil
}
