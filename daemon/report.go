package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"deskd/cases"
	"deskd/mail"
	"deskd/report"
	"deskd/sla"
	"deskd/store"
)

// The service report (R4, R12, R13) over the admin socket: "report"
// returns a month's sla.Report as JSON, "report.mail" renders it (HTML and
// text) and queues it through the outbox to one address. BuildReport is
// shared with the CLI, which calls it on a stopped store's file.

// ReportArgs are the arguments of "report" and "report.mail", embedded in
// AdminRequest.
type ReportArgs struct {
	// Month is "YYYY-MM", in the SLA's zone.
	Month string `json:"month,omitempty"`
	// Customer limits the report to one customer (its exact name).
	Customer string `json:"customer,omitempty"`
	// MailTo is the address "report.mail" sends the report to.
	MailTo string `json:"mail_to,omitempty"`
	// Lang is the language of the mail of "report.mail": "nl" or "en";
	// "" is the language of the customer Customer names, else
	// support.default_language (reportLang).
	Lang string `json:"lang,omitempty"`
}

// ReportMailResult is the answer of "report.mail".
type ReportMailResult struct {
	MessageID string `json:"message_id"`
	To        string `json:"to"`
	Subject   string `json:"subject"`
	Customers int    `json:"customers"`
}

// KindReport is the outbox kind of a report mail.
const KindReport = "report"

// ParseMonth reads "YYYY-MM".
func ParseMonth(s string) (int, time.Month, error) {
	t, err := time.Parse("2006-01", strings.TrimSpace(s))
	if err != nil {
		return 0, 0, fmt.Errorf("month %q: want YYYY-MM", s)
	}
	return t.Year(), t.Month(), nil
}

// BuildReport builds the report args asks for from the cases of tx,
// each evaluated at now with its customer's clock. It reads the store's
// report index (store.ClockEntry, reportindex.go), not every case: the
// cases whose clock started in the twelve months of the history
// (sla.HistoryMonths, ending with the report's), then, a year at a time,
// earlier ones only while a listed customer's run of missed months
// (R13's compensation) reaches back that far, or while the one customer
// the report is limited to has no case yet (its plan). A closed case
// counts with the figures kept in the index when they were computed
// under these clocks (the stamp is sla.FiguresStamp); every other case
// is read and replayed. The report is the one a replay of every case
// gives (TestReportEqualsReplay). Machine cases count nowhere. onCase,
// if not nil, is called per index entry read (progress).
func BuildReport(tx *store.Tx, clocks *sla.Clocks, args ReportArgs, now time.Time, onCase func()) (*sla.Report, error) {
	year, month, err := ParseMonth(args.Month)
	if err != nil {
		return nil, err
	}
	if clocks == nil || clocks.Default == nil || clocks.Default.Calendar == nil {
		return nil, errors.New("report: no SLA clock")
	}
	loc := clocks.Default.Calendar.Location()
	from := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	b := sla.NewReportBuilder(sla.ReportOptions{
		Year: year, Month: month, Location: loc, Now: now, Customer: args.Customer, Clocks: clocks,
	})
	r := newReportReader(tx, clocks, args.Customer, from, now, b, onCase)
	if err := r.read(from.AddDate(0, -(sla.HistoryMonths-1), 0), from.AddDate(0, 1, 0)); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	rep := b.Report()
	return &rep, nil
}

// answerReport serves "report" and "report.mail". A report reads in one
// transaction; a mail is queued in a second one, after rendering, so the
// writer is not held while the cases are evaluated.
func (d *Daemon) answerReport(ctx context.Context, req AdminRequest) (any, error) {
	rt := d.rt.Load()
	clocks := rt.clocks
	now := d.now()
	var to cases.Address
	var lang string
	if req.Op == "report.mail" {
		addr := strings.ToLower(strings.TrimSpace(req.MailTo))
		if !mail.CanAddress(addr) {
			return nil, fmt.Errorf("report.mail: %q is not an address deskd can send to", req.MailTo)
		}
		to = cases.Address{Email: addr}
		var err error
		if lang, err = reportLang(&rt.opts.Policy, req.Customer, req.Lang); err != nil {
			return nil, fmt.Errorf("report.mail: %w", err)
		}
	}
	var rep *sla.Report
	// ctx ends the walk when the client goes away (admin.go).
	err := d.db.ViewContext(ctx, func(tx *store.Tx) error {
		var err error
		rep, err = BuildReport(tx, clocks, req.ReportArgs, now, nil)
		return err
	})
	if err != nil || req.Op == "report" {
		return rep, err
	}

	out, subject, err := renderReportMail(rt, rep, clocks, to, lang, now)
	if err != nil {
		return nil, fmt.Errorf("report.mail: %w", err)
	}
	m := &cases.OutMail{Kind: cases.MailKind(KindReport), To: []cases.Address{to}}
	if err := d.db.Update(func(tx *store.Tx) error {
		return queueMail(tx, rt, nil, m, out, now)
	}); err != nil {
		return nil, fmt.Errorf("report.mail: queue: %w", err)
	}
	d.wakeOutbox()
	d.log.Info("report queued", "month", req.Month, "customer", req.Customer, "lang", lang, "to", to.Email, "msgid", out.messageID)
	return ReportMailResult{MessageID: out.messageID, To: to.Email, Subject: subject, Customers: len(rep.Customers)}, nil
}

// reportLang is the language of a report mail: lang when given ("nl" or
// "en"), else the configured language of the customer the report is
// about, else the desk's default (support.default_language), which is
// also the language of a report on all customers.
func reportLang(p *cases.Policy, customer, lang string) (string, error) {
	if lang != "" {
		return report.ParseLang(lang)
	}
	if customer != "" {
		for _, c := range p.Customers {
			if c.Name == customer && c.Language != "" {
				return report.ParseLang(c.Language)
			}
		}
	}
	if l, err := report.ParseLang(p.DefaultLanguage); err == nil {
		return l, nil
	}
	return report.Dutch, nil
}

// renderReportMail composes the report in lang as one mail from the
// support address: the text rendering as the plain part, the HTML page
// as the alternative (RFC 2046 §5.1.4), with the language in
// Content-Language (RFC 3282).
func renderReportMail(rt *runtime, rep *sla.Report, clocks *sla.Clocks, to cases.Address, lang string, now time.Time) (*renderedMail, string, error) {
	opts := report.Options{Location: clocks.Default.Calendar.Location(), Supplier: rt.opts.SupportName, Lang: lang}
	var text, html bytes.Buffer
	if err := report.Render(&text, report.Text, rep, opts); err != nil {
		return nil, "", err
	}
	if err := report.Render(&html, report.HTML, rep, opts); err != nil {
		return nil, "", err
	}
	subject := report.Subject(rep, opts)
	msgID := mail.NewMessageID(rt.hmacKey, 0, rt.domain)
	raw, err := mail.Compose(&mail.Outgoing{
		From:                 rt.supportAddress(),
		To:                   []cases.Address{to},
		ReplyTo:              []cases.Address{rt.supportAddress()},
		Subject:              subject,
		MessageID:            msgID,
		Date:                 now,
		Text:                 text.String(),
		HTML:                 html.String(),
		AutoSubmitted:        "auto-generated", // RFC 3834 §5: not a reply to a mail
		SuppressAutoResponse: true,
		LoopToken:            rt.domain,
		Extra:                map[string]string{"Content-Language": lang},
	})
	if err != nil {
		return nil, "", err
	}
	return &renderedMail{raw: raw, messageID: msgID, subject: mail.SanitizeHeaderText(subject), text: text.String()}, subject, nil
}
