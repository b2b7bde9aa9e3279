// Package report renders a month's service report (sla.Report: R4, R12,
// R13) for the people and programs that read it: aligned text for a
// terminal, CSV for a spreadsheet, JSON for other programs, and one
// self-contained HTML page (inline CSS and SVG, no external resources)
// that can be sent to a customer. It owns the presentation only; the
// figures are sla's. Instants are shown in the SLA's zone, working time
// in working days of 9 hours (R11a).
//
// The text and HTML formats are for people and come in Dutch (the
// agreement's language and words) and English: every human string is in
// the message table of its language (languages, in lang.go), which both
// renderers read. CSV and JSON are for programs and stay the same in
// every language: their names and values are codes ("missed", "urgent").
package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"deskd/internal/i18n"
	"deskd/sla"
)

// Format is an output format.
type Format string

// The formats.
const (
	Text Format = "text"
	CSV  Format = "csv"
	JSON Format = "json"
	HTML Format = "html"
)

// Formats lists the formats, for usage text and errors.
func Formats() []Format { return []Format{Text, CSV, JSON, HTML} }

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (text, csv, json or html)", s)
}

// The languages of the text and HTML formats, as in customers[].language.
const (
	Dutch   = i18n.Dutch
	English = i18n.English
)

// ParseLang reads a language tag: "nl" or "en" in any case, with any
// region ("en-GB"); only the primary subtag counts (i18n.Parse).
func ParseLang(s string) (string, error) {
	l, ok := i18n.Parse(s)
	if !ok {
		return "", fmt.Errorf("unknown language %q (nl or en)", s)
	}
	return l, nil
}

// Options shape the rendering.
type Options struct {
	// Location is the zone instants are shown in; nil means the report's
	// own Zone, or UTC when that does not load.
	Location *time.Location
	// Supplier names the service desk in titles ("" = "Service desk",
	// in Dutch "Servicedesk"; in JSON always "Service desk").
	Supplier string
	// Lang is the language of the text and HTML formats: "nl" or "en";
	// anything else is Dutch, the agreement's language. CSV and JSON do
	// not depend on it.
	Lang string
}

// Render writes r to w in format f.
func Render(w io.Writer, f Format, r *sla.Report, opts Options) error {
	v := newView(r, opts)
	switch f {
	case Text:
		return renderText(w, v)
	case CSV:
		return renderCSV(w, v)
	case JSON:
		return renderJSON(w, v)
	case HTML:
		return renderHTML(w, v)
	}
	return fmt.Errorf("unknown format %q", f)
}

// Subject is a one-line title for r in opts.Lang, fit for a mail subject.
func Subject(r *sla.Report, opts Options) string {
	v := newView(r, opts)
	who := v.t("subject.all")
	if r.Customer != "" {
		who = clean(r.Customer)
	}
	return v.t("subject", v.Supplier, v.MonthName, who)
}

// FormatWorking shows a working time: "45m", "4h", "4h30m", "1d 2h05m",
// "65d", where d is a working day of 9 working hours (R11a). It rounds to
// the minute. This is the language-neutral form (JSON's "text"); the text
// and HTML formats write the units of their language.
func FormatWorking(d time.Duration) string {
	return formatWorking(d, "d", "h", "m")
}

func formatWorking(d time.Duration, day, hour, minute string) string {
	neg, days, h, m := sla.SplitWorking(d)
	sign := ""
	if neg {
		sign = "-"
	}
	var parts []string
	if days > 0 {
		parts = append(parts, fmt.Sprintf("%d%s", days, day))
	}
	switch {
	case h > 0 && m > 0:
		parts = append(parts, fmt.Sprintf("%d%s%02d%s", h, hour, m, minute))
	case h > 0:
		parts = append(parts, fmt.Sprintf("%d%s", h, hour))
	case m > 0 || days == 0:
		parts = append(parts, fmt.Sprintf("%d%s", m, minute))
	}
	return sign + strings.Join(parts, " ")
}
